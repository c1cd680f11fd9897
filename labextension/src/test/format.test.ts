/** node --test: the sidebar's pure helpers (npm test). */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { errorLine, gpuLabel, keepTail, nextDelay, oneLine, sparkPoints, stateQuery, statusText, turnPage } from '../format';

test('statusText counts running and staged runs', () => {
  assert.equal(statusText({ running: 2, staged: 5, completed: 9 }), '2 running · 5 staged');
  assert.equal(statusText(null), '0 running · 0 staged');
});

test('nextDelay doubles per failure up to the cap', () => {
  assert.equal(nextDelay(1000, 0), 1000);
  assert.equal(nextDelay(1000, 1), 2000);
  assert.equal(nextDelay(1000, 3), 8000);
  assert.equal(nextDelay(1000, 50), 30000);
});

test('sparkPoints spans the box, highest value at the top', () => {
  assert.equal(sparkPoints([3, 1, 2], 40, 10), '0,0 20,10 40,5');
  assert.equal(sparkPoints([1, 1], 10, 10), '0,5 10,5');
  assert.equal(sparkPoints([1], 10, 10), '');
  assert.equal(sparkPoints([1, NaN, 2], 10, 10), '0,10 10,0');
  assert.equal(sparkPoints(undefined, 10, 10), '');
});

test('keepTail keeps whole lines at the end', () => {
  assert.equal(keepTail('abc', 10), 'abc');
  assert.equal(keepTail('line1\nline2\nline3\n', 8), '…\nline3\n');
});

test('turnPage stays within the pages', () => {
  assert.equal(turnPage(0, -1, 5), 0);
  assert.equal(turnPage(3, 1, 5), 4);
  assert.equal(turnPage(4, 1, 5), 4);
  assert.equal(turnPage(0, 1, 0), 0);
});

test('stateQuery asks only for pages past the first', () => {
  assert.equal(stateQuery({ running: 0, staged: 0 }), 'state');
  assert.equal(stateQuery({ running: 0, staged: 2, finished: 7 }), 'state?staged=2&finished=7');
});

test('errorLine is one line, naming a missing server extension', () => {
  assert.match(errorLine(404, null), /server extension not found/);
  assert.equal(errorLine(409, { error: 'run 1a2b is completed' }), 'Guild API error (HTTP 409): run 1a2b is completed');
  assert.equal(errorLine(500, { error: 'a\n  b\n' }), 'Guild API error (HTTP 500): a b');
  assert.equal(oneLine('x'.repeat(300), 10), 'xxxxxxxxx…');
});

test('gpuLabel names bare GPU indices', () => {
  assert.equal(gpuLabel('0'), 'GPU 0');
  assert.equal(gpuLabel('0, 1'), 'GPUs 0,1');
  assert.equal(gpuLabel('any GPU'), 'any GPU');
  assert.equal(gpuLabel(null), '');
});
