/**
 * The live chart: one line per trial of one tag, drawn by uPlot.
 *
 * Why uPlot: it draws long time series on a canvas in a few milliseconds
 * (about 50 KB minified, no dependencies), takes each line's points as
 * typed arrays (its ``mode: 2``: every series its own x and y, so trials
 * logging at different steps or times need no join), and lets a series
 * bring its own path. JupyterLab's Vega renderer builds a scene graph of
 * every mark and re-runs its dataflow on each change: fine for a static
 * plot of a few thousand points, far too slow for a chart redrawn every
 * second over 100 trials of 10,000 points (bench/bench_sweep_view.py
 * measures both on the same lines).
 *
 * What keeps a redraw cheap: uPlot gets the points as they are held (no
 * copy: what the chart holds, ``chart.plot.data``, is what the server
 * sent), but each line's path is kept between redraws and only extended
 * by the new points, at a few vertices per pixel column (lines.ts); the
 * scales stay put while the lines fit them, so that an update of a few
 * points per trial costs about as much as those points. Redraws happen at
 * most once per animation frame.
 *
 * The best trial's line is drawn last, wider, in its colour; the others
 * are thinner. The hover finds the point nearest to the pointer among all
 * lines and shows that trial's flags (``flags_hover``), its value and x,
 * and brings its line forward.
 */
import uPlot from 'uplot';

import { h, setText } from '../render/dom';
import { LinePath } from './lines';
import { formatNumber, nearestIndex, Series, SeriesStore } from './series';

/** What the chart needs of each trial (from the table). */
export interface IChartTrial {
  id: string;
  label: string;
  color: string;
  best: boolean;
  hover: string;
}

export const CHART_HEIGHT = 300;
/** Line widths (CSS px): every trial's, the best one's; the others' opacity while a best one stands out. */
const LINE_WIDTH = 1.25;
const BEST_WIDTH = 3;
const OTHERS_ALPHA = 0.75;
/** Tick spacings of a step axis: 1, 2, 5 times the powers of ten. */
const STEP_INCRS = Array.from({ length: 13 }, (_, e) => [1, 2, 5].map(m => m * 10 ** e)).flat();
/** The hover names a line only when a point of it is this near the pointer (CSS px). */
const HOVER_PX = 40;

interface IShown {
  trial: IChartTrial;
  series: Series;
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
  private trialsKey = '';
  private tag = '';
  private x = 'step';
  private log = false;
  private built = '';
  private frame: number | null = null;
  /** Each trial's line path, kept between draws (lines.ts). */
  private readonly paths = new Map<string, LinePath<Path2D>>();
  private live = true;
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

  /** The chart's width (CSS px) as last laid out (0: not yet); read without forcing a layout. */
  get laidOutWidth(): number {
    return this.width;
  }

