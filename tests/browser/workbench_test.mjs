// Browser test of Explore's PromQL queries and of the fixes to the Explore
// filters, the Live page and the layout: starts the real binary, POSTs
// points, drives Debian's Chromium with playwright-core and checks what the
// pages show against what the server's APIs return. Screenshots (desktop and
// phone, light and dark) go to $ESPY_TEST_OUTPUT.
//
// Env: ESPY_BIN, ESPY_WEB_DIR, ESPY_TEST_OUTPUT, CHROMIUM (see dashboard_test.mjs).
import { join } from 'node:path';
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { OUT, launchBrowser, newPage as openPage, startEspy } from './harness.mjs';

let espy;
let base;
let browser;
const NOW = Date.now();
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

const post = (points) => espy.post(points);

before(async () => {
  espy = await startEspy('espy-browser-workbench-');
  base = espy.base;
  browser = await launchBrowser();
  // A counter per instance and path over the last 2 h, one sample a minute:
  // instance a serves 1 request/s per path, instance b 3 per second.
  const points = [];
  for (let i = 0; i <= 120; i++) {
    const ts = (NOW - (120 - i) * 60e3) / 1000;
    for (const [instance, perSecond] of [['a', 1], ['b', 3]]) {
      for (const path of ['/', '/api']) {
        points.push({ name: 'wb_requests_total', instance, path, value: i * 60 * perSecond, ts });
      }
    }
    points.push({ name: 'wb_temp', room: 'hall', value: 20 + (i % 7), ts });
    points.push({ name: 'wb_temp', room: 'attic', value: 30 + (i % 5), ts });
  }
  await post(points);
});

after(async () => {
  if (browser) await browser.close();
  if (espy) await espy.stop();
});

const newPage = (options, viewport) => openPage(browser, options, viewport);
const chartPoints = (page) => page.evaluate(() => Number(document.querySelector('#explore-chart .chart')?.dataset.points));
const statusOf = (page) => page.textContent('#explore-status');

async function promql(query, start, end, step) {
  const body = new URLSearchParams({ query, start: String(start), end: String(end), step: String(step) });
  const res = await fetch(`${base}/api/v1/query_range`, { method: 'POST', body });
  return res.json();
}

test('explore runs a PromQL query and draws the numbers query_range returns', async () => {
  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/explore`);
  // Typed into the metric box, as a new user would: it is run as PromQL.
  const query = 'sum by (instance) (rate(wb_requests_total[5m]))';
  await page.fill('#metric-name', query);
  await page.click('[data-range="1h"]');
  await page.click('#run');
  await page.waitForFunction(() => /points in 2 series/.test(document.querySelector('#explore-status')?.textContent));
  assert.equal(await page.inputValue('#promql'), query);
  // The query is in the URL: the view can be shared.
  const hash = new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1]);
  assert.equal(hash.get('q'), query);
  assert.equal(hash.get('range'), '1h');
  const legend = await page.textContent('#explore-chart .legend');
  assert.ok(legend.includes('{instance="a"}') && legend.includes('{instance="b"}'), legend);
  assert.doesNotMatch(await page.textContent('#explore-chart'), /Pick a metric/);

  // The table holds exactly what /api/v1/query_range returns for the same
  // range and step (read back from the chart's request).
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith('/api/v1/query_range')),
    page.click('#run'),
  ]);
  const sent = new URLSearchParams(request.postData());
  assert.equal(sent.get('query'), query);
  const step = Number(sent.get('step'));
  assert.ok(step >= 1 && 3600 / step >= 100 && 3600 / step <= 2000, `step ${step} s for 1 h`);
  const api = await promql(query, sent.get('start'), sent.get('end'), sent.get('step'));
  assert.equal(api.status, 'success');
  const total = api.data.result.reduce((n, r) => n + r.values.length, 0);
  await page.waitForFunction((n) => Number(document.querySelector('#explore-chart .chart')?.dataset.points) === n, total);
  await page.click('[data-tab="table"]');
  const rows = await page.$$eval('#points-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.equal(rows.length, total);
  // Each series' values, newest first, as the table shows them (6 digits).
  for (const r of api.data.result) {
    const key = `{instance="${r.metric.instance}"}`;
    const shown = rows.filter(([, k]) => k === key).map(([, , v]) => Number(v.replace(/,/g, '')));
    const want = r.values.map(([, v]) => Number(v)).reverse();
    assert.equal(shown.length, want.length, key);
    shown.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-5 * Math.abs(want[i]), `${key} #${i}: ${v} vs ${want[i]}`));
  }
  // instance b serves 2 paths at 3 requests/s each.
  const last = api.data.result.find((r) => r.metric.instance === 'b').values.at(-1);
  assert.ok(Math.abs(Number(last[1]) - 6) < 1e-9, last[1]);
  await page.click('[data-tab="chart"]');
  await page.screenshot({ path: join(OUT, 'explore-promql.png'), fullPage: true });

  // A shared link draws the same view.
  const link = await page.evaluate(() => location.href);
  const second = await newPage();
  await second.page.goto(link);
  await second.page.waitForFunction(() => /points in 2 series/.test(document.querySelector('#explore-status')?.textContent));
  assert.equal(await second.page.inputValue('#promql'), query);
  assert.deepEqual(second.errors, []);
  await second.context.close();
  assert.deepEqual(errors, []);
  await context.close();
});

