/** node --test: the sweep view's data side (npm test): the series held in
 * typed arrays (bounded, thinned keeping extremes), TensorBoard's
 * smoothing, the line paths kept between redraws, the table's sort, and the
 * model's asking (since tokens, reset, done, a tag change, bad input)
 * against a fake server behind the client's transport. */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

(globalThis as any).window = globalThis;
(globalThis as any).document = { hidden: false, addEventListener() {}, removeEventListener() {} };

import { GuildClient } from '../client';
import { ISweep, ITrialRow } from '../sweep/contract';
import { FIRST_POINTS, MIN_POINTS, mergeBrief, pointsFor, SweepModel, timing } from '../sweep/model';
import { LinePath } from '../sweep/lines';
import { formatNumber, nearestIndex, Series, SeriesStore } from '../sweep/series';
import { sortTrials } from '../sweep/table';

timing.TABLE_MS = 20;
timing.SCALARS_MS = 20;
timing.IDLE_MS = 40;
timing.LONG_WAIT_S = 0.05;

/** TensorBoard's smoothing, from its definition. */
function ema(values: number[], w: number): number[] {
  let last = 0;
  return values.map((v, i) => {
    last = last * w + (1 - w) * v;
    return last / (1 - w ** (i + 1));
  });
}

test('a series appends in order, drops values that are not finite, and tracks its ranges', () => {
  const s = new Series();
  s.append([[0, 1], [1, NaN], [2, Infinity], [3, -2], [4, 5]]);
  assert.equal(s.n, 3);
  assert.deepEqual(Array.from(s.xs.subarray(0, s.n)), [0, 3, 4]);
  assert.deepEqual(Array.from(s.ys.subarray(0, s.n)), [1, -2, 5]);
  assert.deepEqual([s.xMin, s.xMax, s.yMin, s.yMax, s.sorted], [0, 4, -2, 5, true]);
  s.push(2, 0);
  assert.equal(s.sorted, false);
});

test('a full series thins its older half to a quarter, keeping each group of four its extremes, the newest exact', () => {
  const max = 400;
  const s = new Series(0, max);
  const ys: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const y = i % 97 === 0 ? 1000 + i : Math.sin(i / 10);
    ys.push(y);
    s.push(i, y);
    assert.ok(s.n <= max);
  }
  // The newest points are all there, exactly.
  const tail = 100;
  assert.deepEqual(Array.from(s.xs.subarray(s.n - tail, s.n)), Array.from({ length: tail }, (_, k) => 5000 - tail + k));
  // In order; the highest and lowest values survive every thinning (each group keeps its extremes),
  // and so does a spike older than the exact tail.
  const xs = Array.from(s.xs.subarray(0, s.n));
  const kept = Array.from(s.ys.subarray(0, s.n));
  assert.deepEqual(xs, xs.slice().sort((a, b) => a - b));
  assert.equal(Math.max(...kept), Math.max(...ys));
  assert.equal(Math.min(...kept), Math.min(...ys));
  const lastSpike = Math.floor(4899 / 97) * 97;
  assert.ok(lastSpike < 5000 - tail && xs.includes(lastSpike), `the spike at ${lastSpike} was thinned away`);
  assert.equal(s.thinned + s.n, 5000);
});

test('smoothing is TensorBoard\'s debiased EMA, as points arrive and again when the weight changes', () => {
  const values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
  const store = new SeriesStore();
  store.setWeight(0.6);
  store.apply({ token: 't', x: 'step', reset: false, series: { r: { loss: values.slice(0, 4).map((v, i) => [i, v]) } } });
  store.apply({ token: 't', x: 'step', reset: false, series: { r: { loss: values.slice(4).map((v, i) => [i + 4, v]) } } });
  const s = store.get('r', 'loss')!;
  const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-12);
  assert.ok(near(Array.from(s.shown().subarray(0, s.n)), ema(values, 0.6)));
  store.setWeight(0.9);
  assert.ok(near(Array.from(s.shown().subarray(0, s.n)), ema(values, 0.9)));
  store.setWeight(0);
  assert.deepEqual(Array.from(s.shown().subarray(0, s.n)), values);
});

test('a reply with reset drops what is held; runs and tags arrive as the reply names them', () => {
  const store = new SeriesStore();
  const changed = store.apply({ token: 'a', x: 'step', reset: false, series: { r1: { loss: [[0, 1]] }, r2: { loss: [] } } });
  assert.deepEqual(Array.from(changed), ['r1']);
  store.apply({ token: 'b', x: 'step', reset: true, series: { r2: { acc: [[0, 0.5]] } } });
  assert.equal(store.get('r1', 'loss'), undefined);
  assert.equal(store.size(), 1);
});

