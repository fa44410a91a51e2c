// Uptime: every configured website/TCP check (GET /v1/probes, polled every
// 10 s) with its state, last latency, a 24 h latency chart, availability
// over 24 h / 7 d / 30 d, certificate expiry and the last error. With no
// probes configured it explains how to add some.
import { getJSON } from './api.js';
import { el } from './dom.js';
import {
  LatencyChart,
  availabilityCells,
  formatAgo,
  formatLatency,
  stateOf,
} from './probe_view.js';

const POLL_MS = 10000;
const CERT_WARN_DAYS = 14;

// A stopwatch with a pulse line (an image: emoji fonts may be missing).
const ICON = `data:image/svg+xml,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 56 56" fill="none" stroke="#2563eb" stroke-width="3" stroke-linecap="round" stroke-linejoin="round">' +
  '<circle cx="28" cy="31" r="20"/><path d="M22 6h12M28 6v5M43 14l3-3"/>' +
  '<path d="M14 32h7l3-7 5 13 4-9 2 3h7" stroke="#16a34a"/></svg>')}`;

const EXAMPLE = `probes:
  - name: homepage
    url: https://example.com/
    interval: 30s          # default 30s
    timeout: 10s
    valid_status_codes: [200]   # default any 2xx
    body_must_match: ["Welcome"]
  - name: database
    tcp: 127.0.0.1:5432`;

function emptyState() {
  return el('div', { class: 'panel placeholder', id: 'uptime-empty' },
    el('img', { class: 'empty-icon', src: ICON, alt: '', width: 56, height: 56 }),
    el('h2', {}, 'No probes configured yet'),
    el('p', { class: 'muted' },
      'Espy checks websites (HTTP/HTTPS) and TCP ports on a schedule and keeps their history as metrics ',
      el('code', {}, 'probe_success'), ' and ', el('code', {}, 'probe_duration_seconds'), '. ',
      'Add a ', el('code', {}, 'probes:'), ' section to the config file and restart ',
      el('code', {}, 'espy serve --config espy.yaml'), ':'),
    el('pre', { class: 'yaml' }, EXAMPLE));
}

function badge(state) {
  const text = { up: 'Up', down: 'Down', pending: 'Pending' }[state];
  return el('span', { class: `badge ${state}` }, el('span', { class: 'dot' }), text);
}

function stat(label, value, cls = '', attrs = {}) {
  return el('div', { class: 'stat', ...attrs },
    el('div', { class: 'stat-label' }, label),
    el('div', { class: `stat-value ${cls}` }, value));
}

function certStat(days) {
  if (days === null || days === undefined) return stat('Certificate', '–', 'muted', { 'data-cert': 'none' });
  const d = Math.floor(days);
  if (days < 0) return stat('Certificate', 'expired', 'bad', { 'data-cert': 'expired' });
  const cls = days < CERT_WARN_DAYS ? 'warn' : '';
  return stat('Certificate', `${d} ${d === 1 ? 'day' : 'days'} left`, cls, { 'data-cert': cls || 'ok' });
}

// A card per target, kept across refreshes so its chart is not rebuilt.
class ProbeCard {
  constructor() {
    this.info = el('div', { class: 'probe-info' });
    this.chartBox = el('div', { class: 'probe-chart' });
    this.node = el('section', { class: 'probe' }, this.info, this.chartBox);
    this.chart = new LatencyChart(this.chartBox, { height: 150 });
  }

  update(t, now) {
    const state = stateOf(t);
    this.node.dataset.name = t.name;
    this.node.dataset.state = state;
    this.node.classList.toggle('is-down', state === 'down');
    const interval = t.interval_seconds ? ` · every ${t.interval_seconds} s` : '';
    const status = t.http_status ? stat('HTTP', String(t.http_status), t.http_status >= 400 ? 'bad' : '') : null;
    const parts = [
      el('div', { class: 'probe-head' },
        badge(state),
        el('h2', { class: 'probe-name' }, t.name),
        el('span', { class: 'pill' }, t.kind === 'tcp' ? 'TCP' : 'HTTP')),
      el('div', { class: 'probe-target', title: t.target }, t.target),
      el('div', { class: 'stats' },
        stat('Latency', formatLatency(t.duration_seconds), '', { 'data-stat': 'latency' }),
        status,
        certStat(t.cert_days_left),
        stat('Checked', formatAgo(t.last_check, now), '', { title: t.last_check || '' })),
      el('div', { class: 'avails' }, ...availabilityCells(el, t.availability)),
      t.error ? el('div', { class: 'probe-error', title: t.error }, el('strong', {}, 'Last error: '), t.error) : null,
      el('div', { class: 'probe-foot muted' }, `${t.kind === 'tcp' ? 'TCP connect' : 'HTTP check'}${interval}`),
    ];
    this.info.replaceChildren(...parts.filter(Boolean));
    this.chart.setData(t.latency || [], now, t.down || []);
  }

  destroy() {
    this.chart.destroy();
  }
}

export function renderUptime(view) {
  const summary = el('span', { class: 'muted', id: 'uptime-summary' });
  const list = el('div', { class: 'probes', id: 'uptime-list' });
  const status = el('p', { class: 'status', id: 'uptime-status' });
  view.replaceChildren(
    el('div', { class: 'page-head' },
      el('h1', {}, 'Uptime'),
      summary,
      el('span', { class: 'grow' }),
      el('a', { href: '/status', target: '_blank', rel: 'noopener', class: 'button-link', id: 'uptime-public' }, 'Public status page ↗')),
    list,
    status,
  );
  const cards = new Map();
  let timer = 0;
  let stopped = false;

  async function poll() {
    try {
      const targets = await getJSON('/v1/probes');
      if (stopped) return;
      const now = Date.now();
      status.textContent = '';
      status.classList.remove('error');
      if (targets.length === 0) {
        for (const c of cards.values()) c.destroy();
        cards.clear();
        summary.textContent = '';
        if (!list.querySelector('#uptime-empty')) list.replaceChildren(emptyState());
      } else {
        const seen = new Set();
        const nodes = targets.map((t) => {
          let card = cards.get(t.name);
          if (!card) {
            card = new ProbeCard();
            cards.set(t.name, card);
          }
          seen.add(t.name);
          return { t, card };
        });
        for (const [name, c] of cards) {
          if (!seen.has(name)) {
            c.destroy();
            cards.delete(name);
          }
        }
        // Attach first so charts get their width, then fill in.
        list.replaceChildren(...nodes.map(({ card }) => card.node));
        for (const { t, card } of nodes) card.update(t, now);
        const down = targets.filter((t) => t.up === false).length;
        summary.textContent = down
          ? `${down} of ${targets.length} down`
          : `${targets.length} ${targets.length === 1 ? 'check' : 'checks'}, all up`;
        summary.className = down ? 'summary bad' : 'summary muted';
      }
      status.textContent = `Updated ${new Date(now).toLocaleTimeString()} · refreshes every ${POLL_MS / 1000} s`;
    } catch (e) {
      if (stopped) return;
      status.textContent = /no such endpoint/.test(e.message)
        ? 'This server does not run website probes (GET /v1/probes is missing).'
        : `Could not load probes: ${e.message}`;
      status.classList.add('error');
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  poll();

  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const c of cards.values()) c.destroy();
  };
}
