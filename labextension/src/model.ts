/**
 * One view of the server's state shared by everything in a browser tab
 * (the sidebar and the status bar item; the /guild page has its own).
 *
 * The snapshot is long-polled: GET state?after_version=V asks the server
 * to answer once the snapshot's version differs from V, so a change on disk
 * shows as soon as the server sees it. The version does not move with
 * running clocks, scalars or GPU readings, so the wait is also how often
 * those refresh: SHOWN_WAIT_S while something shows the runs, LONG_POLL_S
 * for the status bar alone (an idle tab costs one request a while). Only one request is held open per tab: browsers
 * allow six connections per server, shared with JupyterLab itself. Events
 * (runs, sweeps and queues that ended or changed) are fetched, without
 * waiting, whenever the snapshot's ``last_event`` passes the newest one
 * seen. A server that answers at once (no long poll) is polled every
 * second while something shows the runs, every 5 s otherwise; a server
 * without the events endpoint simply has no notices. While the browser tab
 * is hidden the snapshot is asked for every 30 s; calls that fail back off
 * (doubling, up to 30 s), so a missing server extension costs one request
 * now and then and one line.
 */
import { GuildApiError, GuildClient, LONG_POLL_S } from './client';
import { IEvent, IState } from './contract';
import { nextDelay, stateQuery } from './format';

export const FAST_MS = 1000;
export const SLOW_MS = 5000;
export const HIDDEN_MS = 30000;
/** How long a request is held while the runs are shown: their clocks,
 * scalars and GPU readings are this fresh. */
export const SHOWN_WAIT_S = 3;
/** Notices kept (the server keeps more; a viewer shows the newest few). */
export const KEEP_NOTICES = 50;
/** A reply with the version asked about, sooner than this, means the
 * server does not hold requests: poll instead. */
const NOT_HELD_MS = 1000;

type Listener = () => void;
/** New events; ``initial``: the recent history a (re)connection brings. */
type EventsListener = (fresh: IEvent[], initial: boolean, boot: string) => void;

export class GuildModel {
  state: IState | null = null;
  error: string | null = null;
  /** Recent events, newest first. */
  notices: IEvent[] = [];
  readonly pages: Record<string, number> = {};
  private readonly listeners = new Set<Listener>();
  private readonly eventListeners = new Set<EventsListener>();
  private failures = 0;
  private timer: number | null = null;
  private controller: AbortController | null = null;
  private generation = 0;
  private active = false;
  private disposed = false;
  private longPoll = true;
  /** The state query the shown snapshot answered. */
  private query = '';
  private seq = 0;
  /** The server start the events belong to (events' ``boot``). */
  boot: string | null = null;
  private eventsOff = false;
  private eventsBusy = false;
  private eventsAgain = false;

  constructor(readonly client: GuildClient) {
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /** Calls ``fn`` after each snapshot or error; returns its disconnection. */
  onChange(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onEvents(fn: EventsListener): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  /** Whether something shows the runs now (the sidebar is visible): sets
   * how fresh clocks and scalars are kept (how long a request is held, or
   * how often a server without long polls is asked). */
  setActive(active: boolean): void {
    if (active !== this.active) {
      this.active = active;
      if (active) {
        this.refresh();
      }
    }
  }

  setPage(group: string, page: number): void {
    this.pages[group] = page;
    this.refresh();
  }

  /** Asks now, for an answer at once (after an action, a page turn, or
   * when a view opens), dropping a request that is being held. */
  refresh(): void {
    if (this.disposed) {
      return;
    }
    this.clearTimer();
    this.controller?.abort();
    void this.poll(true);
  }

  start(): void {
    this.refresh();
  }

  dispose(): void {
    this.disposed = true;
    this.clearTimer();
    this.controller?.abort();
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.listeners.clear();
    this.eventListeners.clear();
  }

  private onVisibility = (): void => {
    if (!document.hidden) {
      this.refresh();
    }
  };

  private clearTimer(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private emit(): void {
    for (const fn of Array.from(this.listeners)) {
      fn();
    }
  }

  private async poll(now = false): Promise<void> {
    const generation = ++this.generation;
    const controller = new AbortController();
    this.controller = controller;
    const query = stateQuery(this.pages);
    // Held only when the answer would be what is shown already: same pages.
    const held = !now && this.longPoll && !document.hidden && this.state?.version !== undefined && query === this.query;
    const asked = held ? this.state!.version : undefined;
    const t0 = Date.now();
    let delay: number;
    try {
      const wait = this.active ? SHOWN_WAIT_S : LONG_POLL_S;
      const state = await this.client.state(query, asked, controller.signal, wait);
      if (generation !== this.generation || this.disposed) {
        return;
      }
      this.query = query;
      const same = asked !== undefined && state.version === asked;
      if (same && Date.now() - t0 < NOT_HELD_MS) {
        this.longPoll = false; // the server answered at once with nothing new: it does not hold
      }
      this.state = state;
      this.error = null;
      this.failures = 0;
      delay = this.nextDelay(state);
    } catch (e) {
      if (generation !== this.generation || this.disposed) {
        return; // dropped by refresh(): a newer request is under way
      }
      this.error = (e as Error).message || String(e);
      this.failures += 1;
      delay = nextDelay(FAST_MS, this.failures);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
      }
    }
    this.emit();
    if (!this.error) {
      void this.fetchEvents();
    }
    this.schedule(delay);
  }

  private nextDelay(state: IState): number {
    if (document.hidden) {
      return HIDDEN_MS;
    }
    if (this.longPoll && state.version !== undefined) {
      return 0; // the next request waits on the server for a change
    }
    return this.active ? FAST_MS : SLOW_MS;
  }

  private schedule(delay: number): void {
    if (this.disposed) {
      return;
    }
    this.clearTimer();
    this.timer = window.setTimeout(() => {
      this.timer = null;
      void this.poll();
    }, delay);
  }

  /** Events newer than the newest seen, when the snapshot says there are
   * (or cannot say); the first call brings the server's recent history. */
  private async fetchEvents(): Promise<void> {
    if (this.eventsOff || this.disposed) {
      return;
    }
    const last = this.state?.last_event;
    if (this.boot !== null && typeof last === 'number' && last <= this.seq) {
      return;
    }
    if (this.eventsBusy) {
      this.eventsAgain = true;
      return;
    }
    this.eventsBusy = true;
    try {
      let reply = await this.client.events(this.seq);
      let initial = this.boot === null;
      if (this.boot !== null && reply.boot !== this.boot) {
        // The server restarted: its sequence started again.
        this.seq = 0;
        this.notices = [];
        reply = await this.client.events(0);
        initial = true;
      }
      if (this.disposed) {
        return;
      }
      this.boot = reply.boot;
      const fresh = (reply.events || []).filter(e => e.seq > this.seq).sort((a, b) => a.seq - b.seq);
      this.seq = Math.max(this.seq, reply.last || 0, ...fresh.map(e => e.seq));
      if (fresh.length || initial) {
        this.notices = fresh.slice().reverse().concat(this.notices).slice(0, KEEP_NOTICES);
        for (const fn of Array.from(this.eventListeners)) {
          fn(fresh, initial, reply.boot);
        }
        this.emit();
      }
    } catch (e) {
      if (e instanceof GuildApiError && e.status === 404) {
        this.eventsOff = true; // a server without events: no notices
      }
    } finally {
      this.eventsBusy = false;
    }
    if (this.eventsAgain) {
      this.eventsAgain = false;
      void this.fetchEvents();
    }
  }
}