/** A path that records its vertices. */
class Recorder {
  moves: [number, number][] = [];
  vertices: [number, number][] = [];
  moveTo(x: number, y: number): void {
    this.moves.push([x, y]);
    this.vertices.push([x, y]);
  }
  lineTo(x: number, y: number): void {
    this.vertices.push([x, y]);
  }
}

/** Per pixel column: [lowest y, highest y] of ``pts``. */
function extents(pts: [number, number][]): Map<number, [number, number]> {
  const m = new Map<number, [number, number]>();
  for (const [x, y] of pts) {
    const c = Math.floor(x);
    const e = m.get(c);
    m.set(c, e ? [Math.min(e[0], y), Math.max(e[1], y)] : [y, y]);
  }
  return m;
}

test('a line path draws each pixel column\'s extent with a few vertices, ending at the newest point', () => {
  const n = 100000;
  const xs = Float64Array.from({ length: n }, (_, i) => i);
  const ys = Float64Array.from({ length: n }, (_, i) => Math.sin(i / 300) + (i === 54321 ? 50 : 0));
  const toX = (v: number) => (v / n) * 500;
  const toY = (v: number) => 100 - v;
  const line = new LinePath(() => new Recorder());
  const path = line.update('k', xs, ys, n, toX, toY);
  const all: [number, number][] = Array.from(xs, (x, i) => [toX(x), toY(ys[i])]);
  assert.ok(path.vertices.length <= 4 * 500 && path.vertices.length >= 500, String(path.vertices.length));
  assert.deepEqual(extents(path.vertices), extents(all));
  const order = path.vertices.map(v => v[0]);
  assert.deepEqual(order, order.slice().sort((a, b) => a - b));
  assert.deepEqual(path.vertices[path.vertices.length - 1], all[n - 1]);
  assert.deepEqual(path.vertices[0], all[0]);
});

test('a line path grows by the new points only while its key holds, and is built again when it changes', () => {
  const n = 20000;
  const xs = Float64Array.from({ length: n }, (_, i) => i);
  const ys = Float64Array.from({ length: n }, (_, i) => Math.cos(i / 50) * (1 + (i % 7)));
  const toX = (v: number) => v / 40;
  const toY = (v: number) => 50 - v;
  const line = new LinePath(() => new Recorder());
  const first = line.update('k', xs, ys, 12345, toX, toY);
  const before = first.vertices.length;
  const grown = line.update('k', xs, ys, n, toX, toY);
  assert.equal(grown, first); // the same path, extended
  assert.ok(grown.vertices.length > before);
  const whole = new LinePath(() => new Recorder()).update('k', xs, ys, n, toX, toY);
  assert.deepEqual(extents(grown.vertices), extents(whole.vertices));
  assert.deepEqual(grown.vertices[grown.vertices.length - 1], whole.vertices[whole.vertices.length - 1]);
  const again = line.update('other scales', xs, ys, n, toX, toY);
  assert.notEqual(again, first);
  assert.deepEqual(again.vertices, whole.vertices);
  // A value that cannot be drawn breaks the line.
  const gap = new LinePath(() => new Recorder()).update('g', [0, 1, 2, 3], [1, -1, 2, 3], 4, v => v * 10, v => v,
    v => v > 0);
  assert.deepEqual(gap.moves, [[0, 1], [20, 2]]);
});

test('the nearest point by x, and numbers as a hover shows them', () => {
  const xs = [0, 10, 20, 30];
  assert.deepEqual([nearestIndex(xs, 4, -5), nearestIndex(xs, 4, 14), nearestIndex(xs, 4, 16), nearestIndex(xs, 4, 99)],
    [0, 1, 2, 3]);
  assert.equal(nearestIndex(xs, 0, 3), -1);
  assert.deepEqual([formatNumber(3), formatNumber(0.1234567891), formatNumber(NaN)], ['3', '0.123457', 'NaN']);
});

function trial(id: string, sort: number | string | null): ITrialRow {
  return { id, short_id: id, status: 'completed', status_text: 'completed', title: id, cells: { k: { text: String(sort), sort } } };
}

test('sorting: by sort values, nulls last both ways, ties in the server order', () => {
  const rows = [trial('a', 2), trial('b', null), trial('c', 1), trial('d', 2), trial('e', null)];
  assert.deepEqual(sortTrials(rows, 'k', 1).map(r => r.id), ['c', 'a', 'd', 'b', 'e']);
  assert.deepEqual(sortTrials(rows, 'k', -1).map(r => r.id), ['a', 'd', 'c', 'b', 'e']);
  assert.deepEqual(sortTrials(rows, null, 1).map(r => r.id), ['a', 'b', 'c', 'd', 'e']);
  const words = [trial('x', 'b'), trial('y', 'a')];
  assert.deepEqual(sortTrials(words, 'k', 1).map(r => r.id), ['y', 'x']);
});

