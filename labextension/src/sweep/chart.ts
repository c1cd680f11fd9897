/**
 * The live chart: one line per trial of one tag, drawn by uPlot.
 *
 * Why uPlot: it draws long time series on a canvas in a few milliseconds
 * (about 45 KB minified, no dependencies), and takes each line's points as
 * typed arrays (its ``mode: 2``: every series its own x and y, so trials
 * logging at different steps or times need no join). JupyterLab's Vega
 * renderer builds a scene graph of every mark and re-runs its dataflow on
 * each change: fine for a static plot of a few thousand points, far too
 * slow for a chart redrawn every second over 100 trials of 10,000 points.
 *
 * What keeps a redraw cheap whatever the trials logged: each line is cut
 * to at most four points per pixel column before uPlot sees it (the
 * first, lowest, highest and last: the same line on screen; series.ts
 * ``decimate``), so a redraw costs the same for 1,000 or 1,000,000 points
 * held. A line with few points is given to uPlot as it is (no copy), so
 * what the chart holds (``chart.plot.data``) is what the server sent.
 * Redraws happen at most once per animation frame.
 *
 * The best trial's line is drawn last, wider, in its colour; the others
 * are thinner. The hover finds the point nearest to the pointer among all
 * lines and shows that trial's flags (``flags_hover``), its value and x,
 * and brings its line forward.
 */
import uPlot from 'uplot';

import { h, setText } from '../render/dom';
import { countPositive, decimate, formatNumber, keepPositive, nearestIndex, Series, SeriesStore } from './series';

/** What the chart needs of each trial (from the table). */
export interface IChartTrial {
  id: string;
  label: string;
  color: string;
  best: boolean;
  hover: string;
}

export const CHART_HEIGHT = 300;
/** Points per pixel column kept at most (first, lowest, highest, last). */
const PER_COLUMN = 4;
/** The hover names a line only when a point of it is this near the pointer (CSS px). */
const HOVER_PX = 40;

interface IShown {
  trial: IChartTrial;
  xs: Float64Array;
  ys: Float64Array;
  n: number;
  sorted: boolean;
}

export class LiveChart {
  readonly node = h('div', 'gj-sweep-chart');
  /** The uPlot instance (null until there is something to draw). */
  plot: uPlot | null = null;
  /** What each uPlot series (1..) shows: ``shown[i - 1]``. */
  shown: IShown[] = [];
  private readonly canvasBox = h('div', 'gj-chart-canvas');
  private readonly empty = h('div', 'gj-empty gj-chart-empty');
  private readonly tip = h('div', 'gj-chart-tip');
  private trials: IChartTrial[] = [];
  private tag = '';
  private x = 'step';
  private log = false;
  private built = '';
  private frame: number | null = null;
  private readonly buffers = new Map<string, { x: Float64Array; y: Float64Array }>();
  private readonly resize: ResizeObserver;
  private width = 0;
  private hovered = -1;
  private firstDrawn = false;
  private limits: { x: [number, number]; y: [number, number] } = { x: [0, 1], y: [0, 1] };

  constructor(private readonly store: SeriesStore) {
    this.tip.hidden = true;
    this.tip.setAttribute('role', 'tooltip');
    this.node.append(this.canvasBox, this.empty, this.tip);
    this.node.style.minHeight = `${CHART_HEIGHT}px`;
    this.resize = new ResizeObserver(() => {
      const w = this.node.clientWidth;
      if (w && w !== this.width) {
        this.width = w;
        this.invalidate();
      }
    });
    this.resize.observe(this.node);
  }

  /** The trials in table order, their colours, the best one and their hovers. */
  setTrials(trials: IChartTrial[]): void {
    this.trials = trials;
    this.invalidate();
  }

  setView(tag: string, x: string, log: boolean): void {
    if (tag !== this.tag || x !== this.x || log !== this.log) {
      this.tag = tag;
      this.x = x;
      this.log = log;
      this.invalidate();
    }
  }

  /** Says what the chart shows while there is nothing to draw. */
  setEmpty(text: string): void {
    setText(this.empty, text);
    this.empty.hidden = !text;
  }

  /** Brings ``id``'s line forward (the pointer is on its table row); null: none. */
  focus(id: string | null): void {
    if (!this.plot) {
      return;
    }
    const i = id === null ? -1 : this.shown.findIndex(s => s.trial.id === id);
    if (i !== this.hovered) {
      this.hovered = i;
      this.plot.setSeries(i < 0 ? null : i + 1, { focus: i >= 0 });
    }
  }

  /** Draws at the next animation frame (once, however often it is asked). */
  invalidate(): void {
    if (this.frame === null) {
      this.frame = requestAnimationFrame(() => {
        this.frame = null;
        this.draw();
      });
    }
  }

