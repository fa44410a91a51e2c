// Browser test of the Uptime page (#/uptime) and the public status page
// (/status): starts the real binary with a `probes:` config pointing at a
// local HTTP server (one target answers 200, one 500, plus a TCP check),
// drives Debian's Chromium with playwright-core and checks the DOM.
// Screenshots go to $ESPY_TEST_OUTPUT.
//
// Two kinds of tests:
// - page tests: the pages are served by the real binary, and the JSON they
//   poll (/v1/probes, /status/probes) is answered by the test through
//   playwright's request routing, so every state (down, pending, expiring
//   certificate, empty) is shown deterministically;
// - the end-to-end test: the probe engine checks the local server and the
//   pages show what it found, with history POSTed as probe_* samples.
//
// Env: ESPY_BIN, ESPY_WEB_DIR, ESPY_TEST_OUTPUT, CHROMIUM (see dashboard_test.mjs).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { BIN, OUT, freePort, launchBrowser, newPage as openPage } from './harness.mjs';

const DAY_S = 86400;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let site; // the local website the probes check
let sitePort;
let server;
let serverLog = '';
let base;
let dataDir;
let browser;

// Starts espy; resolves true once /healthz answers, false if it exits first.
async function startEspy(args) {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  serverLog = '';
  server = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server.stderr.on('data', (d) => {
    serverLog += d;
    process.stderr.write(d);
  });
  let exited = false;
  server.once('exit', () => {
    exited = true;
  });
  for (let i = 0; i < 400 && !exited; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return true;
    } catch {
      /* not up yet */
    }
    await sleep(50);
  }
  if (!exited) throw new Error('espy did not start');
  server = null;
  return false;
}