// -- the model against a fake server ------------------------------------------------------------

interface IAsk {
  path: string;
  query: URLSearchParams;
}

class FakeSweepServer {
  asks: IAsk[] = [];
  sweep: ISweep = {
    id: 's1', title: 'train.py · 2 trials', columns: [], tags: ['acc', 'loss'], x_axes: ['step', 'time'],
    scalar: { tag: 'loss', direction: 'min', best_text: 'lowest loss' }, best: null, version: 1,
    counts: { running: 1 }, trials: []
  };
  /** Points served per ask, in order (then nothing new). */
  pieces: Record<string, Record<string, number[][]>>[] = [];
  done = false;
  resetNext = false;
  /** A tag the server refuses (400) though the table lists it. */
  refuse = '';
  served = 0;
  /** The tag a ``main=1`` ask is answered for (the server's pick). */
  mainTag = 'loss';

  transport = async (path: string): Promise<Response> => {
    const [name, qs] = path.split('?');
    const query = new URLSearchParams(qs || '');
    this.asks.push({ path: name, query });
    if (name === 'sweeps/s1') {
      if (query.get('brief') === '1' && query.get('after_version') === String(this.sweep.version)) {
        return json({ id: 's1', version: this.sweep.version, brief: true, hparams: this.sweep.hparams,
                      trials: this.sweep.trials.map(t => ({ id: t.id, cells: t.cells })) });
      }
      return json(this.sweep);
    }
    if (name === 'sweeps/s1/scalars') {
      const main = query.get('main') === '1';
      if (main && !this.mainTag) {
        return json({ token: null, x: query.get('x'), series: {}, reset: false, done: false, main: null });
      }
      const tag = main ? this.mainTag : query.get('tags')!;
      if (!this.sweep.tags.includes(tag) || tag === this.refuse) {
        return new Response(JSON.stringify({ error: `no trial logged ${tag}` }), { status: 400 });
      }
      const reset = this.resetNext;
      this.resetNext = false;
      const since = query.get('since');
      let series = {};
      if (reset) {
        series = { r: { [tag]: [[0, 9]] } };
      } else if (since === null || this.served < this.pieces.length) {
        series = this.pieces[since === null ? 0 : this.served] || {};
        this.served = since === null ? 1 : this.served + 1;
      }
      return json({ token: `t${this.asks.length}`, x: query.get('x'), series, reset, done: this.done,
                    ...(main ? { main: tag } : {}) });
    }
    return new Response('{}', { status: 404 });
  };

