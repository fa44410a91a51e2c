// Live: subscribe to series over the /v1/stream WebSocket and watch them move;
// shows the rate of incoming points and a table of the latest values.
// Reconnects by itself, resuming from the last timestamp seen.
import { attachNameAutocomplete, formatNumber, formatTime, labelsOf, parseValue, seriesKey } from './api.js';
import { SeriesChart } from './chart.js';
import { el, setHashParams } from './dom.js';

const WINDOWS = [['1m', 60e3], ['5m', 300e3], ['15m', 900e3]];
const MAX_SERIES = 1000;

export function renderLive(view, params) {
  const nameInput = el('input', {
    id: 'live-name', type: 'search', placeholder: 'Metric name', list: 'live-names',
    autocomplete: 'off', value: params.get('name') || '', 'aria-label': 'Metric name',
  });
  const names = el('datalist', { id: 'live-names' });
  const matchInput = el('input', {
    id: 'live-match', class: 'grow', placeholder: 'or a selector: {__name__="cpu",host=~"web.*"}',
    value: params.get('match') || '', 'aria-label': 'Selector',
  });
  const watch = el('button', { class: 'primary', type: 'button', id: 'watch' }, 'Watch');
  const stop = el('button', { type: 'button', id: 'stop', disabled: true }, 'Stop');
  const windowBar = el('div', { class: 'segmented', role: 'group', 'aria-label': 'Window' },
    ...WINDOWS.map(([l]) => el('button', { type: 'button', 'data-window': l }, l)));
  const conn = el('span', { class: 'pill', id: 'live-conn' }, 'idle');
  const rate = el('span', { class: 'pill', id: 'live-rate' }, '0 pts/s');
  const dropped = el('span', { class: 'pill', id: 'live-dropped', style: 'display:none' });
  const status = el('p', { class: 'status', id: 'live-status' });
  const chartBox = el('div', { id: 'live-chart' });
  const tableBox = el('div', { id: 'live-table' });

  view.replaceChildren(
    el('h1', {}, 'Live'),
    el('div', { class: 'panel' },
      el('div', { class: 'toolbar' }, nameInput, names, matchInput, watch, stop),
      el('div', { class: 'toolbar', style: 'margin-top:10px' }, windowBar, conn, rate, dropped),
      status),
    el('div', { class: 'panel' }, chartBox),
    el('div', { class: 'panel' }, el('h2', {}, 'Latest values'), tableBox),
  );
  attachNameAutocomplete(nameInput, names);
  const chart = new SeriesChart(chartBox, {
    emptyText: 'Waiting for points…',
    height: 320,
    xRange: () => {
      const end = Math.max(Date.now(), lastTs);
      return [end - windowMs, end];
    },
  });

  let windowMs = (WINDOWS.find(([l]) => l === params.get('window')) || WINDOWS[1])[1];
  const series = new Map(); // key -> {key, label, ts[], values[], count, last}
  // [time, n] of recent live points, for the rate. The points the server
  // catches up on after (re)subscribing are stored ones, not new: the first
  // `backfilled` points of a subscription are left out.
  const arrivals = [];
  let received = 0; // points received since the current subscription began
  let backfilled = null; // null until the server says how many it caught up on
  let uncounted = []; // [time, first index, n] held until `backfilled` is known
  let ticks = 0;
  let ws = null;
  let lastTs = 0;
  let wanted = null;
  let retry = 0;
  let retryTimer = 0;
  let frame = 0;
  let droppedTotal = 0;
  let closed = false;

  function syncWindow() {
    for (const b of windowBar.querySelectorAll('button')) {
      b.classList.toggle('active', Number(WINDOWS.find(([l]) => l === b.dataset.window)[1]) === windowMs);
    }
  }
  function setConn(text, cls) {
    conn.textContent = text;
    conn.className = `pill ${cls || ''}`;
  }

  function subscription() {
    const name = nameInput.value.trim();
    const match = matchInput.value.trim();
    if (!name && !match) return null;
    const sub = {};
    if (name) sub.name = name;
    if (match) sub.match = match;
    return sub;
  }

  function start() {
    const sub = subscription();
    if (!sub) {
      status.textContent = 'Type a metric name or a selector.';
      status.className = 'status error';
      return;
    }
    const p = new URLSearchParams();
    if (sub.name) p.set('name', sub.name);
    if (sub.match) p.set('match', sub.match);
    setHashParams('live', p);
    stopStream();
    series.clear();
    arrivals.length = 0;
    lastTs = Date.now() - windowMs;
    wanted = sub;
    closed = false;
    connect();
    stop.disabled = false;
  }

  function connect() {
    clearTimeout(retryTimer);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(`${proto}//${location.host}/v1/stream`);
    ws = sock;
    setConn('connecting…', 'warn');
    // A socket replaced by a restart may still deliver or close: ignore it.
    sock.onopen = () => {
      if (sock !== ws) return;
      retry = 0;
      received = 0;
      backfilled = null;
      uncounted = [];
      setConn('connected', 'good');
      status.className = 'status';
      status.textContent = '';
      // Resume from the newest point seen: the server sends what we missed.
      ws.send(JSON.stringify({ subscribe: { ...wanted, since: new Date(lastTs).toISOString() }, id: 'live' }));
    };
    sock.onmessage = (ev) => {
      if (sock === ws) onMessage(JSON.parse(ev.data));
    };
    sock.onclose = (ev) => {
      if (sock !== ws) return;
      ws = null;
      if (closed) return;
      setConn(`disconnected (${ev.code})`, 'bad');
      const delay = Math.min(10000, 500 * 2 ** retry++);
      status.textContent = `${ev.reason || 'Connection lost'} — retrying in ${(delay / 1000).toFixed(1)} s`;
      retryTimer = setTimeout(connect, delay);
    };
  }

  function onMessage(msg) {
    if (Array.isArray(msg)) {
      countArrival(performance.now(), msg.length);
      for (const p of msg) {
        const key = seriesKey(p);
        let s = series.get(key);
        if (!s) {
          if (series.size >= MAX_SERIES) continue;
          s = { key, label: key, labels: labelsOf(p), ts: [], values: [], count: 0, last: null };
          series.set(key, s);
        }
        const t = Date.parse(p.ts);
        const v = parseValue(p.value);
        // Points usually come in order; keep the arrays sorted either way.
        let i = s.ts.length;
        while (i > 0 && s.ts[i - 1] > t) i--;
        if (i > 0 && s.ts[i - 1] === t) s.values[i - 1] = v;
        else { s.ts.splice(i, 0, t); s.values.splice(i, 0, v); }
        s.count++;
        if (!s.last || t >= s.last.ts) s.last = { ts: t, value: v };
        if (t > lastTs) lastTs = t;
      }
      schedule();
    } else if (msg.dropped) {
      droppedTotal += msg.dropped;
      dropped.style.display = '';
      dropped.className = 'pill warn';
      dropped.textContent = `${droppedTotal.toLocaleString()} dropped (too slow)`;
    } else if (msg.error) {
      status.textContent = msg.error;
      status.className = 'status error';
      closed = true;
      if (ws) ws.close(1000);
      setConn('refused', 'bad');
      watch.disabled = false;
      stop.disabled = true;
    } else if (msg.subscribed !== undefined) {
      backfilled = msg.backfilled || 0;
      for (const [t, first, n] of uncounted) tally(t, first, n);
      uncounted = [];
      status.textContent = backfilled ? `caught up ${backfilled} stored points` : 'subscribed: waiting for new points';
    }
  }

  function countArrival(t, n) {
    tally(t, received, n);
    received += n;
  }
  // Adds the live part of n points received at time t (the first of them
  // being the subscription's point number `first`) to the rate.
  function tally(t, first, n) {
    if (backfilled === null) {
      uncounted.push([t, first, n]);
      return;
    }
    const live = first + n - Math.max(first, backfilled);
    if (live > 0) arrivals.push([t, live]);
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(draw);
  }

  function draw() {
    frame = 0;
    const cutoff = Date.now() - windowMs;
    for (const s of series.values()) {
      let drop = 0;
      while (drop < s.ts.length && s.ts[drop] < cutoff) drop++;
      if (drop) { s.ts.splice(0, drop); s.values.splice(0, drop); }
    }
    const list = [...series.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
    chart.setSeries(list);
    tableBox.replaceChildren(el('div', { class: 'table-wrap' }, el('table', { id: 'live-values' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Series'), el('th', { class: 'num' }, 'Value'),
        el('th', {}, 'Time'), el('th', { class: 'num' }, 'Points'))),
      el('tbody', {}, ...list.slice(0, 500).map((s) => el('tr', {},
        el('td', {}, s.key),
        el('td', { class: 'num' }, s.last ? formatNumber(s.last.value) : '–'),
        el('td', {}, s.last ? formatTime(s.last.ts) : ''),
        el('td', { class: 'num' }, s.count.toLocaleString())))))));
  }

  // Rate of incoming points over the last 5 s; also trims the window.
  const ticker = setInterval(() => {
    const now = performance.now();
    while (arrivals.length && arrivals[0][0] < now - 5000) arrivals.shift();
    const n = arrivals.reduce((a, [, c]) => a + c, 0);
    rate.textContent = `${formatNumber(n / 5)} pts/s`;
    rate.className = `pill ${n ? 'good' : ''}`;
    rate.dataset.tick = String(++ticks);
    if (series.size) schedule();
  }, 1000);

  function stopStream() {
    closed = true;
    clearTimeout(retryTimer);
    if (ws) ws.close(1000);
    ws = null;
    setConn('idle');
    watch.disabled = false;
    stop.disabled = true;
  }

  watch.addEventListener('click', start);
  stop.addEventListener('click', stopStream);
  for (const input of [nameInput, matchInput]) {
    input.addEventListener('keydown', (e) => { if (e.key === 'Enter') start(); });
  }
  windowBar.addEventListener('click', (e) => {
    const w = WINDOWS.find(([l]) => l === e.target.dataset.window);
    if (!w) return;
    windowMs = w[1];
    syncWindow();
    schedule();
  });
  syncWindow();
  if (subscription()) start();

  return () => {
    stopStream();
    clearInterval(ticker);
    cancelAnimationFrame(frame);
    chart.destroy();
  };
}