before(async () => {
  site = createHttpServer((req, res) => {
    if (req.url === '/fail') {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('Internal Server Error');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<h1>Welcome</h1>');
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  sitePort = site.address().port;

  dataDir = mkdtempSync(join(tmpdir(), 'espy-browser-uptime-'));
  const config = join(dataDir, 'espy.yaml');
  writeFileSync(config, `probes:
  - name: homepage
    url: http://127.0.0.1:${sitePort}/
    interval: 2s
    timeout: 2s
    body_must_match: ["Welcome"]
  - name: checkout-api
    url: http://127.0.0.1:${sitePort}/fail
    interval: 2s
    timeout: 2s
  - name: database
    tcp: 127.0.0.1:${sitePort}
    interval: 2s
`);
  if (!(await startEspy(['--config', config]))) {
    throw new Error(`espy serve refused the probes config: ${serverLog}`);
  }
  const res = await fetch(`${base}/v1/probes`);
  assert.equal(res.status, 200, 'GET /v1/probes');

  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (server) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (site) await new Promise((r) => site.close(r));
  rmSync(dataDir, { recursive: true, force: true });
});

const newPage = (options = {}) => openPage(browser, options, { width: 1280, height: 900 });

// ---- Fixtures for the page tests (the shape GET /v1/probes answers). ----

// 24 h of 5-minute latency buckets around `ms` milliseconds, with a gap.
function latency(nowS, ms, { jitter = 0.25, gapFrom = -1, gapTo = -1 } = {}) {
  const end = Math.floor(nowS / 300) * 300;
  const out = [];
  for (let i = 0; i < 288; i++) {
    if (i >= gapFrom && i < gapTo) continue;
    const t = end - (287 - i) * 300;
    const wave = 1 + jitter * Math.sin(i / 9) + (jitter / 2) * Math.sin(i / 2.3);
    out.push([t, (ms * wave + (i % 37 === 0 ? ms * 1.5 : 0)) / 1000]);
  }
  return out;
}

// The starts of buckets [from, to) of the same 24 h.
function downBuckets(nowS, from, to) {
  const end = Math.floor(nowS / 300) * 300;
  const out = [];
  for (let i = from; i < to; i++) out.push(end - (287 - i) * 300);
  return out;
}

// The colour the chart drew halfway up the plot, in the middle of the
// bucket starting at `t` (unix seconds): [r, g, b, a].
function pixelAt(page, selector, t) {
  return page.evaluate(([sel, ts]) => {
    const u = document.querySelector(sel).__plot;
    const x = Math.round(u.valToPos(ts + 150, 'x', true));
    const y = Math.round(u.bbox.top + u.bbox.height * 0.1);
    return [...u.ctx.getImageData(x, y, 1, 1).data];
  }, [selector, t]);
}

function fixtures(now = Date.now()) {
  const nowS = now / 1000;
  const ago = (s) => new Date(now - s * 1000).toISOString();
  const full = [
    {
      name: 'checkout-api', kind: 'http', target: 'http://10.20.0.7:8080/healthz', interval_seconds: 30,
      up: false, last_check: ago(12), duration_seconds: 0.412, http_status: 503, cert_days_left: null,
      error: 'HTTP 503 Service Unavailable from 10.20.0.7:8080 (want 2xx)',
      availability: { '24h': 0.9583, '7d': 0.99404, '30d': 0.99861 },
      // Down from bucket 250 to 262: no latency there (the server leaves
      // failed checks out), and those buckets are listed as down.
      latency: latency(nowS, 180, { jitter: 0.4, gapFrom: 250, gapTo: 262 }),
      down: downBuckets(nowS, 250, 262),
    },
    {
      name: 'database', kind: 'tcp', target: 'db.internal:5432', interval_seconds: 15,
      up: true, last_check: ago(3), duration_seconds: 0.0009, http_status: null, cert_days_left: null,
      error: null, availability: { '24h': 1, '7d': 1, '30d': 0.99995 }, latency: latency(nowS, 0.9, { jitter: 0.2 }),
    },
    {
      name: 'homepage', kind: 'http', target: 'https://www.example.com/', interval_seconds: 30,
      up: true, last_check: ago(8), duration_seconds: 0.0874, http_status: 200, cert_days_left: 9.4,
      error: null, availability: { '24h': 1, '7d': 0.99931, '30d': 0.99712 }, latency: latency(nowS, 85),
    },
    {
      name: 'new-service', kind: 'http', target: 'https://new.example.com/', interval_seconds: 60,
      up: null, last_check: null, duration_seconds: null, http_status: null, cert_days_left: null,
      error: null, availability: { '24h': null, '7d': null, '30d': null }, latency: [],
    },
  ];
  const pub = full.map(({ name, up, last_check, availability, latency: l, down = [] }) => ({ name, up, last_check, availability, latency: l, down }));
  return { full, pub };
}

async function serveProbes(page, full, pub) {
  await page.route('**/v1/probes', (route) => route.fulfill({ json: full }));
  await page.route('**/status/probes', (route) => route.fulfill({ json: pub }));
}

// ---- Page tests ----

test('uptime page shows each check with state, latency chart, availability, cert and error', async () => {
  const { page, context, errors } = await newPage();
  const { full, pub } = fixtures();
  await serveProbes(page, full, pub);
  await page.goto(`${base}/#/uptime`);
  await page.waitForSelector('#uptime-list .probe[data-name="homepage"]');
  // Sorted as the server answers, one card each.
  assert.deepEqual(await page.$$eval('#uptime-list .probe', (ns) => ns.map((n) => n.dataset.name)),
    ['checkout-api', 'database', 'homepage', 'new-service']);
  assert.deepEqual(await page.$$eval('#uptime-list .probe', (ns) => ns.map((n) => n.dataset.state)),
    ['down', 'up', 'up', 'pending']);
  assert.match(await page.textContent('#uptime-summary'), /1 of 4 down/);

  const api = page.locator('.probe[data-name="checkout-api"]');
  assert.match(await api.locator('.badge').textContent(), /Down/);
  assert.match(await api.locator('.probe-error').textContent(), /HTTP 503 Service Unavailable/);
  assert.match(await api.locator('.probe-target').textContent(), /10\.20\.0\.7:8080/);
  assert.equal(await api.locator('[data-stat="latency"] .stat-value').textContent(), '412 ms');
  assert.equal(await api.locator('[data-window="24h"] .avail-value').textContent(), '95.83%');
  assert.match(await api.locator('[data-window="24h"] .avail-value').getAttribute('class'), /bad/);
  assert.equal(await api.locator('[data-window="30d"] .avail-value').textContent(), '99.86%');

  const home = page.locator('.probe[data-name="homepage"]');
  assert.match(await home.locator('.badge').textContent(), /Up/);
  assert.equal(await home.locator('[data-cert]').getAttribute('data-cert'), 'warn');
  assert.match(await home.locator('[data-cert] .stat-value').textContent(), /9 days left/);
  assert.equal(await home.locator('.probe-error').count(), 0);
  assert.equal(await home.locator('[data-window="24h"] .avail-value').textContent(), '100%');

  const db = page.locator('.probe[data-name="database"]');
  assert.equal(await db.locator('[data-stat="latency"] .stat-value').textContent(), '0.90 ms');
  assert.equal(await db.locator('[data-window="30d"] .avail-value').textContent(), '99.99%'); // never rounded up to 100

  const fresh = page.locator('.probe[data-name="new-service"]');
  assert.match(await fresh.locator('.badge').textContent(), /Pending/);
  assert.equal(await fresh.locator('[data-window="7d"] .avail-value').textContent(), '–');
  assert.match(await fresh.locator('.latency-empty').textContent(), /No checks/);

  // A 24 h chart per card, with the points the server gave.
  assert.equal(await page.locator('#uptime-list .probe canvas').count(), 4);
  assert.equal(await home.locator('.latency-chart').getAttribute('data-points'), '288');
  assert.equal(await api.locator('.latency-chart').getAttribute('data-points'), '276');
  // The down period is shaded (red under the missing line), the rest is not.
  const apiDown = fixtures().full[0].down;
  assert.equal(await api.locator('.latency-chart').getAttribute('data-down'), String(apiDown.length));
  const shaded = await pixelAt(page, '.probe[data-name="checkout-api"] .latency-chart', apiDown[5]);
  assert.ok(shaded[3] > 0 && shaded[0] > shaded[1] + 20 && shaded[0] > shaded[2] + 20, `not shaded: ${shaded}`);
  const clear = await pixelAt(page, '.probe[data-name="checkout-api"] .latency-chart', apiDown[0] - 20 * 300);
  assert.equal(clear[3], 0, `shaded where the check was up: ${clear}`);
  assert.equal(await home.locator('.latency-chart').getAttribute('data-down'), '0');
  assert.equal(await page.getAttribute('#uptime-public', 'href'), '/status');
  await page.screenshot({ path: join(OUT, 'uptime.png'), fullPage: true });

  // Hovering a chart shows the bucket's latency.
  const box = await home.locator('.u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.5);
  await page.waitForSelector('.probe[data-name="homepage"] .latency-tip', { state: 'visible' });
  assert.match(await home.locator('.latency-tip').textContent(), /^\d\d:\d\d · [\d.]+ ms$/);

  await page.click('#theme');
  await page.mouse.move(0, 0);
  await page.screenshot({ path: join(OUT, 'uptime-dark.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test('uptime page refreshes and explains how to add probes when there are none', async () => {
  const { page, context, errors } = await newPage();
  let answer = [];
  await page.route('**/v1/probes', (route) => route.fulfill({ json: answer }));
  await page.clock.install();
  await page.goto(`${base}/#/uptime`);
  await page.waitForSelector('#uptime-empty');
  const text = await page.textContent('#uptime-empty');
  assert.match(text, /No probes configured/);
  assert.match(text, /probes:\n {2}- name: homepage\n {4}url: https:\/\/example.com\//);
  assert.match(text, /tcp: 127\.0\.0\.1:5432/);
  await page.screenshot({ path: join(OUT, 'uptime-empty.png'), fullPage: true });
  // The next poll picks up a new target.
  answer = fixtures().full.slice(2, 3);
  await page.clock.runFor(10500);
  await page.waitForSelector('.probe[data-name="homepage"]');
  assert.equal(await page.locator('#uptime-empty').count(), 0);
  assert.deepEqual(errors, []);
  await context.close();
});

test('status page shows a banner and each check without internal details', async () => {
  const { page, context, errors } = await newPage({ viewport: { width: 1100, height: 800 } });
  const { full, pub } = fixtures();
  await serveProbes(page, full, pub);
  await page.goto(`${base}/status`);
  await page.waitForSelector('#checks .check[data-name="homepage"]');
  assert.match(await page.textContent('#banner'), /1 of 4 checks down/);
  assert.match(await page.getAttribute('#banner', 'class'), /bad/);
  assert.deepEqual(await page.$$eval('#checks .check', (ns) => ns.map((n) => [n.dataset.name, n.dataset.state])),
    [['checkout-api', 'down'], ['database', 'up'], ['homepage', 'up'], ['new-service', 'pending']]);
  const row = page.locator('.check[data-name="homepage"]');
  assert.match(await row.locator('.badge').textContent(), /Operational/);
  assert.equal(await row.locator('[data-window="7d"] .avail-value').textContent(), '99.93%');
  assert.equal(await row.locator('.latency-chart').getAttribute('data-points'), '288');
  assert.equal(await page.locator('#checks canvas').count(), 4);
  // A standalone page: no dashboard navigation, no links anywhere, and it
  // never asked for the internal endpoint.
  assert.equal(await page.locator('#nav').count(), 0);
  assert.equal(await page.locator('a').count(), 0);
  const html = await page.content();
  assert.doesNotMatch(html, /10\.20\.0\.7|example\.com|db\.internal/);
  await page.screenshot({ path: join(OUT, 'status-down.png'), fullPage: true });

  // All up: the green banner.
  const up = pub.filter((c) => c.up === true);
  await page.unroute('**/status/probes');
  await page.route('**/status/probes', (route) => route.fulfill({ json: up }));
  await page.reload();
  await page.waitForSelector('#banner.good');
  assert.equal(await page.textContent('#banner-text'), 'All systems operational');
  await page.screenshot({ path: join(OUT, 'status.png'), fullPage: true });
  await page.click('#theme');
  await page.screenshot({ path: join(OUT, 'status-dark.png'), fullPage: true });

  await page.unroute('**/status/probes');
  await page.route('**/status/probes', (route) => route.fulfill({ json: [] }));
  await page.reload();
  await page.waitForFunction(() => /No checks are configured/.test(document.querySelector('#banner').textContent));
  assert.deepEqual(errors, []);
  await context.close();

  const phone = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await serveProbes(phone.page, full, pub);
  await phone.page.goto(`${base}/status`);
  await phone.page.waitForSelector('#checks .check[data-name="homepage"] canvas');
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `status page scrolls sideways by ${overflow}px on a phone`);
  await phone.page.screenshot({ path: join(OUT, 'status-phone.png'), fullPage: true });
  await phone.page.goto(`${base}/#/uptime`);
  await phone.page.waitForSelector('#uptime-list .probe[data-name="homepage"] canvas');
  const overflow2 = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow2 <= 1, `uptime page scrolls sideways by ${overflow2}px on a phone`);
  await phone.page.screenshot({ path: join(OUT, 'uptime-phone.png'), fullPage: true });
  assert.deepEqual(phone.errors, []);
  await phone.context.close();
});

test('the status page and its assets are served from under /status', async () => {
  const res = await fetch(`${base}/status`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  const html = await res.text();
  const assets = [...html.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]);
  assert.equal(assets.length, 2, html);
  for (const a of assets) {
    assert.match(a, /^\/status\/assets\/status-[0-9a-f]{12}\.(js|css)$/);
    assert.equal((await fetch(`${base}${a}`)).status, 200, a);
  }
});

// ---- End to end: the probe engine checks a local website. ----

test('probes of a local website show on the uptime and status pages', async () => {
  // Wait for the engine's first checks.
  let probes = [];
  for (let i = 0; i < 200; i++) {
    probes = await (await fetch(`${base}/v1/probes`)).json();
    if (probes.length === 3 && probes.every((p) => p.up !== null)) break;
    await sleep(100);
  }
  const by = Object.fromEntries(probes.map((p) => [p.name, p]));
  assert.deepEqual(Object.keys(by).sort(), ['checkout-api', 'database', 'homepage']);
  assert.equal(by.homepage.up, true, JSON.stringify(by.homepage));
  assert.equal(by.homepage.http_status, 200);
  assert.equal(by['checkout-api'].up, false, JSON.stringify(by['checkout-api']));
  assert.equal(by['checkout-api'].http_status, 500);
  assert.ok(by['checkout-api'].error, 'a failed check says why');
  assert.equal(by.database.up, true, JSON.stringify(by.database));
  assert.equal(by.database.kind, 'tcp');

  // History as the engine would have written it: 3 days of checks.
  const now = Date.now() / 1000;
  const points = [];
  for (let s = now - 3 * DAY_S; s < now - 60; s += 300) {
    const i = Math.round(s / 300);
    for (const [probe, path] of [['homepage', '/'], ['checkout-api', '/fail']]) {
      const instance = `http://127.0.0.1:${sitePort}${path}`;
      const ok = probe === 'homepage' ? 1 : i % 10 === 0 ? 0 : 1;
      points.push({ name: 'probe_success', probe, instance, value: ok, ts: s });
      points.push({ name: 'probe_duration_seconds', probe, instance, value: 0.02 + 0.01 * Math.sin(i / 8), ts: s });
    }
  }
  const res = await fetch(`${base}/v1/metrics`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(points),
  });
  assert.equal(res.status, 202, await res.text());

  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/uptime`);
  await page.waitForSelector('.probe[data-name="checkout-api"][data-state="down"]');
  await page.waitForSelector('.probe[data-name="homepage"][data-state="up"]');
  assert.match(await page.textContent('.probe[data-name="homepage"] .probe-target'), new RegExp(`127\\.0\\.0\\.1:${sitePort}`));
  assert.match(await page.textContent('.probe[data-name="checkout-api"] .probe-error'), /500/);
  await page.waitForFunction(() => Number(document.querySelector('.probe[data-name="homepage"] .latency-chart')?.dataset.points) > 200);
  // Every 10th stored check of checkout-api failed: its bucket is down and
  // has no latency (as does the bucket of the engine's own failed checks).
  const api = (await (await fetch(`${base}/v1/probes`)).json()).find((p) => p.name === 'checkout-api');
  const failedBuckets = new Set(points.filter((p) => p.name === 'probe_success' && p.probe === 'checkout-api' && p.value === 0 &&
    p.ts > now - DAY_S + 300).map((p) => Math.floor(p.ts / 300) * 300));
  for (const t of failedBuckets) assert.ok(api.down.includes(t), `bucket ${t} not down: ${api.down}`);
  for (const [t] of api.latency) assert.ok(!failedBuckets.has(t), `latency of a failed check at ${t}`);
  await page.waitForFunction((n) => Number(document.querySelector('.probe[data-name="checkout-api"] .latency-chart')?.dataset.down) >= n,
    failedBuckets.size);
  await page.screenshot({ path: join(OUT, 'uptime-live.png'), fullPage: true });

  await page.goto(`${base}/status`);
  await page.waitForSelector('#checks .check[data-name="homepage"]');
  assert.match(await page.textContent('#banner'), /1 of 3 checks down/);
  // Nothing internal reaches the public page or its endpoint.
  assert.doesNotMatch(await page.content(), new RegExp(`127\\.0\\.0\\.1|:${sitePort}`));
  const pub = await (await fetch(`${base}/status/probes`)).text();
  assert.doesNotMatch(pub, new RegExp(`127\\.0\\.0\\.1|:${sitePort}|"target"|"error"|"http_status"`));
  await page.screenshot({ path: join(OUT, 'status-live.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});
