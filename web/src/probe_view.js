// Pieces shared by the Uptime page and the public status page: number
// formats for checks and a compact 24 h latency chart (uPlot) that follows
// the theme, shows gaps where no check ran and shades the 5-minute buckets
// in which a check failed (their latency is left out by the server: how
// long a refused connect took is no latency).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const DAY_MS = 24 * 3600 * 1000;
const BUCKET_S = 300; // the server averages latency into 5-minute buckets

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// 0.0421 s -> "42 ms"; 1.5 -> "1.50 s"; null -> "–".
export function formatLatency(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const ms = seconds * 1000;
  if (ms === 0) return '0';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
}

// 0.99871 -> "99.87%"; 1 -> "100%"; null -> "–".
export function formatAvailability(fraction) {
  if (fraction === null || fraction === undefined) return '–';
  const pct = fraction * 100;
  if (pct === 100) return '100%';
  // Never round 99.996% up to a perfect-looking 100.00%.
  const shown = Math.floor(pct * 100) / 100;
  return `${shown.toFixed(2)}%`;
}

// good >= 99.9%, warn >= 99%, bad below; '' when unknown.
export function availabilityClass(fraction) {
  if (fraction === null || fraction === undefined) return '';
  if (fraction >= 0.999) return 'good';
  if (fraction >= 0.99) return 'warn';
  return 'bad';
}

// "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago".
export function formatAgo(iso, now = Date.now()) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 2) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// "up" / "down" / "pending" for a target's up field (null before its first check).
export function stateOf(target) {
  if (target.up === true) return 'up';
  if (target.up === false) return 'down';
  return 'pending';
}

