// Explore: pick a metric (autocomplete from /v1/names), narrow it with label
// filters (autocomplete from /v1/labels and /v1/label_values), choose a time
// range, and see it as a chart, a table, or a CSV download.
import {
  attachNameAutocomplete, fetchRange, formatNumber, formatTime, getJSON,
} from './api.js';
import { SeriesChart } from './chart.js';
import { el, setHashParams } from './dom.js';

const PRESETS = [
  ['5m', 5 * 60e3], ['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3],
  ['24h', 24 * 3600e3], ['7d', 7 * 24 * 3600e3], ['30d', 30 * 24 * 3600e3],
];
const TABLE_ROWS = 2000;

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

export function renderExplore(view, params) {
  const state = {
    name: params.get('name') || '',
    filters: params.getAll('f').map((f) => {
      const i = f.indexOf('=');
      return [f.slice(0, i), f.slice(i + 1)];
    }).filter(([k, v]) => k && v),
    range: params.get('range') || '1h',
    sts: Number(params.get('sts')) || 0,
    ets: Number(params.get('ets')) || 0,
    tab: params.get('tab') || 'chart',
    result: null,
  };

  const nameInput = el('input', {
    id: 'metric-name', type: 'search', placeholder: 'Metric name, e.g. cpu', autocomplete: 'off',
    list: 'metric-names', value: state.name, class: 'grow', 'aria-label': 'Metric name',
  });
  const names = el('datalist', { id: 'metric-names' });
  const labelSelect = el('select', { 'aria-label': 'Label' }, el('option', { value: '' }, 'label…'));
  const valueInput = el('input', {
    placeholder: 'value', list: 'label-values', autocomplete: 'off', size: 12, 'aria-label': 'Label value',
  });
  const values = el('datalist', { id: 'label-values' });
  const addFilter = el('button', { type: 'button' }, '+ filter');
  const chips = el('div', { class: 'chips' });
  const presetBar = el('div', { class: 'segmented', role: 'group', 'aria-label': 'Time range' });
  const from = el('input', { type: 'datetime-local', 'aria-label': 'From' });
  const to = el('input', { type: 'datetime-local', 'aria-label': 'To' });
  const custom = el('span', { class: 'toolbar', style: 'display:none' }, from, to);
  const run = el('button', { class: 'primary', type: 'button', id: 'run' }, 'Show');
  const status = el('p', { class: 'status', id: 'explore-status' });

  for (const [label] of PRESETS) {
    presetBar.append(el('button', { type: 'button', 'data-range': label }, label));
  }
  presetBar.append(el('button', { type: 'button', 'data-range': 'custom' }, 'Custom'));

  const tabs = el('div', { class: 'tabs' },
    el('button', { type: 'button', 'data-tab': 'chart' }, 'Chart'),
    el('button', { type: 'button', 'data-tab': 'table' }, 'Table'),
    el('span', { class: 'spacer' }),
    el('button', { type: 'button', id: 'csv', disabled: true }, 'Download CSV'));
  const chartBox = el('div', { id: 'explore-chart' });
  const tableBox = el('div', { id: 'explore-table', style: 'display:none' });

  view.replaceChildren(
    el('h1', {}, 'Explore'),
    el('div', { class: 'panel' },
      el('div', { class: 'toolbar' }, nameInput, names, labelSelect, valueInput, values, addFilter),
      chips,
      el('div', { class: 'toolbar', style: 'margin-top:10px' }, presetBar, custom, run),
      status),
    el('div', { class: 'panel' }, tabs, chartBox, tableBox),
  );
  const chart = new SeriesChart(chartBox, { emptyText: 'Pick a metric and press Show' });
  attachNameAutocomplete(nameInput, names);

  function syncRangeButtons() {
    for (const b of presetBar.querySelectorAll('button')) {
      b.classList.toggle('active', b.dataset.range === state.range);
    }
    custom.style.display = state.range === 'custom' ? 'inline-flex' : 'none';
  }
  function syncTabs() {
    for (const b of tabs.querySelectorAll('[data-tab]')) {
      b.classList.toggle('active', b.dataset.tab === state.tab);
    }
    chartBox.style.display = state.tab === 'chart' ? '' : 'none';
    tableBox.style.display = state.tab === 'table' ? '' : 'none';
    if (state.tab === 'chart') chart.resize();
  }
  function renderChips() {
    chips.replaceChildren(...state.filters.map(([k, v], i) => el('span', { class: 'chip' },
      `${k}=${v}`,
      el('button', {
        type: 'button', title: 'Remove filter',
        onclick: () => { state.filters.splice(i, 1); renderChips(); },
      }, '×'))));
  }
  async function loadLabels() {
    const name = nameInput.value.trim();
    if (!name) return;
    try {
      const labels = await getJSON(`/v1/labels?name=${encodeURIComponent(name)}`);
      labelSelect.replaceChildren(el('option', { value: '' }, 'label…'),
        ...labels.map((l) => el('option', { value: l }, l)));
    } catch { /* best effort */ }
  }
  async function loadValues() {
    const label = labelSelect.value;
    if (!label) return;
    const q = new URLSearchParams({ label, name: nameInput.value.trim() });
    try {
      const vals = await getJSON(`/v1/label_values?${q}`);
      values.replaceChildren(...vals.slice(0, 200).map((v) => el('option', { value: v })));
    } catch { /* best effort */ }
  }

  function timeRange() {
    if (state.range === 'custom') {
      const sts = Date.parse(from.value);
      const ets = Date.parse(to.value);
      if (Number.isNaN(sts) || Number.isNaN(ets)) throw new Error('Custom range: pick both From and To');
      if (sts > ets) throw new Error('Custom range: From is after To');
      return [sts, ets];
    }
    const span = (PRESETS.find(([l]) => l === state.range) || PRESETS[2])[1];
    const now = Date.now();
    return [now - span, now];
  }

  let controller = null;
  async function show() {
    state.name = nameInput.value.trim();
    if (!state.name) {
      status.textContent = 'Type a metric name first.';
      status.className = 'status error';
      return;
    }
    let sts, ets;
    try {
      [sts, ets] = timeRange();
    } catch (e) {
      status.textContent = e.message;
      status.className = 'status error';
      return;
    }
    const p = new URLSearchParams({ name: state.name, range: state.range, tab: state.tab });
    for (const [k, v] of state.filters) p.append('f', `${k}=${v}`);
    if (state.range === 'custom') { p.set('sts', sts); p.set('ets', ets); }
    setHashParams('explore', p);
    if (controller) controller.abort();
    controller = new AbortController();
    status.className = 'status';
    status.textContent = 'Loading…';
    const t0 = performance.now();
    try {
      const result = await fetchRange({
        name: state.name, filters: state.filters, sts, ets, signal: controller.signal,
      });
      state.result = result;
      const series = [...result.series.values()];
      chart.setSeries(series);
      renderTable(series);
      tabs.querySelector('#csv').disabled = result.points === 0;
      const ms = Math.round(performance.now() - t0);
      status.textContent = result.points
        ? `${result.points.toLocaleString()} points in ${series.length.toLocaleString()} series · ${ms} ms` +
          (result.truncated ? ' · truncated: narrow the range or add filters' : '') +
          ' · drag on the chart to zoom, double-click to reset'
        : 'No points in this range.';
    } catch (e) {
      if (e.name === 'AbortError') return;
      status.textContent = e.message;
      status.className = 'status error';
    }
  }

  function renderTable(series) {
    const rows = [];
    for (const s of series) {
      for (let i = 0; i < s.ts.length; i++) rows.push([s.ts[i], s.key, s.values[i]]);
    }
    rows.sort((a, b) => b[0] - a[0] || (a[1] < b[1] ? -1 : 1));
    const body = el('tbody', {}, ...rows.slice(0, TABLE_ROWS).map(([t, k, v]) => el('tr', {},
      el('td', {}, formatTime(t)), el('td', {}, k), el('td', { class: 'num' }, formatNumber(v)))));
    const note = rows.length > TABLE_ROWS
      ? el('p', { class: 'muted' }, `Showing the newest ${TABLE_ROWS} of ${rows.length.toLocaleString()} rows; the CSV has them all.`)
      : '';
    tableBox.replaceChildren(
      el('div', { class: 'table-wrap' }, el('table', { id: 'points-table' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Series'), el('th', { class: 'num' }, 'Value'))),
        body)),
      note);
  }

  function downloadCsv() {
    if (!state.result) return;
    const esc = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    const keys = new Set();
    for (const s of state.result.series.values()) for (const k of Object.keys(s.labels)) keys.add(k);
    const labelCols = [...keys].sort();
    const lines = [['ts', 'name', ...labelCols, 'value'].map(esc).join(',')];
    for (const s of state.result.series.values()) {
      for (let i = 0; i < s.ts.length; i++) {
        lines.push([new Date(s.ts[i]).toISOString(), s.name, ...labelCols.map((k) => s.labels[k] ?? ''),
          String(s.values[i])].map(esc).join(','));
      }
    }
    const blob = new Blob([lines.join('\n') + '\n'], { type: 'text/csv' });
    const a = el('a', { href: URL.createObjectURL(blob), download: `${state.name || 'espy'}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  presetBar.addEventListener('click', (e) => {
    const r = e.target.dataset && e.target.dataset.range;
    if (!r) return;
    state.range = r;
    if (r === 'custom' && !from.value) {
      from.value = toLocalInput(Date.now() - 3600e3);
      to.value = toLocalInput(Date.now());
    }
    syncRangeButtons();
    if (r !== 'custom' && nameInput.value.trim()) show();
  });
  tabs.addEventListener('click', (e) => {
    const t = e.target.dataset && e.target.dataset.tab;
    if (t) { state.tab = t; syncTabs(); }
  });
  tabs.querySelector('#csv').addEventListener('click', downloadCsv);
  nameInput.addEventListener('change', loadLabels);
  nameInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') show(); });
  labelSelect.addEventListener('change', loadValues);
  addFilter.addEventListener('click', () => {
    const k = labelSelect.value;
    const v = valueInput.value.trim();
    if (!k || !v) return;
    state.filters.push([k, v]);
    valueInput.value = '';
    renderChips();
  });
  run.addEventListener('click', show);

  if (state.range === 'custom' && state.sts && state.ets) {
    from.value = toLocalInput(state.sts);
    to.value = toLocalInput(state.ets);
  }
  syncRangeButtons();
  syncTabs();
  renderChips();
  if (state.name) {
    loadLabels();
    show();
  }
  return () => chart.destroy();
}
