// Explore: pick a metric (autocomplete from /v1/names), narrow it with label
// filters (autocomplete from /v1/labels and /v1/label_values), or write a
// PromQL expression (drawn with /api/v1/query_range, one step per two pixels
// of chart unless a step is given); choose a time range, and see it as a
// chart, a table, or a CSV download. The query is kept in the URL
// (#/explore?q=...&range=...) so that a view can be shared.
import {
  attachNameAutocomplete, fetchRange, formatNumber, formatTime, getJSON, promSelector, queryRange,
} from './api.js';
import { SeriesChart } from './chart.js';
import { el, setHashParams } from './dom.js';

const PRESETS = [
  ['5m', 5 * 60e3], ['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3],
  ['24h', 24 * 3600e3], ['7d', 7 * 24 * 3600e3], ['30d', 30 * 24 * 3600e3],
];
const TABLE_ROWS = 2000;
// Text in the metric box that no metric name would hold: it is PromQL.
const LOOKS_LIKE_PROMQL = /[(){}[\]]/;

// "90" -> 90 s; "1m30s" -> 90 s; null when it is neither.
function parseStep(text) {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+)(ms|s|m|h|d|w|y)/g;
  const unit = { ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  let used = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]];
    used += m[0].length;
  }
  return used === text.length && total > 0 ? total : null;
}

// The PromQL queries that ran, newest first, kept in this browser.
const HISTORY_KEY = 'espy.queryHistory';
const HISTORY_MAX = 30;
function loadHistory() {
  try {
    const h = JSON.parse(localStorage.getItem(HISTORY_KEY) || '[]');
    return Array.isArray(h) ? h.filter((q) => typeof q === 'string') : [];
  } catch {
    return [];
  }
}
function remember(query) {
  const h = [query, ...loadHistory().filter((q) => q !== query)].slice(0, HISTORY_MAX);
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(h));
  } catch { /* storage full or disabled: history is a convenience */ }
  return h;
}

