/**
 * A chart line's path, built once and extended as points arrive.
 *
 * A live chart redraws every second while every trial appends a few
 * points. Building each line's path again from all its points (uPlot's
 * own path builders do) costs a call per point per redraw: 100 trials of
 * 2,000 points are 200,000 ``lineTo`` calls, about 20 ms of the main
 * thread on a laptop. Here the path of what was drawn is kept, and only
 * the new points are added to it, as long as the scales and the plot's
 * size stay the same (the chart keeps its scales steady: see chart.ts);
 * when they change, or the series was thinned, smoothed differently or
 * dropped, the path is built again from the start. What an update adds
 * also goes to a small ``delta`` path, which the chart strokes over what
 * is on screen instead of drawing every line again.
 *
 * Points are added per pixel column, as a line of all of them would
 * look: the first point of a column, then a point only when it reaches
 * lower or higher than the column did so far, and the column's last point
 * before the next column starts (and at the end of each build, so the line
 * ends at its newest value). The path's vertical extent in each column is
 * the points' own, so the drawn line is the same, at a few points per
 * column whatever the series holds. Values that cannot be drawn (y <= 0
 * on a log scale) break the line.
 */

/** Where a path goes (a Path2D, or a recorder in tests). */
export interface IPathSink {
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
}

/** What a build is valid for: the scales, the plot's box, the series' data. */
export interface ILineKey {
  key: string;
}

export class LinePath<P extends IPathSink = IPathSink> {
  path: P | null = null;
  /** Points of the series consumed so far. */
  built = 0;
  /** Vertices put in the path (what a redraw costs). */
  vertices = 0;
  private _key = '';
  private open = false;
  /** The newest vertex put in the path (where a delta starts). */
  private vx = 0;
  private vy = 0;
  private delta: IPathSink | null = null;
  private col = NaN;
  // The current column: its lowest and highest point (pixel y, and where), its last one,
  // and the vertical extent its vertices in the path cover so far.
  private loX = 0;
  private loY = 0;
  private loI = 0;
  private hiX = 0;
  private hiY = 0;
  private hiI = 0;
  private lastX = 0;
  private lastY = 0;
  private lastI = 0;
  private inLo = 0;
  private inHi = 0;
  /** Index of the newest point put in the path. */
  private outI = -1;

  constructor(private readonly make: () => P) {}

  /** What the path was built for. */
  get key(): string {
    return this._key;
  }

  /** Whether ``update(key, ..., n)`` would only extend the path (not build it again). */
  extends(key: string, n: number): boolean {
    return this.path !== null && key === this._key && n >= this.built;
  }

  /**
   * The path of points ``[0, n)`` in pixels (``toX``, ``toY``: value to
   * pixel; ``drawable``: whether a y can be drawn), extended from what was
   * built when ``key`` is the same as last time, else built afresh.
   */
  update(key: string, xs: ArrayLike<number>, ys: ArrayLike<number>, n: number, toX: (v: number) => number,
         toY: (v: number) => number, drawable: (y: number) => boolean = () => true, delta: IPathSink | null = null): P {
    if (!this.extends(key, n)) {
      this._key = key;
      this.path = this.make();
      this.built = 0;
      this.vertices = 0;
      this.open = false;
      this.outI = -1;
    }
    const path = this.path!;
    // The vertices added now also go to ``delta``, from the newest one before them:
    // drawn over what is on screen, they extend the lines without drawing them all again.
    this.delta = delta;
    if (delta && this.open) {
      delta.moveTo(this.vx, this.vy);
    }
    for (let i = this.built; i < n; i++) {
      const y = ys[i];
      if (!drawable(y)) {
        this.flush();
        this.open = false; // a gap: the next point starts a new piece
        continue;
      }
      const px = toX(xs[i]);
      const py = toY(y);
      const c = Math.floor(px);
      if (this.open && c === this.col) {
        if (py < this.loY) {
          this.loX = px;
          this.loY = py;
          this.loI = i;
        }
        if (py > this.hiY) {
          this.hiX = px;
          this.hiY = py;
          this.hiI = i;
        }
        this.lastX = px;
        this.lastY = py;
        this.lastI = i;
        continue;
      }
      if (this.open) {
        this.flush();
        path.lineTo(px, py);
        this.delta?.lineTo(px, py);
      } else {
        path.moveTo(px, py);
        this.delta?.moveTo(px, py);
      }
      this.vx = px;
      this.vy = py;
      this.vertices++;
      this.open = true;
      this.col = c;
      this.loX = this.hiX = this.lastX = px;
      this.loY = this.hiY = this.lastY = this.inLo = this.inHi = py;
      this.loI = this.hiI = this.lastI = this.outI = i;
    }
    this.built = n;
    this.flush(); // the line ends at its newest point
    this.delta = null;
    return path;
  }

  /** Puts the current column's lowest, highest (in their order) and last
   * points in the path, each unless the path covers it already. */
  private flush(): void {
    if (!this.open) {
      return;
    }
    const loFirst = this.loI <= this.hiI;
    this.reach(loFirst ? this.loX : this.hiX, loFirst ? this.loY : this.hiY, loFirst ? this.loI : this.hiI);
    this.reach(loFirst ? this.hiX : this.loX, loFirst ? this.hiY : this.loY, loFirst ? this.hiI : this.loI);
    if (this.outI !== this.lastI) {
      this.put(this.lastX, this.lastY, this.lastI);
    }
  }

  private reach(x: number, y: number, i: number): void {
    if (i > this.outI && (y < this.inLo || y > this.inHi)) {
      this.put(x, y, i);
    }
  }

  private put(x: number, y: number, i: number): void {
    this.path!.lineTo(x, y);
    this.delta?.lineTo(x, y);
    this.vx = x;
    this.vy = y;
    this.vertices++;
    this.outI = i;
    if (y < this.inLo) this.inLo = y;
    if (y > this.inHi) this.inHi = y;
  }
}
