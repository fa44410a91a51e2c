// Browser test of the dashboard: starts the real binary, drives Debian's
// Chromium with playwright-core (from web/node_modules), POSTs points, and
// checks they show on the Live chart and table and in Explore's table.
// Screenshots go to $ESPY_TEST_OUTPUT (CTest sets it under the build dir).
//
// Env: ESPY_BIN (the binary), ESPY_WEB_DIR (web/, for node_modules),
// ESPY_TEST_OUTPUT, CHROMIUM (default /usr/bin/chromium).
import { join } from 'node:path';
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { OUT, launchBrowser, newPage as openPage, startEspy } from './harness.mjs';

let espy;
let base;
let browser;

const post = (points) => espy.post(points);

before(async () => {
  espy = await startEspy('espy-browser-data-');
  base = espy.base;
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  if (espy) await espy.stop();
});

const newPage = (options = {}) => openPage(browser, options);

test('live page shows posted points on the chart and in the table', async () => {
  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/live?name=bt_cpu`);
  await page.waitForSelector('#live-conn.good', { timeout: 10000 });
  const now = Date.now();
  for (let i = 0; i < 20; i++) {
    await post([
      { name: 'bt_cpu', host: 'web1', value: 40 + 10 * Math.sin(i / 3), ts: (now - (20 - i) * 1000) / 1000 },
      { name: 'bt_cpu', host: 'web2', value: 60 + 8 * Math.cos(i / 4), ts: (now - (20 - i) * 1000) / 1000 },
    ]);
  }
  await post([{ name: 'bt_cpu', host: 'web1', value: 123.5, ts: now / 1000 }]);
  await page.waitForFunction(
    () => document.querySelector('#live-values')?.textContent.includes('123.5'),
    null, { timeout: 10000 });
  const table = await page.textContent('#live-values');
  assert.match(table, /bt_cpu\{host="web1"\}/);
  assert.match(table, /bt_cpu\{host="web2"\}/);
  await page.waitForFunction(
    () => Number(document.querySelector('#live-chart .chart')?.dataset.points) >= 41,
    null, { timeout: 10000 });
  assert.equal(await page.locator('#live-chart canvas').count(), 1);
  assert.match(await page.textContent('#live-rate'), /pts\/s/);
  await page.screenshot({ path: join(OUT, 'live.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test('explore shows a chart, a table and CSV of stored points', async () => {
  const { page, context, errors } = await newPage();
  const now = Date.now();
  const points = [];
  for (let i = 0; i < 60; i++) {
    for (const [host, off] of [['a', 0], ['b', 20], ['c', 45]]) {
      points.push({ name: 'bt_mem', host, value: off + 10 + 5 * Math.sin(i / 6 + off), ts: (now - (60 - i) * 30e3) / 1000 });
    }
  }
  await post(points);
  await page.goto(`${base}/#/explore`);
  await page.fill('#metric-name', 'bt_m');
  await page.waitForFunction(() => [...document.querySelectorAll('#metric-names option')].some((o) => o.value === 'bt_mem'));
  await page.fill('#metric-name', 'bt_mem');
  await page.click('[data-range="1h"]');
  await page.click('#run');
  await page.waitForFunction(() => Number(document.querySelector('#explore-chart .chart')?.dataset.points) === 180);
  // The status line is written after the chart: wait for it too.
  await page.waitForFunction(() => /180 points in 3 series/.test(document.querySelector('#explore-status')?.textContent));
  assert.match(await page.textContent('#explore-chart .legend'), /bt_mem\{host="c"\}/);
  // Hover shows values.
  const box = await page.locator('#explore-chart .u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
  await page.waitForSelector('#explore-chart .tooltip', { state: 'visible' });
  await page.screenshot({ path: join(OUT, 'explore-chart.png'), fullPage: true });

  await page.click('[data-tab="table"]');
  const rows = await page.locator('#points-table tbody tr').count();
  assert.equal(rows, 180);
  await page.screenshot({ path: join(OUT, 'explore-table.png') });

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  const csv = await (await download.createReadStream()).toArray();
  const text = Buffer.concat(csv).toString();
  assert.equal(text.trim().split('\n').length, 181);
  assert.match(text, /^ts,name,host,value\n/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('names PromQL cannot write bare show quoted, and the shown selector selects them', async () => {
  // A JSON write may name a metric "bt cpu%" and a label "my-label"; the dashboard shows each
  // series as a Prometheus 3 selector, which the live view's selector field accepts back.
  const now = Date.now();
  const points = [];
  for (let i = 0; i < 10; i++) {
    for (const [v, off] of [['x', 0], ['y "q"', 5]]) {
      points.push({ name: 'bt cpu%', 'my-label': v, host: 'a', value: off + i, ts: (now - (10 - i) * 60e3) / 1000 });
    }
  }
  await post(points);
  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/explore?name=${encodeURIComponent('bt cpu%')}&range=1h`);
  await page.waitForFunction(() => Number(document.querySelector('#explore-chart .chart')?.dataset.points) === 20);
  const legend = await page.textContent('#explore-chart .legend');
  assert.ok(legend.includes('{"bt cpu%",host="a","my-label"="x"}'), legend);
  assert.ok(legend.includes('{"bt cpu%",host="a","my-label"="y \\"q\\""}'), legend);
  await page.screenshot({ path: join(OUT, 'explore-quoted-names.png'), fullPage: true });

  const selector = '{"bt cpu%","my-label"="x"}';
  await page.goto(`${base}/#/live?match=${encodeURIComponent(selector)}`);
  await page.waitForSelector('#live-conn.good', { timeout: 10000 });
  await post([
    { name: 'bt cpu%', 'my-label': 'x', host: 'a', value: 77.25, ts: Date.now() / 1000 },
    { name: 'bt cpu%', 'my-label': 'y', host: 'a', value: 88.5, ts: Date.now() / 1000 },
  ]);
  await page.waitForFunction(
    () => document.querySelector('#live-values')?.textContent.includes('77.25'), null, { timeout: 10000 });
  const table = await page.textContent('#live-values');
  assert.ok(table.includes('{"bt cpu%",host="a","my-label"="x"}'), table);
  assert.ok(!table.includes('88.5'), `the selector let another series through: ${table}`);
  await page.screenshot({ path: join(OUT, 'live-quoted-names.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});

test('overview, uptime, dark theme and phone layout render', async () => {
  const { page, context, errors } = await newPage();
  await page.goto(`${base}/#/overview`);
  await page.waitForFunction(() => document.querySelector('#ov-series')?.textContent !== '–');
  await page.waitForFunction(() => document.querySelector('#ov-rate')?.textContent !== '–', null, { timeout: 10000 });
  await page.screenshot({ path: join(OUT, 'overview.png'), fullPage: true });
  await page.click('#theme');
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await page.goto(`${base}/#/explore?name=bt_mem&range=1h`);
  await page.waitForFunction(() => Number(document.querySelector('#explore-chart .chart')?.dataset.points) === 180);
  await page.screenshot({ path: join(OUT, 'explore-dark.png'), fullPage: true });
  await page.goto(`${base}/#/uptime`);
  assert.match(await page.textContent('#view'), /Uptime/);
  assert.deepEqual(errors, []);
  await context.close();

  const phone = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await phone.page.goto(`${base}/#/explore?name=bt_mem&range=1h`);
  await phone.page.waitForFunction(() => Number(document.querySelector('#explore-chart .chart')?.dataset.points) === 180);
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page scrolls sideways by ${overflow}px on a phone`);
  await phone.page.screenshot({ path: join(OUT, 'explore-phone.png'), fullPage: true });
  assert.deepEqual(phone.errors, []);
  await phone.context.close();
});

test('a chart of 1,000 series renders', async () => {
  const now = Date.now();
  const points = [];
  for (let s = 0; s < 1000; s++) {
    for (let i = 0; i < 30; i++) {
      points.push({ name: 'bt_many', id: String(s), value: s + Math.sin(i / 3 + s), ts: (now - (30 - i) * 60e3) / 1000 });
    }
  }
  await post(points);
  const { page, context, errors } = await newPage();
  const t0 = Date.now();
  await page.goto(`${base}/#/explore?name=bt_many&range=1h`);
  await page.waitForFunction(() => Number(document.querySelector('#explore-chart .chart')?.dataset.series) === 1000, null, { timeout: 20000 });
  const ms = Date.now() - t0;
  assert.ok(ms < 10000, `1,000 series took ${ms} ms`);
  await page.screenshot({ path: join(OUT, 'explore-1000-series.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});