test('explore keeps the PromQL queries that ran, newest first, and runs one picked again', async () => {
  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/explore`);
  await page.click('[data-mode="promql"]');
  assert.equal(await page.isDisabled('#history'), true);
  for (const q of ['wb_temp', 'max(wb_temp)', 'wb_temp']) {
    await page.fill('#promql', q);
    await page.press('#promql', 'Enter');
    await page.waitForFunction((want) => new URLSearchParams(location.hash.split('?')[1]).get('q') === want &&
      /points in/.test(document.querySelector('#explore-status').textContent), q);
  }
  // A refused query is not kept.
  await page.fill('#promql', 'max(');
  await page.press('#promql', 'Enter');
  await page.waitForSelector('#explore-status.error');
  // Another page of the same browser has them.
  const other = await context.newPage();
  await other.goto(`${base}/#/explore?q=${encodeURIComponent('min(wb_temp)')}&range=1h`);
  await other.waitForFunction(() => /points in 1 series/.test(document.querySelector('#explore-status')?.textContent));
  const options = await other.$$eval('#history option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, ['', 'min(wb_temp)', 'wb_temp', 'max(wb_temp)']);
  await other.selectOption('#history', 'max(wb_temp)');
  await other.waitForFunction(() => new URLSearchParams(location.hash.split('?')[1]).get('q') === 'max(wb_temp)');
  assert.equal(await other.inputValue('#promql'), 'max(wb_temp)');
  await other.waitForFunction(() => /legend/.test(document.querySelector('#explore-chart .legend')?.className) &&
    document.querySelector('#explore-chart .legend').textContent.includes('max(wb_temp)'));
  await other.screenshot({ path: join(OUT, 'explore-history.png'), fullPage: true });
  assert.deepEqual(errors.filter((e) => !/status of 400 \(Bad Request\)/.test(e)), []);
  await context.close();
});

test('explore shows the server\'s error at its position, and says when nothing matches', async () => {
  for (const [theme, viewport, extra] of [['light', undefined, {}], ['dark', PHONE.viewport, PHONE]]) {
    const { page, context, errors } = await newPage(extra, viewport);
    await page.goto(`${base}/#/explore`);
    if (theme === 'dark') await page.click('#theme');
    await page.click('[data-mode="promql"]');
    const bad = 'sum(rate(wb_requests_total[5m])';
    const api = await promql(bad, NOW / 1000 - 3600, NOW / 1000, 60);
    assert.equal(api.status, 'error');
    const m = /(\d+):(\d+): parse error/.exec(api.error);
    assert.ok(m, api.error);
    await page.fill('#promql', bad);
    await page.press('#promql', 'Enter');
    await page.waitForSelector('#explore-status.error');
    assert.equal(await statusOf(page), api.error);
    assert.doesNotMatch(await statusOf(page), /No points/);
    const caret = await page.textContent('#promql-error .caret');
    assert.equal(caret.indexOf('^') + 1, Number(m[2]), `caret "${caret}" for ${api.error}`);
    assert.equal(await page.textContent('#promql-error .src'), bad);
    await page.screenshot({ path: join(OUT, `explore-promql-error-${theme}.png`), fullPage: true });

    // A metric nobody wrote: "no series match", in the status and on the chart.
    await page.click('[data-mode="metric"]');
    await page.fill('#metric-name', 'wb_nope');
    await page.press('#metric-name', 'Enter');
    await page.waitForFunction(() => /No series match/.test(document.querySelector('#explore-status')?.textContent));
    assert.match(await page.textContent('#explore-chart .empty'), /No series match wb_nope/);
    // A metric that exists but has no points in the range says so instead.
    await page.click('[data-range="custom"]');
    await page.fill('[aria-label="From"]', '2001-01-01T00:00');
    await page.fill('[aria-label="To"]', '2001-01-02T00:00');
    await page.fill('#metric-name', 'wb_temp');
    await page.click('#run');
    await page.waitForFunction(() => /No points of wb_temp in this range/.test(document.querySelector('#explore-status')?.textContent));
    await page.screenshot({ path: join(OUT, `explore-no-match-${theme}.png`), fullPage: true });
    // The browser logs the refused query's 400; nothing else may fail.
    assert.deepEqual(errors.filter((e) => !/status of 400 \(Bad Request\)/.test(e)), []);
    await context.close();
  }
});

test('explore offers rate() for a counter', async () => {
  const { page, context, errors } = await newPage();
  // The server's metadata names the type; answer it here so that a metric
  // without the _total suffix is known to be a counter.
  await post([0, 1, 2, 3, 4, 5].map((i) => ({ name: 'wb_bytes_sent', value: i * 600, ts: (NOW - (5 - i) * 60e3) / 1000 })));
  await page.route('**/api/v1/metadata?*', (route) => {
    const metric = new URL(route.request().url()).searchParams.get('metric');
    const data = metric === 'wb_bytes_sent' ? { wb_bytes_sent: [{ type: 'counter', help: '', unit: '' }] }
      : metric === 'wb_temp' ? { wb_temp: [{ type: 'gauge', help: '', unit: '' }] } : {};
    route.fulfill({ contentType: 'application/json', body: JSON.stringify({ status: 'success', data }) });
  });
  await page.goto(`${base}/#/explore?name=wb_temp&range=1h`);
  await page.waitForFunction(() => /points in 2 series/.test(document.querySelector('#explore-status')?.textContent));
  assert.equal(await page.isVisible('#as-rate'), false);
  await page.fill('#metric-name', 'wb_bytes_sent');
  await page.press('#metric-name', 'Enter');
  await page.locator('#metric-name').blur();
  await page.waitForSelector('#as-rate', { state: 'visible' });
  await page.click('#as-rate');
  assert.equal(await page.inputValue('#promql'), 'rate(wb_bytes_sent[5m])');
  await page.waitForFunction(() => /points in 1 series/.test(document.querySelector('#explore-status')?.textContent));
  const values = await page.evaluate(() => {
    const plot = document.querySelector('#explore-chart .chart');
    return plot.dataset.points;
  });
  assert.ok(Number(values) > 0);
  // rate() drops the name: the one series, with no labels, is named by its query.
  assert.match(await page.textContent('#explore-chart .legend'), /rate\(wb_bytes_sent\[5m\]\)/);
  await page.click('[data-tab="table"]');
  const cells = await page.$$eval('#points-table tbody td.num', (tds) => tds.map((td) => Number(td.textContent)));
  // 600 a minute is 10 a second (newest first; older windows reach back past
  // the first sample, where rate() extrapolates less).
  assert.equal(cells[0], 10, cells.join(' '));
  assert.ok(cells.every((v) => v > 0 && v <= 10), cells.join(' '));
  await page.click('[data-tab="chart"]');
  await page.screenshot({ path: join(OUT, 'explore-rate.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test('explore filters: a typed value counts on Show, and + filter survives a refilled label list', async () => {
  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/explore`);
  await page.fill('#metric-name', 'wb_temp');
  await page.locator('#metric-name').blur();
  await page.waitForSelector('select[aria-label="Label"] option[value="room"]', { state: 'attached' });
  await page.selectOption('select[aria-label="Label"]', 'room');
  await page.fill('[aria-label="Label value"]', 'hall');
  await page.click('[data-range="1h"]');
  await page.click('#run');
  await page.waitForFunction(() => /points in 1 series/.test(document.querySelector('#explore-status')?.textContent));
  assert.match(await page.textContent('.chips'), /room=hall/);
  assert.ok(new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1]).getAll('f').includes('room=hall'));

  // The name box losing focus refills the label list: the picked label
  // stays when the new metric has it too.
  await post([{ name: 'wb_humidity', room: 'attic', floor: '2', value: 40, ts: NOW / 1000 - 60 }]);
  await page.click('.chip button');
  await page.selectOption('select[aria-label="Label"]', 'room');
  await page.fill('#metric-name', 'wb_humidity');
  await Promise.all([
    page.waitForResponse((r) => r.url().includes('/v1/labels?name=wb_humidity')),
    page.locator('#metric-name').blur(),
  ]);
  await page.waitForFunction(() => document.querySelector('select[aria-label="Label"]').options.length === 3);
  assert.equal(await page.inputValue('select[aria-label="Label"]'), 'room');
  await page.fill('[aria-label="Label value"]', 'attic');
  await page.click('#add-filter');
  assert.match(await page.textContent('.chips'), /room=attic/);
  await page.press('[aria-label="Label value"]', 'Enter');
  await page.waitForFunction(() => /points in 1 series/.test(document.querySelector('#explore-status')?.textContent));
  assert.match(await page.textContent('#explore-chart .legend'), /room="attic"/);
  // Nothing to add says why instead of doing nothing.
  await page.click('#add-filter');
  assert.match(await statusOf(page), /Type a value/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('live counts only points that arrive live, and Watch restarts with a new selector', async () => {
  // Stored points the page catches up on when it subscribes.
  const points = [];
  for (let i = 0; i < 200; i++) points.push({ name: 'wb_live', host: 'old', value: i, ts: (Date.now() - 60e3 + i * 100) / 1000 });
  await post(points);
  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/live?name=wb_live`);
  await page.waitForFunction(() => /caught up 200 stored points/.test(document.querySelector('#live-status')?.textContent), null, { timeout: 10000 });
  // The rate updates once a second: wait for an update after the catch-up.
  const tick = await page.evaluate(() => Number(document.querySelector('#live-rate').dataset.tick || 0));
  await page.waitForFunction((t) => Number(document.querySelector('#live-rate').dataset.tick || 0) > t + 1, tick, { timeout: 10000 });
  assert.equal(await page.textContent('#live-rate'), '0 pts/s');

  // Watch stays enabled while watching: a new selector takes over at once.
  assert.equal(await page.isEnabled('#watch'), true);
  await page.fill('#live-name', '');
  await page.fill('#live-match', '{__name__="wb_live",host="new"}');
  await page.click('#watch');
  await page.waitForSelector('#live-conn.good', { timeout: 10000 });
  await page.waitForFunction(() => /waiting for new points/.test(document.querySelector('#live-status')?.textContent), null, { timeout: 10000 });
  const hash = new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1]);
  assert.equal(hash.get('match'), '{__name__="wb_live",host="new"}');
  assert.equal(hash.get('name'), null);
  for (let i = 0; i < 10; i++) {
    await post([
      { name: 'wb_live', host: 'new', value: 1000 + i, ts: Date.now() / 1000 },
      { name: 'wb_live', host: 'old', value: 2000 + i, ts: Date.now() / 1000 },
    ]);
  }
  await page.waitForFunction(() => document.querySelector('#live-values')?.textContent.includes('1,009'), null, { timeout: 10000 });
  const table = await page.textContent('#live-values');
  assert.ok(!table.includes('host="old"'), `the old selector's series stayed: ${table}`);
  await page.waitForFunction(() => /^[1-9][\d.]* pts\/s$/.test(document.querySelector('#live-rate').textContent), null, { timeout: 10000 });
  await page.screenshot({ path: join(OUT, 'live-restart.png'), fullPage: true });
  assert.equal(await page.textContent('#live-conn'), 'connected');
  assert.deepEqual(errors, []);
  await context.close();
});

// Where each x-axis label is drawn: uPlot's tick positions and label texts,
// measured in the axis font. Returns overlaps as [left label, right label].
async function xLabelOverlaps(page, selector) {
  return page.evaluate((sel) => {
    const u = document.querySelector(sel).__plot;
    const axis = u.axes[0];
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = axis.font[0];
    const boxes = [];
    axis._splits.forEach((v, i) => {
      const text = String(axis._values[i] ?? '');
      if (!text) return;
      const x = u.valToPos(v, 'x');
      const w = Math.max(...text.split('\n').map((l) => ctx.measureText(l).width)) / devicePixelRatio;
      boxes.push([x - w / 2, x + w / 2, text]);
    });
    const out = [];
    for (let i = 1; i < boxes.length; i++) if (boxes[i][0] < boxes[i - 1][1] + 4) out.push([boxes[i - 1][2], boxes[i][2]]);
    return { out, count: boxes.length };
  }, selector);
}

test('the range bar fits a phone, and a 6 h chart\'s time labels do not collide', async () => {
  for (const [name, extra, viewport] of [['desktop', {}, undefined], ['phone', PHONE, PHONE.viewport], ['small-phone', { ...PHONE, viewport: { width: 360, height: 740 } }, { width: 360, height: 740 }]]) {
    for (const theme of ['light', 'dark']) {
      const { page, context, errors } = await newPage(extra, viewport);
      await page.goto(`${base}/#/explore?name=wb_temp&range=6h`);
      if (theme === 'dark') await page.click('#theme');
      await page.waitForFunction(() => /points in 2 series/.test(document.querySelector('#explore-status')?.textContent));
      const bar = await page.evaluate(() => {
        const b = document.querySelector('[aria-label="Time range"]');
        const box = b.getBoundingClientRect();
        return { scroll: b.scrollWidth, client: b.clientWidth, right: box.right, width: innerWidth,
          cut: [...b.querySelectorAll('button')].filter((x) => x.getBoundingClientRect().right > box.right + 0.5).map((x) => x.textContent) };
      });
      assert.ok(bar.scroll <= bar.client && bar.cut.length === 0, `${name}: range bar cut: ${JSON.stringify(bar)}`);
      assert.ok(bar.right <= bar.width, `${name}: range bar beyond the screen: ${JSON.stringify(bar)}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name}: page scrolls sideways by ${overflow}px`);
      const { out, count } = await xLabelOverlaps(page, '#explore-chart .chart');
      assert.deepEqual(out, [], `${name}: x labels collide`);
      assert.ok(count >= (name === 'desktop' ? 5 : 2), `${name}: only ${count} x labels`);
      await page.screenshot({ path: join(OUT, `explore-6h-${name}-${theme}.png`), fullPage: true });
      assert.deepEqual(errors, []);
      await context.close();
    }
  }
});
