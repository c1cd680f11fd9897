/**
 * Which events raise a notification (pure: no DOM, no JupyterLab, so
 * node's test runner checks it). A failed run always does; any other run
 * or sweep that ends only with ``notifyAllEnds``. An event raises one once:
 * the newest event handled for a server start is remembered in the
 * browser's storage, shared by every tab, so a reload or a second tab does
 * not raise it again; the history a first connection brings raises none.
 */
import { IEvent } from './contract';

export const NOTIFIED_KEY = 'guild-jupyter:notified';

/** What remembers the newest event handled (window.localStorage). */
export interface IKeyValue {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** A JupyterLab notification's type for an event's level. */
export type NoticeType = 'default' | 'info' | 'success' | 'warning' | 'error';

export interface INotice {
  event: IEvent;
  type: NoticeType;
  /** Stays until closed (a failed run), else closes itself. */
  sticky: boolean;
}

export function noticesToRaise(
  fresh: IEvent[],
  initial: boolean,
  boot: string,
  store: IKeyValue | null,
  notifyAllEnds: boolean
): INotice[] {
  let handled: { boot?: string; seq?: number } | null = null;
  try {
    handled = JSON.parse((store && store.getItem(NOTIFIED_KEY)) || 'null');
  } catch (e) {
    handled = null;
  }
  const known = handled && handled.boot === boot && typeof handled.seq === 'number' ? handled.seq : null;
  const newest = Math.max(known ?? 0, ...fresh.map(e => e.seq));
  try {
    store?.setItem(NOTIFIED_KEY, JSON.stringify({ boot, seq: newest }));
  } catch (e) {
    // no storage: every tab notifies on its own
  }
  const unseen = known === null ? (initial ? [] : fresh) : fresh.filter(e => e.seq > known);
  const out: INotice[] = [];
  for (const event of unseen) {
    const failedRun = event.kind === 'run-ended' && event.level === 'error';
    const anEnd = event.kind === 'run-ended' || event.kind === 'sweep-ended';
    if (failedRun || (notifyAllEnds && anEnd)) {
      out.push({ event, type: noticeType(event.level), sticky: failedRun });
    }
  }
  return out;
}

function noticeType(level: string): NoticeType {
  return level === 'error' || level === 'warning' || level === 'success' || level === 'info' ? level : 'default';
}
