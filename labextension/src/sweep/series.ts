/**
 * The trials' scalar series in the browser, and what a chart draws of
 * them. Pure code (no DOM), so node's test runner checks it.
 *
 * Points arrive in pieces (each GET .../scalars?since=TOKEN brings only
 * what is new) and are appended to typed arrays: a float64 x and y per
 * point, plus the smoothed y while smoothing is on. Memory is bounded:
 * a series holds at most MAX_POINTS points; when it is full, its older
 * half is thinned to a quarter, each group of four consecutive points
 * keeping its lowest and highest (so spikes stay visible and the newest
 * points stay exact). 100 trials of one tag cost at most
 * 100 × 20,000 × 24 bytes ≈ 48 MB, and only the tag shown is fetched.
 * A value that is not finite (nan, inf) is not kept: it cannot be drawn.
 *
 * Smoothing is TensorBoard's: an exponential moving average with weight
 * w in [0, 1), debiased by 1 - w^k so that the first points are not
 * pulled towards 0. It is a display choice, computed here as the points
 * arrive (and again over what is kept when the weight changes).
 */
import { IPoints, IScalarsReply } from './contract';

export const MAX_POINTS = 20000;
const FIRST_CAPACITY = 256;

export class Series {
  xs: Float64Array;
  ys: Float64Array;
  /** The smoothed ys (null while smoothing is off). */
  sm: Float64Array | null = null;
  n = 0;
  xMin = Infinity;
  xMax = -Infinity;
  yMin = Infinity;
  yMax = -Infinity;
  /** Whether every x so far came in order (x never decreased). */
  sorted = true;
  /** Points thinned away so far (0 while every point is kept). */
  thinned = 0;
  /** Moves when points already held change (thinned, smoothed anew): a drawn path of them is stale. */
  epoch = 0;
  private emaLast = 0;
  private emaPow = 1;

  constructor(private weight = 0, readonly maxPoints = MAX_POINTS) {
    const cap = Math.min(FIRST_CAPACITY, maxPoints);
    this.xs = new Float64Array(cap);
    this.ys = new Float64Array(cap);
    if (weight > 0) {
      this.sm = new Float64Array(cap);
    }
  }

  /** Appends [x, y, ...] pairs, oldest first. */
  append(points: IPoints): void {
    for (let i = 0; i < points.length; i++) {
      const p = points[i];
      this.push(p[0], p[1]);
    }
  }

  push(x: number, y: number): void {
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      return;
    }
    if (this.n === this.xs.length) {
      if (this.n >= this.maxPoints) {
        this.thin();
      } else {
        this.grow(Math.min(this.maxPoints, this.xs.length * 2));
      }
    }
    const i = this.n++;
    if (i > 0 && x < this.xs[i - 1]) {
      this.sorted = false;
    }
    this.xs[i] = x;
    this.ys[i] = y;
    if (this.sm) {
      this.sm[i] = this.smooth(y);
    }
    if (x < this.xMin) this.xMin = x;
    if (x > this.xMax) this.xMax = x;
    if (y < this.yMin) this.yMin = y;
    if (y > this.yMax) this.yMax = y;
  }

  /** The ys a chart draws: smoothed while smoothing is on. */
  shown(): Float64Array {
    return this.sm || this.ys;
  }

  /** The smoothing weight (0: none); the smoothed values are computed again. */
  setWeight(weight: number): void {
    if (weight === this.weight) {
      return;
    }
    this.weight = weight;
    this.epoch++;
    this.emaLast = 0;
    this.emaPow = 1;
    if (weight <= 0) {
      this.sm = null;
      return;
    }
    this.sm = new Float64Array(this.xs.length);
    for (let i = 0; i < this.n; i++) {
      this.sm[i] = this.smooth(this.ys[i]);
    }
  }

  private smooth(y: number): number {
    const w = this.weight;
    this.emaLast = this.emaLast * w + (1 - w) * y;
    this.emaPow *= w;
    return this.emaLast / (1 - this.emaPow);
  }

  private grow(capacity: number): void {
    const copy = (a: Float64Array) => {
      const b = new Float64Array(capacity);
      b.set(a.subarray(0, this.n));
      return b;
    };
    this.xs = copy(this.xs);
    this.ys = copy(this.ys);
    if (this.sm) {
      this.sm = copy(this.sm);
    }
  }

  /** Halves the older half: each group of four keeps its lowest and highest y. */
  private thin(): void {
    const half = Math.floor(this.n / 2) & ~3;
    const { xs, ys, sm } = this;
    let w = 0;
    for (let g = 0; g < half; g += 4) {
      let lo = g;
      let hi = g;
      for (let k = g + 1; k < g + 4; k++) {
        if (ys[k] < ys[lo]) lo = k;
        if (ys[k] > ys[hi]) hi = k;
      }
      const a = Math.min(lo, hi);
      const b = Math.max(lo, hi);
      xs[w] = xs[a];
      ys[w] = ys[a];
      if (sm) sm[w] = sm[a];
      w++;
      xs[w] = xs[b];
      ys[w] = ys[b];
      if (sm) sm[w] = sm[b];
      w++;
    }
    xs.copyWithin(w, half, this.n);
    ys.copyWithin(w, half, this.n);
    if (sm) sm.copyWithin(w, half, this.n);
    this.thinned += half - w;
    this.epoch++;
    this.n = w + (this.n - half);
  }
}

/** Every run's series, per tag, as the replies brought them. */
export class SeriesStore {
  readonly runs = new Map<string, Map<string, Series>>();
  private weight = 0;

  constructor(readonly maxPoints = MAX_POINTS) {}

  get(run: string, tag: string): Series | undefined {
    return this.runs.get(run)?.get(tag);
  }

  clear(): void {
    this.runs.clear();
  }

  /** Adds a reply's points (dropping everything first on ``reset``);
   * returns the runs that got points. */
  apply(reply: IScalarsReply): Set<string> {
    if (reply.reset) {
      this.clear();
    }
    const changed = new Set<string>();
    for (const [run, tags] of Object.entries(reply.series || {})) {
      let byTag = this.runs.get(run);
      if (!byTag) {
        byTag = new Map();
        this.runs.set(run, byTag);
      }
      for (const [tag, points] of Object.entries(tags || {})) {
        if (!points || !points.length) {
          continue;
        }
        let s = byTag.get(tag);
        if (!s) {
          s = new Series(this.weight, this.maxPoints);
          byTag.set(tag, s);
        }
        s.append(points);
        changed.add(run);
      }
    }
    return changed;
  }

  setWeight(weight: number): void {
    this.weight = weight;
    for (const byTag of this.runs.values()) {
      for (const s of byTag.values()) {
        s.setWeight(weight);
      }
    }
  }

  /** Points held, over every series. */
  size(): number {
    let n = 0;
    for (const byTag of this.runs.values()) {
      for (const s of byTag.values()) {
        n += s.n;
      }
    }
    return n;
  }
}

/** The index of the point of ``xs[0, n)`` (sorted) nearest to ``x``. */
export function nearestIndex(xs: ArrayLike<number>, n: number, x: number): number {
  if (n <= 0) {
    return -1;
  }
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(xs[lo - 1] - x) <= Math.abs(xs[lo] - x)) {
    return lo - 1;
  }
  return lo;
}

/** A value as a hover shows it: up to 6 significant digits. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) {
    return String(v);
  }
  if (Number.isInteger(v) && Math.abs(v) < 1e15) {
    return String(v);
  }
  return String(Number(v.toPrecision(6)));
}
