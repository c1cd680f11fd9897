/**
 * What one sweep view knows of its sweep, kept fresh from the server's
 * REST API (never a kernel: a view in a cell's output keeps working while
 * the kernel is busy, restarting or gone).
 *
 * Two polls, each asking again only once its answer is handled (never two
 * of a kind in flight):
 * - the table, GET sweeps/ID?after_version=V&timeout=S: the server holds
 *   the answer until a trial's row changes (status, flags, a trial added)
 *   or S seconds passed. The version does not move with clocks and
 *   scalars, so S is how fresh the progress and scalar cells are: 1 s
 *   while a trial is staged, pending or running, LONG_WAIT_S once all
 *   ended (a restage still shows at once). A server that answers at once
 *   is asked every TABLE_MS (IDLE_MS once all ended) instead.
 * - the series, GET sweeps/ID/scalars?tags=TAG&x=X&points=N, first
 *   without ``since`` (everything so far, at most about a point per pixel
 *   column of the chart per series (pointsFor): the server thins longer
 *   ones, keeping each bucket's extremes), then
 *   every SCALARS_MS with the token of the last answer: only the points
 *   logged since, appended to typed arrays (series.ts). An answer with
 *   ``reset`` is from the start: what is held is dropped for it. A new tag
 *   or x axis asks from the start. Only the tag shown is asked for, once a
 *   trial logged it; the very first ask goes with the table's, for the
 *   main scalar whichever it is (``main=1``). ``done`` (every trial ended, all read) stops the
 *   asking until the table shows a live trial again (a restage).
 * The cells that move without the version (progress, the main scalar now
 * and best) come with the series: each series ask names the table's
 * version held (``brief=V``) and the answer carries the table's brief
 * (``table``) with the new points, so a second's update is one request
 * and one frame (the table's words and the chart's new segments drawn
 * together), and the table's poll waits LONG_WAIT_S for a row to change.
 * A server whose series answers carry no brief (or while the series are
 * not asked: nothing logged yet, all read) gets the table's poll every
 * TABLE_MS as above.
 * While the view is off screen (a hidden tab, a cell scrolled away, a
 * hidden browser tab) nothing is asked; on screen again, both ask at once.
 * Failures back off (doubling up to 30 s) and show as one line.
 */
import { GuildApiError, GuildClient } from '../client';
import { nextDelay } from '../format';
import { IScalarsReply, ISweep, ISweepBrief } from './contract';
import { SeriesStore } from './series';

/** How often things are asked (ms; LONG_WAIT_S: how long the server may
 * hold the table's request once every trial ended). Tests shorten them. */
export const timing = { TABLE_MS: 1000, SCALARS_MS: 1000, IDLE_MS: 5000, LONG_WAIT_S: 25 };
/** Points per series an answer brings at most: what a chart as wide as
 * the view asks (``pointsFor``), never more than FIRST_POINTS. */
export const FIRST_POINTS = 2000;
/** ... and never fewer than this (a narrow or not yet laid out chart). */
export const MIN_POINTS = 400;

/** Points per series worth asking for a chart ``width`` CSS px wide: one
 * per pixel column. The server thins a longer series keeping each
 * bucket's lowest and highest value, so a bucket of two columns keeps the
 * line's extent; the chart draws a few points per column whatever it is
 * given (lines.ts). Fewer points make the first answer smaller to read,
 * encode, send and parse: it is most of the first paint's time. */
export function pointsFor(width: number): number {
  if (!(width > 0)) {
    return FIRST_POINTS;
  }
  return Math.max(MIN_POINTS, Math.min(FIRST_POINTS, Math.ceil(width)));
}

/** Statuses of a trial that may still change or log. */
const LIVE = ['staged', 'pending', 'running'];

type Listener = () => void;

/** A ``main=1`` answer that names no main scalar (none logged yet). */
class NotMain extends Error {}

/** A brief table answer that does not fit the rows held. */
class StaleRows extends Error {}

