/**
 * What one sweep view knows of its sweep, kept fresh from the server's
 * REST API (never a kernel: a view in a cell's output keeps working while
 * the kernel is busy, restarting or gone).
 *
 * Two polls, each asking again only once its answer is handled (never two
 * of a kind in flight):
 * - the table, GET sweeps/ID, every TABLE_MS while a trial is staged,
 *   pending or running (its progress and clocks move), every IDLE_MS once
 *   every trial ended (a restage may add one);
 * - the series, GET sweeps/ID/scalars?tags=TAG&x=X, first without
 *   ``since`` (everything so far), then every SCALARS_MS with the token of
 *   the last answer: only the points logged since, appended to typed
 *   arrays (series.ts). ``reset`` drops what is held and asks from the
 *   start again; so does a change of tag or x axis. Only the tag shown is
 *   asked for, and only once a trial logged it (the server refuses a tag
 *   no trial logged).
 * While the view is off screen (a hidden tab, a cell scrolled away, a
 * hidden browser tab) nothing is asked; on screen again, both ask at once.
 * Failures back off (doubling up to 30 s) and show as one line.
 */
import { GuildApiError, GuildClient } from '../client';
import { nextDelay } from '../format';
import { IScalarsReply, ISweep } from './contract';
import { SeriesStore } from './series';

export const TABLE_MS = 1000;
export const SCALARS_MS = 1000;
export const IDLE_MS = 5000;

/** Statuses of a trial that may still change or log. */
const LIVE = ['staged', 'pending', 'running'];

type Listener = () => void;
/** New points for ``changed`` runs; ``reset``: everything was dropped first. */
type SeriesListener = (changed: Set<string>, reset: boolean) => void;

export class SweepModel {
  sweep: ISweep | null = null;
  /** The table's last error (one line), null when the last call worked. */
  error: string | null = null;
  /** The series' last error (one line). */
  seriesError: string | null = null;
  readonly store = new SeriesStore();
  /** The tag and x axis shown (null tag: none chosen yet: the sweep's main scalar). */
  tag: string | null = null;
  x = 'step';
  /** Whether the series hold everything logged so far (a first answer came). */
  loaded = false;
  private token: string | null = null;
  /** The tag the token and the held series belong to. */
  private seriesTag: string | null = null;
  private readonly tableListeners = new Set<Listener>();
  private readonly seriesListeners = new Set<SeriesListener>();
  private tableTimer: number | null = null;
  private seriesTimer: number | null = null;
  private tableBusy = false;
  private seriesBusy = false;
  private tableFailures = 0;
  private seriesFailures = 0;
  /** Moves on each tag or x change: answers to older asks are dropped. */
  private generation = 0;
  private shown = true;
  private disposed = false;

