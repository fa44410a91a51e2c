// Overview: what the server is doing: ingestion rate, series, memory and disk
// use, live stream clients, and the errors it answered recently (from
// /v1/overview and the /metrics counters, polled every 2 s).
import { formatBytes, formatNumber, getJSON, getText } from './api.js';
import { SeriesChart } from './chart.js';
import { el } from './dom.js';

const POLL_MS = 2000;
const HISTORY = 150; // 5 minutes of polls

// Prometheus text -> [{name, labels, value}]
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const [, k, v] of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function card(id, label) {
  const value = el('div', { class: 'value', id }, '–');
  const sub = el('div', { class: 'sub' });
  return { node: el('div', { class: 'card' }, el('div', { class: 'label' }, label), value, sub), value, sub };
}

export function renderOverview(view) {
  const cards = {
    rate: card('ov-rate', 'Ingestion rate'),
    series: card('ov-series', 'Series'),
    head: card('ov-head', 'Samples in memory'),
    disk: card('ov-disk', 'Disk use'),
    stream: card('ov-stream', 'Live clients'),
    errors: card('ov-errors', 'Errors answered'),
  };
  const chartBox = el('div');
  const errorsBox = el('div', { id: 'ov-error-table' });
  const status = el('p', { class: 'status' });
  view.replaceChildren(
    el('h1', {}, 'Overview'),
    el('div', { class: 'cards' }, ...Object.values(cards).map((c) => c.node)),
    el('div', { class: 'panel' }, el('h2', {}, 'Samples ingested per second'), chartBox),
    el('div', { class: 'panel' }, el('h2', {}, 'Recent errors'), errorsBox, status),
  );
  const chart = new SeriesChart(chartBox, {
    height: 220,
    emptyText: 'Measuring…',
    xRange: () => [Date.now() - HISTORY * POLL_MS, Date.now()],
  });
  const history = { ts: [], values: [] };
  let prev = null;
  let baseline = null; // error counters when the page opened
  let timer = 0;

  async function poll() {
    try {
      const [ov, text] = await Promise.all([getJSON('/v1/overview'), getText('/metrics')]);
      const now = Date.now();
      if (prev) {
        const r = ((ov.samples_committed - prev.ov.samples_committed) * 1000) / (now - prev.t);
        history.ts.push(now);
        history.values.push(Math.max(0, r));
        if (history.ts.length > HISTORY) { history.ts.shift(); history.values.shift(); }
        cards.rate.value.textContent = `${formatNumber(Math.round(r))}/s`;
        chart.setSeries([{ key: 'rate', label: 'samples/s', ...history }]);
      }
      cards.rate.sub.textContent = `${formatNumber(ov.samples_committed)} since start`;
      prev = { ov, t: now };
      cards.series.value.textContent = formatNumber(ov.series);
      cards.head.value.textContent = formatNumber(ov.samples_in_head);
      cards.head.sub.textContent = `${formatNumber(ov.batches_committed)} batches committed`;
      cards.disk.value.textContent = formatBytes(ov.disk_bytes);
      cards.disk.sub.textContent = `WAL written: ${formatBytes(ov.wal_bytes)}`;
      if (ov.stream) {
        cards.stream.value.textContent = formatNumber(ov.stream.connections);
        cards.stream.sub.textContent =
          `${formatNumber(ov.stream.dropped_points_total)} points dropped · ${formatNumber(ov.stream.slow_disconnects_total)} slow disconnects`;
      }
      renderErrors(parseMetrics(text));
      status.textContent = `Updated ${new Date(now).toLocaleTimeString()}`;
      status.className = 'status';
    } catch (e) {
      status.textContent = `Cannot reach the server: ${e.message}`;
      status.className = 'status error';
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function renderErrors(metrics) {
    const rows = [];
    for (const m of metrics) {
      if (m.name === 'espy_http_requests_total' && Number(m.labels.code) >= 400) {
        rows.push({ key: `http ${m.labels.route} ${m.labels.code}`, what: `${m.labels.route}`, kind: `HTTP ${m.labels.code}`, value: m.value });
      } else if (m.name === 'espy_ingest_rejected_batches_total') {
        rows.push({ key: `rej ${m.labels.protocol}`, what: `${m.labels.protocol} ingest`, kind: 'rejected batches', value: m.value });
      } else if (m.name === 'espy_stream_slow_disconnects_total' || m.name === 'espy_stream_rejected_connections_total') {
        rows.push({ key: m.name, what: 'live stream', kind: m.name.includes('slow') ? 'slow clients cut off' : 'clients refused (limit)', value: m.value });
      }
    }
    if (!baseline) baseline = new Map(rows.map((r) => [r.key, r.value]));
    const total = rows.reduce((a, r) => a + r.value, 0);
    cards.errors.value.textContent = formatNumber(total);
    cards.errors.sub.textContent = 'since start';
    const shown = rows.filter((r) => r.value > 0).sort((a, b) => b.value - a.value);
    if (!shown.length) {
      errorsBox.replaceChildren(el('p', { class: 'muted' }, 'No errors since the server started.'));
      return;
    }
    errorsBox.replaceChildren(el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Where'), el('th', {}, 'What'),
        el('th', { class: 'num' }, 'Since start'), el('th', { class: 'num' }, 'Since page opened'))),
      el('tbody', {}, ...shown.map((r) => {
        const delta = r.value - (baseline.get(r.key) ?? 0);
        return el('tr', {}, el('td', {}, r.what), el('td', {}, r.kind),
          el('td', { class: 'num' }, formatNumber(r.value)),
          el('td', { class: 'num' }, delta > 0 ? el('span', { class: 'pill bad' }, `+${formatNumber(delta)}`) : '0'));
      })))));
  }

  poll();
  return () => {
    clearTimeout(timer);
    chart.destroy();
  };
}
