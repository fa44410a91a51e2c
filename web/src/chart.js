// SeriesChart: a uPlot line chart of many series with our own legend (click
// to hide a series), a hover tooltip, drag-to-zoom (double-click resets) and
// theme-aware colours. Handles 1,000+ series: one aligned x axis, no
// per-series DOM beyond the legend.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatNumber, formatTime } from './api.js';

const PALETTE = [
  '#2563eb', '#16a34a', '#dc2626', '#d97706', '#7c3aed',
  '#0891b2', '#db2777', '#65a30d', '#ea580c', '#4f46e5',
];

export function colorFor(i) {
  if (i < PALETTE.length) return PALETTE[i];
  const hue = (i * 137.508) % 360;
  return `hsl(${hue.toFixed(1)} 65% 50%)`;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const LEGEND_MAX = 300;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n) => String(n).padStart(2, '0');

// Time-axis labels in 24 h time: seconds only when ticks are under a minute
// apart, and the date (on a second line) at the first tick and wherever the
// day changes; whole days are shown as dates alone.
export function timeTicks(u, splits, axisIdx, space, incr) {
  let prevDay = null;
  return splits.map((v) => {
    const d = new Date(v * 1000);
    const day = `${MONTHS[d.getMonth()]} ${d.getDate()}`;
    if (incr >= 86400) return day;
    const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}${incr < 60 ? `:${pad2(d.getSeconds())}` : ''}`;
    const label = day !== prevDay ? `${time}\n${day}` : time;
    prevDay = day;
    return label;
  });
}

// The least room between two time ticks: the widest label ("00:00:00" or
// "00:00") plus a gap, so that labels never run into each other however
// narrow the chart. Ticks under a minute apart only happen on short spans.
export function timeTickSpace(u, axisIdx, min, max, plotDim) {
  const secondsShown = (max - min) / (plotDim / 60) < 60;
  return secondsShown ? 76 : 50;
}

export class SeriesChart {
  // opts: {height, emptyText, xRange: () => [minMs, maxMs] (default: the data's)}
  constructor(container, opts = {}) {
    this.opts = { height: 340, emptyText: 'No data', ...opts };
    this.root = document.createElement('div');
    this.root.className = 'chart';
    this.root.style.minHeight = `${this.opts.height}px`;
    this.legend = document.createElement('div');
    this.legend.className = 'legend';
    this.tooltip = document.createElement('div');
    this.tooltip.className = 'tooltip';
    this.tooltip.style.display = 'none';
    this.empty = document.createElement('div');
    this.empty.className = 'empty';
    this.empty.textContent = this.opts.emptyText;
    this.root.append(this.empty, this.tooltip);
    container.append(this.root, this.legend);
    this.plot = null;
    this.keys = [];
    this.hidden = new Set();
    this.labels = [];
    this.data = [[]];
    this.pointCount = 0;
    this.resizer = new ResizeObserver(() => this.resize());
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

  // What the empty chart says (kept until changed again).
  setEmptyText(text) {
    if (text) this.empty.textContent = text;
  }

  width() {
    return Math.max(200, this.root.clientWidth || this.root.parentElement.clientWidth || 600);
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: this.width(), height: this.opts.height });
  }

  // series: array of {key, label, ts: [ms], values: [v]}; ts ascending.
  setSeries(series, { keepZoom = false } = {}) {
    const keys = series.map((s) => s.key);
    const labels = series.map((s) => s.label ?? s.key);
    // Same series under the same names: new data for the plot as it is.
    const sameKeys = keys.length === this.keys.length && keys.every((k, i) => k === this.keys[i]) &&
      labels.every((l, i) => l === this.labels[i]);
    // Aligned data: the union of timestamps, null where a series has none.
    const all = new Set();
    let points = 0;
    for (const s of series) {
      for (const t of s.ts) all.add(t);
      points += s.ts.length;
    }
    const xs = Float64Array.from(all).sort();
    const index = new Map();
    xs.forEach((t, i) => index.set(t, i));
    const data = [Array.from(xs, (t) => t / 1000)];
    for (const s of series) {
      const ys = new Array(xs.length).fill(null);
      for (let i = 0; i < s.ts.length; i++) {
        const v = s.values[i];
        ys[index.get(s.ts[i])] = Number.isFinite(v) ? v : null;
      }
      data.push(ys);
    }
    this.keys = keys;
    this.labels = labels;
    this.data = data;
    this.pointCount = points;
    this.root.dataset.points = String(points);
    this.root.dataset.series = String(series.length);
    this.empty.style.display = points ? 'none' : 'flex';
    if (this.plot && sameKeys) {
      this.plot.setData(data, !keepZoom);
      this.updateLegendValues(null);
    } else {
      this.rebuild();
    }
  }

  rebuild() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
    if (this.keys.length === 0) {
      this.legend.replaceChildren();
      return;
    }
    const text = cssVar('--muted');
    const grid = cssVar('--grid');
    const many = this.keys.length > 50;
    const axis = {
      stroke: text,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
    };
    const opts = {
      width: this.width(),
      height: this.opts.height,
      legend: { show: false },
      cursor: {
        drag: { x: true, y: false, setScale: true },
        points: { show: !many },
        focus: { prox: 16 },
      },
      focus: { alpha: 0.35 },
      scales: {
        x: this.opts.xRange
          ? { time: true, range: () => this.opts.xRange().map((t) => t / 1000) }
          : { time: true },
      },
      axes: [{ ...axis, space: timeTickSpace, values: timeTicks, size: 46 }, { ...axis, size: 60, values: (u, vals) => vals.map(formatNumber) }],
      series: [
        {},
        ...this.keys.map((k, i) => ({
          label: this.labels[i],
          stroke: colorFor(i),
          width: many ? 1 : 1.5,
          show: !this.hidden.has(k),
          spanGaps: true,
          points: { show: false },
        })),
      ],
      hooks: {
        setCursor: [(u) => this.onCursor(u)],
      },
    };
    this.plot = new uPlot(opts, this.data, this.root);
    // The plot, for tests that check where uPlot put its axis labels.
    this.root.__plot = this.plot;
    this.plot.over.addEventListener('mouseleave', () => {
      this.tooltip.style.display = 'none';
      this.updateLegendValues(null);
    });
    this.renderLegend();
  }

  renderLegend() {
    const items = [];
    const n = Math.min(this.keys.length, LEGEND_MAX);
    for (let i = 0; i < n; i++) {
      const key = this.keys[i];
      const item = document.createElement('span');
      item.className = 'item' + (this.hidden.has(key) ? ' off' : '');
      item.title = 'Click to hide or show';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = colorFor(i);
      const name = document.createElement('span');
      name.textContent = this.labels[i];
      const val = document.createElement('span');
      val.className = 'val';
      item.append(sw, name, val);
      item.addEventListener('click', () => {
        const show = this.hidden.has(key);
        if (show) this.hidden.delete(key);
        else this.hidden.add(key);
        item.classList.toggle('off', !show);
        this.plot.setSeries(i + 1, { show });
      });
      items.push(item);
    }
    if (this.keys.length > LEGEND_MAX) {
      const more = document.createElement('span');
      more.className = 'muted';
      more.textContent = `… and ${this.keys.length - LEGEND_MAX} more series`;
      items.push(more);
    }
    this.legend.replaceChildren(...items);
    this.updateLegendValues(null);
  }

  // Shows each series' value at the cursor (or its last value).
  updateLegendValues(idx) {
    const vals = this.legend.querySelectorAll('.val');
    vals.forEach((el, i) => {
      const ys = this.data[i + 1];
      if (!ys) return;
      let v = null;
      if (idx !== null && idx !== undefined) v = ys[idx];
      else for (let j = ys.length - 1; j >= 0 && v === null; j--) v = ys[j];
      el.textContent = v === null || v === undefined ? '' : formatNumber(v);
    });
  }

  onCursor(u) {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.cursor.left < 0) {
      this.tooltip.style.display = 'none';
      return;
    }
    this.updateLegendValues(idx);
    const rows = [];
    for (let i = 1; i < u.series.length; i++) {
      const v = u.data[i][idx];
      if (v !== null && v !== undefined && u.series[i].show) rows.push([i, v]);
    }
    if (rows.length === 0) {
      this.tooltip.style.display = 'none';
      return;
    }
    rows.sort((a, b) => b[1] - a[1]);
    const shown = rows.slice(0, 8);
    const head = document.createElement('div');
    head.className = 'muted';
    head.textContent = formatTime(u.data[0][idx] * 1000);
    const lines = shown.map(([i, v]) => {
      const row = document.createElement('div');
      row.className = 'row';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.cssText = `width:8px;height:8px;border-radius:2px;background:${colorFor(i - 1)}`;
      const t = document.createElement('span');
      t.textContent = `${this.labels[i - 1]}: ${formatNumber(v)}`;
      row.append(sw, t);
      return row;
    });
    if (rows.length > shown.length) {
      const more = document.createElement('div');
      more.className = 'muted';
      more.textContent = `+${rows.length - shown.length} more`;
      lines.push(more);
    }
    this.tooltip.replaceChildren(head, ...lines);
    this.tooltip.style.display = 'block';
    const over = u.over.getBoundingClientRect();
    const root = this.root.getBoundingClientRect();
    let left = over.left - root.left + u.cursor.left + 14;
    const top = over.top - root.top + Math.max(0, u.cursor.top - 10);
    const w = this.tooltip.offsetWidth;
    if (left + w > root.width) left = Math.max(0, left - w - 28);
    this.tooltip.style.left = `${left}px`;
    this.tooltip.style.top = `${top}px`;
  }
}