  constructor(readonly client: GuildClient, readonly id: string) {
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  onTable(fn: Listener): () => void {
    this.tableListeners.add(fn);
    return () => this.tableListeners.delete(fn);
  }

  onSeries(fn: SeriesListener): () => void {
    this.seriesListeners.add(fn);
    return () => this.seriesListeners.delete(fn);
  }

  start(): void {
    this.pollTable();
  }

  /** Whether the view is on screen: off screen, nothing is asked. */
  setShown(shown: boolean): void {
    if (shown === this.shown) {
      return;
    }
    this.shown = shown;
    if (this.active()) {
      this.refresh();
    }
  }

  /** Asks both now (after an action, or back on screen). */
  refresh(): void {
    this.pollTable();
    this.pollSeries();
  }

  /** Shows ``tag`` (and ``x``): what is held is dropped and asked for again. */
  choose(tag: string | null, x: string): void {
    if (tag === this.tag && x === this.x) {
      return;
    }
    this.tag = tag;
    this.x = x;
    this.restartSeries();
  }

  /** The sweep's trials that may still log (or start). */
  live(): boolean {
    const counts = this.sweep?.counts || {};
    return LIVE.some(s => (counts[s] || 0) > 0) || !!this.sweep?.trials.some(t => LIVE.includes(t.status));
  }

  dispose(): void {
    this.disposed = true;
    this.generation++;
    this.clear('table');
    this.clear('series');
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.tableListeners.clear();
    this.seriesListeners.clear();
  }

  private active(): boolean {
    return this.shown && !document.hidden && !this.disposed;
  }

  private onVisibility = (): void => {
    if (this.active()) {
      this.refresh();
    }
  };

  private clear(which: 'table' | 'series'): void {
    const timer = which === 'table' ? this.tableTimer : this.seriesTimer;
    if (timer !== null) {
      window.clearTimeout(timer);
    }
    if (which === 'table') {
      this.tableTimer = null;
    } else {
      this.seriesTimer = null;
    }
  }

  private restartSeries(): void {
    this.generation++;
    this.token = null;
    this.loaded = false;
    this.seriesError = null;
    this.store.clear();
    this.emitSeries(new Set(), true);
    this.clear('series');
    this.seriesBusy = false;
    this.pollSeries();
  }

  /** The tag to ask for: the one chosen, else the main scalar, else the first logged. */
  wantedTag(): string | null {
    const tags = this.sweep?.tags || [];
    if (this.tag !== null) {
      return this.tag;
    }
    const main = this.sweep?.scalar?.tag;
    return main && tags.includes(main) ? main : tags[0] || null;
  }

  private async pollTable(): Promise<void> {
    this.clear('table');
    if (this.tableBusy || !this.active()) {
      return;
    }
    this.tableBusy = true;
    let delay = TABLE_MS;
    try {
      const sweep = await this.client.request<ISweep>(`sweeps/${encodeURIComponent(this.id)}`);
      if (this.disposed) {
        return;
      }
      const firstTags = !this.sweep || !this.sweep.tags.length;
      this.sweep = sweep;
      this.error = null;
      this.tableFailures = 0;
      delay = this.live() ? TABLE_MS : IDLE_MS;
      this.emitTable();
      if (firstTags && sweep.tags.length && this.seriesTimer === null && !this.seriesBusy) {
        this.pollSeries(); // the first tag was logged: its series can be asked for
      }
    } catch (e) {
      if (this.disposed) {
        return;
      }
      this.error = (e as Error).message || String(e);
      this.tableFailures += 1;
      delay = nextDelay(TABLE_MS, this.tableFailures);
      this.emitTable();
    } finally {
      this.tableBusy = false;
    }
    if (this.active()) {
      this.tableTimer = window.setTimeout(() => void this.pollTable(), delay);
    }
  }

  private async pollSeries(): Promise<void> {
    this.clear('series');
    if (this.seriesBusy || !this.active() || !this.sweep) {
      return;
    }
    const tag = this.wantedTag();
    if (tag === null || !this.sweep.tags.includes(tag)) {
      return; // nothing logged yet: the table's next answer asks again
    }
    if (tag !== this.seriesTag) {
      // Another tag than what is held (the main scalar became known or changed): from the start.
      this.seriesTag = tag;
      if (this.token !== null || this.store.runs.size) {
        this.token = null;
        this.loaded = false;
        this.store.clear();
        this.emitSeries(new Set(), true);
      }
    }
    this.seriesBusy = true;
    const generation = this.generation;
    let delay = SCALARS_MS;
    let query = `tags=${encodeURIComponent(tag)}&x=${encodeURIComponent(this.x)}`;
    if (this.token !== null) {
      query += `&since=${encodeURIComponent(this.token)}`;
    }
    try {
      const text = await this.client.text(`sweeps/${encodeURIComponent(this.id)}/scalars?${query}`);
      if (generation !== this.generation || this.disposed) {
        return;
      }
      const t0 = performance.now();
      const reply = JSON.parse(text) as IScalarsReply;
      const reset = !!reply.reset || this.token === null;
      if (reply.reset && this.token !== null) {
        // The server's files changed under the token: drop and ask from the start.
        this.token = null;
        this.store.clear();
        this.loaded = false;
        this.emitSeries(new Set(), true);
        delay = 0;
      } else {
        this.token = reply.token;
        const changed = this.store.apply(reply);
        this.loaded = true;
        this.seriesError = null;
        this.seriesFailures = 0;
        performance.measure('gj-sweep:apply', { start: t0 });
        this.emitSeries(changed, reset);
        delay = this.live() ? SCALARS_MS : IDLE_MS;
      }
    } catch (e) {
      if (generation !== this.generation || this.disposed) {
        return;
      }
      this.seriesError = (e as Error).message || String(e);
      this.seriesFailures += 1;
      delay = nextDelay(SCALARS_MS, this.seriesFailures);
      if (e instanceof GuildApiError && e.status === 400 && this.sweep) {
        // A tag or axis the sweep does not offer (any more): back to its defaults.
        if (this.tag !== null && !this.sweep.tags.includes(this.tag)) {
          this.tag = null;
        }
        if (!(this.sweep.x_axes || ['step']).includes(this.x)) {
          this.x = 'step';
        }
      }
      this.emitSeries(new Set(), false);
    } finally {
      if (generation === this.generation) {
        this.seriesBusy = false;
      }
    }
    if (generation === this.generation && this.active()) {
      this.seriesTimer = window.setTimeout(() => void this.pollSeries(), delay);
    }
  }

  private emitTable(): void {
    for (const fn of Array.from(this.tableListeners)) {
      fn();
    }
  }

  private emitSeries(changed: Set<string>, reset: boolean): void {
    for (const fn of Array.from(this.seriesListeners)) {
      fn(changed, reset);
    }
  }
}