/** The table held with a brief answer's cells and points (null: it does not fit the rows held: ask the whole). */
export function mergeBrief(held: ISweep | null, brief: ISweepBrief): ISweep | null {
  if (!held || held.version !== brief.version || held.trials.length !== brief.trials.length) {
    return null;
  }
  const cells = new Map(brief.trials.map(t => [t.id, t.cells]));
  if (held.trials.some(t => !cells.has(t.id))) {
    return null;
  }
  return { ...held, hparams: brief.hparams, trials: held.trials.map(t => ({ ...t, cells: cells.get(t.id)! })) };
}
/** New points for ``changed`` runs; ``reset``: everything was dropped first. */
type SeriesListener = (changed: Set<string>, reset: boolean) => void;

export class SweepModel {
  sweep: ISweep | null = null;
  /** The table's last error (one line), null when the last call worked. */
  error: string | null = null;
  /** The table's last error's HTTP status (0: none or no answer). */
  errorStatus = 0;
  /** The series' last error (one line). */
  seriesError: string | null = null;
  /** What the server could not read (a corrupt event file), one line each. */
  seriesProblems: string[] = [];
  readonly store = new SeriesStore();
  /** The tag and x axis shown (null tag: none chosen: the sweep's main scalar). */
  tag: string | null = null;
  x = 'step';
  /** Whether the series hold everything logged so far (a first answer came). */
  loaded = false;
  /** The server said nothing more will come (every trial ended, all read). */
  done = false;
  /** The chart's width (CSS px) now: what ``points`` asks for (pointsFor). */
  chartWidth: () => number = () => 0;
  private token: string | null = null;
  /** The tag and x the token and the held series belong to. */
  private seriesKey: string | null = null;
  private readonly tableListeners = new Set<Listener>();
  private readonly seriesListeners = new Set<SeriesListener>();
  private tableTimer: number | null = null;
  private seriesTimer: number | null = null;
  private tableController: AbortController | null = null;
  private tableBusy = false;
  private seriesBusy = false;
  private tableFailures = 0;
  private seriesFailures = 0;
  /** Moves on each tag or x change: answers to older asks are dropped. */
  private generation = 0;
  private shown = true;
  private disposed = false;
  /** The next table ask wants the whole table (a brief answer did not fit the rows held). */
  private wantWhole = false;
  /** Whether the server holds the table's request (after_version); false once it answered at once. */
  private longPoll = true;
  /** Whether the series answers carry the table's brief (``brief=V``); null: not known yet. */
  private briefWithSeries: boolean | null = null;
  /** Whether the table held now came from a brief answer of the version held before (only cells changed). */
  tableBrief = false;
  /** The wait (s) the held table request was asked with (0: none held). */
  private tableWait = 0;

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
    void this.pollTable(true);
    void this.pollSeries(); // the main scalar's, along with the table (see pollSeries)
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
    void this.pollTable(true);
    void this.pollSeries();
  }

  /** Shows ``tag`` (null: the main scalar) against ``x``: asked for from the start. */
  choose(tag: string | null, x: string): void {
    if (tag === this.tag && x === this.x) {
      return;
    }
    this.tag = tag;
    this.x = x;
    this.generation++;
    this.clearTimer('series');
    this.seriesBusy = false;
    void this.pollSeries();
  }

  /** The sweep's trials that may still log (or start). */
  live(): boolean {
    const counts = this.sweep?.counts || {};
    return LIVE.some(s => (counts[s] || 0) > 0) || !!this.sweep?.trials.some(t => LIVE.includes(t.status));
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

  dispose(): void {
    this.disposed = true;
    this.generation++;
    this.clearTimer('table');
    this.clearTimer('series');
    this.tableController?.abort();
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

  private clearTimer(which: 'table' | 'series'): void {
    if (which === 'table') {
      if (this.tableTimer !== null) {
        window.clearTimeout(this.tableTimer);
      }
      this.tableTimer = null;
    } else {
      if (this.seriesTimer !== null) {
        window.clearTimeout(this.seriesTimer);
      }
      this.seriesTimer = null;
    }
  }

  /** ``now``: an answer at once (a held request is dropped for it). */
  private async pollTable(now = false): Promise<void> {
    this.clearTimer('table');
    if (!this.active()) {
      return;
    }
    if (this.tableBusy) {
      if (!now) {
        return;
      }
      this.tableController?.abort(); // a held request: ask again for an answer at once
    }
    this.tableBusy = true;
    const controller = new AbortController();
    this.tableController = controller;
    const live = this.live();
    const version = this.sweep?.version;
    // The cells come with the series every second (briefWithSeries): the table's poll only waits for a row to change.
    const wait = live && !this.cellsWithSeries() ? timing.TABLE_MS / 1000 : timing.LONG_WAIT_S;
    let path = `sweeps/${encodeURIComponent(this.id)}`;
    const held = !now && !this.wantWhole && this.longPoll && version !== undefined && version !== null;
    this.tableWait = held ? wait : 0;
    if (held) {
      // brief=1: while the version stays, only what moves without it (a tenth of the whole: mergeBrief).
      path += `?after_version=${encodeURIComponent(String(version))}&timeout=${wait}&brief=1`;
    }
    const t0 = Date.now();
    let delay = timing.TABLE_MS;
    try {
      const answer = await this.client.request<ISweep | ISweepBrief>(path, { signal: controller.signal });
      if (this.disposed) {
        return;
      }
      const brief = 'brief' in answer && !!answer.brief;
      const sweep = brief ? mergeBrief(this.sweep, answer as ISweepBrief) : (answer as ISweep);
      if (sweep === null) {
        throw new StaleRows(); // a brief answer for rows not held (cannot happen with one server): the whole now
      }
      this.wantWhole = false;
      const elapsed = Date.now() - t0;
      if (held && sweep.version === version && elapsed < Math.min(wait * 1000, timing.TABLE_MS) / 2) {
        this.longPoll = false; // answered at once with nothing new: this server does not hold
      }
      const hadTags = !!this.sweep && this.sweep.tags.length > 0;
      const wasLive = this.live();
      this.sweep = sweep;
      this.tableBrief = brief;
      this.error = null;
      this.errorStatus = 0;
      this.tableFailures = 0;
      const isLive = this.live();
      if (this.longPoll) {
        delay = held ? 0 : Math.max(0, timing.TABLE_MS - elapsed);
      } else {
        delay = isLive ? timing.TABLE_MS : timing.IDLE_MS;
      }
      this.emitTable();
      if ((!hadTags && sweep.tags.length) || (isLive && !wasLive && this.done)) {
        // The first tag was logged, or a trial came back to life (a restage): ask for the series.
        this.done = false;
        void this.pollSeries();
      }
    } catch (e) {
      if (controller.signal.aborted || this.disposed) {
        return; // dropped for a newer ask
      }
      if (e instanceof StaleRows) {
        this.wantWhole = true;
        delay = 0;
      } else {
        this.error = (e as Error).message || String(e);
        this.errorStatus = e instanceof GuildApiError ? e.status : 0;
        this.tableFailures += 1;
        delay = nextDelay(timing.TABLE_MS, this.tableFailures);
        this.emitTable();
      }
    } finally {
      if (this.tableController === controller) {
        this.tableController = null;
        this.tableBusy = false;
        this.tableWait = 0;
      }
    }
    if (this.active() && this.tableController === null) {
      this.tableTimer = window.setTimeout(() => void this.pollTable(), delay);
    }
  }

  /** Whether the cells that move every second come with the series' answers now. */
  private cellsWithSeries(): boolean {
    return this.briefWithSeries === true && this.loaded && !this.done && this.seriesError === null;
  }

  /** The cells stopped coming with the series (all read, an error): a table poll held long asks again, at once. */
  private cellsStopped(): void {
    if (this.tableWait > timing.TABLE_MS / 1000 && this.live() && this.active()) {
      void this.pollTable(true);
    }
  }

  /** The table's brief a series answer carried: merged into the table held (one emit with the series'). */
  private takeBrief(brief: ISweepBrief | undefined): boolean {
    if (!brief || !this.sweep) {
      return false;
    }
    const merged = mergeBrief(this.sweep, brief);
    if (merged === null) {
      // Another version: a row changed (the table's held poll brings it; asked at once in case it was not held).
      if (brief.version !== this.sweep.version) {
        void this.pollTable(true);
      }
      return false;
    }
    this.sweep = merged;
    this.tableBrief = true;
    return true;
  }

  private async pollSeries(): Promise<void> {
    this.clearTimer('series');
    if (this.seriesBusy || !this.active()) {
      return;
    }
    // Before the table's first answer, the main scalar's series are asked
    // for along with it (``main=1``: the server picks the tag as the table
    // does), so that the first paint waits for one answer, not two in turn.
    const main = !this.sweep;
    if (main && (this.tag !== null || this.token !== null)) {
      return;
    }
    if (this.sweep && this.tag !== null && !this.sweep.tags.includes(this.tag)) {
      this.tag = null; // the tag shown is gone (its trials deleted): back to the main scalar
    }
    const tag = this.wantedTag();
    if (!main && (tag === null || !this.sweep!.tags.includes(tag))) {
      return; // nothing logged yet: the table's next answer asks again
    }
    const key = `${tag}\n${this.x}`;
    if (!main && key !== this.seriesKey) {
      // Another tag or x than what is held: from the start.
      this.seriesKey = key;
      this.token = null;
      this.loaded = false;
      this.done = false;
      this.seriesProblems = [];
      if (this.store.runs.size) {
        this.store.clear();
        this.emitSeries(new Set(), true);
      }
    }
    this.seriesBusy = true;
    const generation = this.generation;
    let delay = timing.SCALARS_MS;
    const x = this.x;
    let query = `${main ? 'main=1' : `tags=${encodeURIComponent(tag!)}`}&x=${encodeURIComponent(x)}` +
      `&points=${pointsFor(this.chartWidth())}`;
    if (this.token !== null) {
      query += `&since=${encodeURIComponent(this.token)}`;
    }
    const version = this.sweep?.version;
    const askBrief = !main && this.token !== null && version !== undefined && version !== null && this.briefWithSeries !== false;
    if (askBrief) {
      query += `&brief=${encodeURIComponent(String(version))}`; // the table's cells of that version, with the points
    }
    try {
      const text = await this.client.text(`sweeps/${encodeURIComponent(this.id)}/scalars?${query}`);
      if (generation !== this.generation || this.disposed) {
        return;
      }
      const t0 = performance.now();
      const reply = JSON.parse(text) as IScalarsReply;
      if (main && (!reply.main || this.token !== null)) {
        // Nothing logged yet (or a server that does not pick the main scalar): asked again by
        // tag once the table is here (at once when it already is).
        throw new NotMain();
      }
      if (main) {
        // What is held is the main scalar's, against x: the table's answer goes on from it when it shows the same.
        this.seriesKey = `${reply.main}\n${x}`;
        this.seriesProblems = [];
      }
      const reset = !!reply.reset || this.token === null;
      if (reset && this.store.runs.size) {
        this.store.clear(); // the answer is from the start: it replaces what is held
      }
      this.token = reply.token;
      const changed = this.store.apply({ ...reply, reset: false });
      this.loaded = true;
      this.done = !!reply.done;
      this.seriesError = null;
      this.seriesFailures = 0;
      if (reply.errors) {
        this.seriesProblems = reply.errors.slice(0, 5);
      }
      const withCells = askBrief ? this.takeBrief(reply.table) : false;
      if (askBrief && this.briefWithSeries === null) {
        this.briefWithSeries = reply.table !== undefined; // the table's next poll waits long when it is true
      }
      performance.measure('gj-sweep:apply', { start: t0 });
      if (withCells) {
        this.emitTable(); // the table's words, in the same task as the chart's points: one frame
      }
      this.emitSeries(changed, reset);
      if (this.done || (askBrief && !this.briefWithSeries)) {
        this.cellsStopped();
      }
      delay = timing.SCALARS_MS;
    } catch (e) {
      if (generation !== this.generation || this.disposed) {
        return;
      }
      if (e instanceof NotMain) {
        delay = this.sweep ? 0 : timing.SCALARS_MS;
      } else {
        this.seriesError = (e as Error).message || String(e);
        this.seriesFailures += 1;
        delay = nextDelay(timing.SCALARS_MS, this.seriesFailures);
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
        this.cellsStopped();
      }
    } finally {
      if (generation === this.generation) {
        this.seriesBusy = false;
      }
    }
    if (generation === this.generation && this.active() && !this.done) {
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