function clock(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

// Indices of values with no neighbour on either side (uPlot points.filter).
function lonePoints(u, seriesIdx) {
  const ys = u.data[seriesIdx];
  const out = [];
  for (let i = 0; i < ys.length; i++) {
    if (ys[i] !== null && (i === 0 || ys[i - 1] === null) && (i === ys.length - 1 || ys[i + 1] === null)) {
      out.push(i);
    }
  }
  return out.length ? out : null;
}

// The last 24 h of latency as a small area chart. opts: {height, axes
// (show time and value axes; false draws a bare sparkline)}.
export class LatencyChart {
  constructor(container, opts = {}) {
    this.opts = { height: 140, axes: true, ...opts };
    this.root = document.createElement('div');
    this.root.className = 'latency-chart';
    this.root.style.height = `${this.opts.height}px`;
    this.tip = document.createElement('div');
    this.tip.className = 'latency-tip';
    this.empty = document.createElement('div');
    this.empty.className = 'latency-empty';
    this.empty.textContent = 'No checks in the last 24 h';
    this.root.append(this.empty, this.tip);
    container.append(this.root);
    this.data = [[], []];
    this.down = [];
    this.plot = null;
    this.resizer = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: this.opts.height });
    });
    this.resizer.observe(this.root);
    this.onTheme = () => this.rebuild();
    window.addEventListener('espy-theme', this.onTheme);
  }

  destroy() {
    this.resizer.disconnect();
    window.removeEventListener('espy-theme', this.onTheme);
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }

  width() {
    return Math.max(120, this.root.clientWidth || this.root.parentElement?.clientWidth || 300);
  }

  // latency: [[unix_seconds, seconds], ...] (5-minute bucket starts);
  // down: [unix_seconds, ...] starts of the buckets with a failed check.
  setData(latency, nowMs = Date.now(), down = []) {
    // One x per bucket over the whole day, null where no check ran, so that
    // gaps show as gaps and the x axis always spans 24 h.
    const end = Math.floor(nowMs / 1000 / BUCKET_S) * BUCKET_S;
    const start = end - (DAY_MS / 1000 - BUCKET_S);
    const byTime = new Map(latency.map(([t, v]) => [t, v]));
    const xs = [];
    const ys = [];
    for (let t = start; t <= end; t += BUCKET_S) {
      xs.push(t);
      const v = byTime.get(t);
      ys.push(v === undefined || v === null ? null : v * 1000);
    }
    this.data = [xs, ys];
    this.down = down.filter((t) => t >= start && t <= end);
    this.root.dataset.points = String(latency.length);
    this.root.dataset.down = String(this.down.length);
    this.empty.style.display = latency.length || this.down.length ? 'none' : 'flex';
    if (this.plot) this.plot.setData(this.data);
    else this.rebuild();
  }

  rebuild() {
    if (this.plot) this.plot.destroy();
    const accent = cssVar('--accent') || '#2563eb';
    const muted = cssVar('--muted');
    const grid = cssVar('--grid');
    const bad = cssVar('--bad') || '#b91c1c';
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { show: false }, font: '11px system-ui, sans-serif' };
    const show = this.opts.axes;
    this.plot = new uPlot(
      {
        width: this.width(),
        height: this.opts.height,
        legend: { show: false },
        padding: show ? [8, 20, 0, 0] : [4, 2, 2, 2],
        cursor: { drag: { x: false, y: false }, points: { size: 6 }, y: false },
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] } },
        axes: [
          { ...axis, show, space: 60, size: 28, values: (u, vals) => vals.map((v) => clock(v * 1000)) },
          { ...axis, show, size: 56, values: (u, vals) => vals.map((v) => formatLatency(v / 1000)) },
        ],
        series: [
          {},
          {
            label: 'latency',
            stroke: accent,
            width: 1.5,
            fill: `${accent}22`,
            spanGaps: false,
            // A bucket between two gaps has no line to sit on: draw it as a dot.
            points: { show: false, size: 4, fill: accent, filter: lonePoints },
          },
        ],
        hooks: {
          setCursor: [(u) => this.onCursor(u)],
          // Under the line: a band over each bucket in which a check failed.
          drawClear: [(u) => this.shadeDown(u, `${bad}38`)],
        },
      },
      this.data,
      this.root,
    );
    // The plot, for tests that look at what it drew.
    this.root.__plot = this.plot;
    this.plot.over.addEventListener('mouseleave', () => {
      this.tip.style.display = 'none';
    });
  }

  shadeDown(u, color) {
    const { ctx, bbox } = u;
    ctx.save();
    ctx.fillStyle = color;
    for (const t of this.down) {
      const x0 = Math.round(u.valToPos(t, 'x', true));
      const x1 = Math.round(u.valToPos(t + BUCKET_S, 'x', true));
      ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
    }
    ctx.restore();
  }

  onCursor(u) {
    const i = u.cursor.idx;
    const v = i === null || i === undefined ? null : u.data[1][i];
    const down = i !== null && i !== undefined && this.down.includes(u.data[0][i]);
    if ((v === null || v === undefined) && !down) {
      this.tip.style.display = 'none';
      return;
    }
    if (u.cursor.left < 0) {
      this.tip.style.display = 'none';
      return;
    }
    const parts = [clock(u.data[0][i] * 1000)];
    if (v !== null && v !== undefined) parts.push(formatLatency(v / 1000));
    if (down) parts.push('down');
    this.tip.textContent = parts.join(' · ');
    this.tip.style.display = 'block';
    const left = Math.min(u.cursor.left + u.over.offsetLeft + 10, this.root.clientWidth - this.tip.offsetWidth - 4);
    this.tip.style.left = `${Math.max(0, left)}px`;
  }
}

// The little availability table: 24 h, 7 d, 30 d.
export function availabilityCells(el, availability) {
  return [['24h', '24 h'], ['7d', '7 days'], ['30d', '30 days']].map(([key, label]) => {
    const v = availability ? availability[key] : null;
    return el('div', { class: 'avail', 'data-window': key },
      el('div', { class: `avail-value ${availabilityClass(v)}` }, formatAvailability(v)),
      el('div', { class: 'avail-label' }, label));
  });
}