function formatStep(seconds) {
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

export function renderExplore(view, params) {
  const state = {
    mode: params.has('q') ? 'promql' : 'metric',
    query: params.get('q') || '',
    step: params.get('step') || '',
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
  const addFilter = el('button', { type: 'button', id: 'add-filter' }, '+ filter');
  const modeBar = el('div', { class: 'segmented', role: 'group', 'aria-label': 'Query kind' },
    el('button', { type: 'button', 'data-mode': 'metric' }, 'Metric'),
    el('button', { type: 'button', 'data-mode': 'promql' }, 'PromQL'));
  const queryInput = el('textarea', {
    id: 'promql', rows: 2, class: 'grow', spellcheck: 'false', autocomplete: 'off', 'aria-label': 'PromQL query',
    placeholder: 'PromQL, e.g. sum by (instance) (rate(http_requests_total[5m]))  ·  Enter runs, Shift+Enter adds a line',
  });
  queryInput.value = state.query;
  const historySelect = el('select', { id: 'history', 'aria-label': 'Query history', title: 'Queries run before in this browser' });
  const queryError = el('pre', { id: 'promql-error', class: 'query-error', style: 'display:none' });
  const stepInput = el('input', {
    id: 'step', size: 6, placeholder: 'auto', value: state.step, autocomplete: 'off',
    'aria-label': 'Step', title: 'Step between points: seconds or a duration (30s, 5m); empty picks one from the chart width',
  });
  const rateButton = el('button', {
    type: 'button', id: 'as-rate', style: 'display:none', title: 'This metric is a counter: draw its per-second rate',
  }, 'Show as rate()');
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
      el('div', { class: 'toolbar', style: 'margin-bottom:8px' }, modeBar),
      el('div', { class: 'metric-mode' },
        el('div', { class: 'toolbar' }, nameInput, names, labelSelect, valueInput, values, addFilter, rateButton),
        chips),
      el('div', { class: 'promql-mode toolbar' }, queryInput, historySelect),
      queryError,
      el('div', { class: 'toolbar range-row', style: 'margin-top:10px' }, presetBar, custom,
        el('label', { class: 'inline-field', id: 'step-field' }, 'step', stepInput), run),
      status),
    el('div', { class: 'panel' }, tabs, chartBox, tableBox),
  );
  const chart = new SeriesChart(chartBox, { emptyText: 'Pick a metric or write a PromQL query, then press Show' });
  attachNameAutocomplete(nameInput, names);

  function syncRangeButtons() {
    for (const b of presetBar.querySelectorAll('button')) {
      b.classList.toggle('active', b.dataset.range === state.range);
    }
    custom.style.display = state.range === 'custom' ? 'inline-flex' : 'none';
  }
  function renderHistory(list = loadHistory()) {
    historySelect.replaceChildren(el('option', { value: '' }, list.length ? `History (${list.length})` : 'No history yet'),
      ...list.map((q) => el('option', { value: q }, q.length > 80 ? `${q.slice(0, 79)}…` : q)));
    historySelect.disabled = list.length === 0;
  }
  function syncMode() {
    for (const b of modeBar.querySelectorAll('button')) {
      b.classList.toggle('active', b.dataset.mode === state.mode);
    }
    view.querySelector('.metric-mode').style.display = state.mode === 'metric' ? '' : 'none';
    view.querySelector('.promql-mode').style.display = state.mode === 'promql' ? '' : 'none';
    view.querySelector('#step-field').style.display = state.mode === 'promql' ? '' : 'none';
    if (state.mode === 'metric') queryError.style.display = 'none';
  }
  function setMode(mode) {
    state.mode = mode;
    syncMode();
    (mode === 'promql' ? queryInput : nameInput).focus();
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
  let labelsFor = null;
  async function loadLabels() {
    const name = nameInput.value.trim();
    if (!name || LOOKS_LIKE_PROMQL.test(name) || name === labelsFor) return;
    labelsFor = name;
    loadKind(name);
    try {
      const labels = await getJSON(`/v1/labels?name=${encodeURIComponent(name)}`);
      // Refilling the list must not lose the label already picked.
      const picked = labelSelect.value;
      labelSelect.replaceChildren(el('option', { value: '' }, 'label…'),
        ...labels.map((l) => el('option', { value: l }, l)));
      if (labels.includes(picked)) labelSelect.value = picked;
    } catch { /* best effort */ }
  }
  // A counter only ever rises: offer its rate(). The type comes from
  // /api/v1/metadata; with none known, the _total suffix Prometheus' naming
  // rules give counters.
  async function loadKind(name) {
    let type = null;
    try {
      const meta = await getJSON(`/api/v1/metadata?metric=${encodeURIComponent(name)}`);
      const entries = (meta && meta.data && meta.data[name]) || [];
      if (entries.length) type = entries[0].type;
    } catch { /* the metadata is a hint only */ }
    if (nameInput.value.trim() !== name) return;
    const counter = type === 'counter' || (type === null && name.endsWith('_total'));
    rateButton.style.display = counter ? '' : 'none';
    rateButton.dataset.metric = name;
  }
  function showAsRate() {
    const name = nameInput.value.trim();
    if (!name) return;
    takeTypedFilter();
    queryInput.value = `rate(${promSelector(name, state.filters)}[${rateWindow()}])`;
    setMode('promql');
    show();
  }
  // rate()'s window: 5m, or four steps when the chart's steps are longer.
  function rateWindow() {
    try {
      const [sts, ets] = timeRange();
      const step = autoStep(sts, ets);
      return step * 4 > 300 ? formatStep(Math.ceil((step * 4) / 60) * 60) : '5m';
    } catch {
      return '5m';
    }
  }
  function autoStep(sts, ets) {
    const typed = stepInput.value.trim();
    if (typed) return parseStep(typed);
    const points = Math.max(100, Math.floor(chart.width() / 2));
    return Math.max(1, Math.ceil((ets - sts) / 1000 / points));
  }
  // A value typed but not yet added with "+ filter" counts too.
  function takeTypedFilter() {
    const k = labelSelect.value;
    const v = valueInput.value.trim();
    if (!k || !v) return false;
    if (!state.filters.some(([a, b]) => a === k && b === v)) state.filters.push([k, v]);
    valueInput.value = '';
    renderChips();
    return true;
  }
  function showQueryError(query, e) {
    if (!e.position) {
      queryError.style.display = 'none';
      return;
    }
    // Point at the column the parser names, under the line it names.
    const line = query.split('\n')[e.position.line - 1] ?? '';
    const col = Math.max(1, e.position.column);
    queryError.replaceChildren(
      el('span', { class: 'src' }, line), '\n',
      el('span', { class: 'caret' }, `${' '.repeat(col - 1)}^`), '\n',
      el('span', { class: 'msg' }, e.message.replace(/^.*parse error: /, '')));
    queryError.style.display = '';
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

  function fail(message) {
    status.textContent = message;
    status.className = 'status error';
  }
  // Draws `result` (or, with none, clears the chart and says why in it).
  function draw(result, emptyText) {
    state.result = result;
    const series = result ? [...result.series.values()] : [];
    chart.setEmptyText(emptyText);
    chart.setSeries(series);
    renderTable(series);
    tabs.querySelector('#csv').disabled = !result || result.points === 0;
    return series;
  }

  let controller = null;
  async function show() {
    // A PromQL expression typed into the metric box is run as one.
    if (state.mode === 'metric' && LOOKS_LIKE_PROMQL.test(nameInput.value)) {
      queryInput.value = nameInput.value.trim();
      nameInput.value = '';
      setMode('promql');
    }
    let sts, ets;
    try {
      [sts, ets] = timeRange();
    } catch (e) {
      fail(e.message);
      return;
    }
    const p = new URLSearchParams();
    let step = 0;
    if (state.mode === 'promql') {
      state.query = queryInput.value.trim();
      if (!state.query) {
        fail('Write a PromQL query first.');
        return;
      }
      state.step = stepInput.value.trim();
      step = autoStep(sts, ets);
      if (!step) {
        fail(`Step "${state.step}": want seconds or a duration such as 30s or 5m`);
        return;
      }
      p.set('q', state.query);
      if (state.step) p.set('step', state.step);
    } else {
      state.name = nameInput.value.trim();
      if (!state.name) {
        fail('Type a metric name first.');
        return;
      }
      takeTypedFilter();
      p.set('name', state.name);
      for (const [k, v] of state.filters) p.append('f', `${k}=${v}`);
    }
    p.set('range', state.range);
    p.set('tab', state.tab);
    if (state.range === 'custom') { p.set('sts', sts); p.set('ets', ets); }
    setHashParams('explore', p);
    if (controller) controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    status.className = 'status';
    status.textContent = 'Loading…';
    queryError.style.display = 'none';
    const t0 = performance.now();
    try {
      let result;
      let empty;
      if (state.mode === 'promql') {
        result = await queryRange({ query: state.query, sts, ets, step, signal });
        renderHistory(remember(state.query));
        // A result without labels (sum(x), a scalar) is named by its query.
        for (const r of result.series.values()) if (r.key === '{}') r.label = state.query;
        empty = 'No series match this query in this range';
      } else {
        result = await fetchRange({ name: state.name, filters: state.filters, sts, ets, signal });
        empty = result.points ? '' : await whyEmpty(state.name, state.filters, signal);
      }
      const series = draw(result, empty);
      const ms = Math.round(performance.now() - t0);
      if (!result.points) {
        status.textContent = `${empty}.`;
        return;
      }
      status.textContent = `${result.points.toLocaleString()} points in ${series.length.toLocaleString()} series` +
        (state.mode === 'promql' ? ` · step ${formatStep(step)}` : '') + ` · ${ms} ms` +
        (result.truncated ? ' · truncated: narrow the range or add filters' : '') +
        ' · drag on the chart to zoom, double-click to reset';
    } catch (e) {
      if (e.name === 'AbortError') return;
      draw(null, state.mode === 'promql' ? 'The query failed: see the message above' : 'Nothing to show');
      fail(e.message);
      if (state.mode === 'promql') showQueryError(state.query, e);
    }
  }

  // No points: is it the range, or does nothing match at all?
  async function whyEmpty(name, filters, signal) {
    const match = promSelector(name, filters);
    try {
      const res = await fetch(`/api/v1/series?${new URLSearchParams({ 'match[]': match })}`, { signal });
      const body = await res.json();
      if (body.status === 'success' && body.data.length === 0) return `No series match ${match}`;
    } catch (e) {
      if (e.name === 'AbortError') throw e;
    }
    return `No points of ${match} in this range`;
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
    const file = state.mode === 'metric' && state.name ? state.name : 'query';
    const a = el('a', { href: URL.createObjectURL(blob), download: `${file}.csv` });
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
    const ready = state.mode === 'promql' ? queryInput.value.trim() : nameInput.value.trim();
    if (r !== 'custom' && ready) show();
  });
  modeBar.addEventListener('click', (e) => {
    const m = e.target.dataset && e.target.dataset.mode;
    if (m && m !== state.mode) {
      // Carry the metric over: its selector is a query too.
      if (m === 'promql' && !queryInput.value.trim() && nameInput.value.trim()) {
        takeTypedFilter();
        queryInput.value = promSelector(nameInput.value.trim(), state.filters);
      }
      setMode(m);
    }
  });
  queryInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      show();
    }
  });
  stepInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') show(); });
  valueInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') show(); });
  rateButton.addEventListener('click', showAsRate);
  historySelect.addEventListener('change', () => {
    if (!historySelect.value) return;
    queryInput.value = historySelect.value;
    historySelect.value = '';
    show();
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
    if (takeTypedFilter()) {
      status.className = 'status';
      status.textContent = '';
    } else {
      fail(labelSelect.value ? 'Type a value for the label first.' : 'Pick a label first.');
    }
  });
  run.addEventListener('click', show);

  if (state.range === 'custom' && state.sts && state.ets) {
    from.value = toLocalInput(state.sts);
    to.value = toLocalInput(state.ets);
  }
  syncRangeButtons();
  renderHistory();
  syncMode();
  syncTabs();
  renderChips();
  if (state.mode === 'promql' && state.query) {
    show();
  } else if (state.name) {
    loadLabels();
    show();
  }
  return () => chart.destroy();
}