  dispose(): void {
    if (this.frame !== null) {
      cancelAnimationFrame(this.frame);
      this.frame = null;
    }
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  /** Draws now. */
  draw(): void {
    const t0 = performance.now();
    const width = this.node.clientWidth || this.width;
    if (!width) {
      return; // not laid out yet: the resize observer asks again
    }
    this.width = width;
    const lines = this.lines();
    if (!lines.length) {
      this.plot?.destroy();
      this.plot = null;
      this.shown = [];
      this.node.dataset.points = '0';
      this.hideTip();
      return;
    }
    const columns = Math.max(50, Math.round(width));
    const shown = lines.map(([trial, s]) => this.prepare(trial, s, columns));
    const key = JSON.stringify([this.tag, this.x, this.log, shown.map(s => [s.trial.id, s.trial.color, s.trial.best])]);
    const data = [null, ...shown.map(s => [s.xs.subarray(0, s.n), s.ys.subarray(0, s.n)])] as unknown as uPlot.AlignedData;
    this.shown = shown;
    // The ranges are computed here, from what is drawn (uPlot's own ranging
    // in its mode 2 keeps a range that collapsed to one value).
    const [x0, x1] = rangeOf(shown, 'xs');
    this.limits = { x: x1 > x0 ? [x0, x1] : padded(x0, x1, false), y: padded(...rangeOf(shown, 'ys'), this.log) };
    if (!this.plot || key !== this.built) {
      this.plot?.destroy();
      this.plot = new uPlot(this.options(width, shown), data, this.canvasBox);
      this.built = key;
      this.bindHover(this.plot);
    } else {
      const plot = this.plot;
      plot.batch(() => {
        if (plot.width !== width) {
          plot.setSize({ width, height: CHART_HEIGHT });
        }
        plot.setData(data, false);
        plot.setScale('x', { min: this.limits.x[0], max: this.limits.x[1] });
        plot.setScale('y', { min: this.limits.y[0], max: this.limits.y[1] });
      });
    }
    this.hovered = -1;
    this.node.dataset.points = String(shown.reduce((n, s) => n + s.n, 0));
    this.node.dataset.best = shown.find(s => s.trial.best)?.trial.id || '';
    performance.measure('gj-sweep:draw', { start: t0 });
    if (!this.firstDrawn) {
      this.firstDrawn = true;
      // The first frame with data: once the browser painted it.
      requestAnimationFrame(() => setTimeout(() => performance.mark('gj-sweep:first-paint'), 0));
    }
  }

  /** The trials with points of the tag, the best one last (drawn on top). */
  private lines(): [IChartTrial, Series][] {
    const out: [IChartTrial, Series][] = [];
    let best: [IChartTrial, Series] | null = null;
    for (const trial of this.trials) {
      const s = this.store.get(trial.id, this.tag);
      if (!s || !s.n) {
        continue;
      }
      if (trial.best) {
        best = [trial, s];
      } else {
        out.push([trial, s]);
      }
    }
    if (best) {
      out.push(best);
    }
    return out;
  }

  /** A line's points as uPlot gets them: as held when few, else at most
   * PER_COLUMN per pixel column; only y > 0 on a log scale. */
  private prepare(trial: IChartTrial, s: Series, columns: number): IShown {
    const ys = s.shown();
    const positive = this.log && s.yMin <= 0;
    const limit = PER_COLUMN * columns;
    if (!positive && (s.n <= limit || !s.sorted)) {
      return { trial, xs: s.xs, ys, n: s.n, sorted: s.sorted };
    }
    const small = s.n <= limit || !s.sorted;
    const room = small ? countPositive(ys, s.n) : limit;
    let buf = this.buffers.get(trial.id);
    if (!buf || buf.x.length < room) {
      buf = { x: new Float64Array(Math.max(room, 16)), y: new Float64Array(Math.max(room, 16)) };
      this.buffers.set(trial.id, buf);
    }
    if (small) {
      return { trial, xs: buf.x, ys: buf.y, n: keepPositive(s.xs, ys, s.n, buf.x, buf.y), sorted: s.sorted };
    }
    const [x0, x1] = this.xRange();
    const n = decimate(s.xs, ys, s.n, x0, x1, columns, buf.x, buf.y, positive);
    return { trial, xs: buf.x, ys: buf.y, n, sorted: true };
  }

  private xRange(): [number, number] {
    let lo = Infinity;
    let hi = -Infinity;
    for (const trial of this.trials) {
      const s = this.store.get(trial.id, this.tag);
      if (s && s.n) {
        lo = Math.min(lo, s.xMin);
        hi = Math.max(hi, s.xMax);
      }
    }
    return [lo, hi];
  }

  private options(width: number, shown: IShown[]): uPlot.Options {
    const style = getComputedStyle(this.node);
    const fg = style.getPropertyValue('--gj-muted').trim() || '#666';
    const grid = style.getPropertyValue('--gj-border').trim() || '#ddd';
    const font = `11px ${style.getPropertyValue('--gj-font').trim() || 'sans-serif'}`;
    const anyBest = shown.some(s => s.trial.best);
    const axis = (label: string): uPlot.Axis => ({
      label,
      stroke: fg,
      font,
      labelFont: font,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      size: (self: uPlot, values: string[]) =>
        12 + 7 * Math.max(3, ...(values || []).map(v => String(v).length))
    });
    const xLabel = this.x === 'time' ? 'time since the run started (s)' : this.x;
    return {
      mode: 2,
      width,
      height: CHART_HEIGHT,
      legend: { show: false },
      cursor: { show: false },
      pxAlign: 0,
      scales: {
        x: { time: false, auto: false, range: () => this.limits.x },
        y: this.log ? { distr: 3, log: 10, auto: false, range: () => this.limits.y } : { auto: false, range: () => this.limits.y }
      },
      axes: [axis(xLabel), { ...axis(this.tag), size: (self: uPlot, values: string[]) =>
        14 + 7 * Math.max(3, ...(values || []).map(v => String(v).length)) }],
      series: [
        {},
        ...shown.map(s => ({
          label: s.trial.label,
          stroke: s.trial.color,
          width: s.trial.best ? 3 : 1.25,
          alpha: anyBest && !s.trial.best ? 0.75 : 1,
          points: { show: false },
          facets: [
            { scale: 'x', auto: false, sorted: s.sorted ? 1 : 0 },
            { scale: 'y', auto: false }
          ]
        } as uPlot.Series))
      ]
    } as uPlot.Options;
  }

  private bindHover(plot: uPlot): void {
    const over = plot.over;
    over.addEventListener('mousemove', ev => this.hover(plot, ev.offsetX, ev.offsetY));
    over.addEventListener('mouseleave', () => this.hideTip());
  }

  /** The nearest point to (left, top), CSS px in the plotting area. */
  nearest(plot: uPlot, left: number, top: number): { index: number; point: number; dist: number } | null {
    const xVal = plot.posToVal(left, 'x');
    let found: { index: number; point: number; dist: number } | null = null;
    this.shown.forEach((s, i) => {
      let j: number;
      if (s.sorted) {
        j = nearestIndex(s.xs, s.n, xVal);
      } else {
        j = -1;
        let bestDx = Infinity;
        for (let k = 0; k < s.n; k++) {
          const d = Math.abs(s.xs[k] - xVal);
          if (d < bestDx) {
            bestDx = d;
            j = k;
          }
        }
      }
      if (j < 0) {
        return;
      }
      const px = plot.valToPos(s.xs[j], 'x');
      const py = plot.valToPos(s.ys[j], 'y');
      const dist = Math.hypot(px - left, py - top);
      if (Number.isFinite(dist) && (!found || dist < found.dist)) {
        found = { index: i, point: j, dist };
      }
    });
    return found;
  }

  private hover(plot: uPlot, left: number, top: number): void {
    const hit = this.nearest(plot, left, top);
    if (!hit || hit.dist > HOVER_PX) {
      this.hideTip();
      return;
    }
    const s = this.shown[hit.index];
    const x = s.xs[hit.point];
    const y = s.ys[hit.point];
    this.tip.replaceChildren(
      h('div', 'gj-chart-tip-flags', s.trial.hover || s.trial.label),
      h('div', 'gj-muted', `${this.tag} ${formatNumber(y)} at ${this.x} ${formatNumber(x)}`)
    );
    this.tip.dataset.run = s.trial.id;
    this.tip.style.borderColor = s.trial.color;
    this.tip.hidden = false;
    const box = this.node.getBoundingClientRect();
    const overBox = plot.over.getBoundingClientRect();
    const px = overBox.left - box.left + plot.valToPos(x, 'x');
    const py = overBox.top - box.top + plot.valToPos(y, 'y');
    const tipWidth = this.tip.offsetWidth;
    this.tip.style.left = `${Math.max(0, Math.min(px + 12, box.width - tipWidth - 4))}px`;
    this.tip.style.top = `${Math.max(0, py + 12)}px`;
    if (hit.index !== this.hovered) {
      this.hovered = hit.index;
      plot.setSeries(hit.index + 1, { focus: true });
    }
  }

  private hideTip(): void {
    this.tip.hidden = true;
    delete this.tip.dataset.run;
    if (this.hovered >= 0 && this.plot) {
      this.hovered = -1;
      this.plot.setSeries(null, { focus: false });
    }
  }
}

/** The lowest and highest of the lines' xs or ys (finite ones). */
function rangeOf(shown: IShown[], which: 'xs' | 'ys'): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of shown) {
    const a = s[which];
    if (which === 'xs' && s.sorted && s.n) {
      lo = Math.min(lo, a[0]);
      hi = Math.max(hi, a[s.n - 1]);
      continue;
    }
    for (let i = 0; i < s.n; i++) {
      const v = a[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return [lo, hi];
}

/** A range with room around it (5% each side; a single value gets some). */
export function padded(lo: number, hi: number, log: boolean): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    return log ? [0.1, 10] : [0, 1];
  }
  if (log) {
    const a = Math.log10(lo);
    const b = Math.log10(hi);
    const pad = b > a ? (b - a) * 0.05 : 0.5;
    return [10 ** (a - pad), 10 ** (b + pad)];
  }
  if (hi > lo) {
    const pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
  return [lo - pad, hi + pad];
}