  scalarAsks(): IAsk[] {
    return this.asks.filter(a => a.path.endsWith('/scalars'));
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

test('the model asks for the main tag from the start, then only what is new with the token', async () => {
  const server = new FakeSweepServer();
  server.pieces = [{ r: { loss: [[0, 1], [1, 0.5]] } }, { r: { loss: [[2, 0.25]] } }];
  const model = new SweepModel(new GuildClient(server.transport), 's1');
  model.start();
  try {
    await until(() => (model.store.get('r', 'loss')?.n || 0) === 3);
    const [first, second] = server.scalarAsks();
    // The first ask goes with the table's, for the main scalar (the server names it).
    assert.equal(first.query.get('main'), '1');
    assert.equal(first.query.get('tags'), null);
    assert.equal(first.query.get('x'), 'step');
    assert.equal(first.query.get('since'), null);
    assert.ok(server.asks.indexOf(first) <= 1);
    assert.ok(Number(first.query.get('points')) >= 1000);
    assert.equal(second.query.get('tags'), 'loss');
    assert.equal(second.query.get('since'), 't' + String(server.asks.indexOf(first) + 1));
    // The table is long-polled with its version once it has one.
    await until(() => server.asks.some(a => a.path === 'sweeps/s1' && a.query.get('after_version') === '1'));
    // A reset answer replaces what is held.
    server.resetNext = true;
    await until(() => model.store.get('r', 'loss')?.n === 1);
    assert.equal(model.store.get('r', 'loss')!.ys[0], 9);
  } finally {
    model.dispose();
  }
});

test('the first answer is asked for about a point per pixel column of the chart, within bounds', async () => {
  assert.equal(pointsFor(0), FIRST_POINTS); // not laid out yet: the most
  assert.equal(pointsFor(640.4), 641);
  assert.equal(pointsFor(100), MIN_POINTS);
  assert.equal(pointsFor(1e6), FIRST_POINTS);
  const server = new FakeSweepServer();
  server.pieces = [{ r: { loss: [[0, 1]] } }];
  const model = new SweepModel(new GuildClient(server.transport), 's1');
  model.chartWidth = () => 733;
  model.start();
  try {
    await until(() => server.scalarAsks().length > 0);
    assert.equal(server.scalarAsks()[0].query.get('points'), '733');
  } finally {
    model.dispose();
  }
});

test('a first answer of another main scalar than the table names is asked again from the start', async () => {
  const server = new FakeSweepServer();
  server.mainTag = 'acc';
  server.pieces = [{ r: { acc: [[0, 0.5]] } }, { r: { loss: [[0, 1], [1, 0.5]] } }];
  const model = new SweepModel(new GuildClient(server.transport), 's1');
  model.start();
  try {
    await until(() => (model.store.get('r', 'loss')?.n || 0) === 2);
    const asks = server.scalarAsks();
    assert.equal(asks[0].query.get('main'), '1');
    const again = asks.find(a => a.query.get('tags') === 'loss')!;
    assert.equal(again.query.get('since'), null); // from the start: the held series were another tag's
  } finally {
    model.dispose();
  }
});

test('while the version stays, the table is asked for brief answers: the cells are merged into the rows held', async () => {
  const server = new FakeSweepServer();
  server.sweep.trials = [{ ...trial('r', 1), title: 'lr=0.1' }];
  const model = new SweepModel(new GuildClient(server.transport), 's1');
  model.start();
  try {
    await until(() => model.sweep?.trials.length === 1);
    server.sweep = { ...server.sweep, trials: [{ ...server.sweep.trials[0], title: 'not sent', cells: { scalar: { text: '0.5', sort: 0.5 } } }] };
    await until(() => model.sweep?.trials[0].cells.scalar?.text === '0.5');
    assert.ok(server.asks.some(a => a.path === 'sweeps/s1' && a.query.get('brief') === '1'));
    assert.equal(model.sweep!.trials[0].title, 'lr=0.1'); // the row as held: only its cells came
    // A new version: the whole table.
    server.sweep = { ...server.sweep, version: 2 };
    await until(() => model.sweep?.version === 2 && model.sweep.trials[0].title === 'not sent');
    // A brief answer that does not fit the rows held (another trial) is not merged: the whole table is asked.
    assert.equal(mergeBrief(model.sweep, { id: 's1', version: 2, brief: true, trials: [{ id: 'x', cells: {} }] }), null);
  } finally {
    model.dispose();
  }
});

test('a first answer naming no main scalar: the series are asked for by the table\'s tag', async () => {
  const server = new FakeSweepServer();
  server.mainTag = '';
  server.pieces = [{ r: { loss: [[0, 1], [1, 0.5]] } }];
  const model = new SweepModel(new GuildClient(server.transport), 's1');
  model.start();
  try {
    await until(() => (model.store.get('r', 'loss')?.n || 0) === 2);
    const asks = server.scalarAsks();
    assert.equal(asks[0].query.get('main'), '1');
    assert.ok(asks.some(a => a.query.get('tags') === 'loss' && a.query.get('since') === null));
  } finally {
    model.dispose();
  }
});

test('done stops the asking; a tag change asks from the start; an unknown tag goes back to the main one', async () => {
  const server = new FakeSweepServer();
  server.pieces = [{ r: { loss: [[0, 1]] } }];
  server.done = true;
  const model = new SweepModel(new GuildClient(server.transport), 's1');
  model.start();
  try {
    await until(() => model.done);
    const n = server.scalarAsks().length;
    await new Promise(r => setTimeout(r, 150));
    assert.equal(server.scalarAsks().length, n); // nothing more will come: no more asks
    server.done = false;
    server.pieces = [{ r: { acc: [[0, 0.1]] } }];
    model.choose('acc', 'step');
    await until(() => model.store.get('r', 'acc')?.n === 1);
    assert.equal(model.store.get('r', 'loss'), undefined); // dropped: another tag
    const ask = server.scalarAsks()[n];
    assert.equal(ask.query.get('tags'), 'acc');
    assert.equal(ask.query.get('since'), null);
    // The server refuses the tag shown: one line, and back to the main scalar once the table drops it.
    server.refuse = 'acc';
    server.pieces.push({ r: { acc: [[1, 0.2]] } });
    await until(() => model.seriesError !== null);
    assert.match(model.seriesError!, /no trial logged acc/);
    server.sweep = { ...server.sweep, tags: ['loss'], version: 2 };
    model.refresh();
    await until(() => model.tag === null);
    await until(() => server.scalarAsks().slice(-1)[0].query.get('tags') === 'loss');
  } finally {
    model.dispose();
  }
});