  /** The trials in table order, their colours, the best one and their hovers. */
  setTrials(trials: IChartTrial[]): void {
    const key = JSON.stringify(trials);
    if (key !== this.trialsKey) {
      this.trialsKey = key;
      this.trials = trials;
      this.invalidate();
    }
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
    if (this.empty.hidden !== !text) {
      this.empty.hidden = !text;
    }
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

  /** Whether the trials may still log: the x axis then keeps room on its right (see ``nextLimits``). */
  setLive(live: boolean): void {
    if (live !== this.live) {
      this.live = live;
      this.invalidate();
    }
  }

  /** Draws now. */
  draw(): void {
    const t0 = performance.now();
    // The width the resize observer saw (no layout forced here, after the table's words were written); measured only before it did.
    const width = this.width || this.node.clientWidth;
    if (!width) {
      return; // not laid out yet: the resize observer asks again
    }
    this.width = width;
    const shown = this.lines();
    if (!shown.length) {
      this.plot?.destroy();
      this.plot = null;
      this.shown = [];
      this.node.dataset.points = '0';
      this.hideTip();
      return;
    }
    const key = JSON.stringify([this.tag, this.x, this.log, shown.map(s => [s.trial.id, s.trial.color, s.trial.best])]);
    const data = [null, ...shown.map(s => [s.xs.subarray(0, s.n), s.ys.subarray(0, s.n)])] as unknown as uPlot.AlignedData;
    this.shown = shown;
    const rebuilt = !this.plot || key !== this.built;
    const limits = this.nextLimits(shown, rebuilt);
    const same = !rebuilt && sameLimits(limits, this.limits) && this.plot!.width === width;
    this.limits = limits;
    if (same && this.hovered < 0 && this.extendLines(this.plot!)) {
      // Drawn over what is on screen: only the new points' segments.
    } else if (rebuilt) {
      this.plot?.destroy();
      this.paths.clear();
      this.plot = new uPlot(this.options(width, shown), data, this.canvasBox);
      this.built = key;
      this.bindHover(this.plot);
      this.hovered = -1;
    } else {
      const plot = this.plot!;
      plot.batch(() => {
        if (plot.width !== width) {
          plot.setSize({ width, height: CHART_HEIGHT });
        }
        plot.setData(data, false);
        plot.setScale('x', { min: this.limits.x[0], max: this.limits.x[1] });
        plot.setScale('y', { min: this.limits.y[0], max: this.limits.y[1] });
      });
      this.hovered = -1;
    }
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
  private lines(): IShown[] {
    const out: IShown[] = [];
    let best: IShown | null = null;
    for (const trial of this.trials) {
      const s = this.store.get(trial.id, this.tag);
      if (!s || !s.n) {
        continue;
      }
      const line = { trial, series: s, xs: s.xs, ys: s.shown(), n: s.n, sorted: s.sorted };
      if (trial.best) {
        best = line;
      } else {
        out.push(line);
      }
    }
    if (best) {
      out.push(best);
    }
    return out;
  }

  /**
   * The scales' limits. They stay put while what is drawn fits them, so
   * that the lines' paths are only extended (lines.ts): x from the first
   * point to the last, with a fifth more room on the right while the
   * trials may still log; y with a tenth of its span of room each side (in
   * decades on a log scale). They change when a point falls outside, or
   * the drawn span shrank to less than half of theirs.
   */
  private nextLimits(shown: IShown[], fresh: boolean): { x: [number, number]; y: [number, number] } {
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (const s of shown) {
      x0 = Math.min(x0, s.series.xMin);
      x1 = Math.max(x1, s.series.xMax);
      if (!this.log) {
        // Held by the series as points arrive; a smoothed line stays within its points' range.
        y0 = Math.min(y0, s.series.yMin);
        y1 = Math.max(y1, s.series.yMax);
        continue;
      }
      const ys = s.ys;
      for (let i = 0; i < s.n; i++) {
        const y = ys[i];
        if (!(y > 0)) continue;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    const old = this.limits;
    const fits = (lim: [number, number], lo: number, hi: number, f: (v: number) => number) =>
      lo >= lim[0] && hi <= lim[1] && (f(hi) - f(lo)) * 2 >= f(lim[1]) - f(lim[0]);
    let x: [number, number];
    if (!fresh && fits(old.x, x0, x1, v => v) && (this.live || x1 === old.x[1])) {
      x = old.x;
    } else if (x1 > x0) {
      x = [x0, this.live ? x1 + (x1 - x0) * 0.2 : x1];
    } else {
      x = padded(x0, x1, false);
    }
    let y: [number, number];
    const f = this.log ? Math.log10 : (v: number) => v;
    if (!fresh && fits(old.y, y0, y1, f) && Number.isFinite(y0)) {
      y = old.y;
    } else {
      y = padded(y0, y1, this.log, 0.1);
    }
    return { x, y };
  }

  /**
   * Strokes only what each line gained since the last draw, over the
   * canvas as it is (the scales, the size and the lines' order did not
   * change): each line's new segments, in the lines' order, so the best
   * trial's stay on top. False (nothing drawn) when a line must be built
   * again (thinned, smoothed anew, new): then uPlot draws everything.
   */
  private extendLines(plot: uPlot): boolean {
    const keys = this.shown.map(s => this.pathKey(plot, s));
    if (this.shown.some((s, i) => !this.paths.get(s.trial.id)?.extends(keys[i], s.n))) {
      return false;
    }
    const ctx = plot.ctx;
    const { left, top, width, height } = plot.bbox;
    const ratio = uPlot.pxRatio;
    const anyBest = this.shown.some(s => s.trial.best);
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    ctx.lineJoin = 'round';
    ctx.lineCap = 'butt';
    this.shown.forEach((s, i) => {
      const delta = new Path2D();
      const line = this.paths.get(s.trial.id)!;
      const before = line.vertices;
      line.update(keys[i], s.xs, s.ys, s.n, v => plot.valToPos(v, 'x', true), v => plot.valToPos(v, 'y', true),
        this.drawable(), delta);
      if (line.vertices > before) {
        ctx.globalAlpha = anyBest && !s.trial.best ? OTHERS_ALPHA : 1;
        ctx.strokeStyle = s.trial.color;
        ctx.lineWidth = (s.trial.best ? BEST_WIDTH : LINE_WIDTH) * ratio;
        ctx.stroke(delta);
      }
    });
    ctx.restore();
    return true;
  }

  private drawable(): (y: number) => boolean {
    return this.log ? (v: number) => v > 0 : () => true;
  }

  /** What a line's path is valid for: the scales, the plot's box, its series' held points. */
  private pathKey(u: uPlot, s: IShown): string {
    const sx = u.scales.x;
    const sy = u.scales.y;
    const { left, top, width, height } = u.bbox;
    return `${sx.min},${sx.max},${sy.min},${sy.max},${sy.distr},${left},${top},${width},${height},${s.series.epoch},` +
      `${s.ys === s.series.ys}`;
  }

  /** A line's path for uPlot (its ``paths`` of a series), extended from the last draw where it can be. */
  private linePath(u: uPlot, seriesIdx: number): uPlot.Series.Paths {
    const s = this.shown[seriesIdx - 1];
    let line = this.paths.get(s.trial.id);
    if (!line) {
      line = new LinePath(() => new Path2D());
      this.paths.set(s.trial.id, line);
    }
    const path = line.update(this.pathKey(u, s), s.xs, s.ys, s.n, v => u.valToPos(v, 'x', true),
      v => u.valToPos(v, 'y', true), this.drawable());
    return { stroke: path, fill: null, clip: null, band: null, gaps: null, flags: 0 } as unknown as uPlot.Series.Paths;
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
      // Steps are whole numbers: no ticks between them (a short run would read "step 0.5").
      axes: [this.x === 'step' ? { ...axis(xLabel), incrs: STEP_INCRS } : axis(xLabel), { ...axis(this.tag), size: (self: uPlot, values: string[]) =>
        14 + 7 * Math.max(3, ...(values || []).map(v => String(v).length)) }],
      series: [
        {},
        ...shown.map(s => ({
          label: s.trial.label,
          stroke: s.trial.color,
          paths: (u: uPlot, i: number) => this.linePath(u, i),
          width: s.trial.best ? BEST_WIDTH : LINE_WIDTH,
          alpha: anyBest && !s.trial.best ? OTHERS_ALPHA : 1,
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

/** A range with ``room`` of its span around it each side (a single value gets some). */
export function padded(lo: number, hi: number, log: boolean, room = 0.05): [number, number] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    return log ? [0.1, 10] : [0, 1];
  }
  if (log) {
    const a = Math.log10(lo);
    const b = Math.log10(hi);
    const pad = b > a ? (b - a) * room : 0.5;
    return [10 ** (a - pad), 10 ** (b + pad)];
  }
  if (hi > lo) {
    const pad = (hi - lo) * room;
    return [lo - pad, hi + pad];
  }
  const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
  return [lo - pad, hi + pad];
}

function sameLimits(a: { x: [number, number]; y: [number, number] }, b: { x: [number, number]; y: [number, number] }): boolean {
  return a.x[0] === b.x[0] && a.x[1] === b.x[1] && a.y[0] === b.y[0] && a.y[1] === b.y[1];
}
