// The public status page (/status): an overall banner, then each check with
// its state, a 24 h latency sparkline and availability over 24 h / 7 d /
// 30 d. Reads only GET /status/probes, which carries no URLs or errors, and
// links nowhere into the dashboard: safe to share.
import './style.css';
import { getJSON } from './api.js';
import { el } from './dom.js';
import { LatencyChart, availabilityCells, formatAgo, stateOf } from './probe_view.js';
import { initTheme } from './theme.js';

const POLL_MS = 15000;

const STATE_TEXT = { up: 'Operational', down: 'Down', pending: 'Checking' };

class CheckRow {
  constructor() {
    this.name = el('div', { class: 'check-name' });
    this.state = el('div', { class: 'check-state' });
    this.avails = el('div', { class: 'avails' });
    this.spark = el('div', { class: 'check-spark' },
      el('div', { class: 'spark-label' }, 'Response time, last 24 h'));
    this.node = el('section', { class: 'check' },
      el('div', { class: 'check-main' }, this.name, this.state),
      this.spark,
      this.avails);
    this.chart = new LatencyChart(this.spark, { height: 48, axes: false });
  }

  update(c, now) {
    const state = stateOf(c);
    this.node.dataset.name = c.name;
    this.node.dataset.state = state;
    this.name.textContent = c.name;
    this.state.replaceChildren(
      el('span', { class: `badge ${state}` }, el('span', { class: 'dot' }), STATE_TEXT[state]),
      el('span', { class: 'muted check-ago', title: c.last_check || '' },
        c.last_check ? `checked ${formatAgo(c.last_check, now)}` : 'not checked yet'));
    this.avails.replaceChildren(...availabilityCells(el, c.availability));
    this.chart.setData(c.latency || [], now, c.down || []);
  }

  destroy() {
    this.chart.destroy();
  }
}

function setBanner(checks) {
  const banner = document.getElementById('banner');
  const text = document.getElementById('banner-text');
  const icon = banner.querySelector('.banner-icon');
  const down = checks.filter((c) => c.up === false).length;
  const pending = checks.filter((c) => c.up === null || c.up === undefined).length;
  let cls;
  if (checks.length === 0) {
    cls = 'pending';
    icon.textContent = 'ℹ';
    text.textContent = 'No checks are configured';
  } else if (down > 0) {
    cls = 'bad';
    icon.textContent = '!';
    text.textContent = down === checks.length
      ? (down === 1 ? 'The check is down' : `All ${down} checks are down`)
      : `${down} of ${checks.length} ${checks.length === 1 ? 'check' : 'checks'} down`;
  } else if (pending === checks.length) {
    cls = 'pending';
    icon.textContent = '…';
    text.textContent = 'Checking…';
  } else {
    cls = 'good';
    icon.textContent = '✓';
    text.textContent = 'All systems operational';
  }
  banner.className = `banner ${cls}`;
  document.title = cls === 'bad' ? `(${down} down) Status` : 'Status';
}

initTheme(document.getElementById('theme'));

const list = document.getElementById('checks');
const foot = document.getElementById('status-foot');
const rows = new Map();

async function poll() {
  try {
    const checks = await getJSON('/status/probes');
    const now = Date.now();
    setBanner(checks);
    const seen = new Set(checks.map((c) => c.name));
    for (const [name, r] of rows) {
      if (!seen.has(name)) {
        r.destroy();
        rows.delete(name);
      }
    }
    const order = checks.map((c) => {
      if (!rows.has(c.name)) rows.set(c.name, new CheckRow());
      return [c, rows.get(c.name)];
    });
    list.replaceChildren(...order.map(([, r]) => r.node));
    for (const [c, r] of order) r.update(c, now);
    foot.classList.remove('error');
    foot.textContent = `Updated ${new Date(now).toLocaleTimeString()} · refreshes every ${POLL_MS / 1000} s`;
  } catch (e) {
    foot.classList.add('error');
    foot.textContent = `Could not load the status: ${e.message}. Retrying…`;
  }
  setTimeout(poll, POLL_MS);
}
poll();
