// Talking to the Espy server: JSON helpers, paged range reads, series keys.

export async function getJSON(url) {
  const res = await fetch(url, { headers: { Accept: 'application/json' } });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new Error(`${url}: answered ${res.status} with non-JSON`);
  }
  if (!res.ok) throw new Error(body && body.error ? body.error : `${url}: HTTP ${res.status}`);
  return body;
}

export async function getText(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

// The labels of a point object: every key but name, value and ts.
export function labelsOf(obj) {
  const out = {};
  for (const k of Object.keys(obj).sort()) {
    if (k !== 'name' && k !== 'value' && k !== 'ts') out[k] = obj[k];
  }
  return out;
}

const LEGACY_LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const LEGACY_METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

// A PromQL string literal ("a\"b"); JSON's escapes are ones PromQL reads.
const quote = (s) => JSON.stringify(String(s));

// A label name as PromQL writes it: bare, or quoted when it is not an identifier ("my-label").
export function promLabelName(name) {
  return LEGACY_LABEL.test(name) ? name : quote(name);
}

// The PromQL selector of one series, one string per series: cpu{host="a",region="eu"}.
// Names PromQL cannot write bare are quoted, as Prometheus 3 reads them (and the live
// view's selector field too): {"cpu usage%","my-label"="x"}.
export function seriesKey(obj) {
  const labels = labelsOf(obj);
  const parts = Object.keys(labels).map((k) => `${promLabelName(k)}=${quote(labels[k])}`);
  if (obj.name && !LEGACY_METRIC.test(obj.name)) return `{${[quote(obj.name), ...parts].join(',')}}`;
  return parts.length ? `${obj.name}{${parts.join(',')}}` : obj.name;
}

// The key of a PromQL result series from its metric object ({__name__, ...labels}):
// the same selector form as seriesKey, and "{}" for a series with no labels at all.
export function promSeriesKey(metric) {
  const { __name__: name, ...labels } = metric;
  const parts = Object.keys(labels).sort().map((k) => `${promLabelName(k)}=${quote(labels[k])}`);
  if (name && !LEGACY_METRIC.test(name)) return `{${[quote(name), ...parts].join(',')}}`;
  return `${name || ''}{${parts.join(',')}}`.replace(/^(.+)\{\}$/, '$1');
}

// A PromQL selector for a metric and label filters: name{k="v",...}.
export function promSelector(name, filters = []) {
  const parts = filters.map(([k, v]) => `${promLabelName(k)}=${quote(v)}`);
  if (!LEGACY_METRIC.test(name)) return `{${[quote(name), ...parts].join(',')}}`;
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

// POST /api/v1/query_range. Returns {series: Map(key -> {key, name, labels, ts[], values[]}),
// points}; a query the server refuses throws an Error whose message is the server's,
// with .position = {line, column} when the message names one ("1:7: parse error: ...").
export async function queryRange({ query, sts, ets, step, signal }) {
  const body = new URLSearchParams({
    query, start: String(sts / 1000), end: String(ets / 1000), step: String(step),
  });
  const res = await fetch('/api/v1/query_range', { method: 'POST', body, signal });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`/api/v1/query_range answered ${res.status} with non-JSON`);
  }
  if (json.status !== 'success') {
    const err = new Error(json.error || `HTTP ${res.status}`);
    const m = /(\d+):(\d+): parse error/.exec(json.error || '');
    if (m) err.position = { line: Number(m[1]), column: Number(m[2]) };
    throw err;
  }
  const { resultType, result } = json.data;
  const rows = resultType === 'matrix' ? result
    : resultType === 'vector' ? result.map((r) => ({ metric: r.metric, values: [r.value] }))
      : [{ metric: {}, values: [result] }]; // scalar or string
  const series = new Map();
  let points = 0;
  for (const r of rows) {
    const key = promSeriesKey(r.metric);
    const { __name__: name = '', ...labels } = r.metric;
    const s = { key, name, labels, ts: [], values: [] };
    for (const [t, v] of r.values) {
      s.ts.push(Math.round(t * 1000));
      s.values.push(parseValue(v));
    }
    points += s.ts.length;
    series.set(key, s);
  }
  return { series, points, truncated: false };
}

export function parseValue(v) {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

// Reads GET /v1/metrics for one selection, following the Link pages, up to
// maxPoints points. Returns {series: Map(key -> {key, name, labels, ts[], values[]}),
// points, truncated}.
export async function fetchRange({ name, filters, sts, ets, maxPoints = 500000, signal }) {
  const params = new URLSearchParams();
  params.set('name', name);
  for (const [k, v] of filters) params.append(k, v);
  params.set('sts', new Date(sts).toISOString());
  params.set('ets', new Date(ets).toISOString());
  params.set('limit', '50000');
  let url = `/v1/metrics?${params}`;
  const series = new Map();
  let points = 0;
  let truncated = false;
  while (url) {
    const res = await fetch(url, { signal });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
    for (const p of body) {
      const key = seriesKey(p);
      let s = series.get(key);
      if (!s) {
        s = { key, name: p.name, labels: labelsOf(p), ts: [], values: [] };
        series.set(key, s);
      }
      s.ts.push(Date.parse(p.ts));
      s.values.push(parseValue(p.value));
    }
    points += body.length;
    const link = res.headers.get('Link');
    const m = link && link.match(/<([^>]+)>;\s*rel="next"/);
    url = m ? m[1] : null;
    if (url && points >= maxPoints) {
      truncated = true;
      url = null;
    }
  }
  return { series, points, truncated };
}

export function formatNumber(v) {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return Number(v.toPrecision(6)).toLocaleString(undefined, { maximumFractionDigits: 6 });
}

export function formatBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function formatTime(ms) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(
    d.getMinutes(),
  )}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// Debounced autocomplete of metric names into a <datalist>.
export function attachNameAutocomplete(input, datalist) {
  let timer = 0;
  let last = null;
  const load = async () => {
    const q = input.value.trim();
    if (q === last) return;
    last = q;
    try {
      const names = await getJSON(`/v1/names?limit=50&q=${encodeURIComponent(q)}`);
      datalist.replaceChildren(
        ...names.map((n) => {
          const o = document.createElement('option');
          o.value = n;
          return o;
        }),
      );
    } catch {
      /* autocomplete is best effort */
    }
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(load, 120);
  });
  input.addEventListener('focus', load);
  load();
}
