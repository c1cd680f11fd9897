/**
 * One poller of GET /guild/api/state shared by the sidebar and the status
 * bar item: every second while the sidebar is shown, every 5 s otherwise
 * (the status bar still counts), paused while the browser tab is hidden,
 * and backing off (doubling, up to 30 s) while calls fail, so that a
 * missing server extension costs one request now and then and one line.
 */
import { Signal, ISignal } from '@lumino/signaling';

import { calls, GROUPS, IState } from './api';
import { nextDelay } from './format';

export const FAST_MS = 1000;
export const SLOW_MS = 5000;
const HIDDEN_MS = 30000;

export class GuildModel {
  state: IState | null = null;
  error: string | null = null;
  readonly pages: Record<string, number> = {};
  private failures = 0;
  private timer: number | null = null;
  private inFlight = false;
  private again = false;
  private fast = false;
  private disposed = false;
  private readonly _changed = new Signal<this, void>(this);

  constructor() {
    for (const g of GROUPS) {
      this.pages[g] = 0;
    }
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Fast polling while something shows the runs (the sidebar is visible). */
  setFast(fast: boolean): void {
    if (fast !== this.fast) {
      this.fast = fast;
      if (fast) {
        this.refresh();
      }
    }
  }

  setPage(group: string, page: number): void {
    this.pages[group] = page;
    this.refresh();
  }

  /** Polls now (after an action, or when the sidebar opens). */
  refresh(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.clear();
    void this.poll();
  }

  start(): void {
    this.refresh();
  }

  dispose(): void {
    this.disposed = true;
    this.clear();
    document.removeEventListener('visibilitychange', this.onVisibility);
  }

  private onVisibility = (): void => {
    if (!document.hidden) {
      this.refresh();
    }
  };

  private clear(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private async poll(): Promise<void> {
    if (this.disposed) {
      return;
    }
    this.inFlight = true;
    try {
      this.state = await calls.state(this.pages);
      this.error = null;
      this.failures = 0;
    } catch (e) {
      this.error = (e as Error).message || String(e);
      this.failures += 1;
    } finally {
      this.inFlight = false;
    }
    this._changed.emit();
    this.schedule();
  }

  private schedule(): void {
    if (this.disposed) {
      return;
    }
    this.clear();
    let delay: number;
    if (this.again) {
      this.again = false;
      delay = 0;
    } else if (document.hidden) {
      delay = HIDDEN_MS;
    } else {
      delay = nextDelay(this.fast ? FAST_MS : SLOW_MS, this.failures);
    }
    this.timer = window.setTimeout(() => {
      this.timer = null;
      void this.poll();
    }, delay);
  }
}
