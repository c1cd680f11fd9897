/** node --test: which events raise a JupyterLab notification (npm test). */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { IEvent } from '../contract';
import { IKeyValue, NOTIFIED_KEY, noticesToRaise } from '../notify';

class Memory implements IKeyValue {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.has(key) ? this.items.get(key)! : null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
}

function ev(seq: number, kind: string, level: string): IEvent {
  return { seq, time: seq * 1000, kind, level, text: `event ${seq}` };
}

test('a first connection\'s history raises nothing; what follows does', () => {
  const store = new Memory();
  const history = [ev(1, 'run-ended', 'error'), ev(2, 'run-ended', 'success')];
  assert.deepEqual(noticesToRaise(history, true, 'b1', store, false), []);
  assert.deepEqual(JSON.parse(store.getItem(NOTIFIED_KEY)!), { boot: 'b1', seq: 2 });
  const later = [ev(3, 'run-ended', 'error')];
  const raised = noticesToRaise(later, false, 'b1', store, false);
  assert.deepEqual(raised.map(n => [n.event.seq, n.type, n.sticky]), [[3, 'error', true]]);
});

test('a failed run always raises; other ends only with notifyAllEnds; queue events never', () => {
  const store = new Memory();
  noticesToRaise([], true, 'b', store, false);
  const fresh = [ev(1, 'run-ended', 'success'), ev(2, 'sweep-ended', 'error'), ev(3, 'queue-paused', 'info'),
    ev(4, 'run-ended', 'error')];
  assert.deepEqual(noticesToRaise(fresh, false, 'b', new Memory(), false).map(n => n.event.seq), [4]);
  const all = noticesToRaise(fresh, false, 'b', new Memory(), true);
  assert.deepEqual(all.map(n => [n.event.seq, n.type, n.sticky]), [[1, 'success', false], [2, 'error', false],
    [4, 'error', true]]);
});

test('a reload or a second tab does not raise an event again', () => {
  const store = new Memory();
  noticesToRaise([ev(1, 'run-ended', 'error')], true, 'b', store, false);
  assert.equal(noticesToRaise([ev(2, 'run-ended', 'error')], false, 'b', store, false).length, 1);
  // The reload: its first connection brings 1 and 2 again, and 3 that came meanwhile.
  const again = noticesToRaise([ev(1, 'run-ended', 'error'), ev(2, 'run-ended', 'error'), ev(3, 'run-ended', 'error')],
    true, 'b', store, false);
  assert.deepEqual(again.map(n => n.event.seq), [3]);
});

test('a new server start counts again from its own history', () => {
  const store = new Memory();
  noticesToRaise([ev(5, 'run-ended', 'error')], true, 'old', store, false);
  assert.deepEqual(noticesToRaise([ev(1, 'run-ended', 'error')], true, 'new', store, false), []);
  assert.equal(noticesToRaise([ev(2, 'run-ended', 'error')], false, 'new', store, false).length, 1);
});
