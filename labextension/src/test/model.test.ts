/** node --test: the model's long poll, its fallback to polling, and its
 * events (npm test). A fake server stands behind the client's transport;
 * the browser globals the model uses are the few it needs. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

(globalThis as any).window = globalThis;
(globalThis as any).document = { hidden: false, addEventListener() {}, removeEventListener() {} };

import { GuildClient } from '../client';
import { GuildModel } from '../model';

interface IAsked {
  path: string;
  query: URLSearchParams;
}

/** A server with a version, events, and whether it holds long polls. */
class FakeServer {
  version = 1;
  lastEvent = 0;
  boot = 'b1';
  events: { seq: number; kind: string; level: string; text: string; time: number }[] = [];
  eventsMissing = false;
  asked: IAsked[] = [];
  private waiting: (() => void)[] = [];

  constructor(readonly holds: boolean) {}

  transport = async (path: string, init: RequestInit): Promise<Response> => {
    const [name, qs] = path.split('?');
    const query = new URLSearchParams(qs || '');
    this.asked.push({ path: name, query });
    if (name === 'events') {
      if (this.eventsMissing) {
        return new Response(JSON.stringify({ error: 'no such endpoint' }), { status: 404 });
      }
      const after = Number(query.get('after') || 0);
      return json({ events: this.events.filter(e => e.seq > after), last: this.lastEvent, boot: this.boot });
    }
    const after = query.get('after_version');
    if (this.holds && after !== null && Number(after) === this.version) {
      await new Promise<void>((resolve, reject) => {
        this.waiting.push(resolve);
        init.signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
      });
    }
    return json({ store: '/s', time: 1, version: this.version, groups: [], queues: [], last_event: this.lastEvent,
      gpus: { available: false, error: null, devices: [] } });
  };

  /** Something changed on disk: the version moves and held requests answer. */
  change(): void {
    this.version += 1;
    const waiting = this.waiting;
    this.waiting = [];
    waiting.forEach(fn => fn());
  }

  stateAsks(): IAsked[] {
    return this.asked.filter(a => a.path === 'state');
  }
}

function json(body: object): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) {
      throw new Error('condition not met in time');
    }
    await new Promise(r => setTimeout(r, 5));
  }
}

test('the model long-polls with after_version and shows a change as soon as the server answers', async () => {
  const server = new FakeServer(true);
  const model = new GuildModel(new GuildClient(server.transport));
  model.start();
  await until(() => server.stateAsks().length >= 2);
  const [first, second] = server.stateAsks();
  assert.equal(first.query.get('after_version'), null); // the first asks at once
  assert.equal(second.query.get('after_version'), '1');
  assert.equal(second.query.get('timeout'), '25'); // nothing shows the runs: the status bar's cadence
  assert.equal(model.state?.version, 1);
  const t0 = Date.now();
  server.change();
  await until(() => model.state?.version === 2);
  assert.ok(Date.now() - t0 < 500, 'shown without waiting for a poll');
  await until(() => server.stateAsks().length >= 3);
  assert.equal(server.stateAsks()[2].query.get('after_version'), '2');
  model.dispose();
});

test('while the runs are shown, a request is held only for a few seconds (clocks and scalars stay fresh)', async () => {
  const server = new FakeServer(true);
  const model = new GuildModel(new GuildClient(server.transport));
  model.setActive(true);
  model.start();
  await until(() => server.stateAsks().some(a => a.query.get('after_version') !== null));
  const held = server.stateAsks().find(a => a.query.get('after_version') !== null)!;
  assert.equal(held.query.get('timeout'), '3');
  model.dispose();
});

test('a server that answers at once is polled instead', async () => {
  const server = new FakeServer(false);
  const model = new GuildModel(new GuildClient(server.transport));
  model.setActive(true);
  try {
    const tried = () => server.stateAsks().findIndex(a => a.query.get('after_version') !== null);
    await until(() => tried() >= 0 && server.stateAsks().length > tried() + 2, 4000);
    const later = server.stateAsks().slice(tried() + 1);
    assert.deepEqual(later.map(a => a.query.get('after_version')), later.map(() => null)); // then plain polls
  } finally {
    model.dispose();
  }
});

test('a page turn asks at once, for that page, not held', async () => {
  const server = new FakeServer(true);
  const model = new GuildModel(new GuildClient(server.transport));
  model.start();
  await until(() => server.stateAsks().length >= 2);
  model.setPage('staged', 2);
  await until(() => server.stateAsks().some(a => a.query.get('staged') === '2'));
  const turn = server.stateAsks().find(a => a.query.get('staged') === '2')!;
  assert.equal(turn.query.get('after_version'), null);
  model.dispose();
});

test('events: the history first, then only when last_event passes; a new boot starts again; 404 means none', async () => {
  const server = new FakeServer(true);
  server.events = [{ seq: 1, kind: 'run-ended', level: 'success', text: 'one', time: 1 }];
  server.lastEvent = 1;
  const model = new GuildModel(new GuildClient(server.transport));
  const batches: [number[], boolean, string][] = [];
  model.onEvents((fresh, initial, boot) => batches.push([fresh.map(e => e.seq), initial, boot]));
  model.start();
  await until(() => batches.length === 1);
  assert.deepEqual(batches[0], [[1], true, 'b1']);
  const eventAsks = () => server.asked.filter(a => a.path === 'events').length;
  const before = eventAsks();
  server.change(); // a change without a new event: no events request
  await until(() => model.state?.version === 2);
  await new Promise(r => setTimeout(r, 50));
  assert.equal(eventAsks(), before);
  server.events.push({ seq: 2, kind: 'run-ended', level: 'error', text: 'two', time: 2 });
  server.lastEvent = 2;
  server.change();
  await until(() => batches.length === 2);
  assert.deepEqual(batches[1], [[2], false, 'b1']);
  assert.deepEqual(model.notices.map(e => e.seq), [2, 1]); // newest first
  // The server restarted: its sequence starts again.
  server.boot = 'b2';
  server.events = [{ seq: 1, kind: 'queue-paused', level: 'info', text: 'three', time: 3 }];
  server.lastEvent = 3; // past what the model saw, so it asks
  server.change();
  await until(() => batches.length === 3);
  assert.deepEqual(batches[2], [[1], true, 'b2']);
  assert.deepEqual(model.notices.map(e => e.text), ['three']);
  model.dispose();

  const old = new FakeServer(true);
  old.eventsMissing = true;
  const quiet = new GuildModel(new GuildClient(old.transport));
  quiet.start();
  await until(() => old.stateAsks().length >= 2);
  old.change();
  await until(() => old.stateAsks().length >= 3);
  assert.equal(old.asked.filter(a => a.path === 'events').length, 1); // asked once, then no more
  assert.equal(quiet.error, null);
  quiet.dispose();
});
