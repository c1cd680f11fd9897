/** node --test: the pure helpers of the sidebar and the page (npm test). */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { errorLine, keepTail, nextDelay, oneLine, pageRange, stateQuery, turnPage } from '../format';

test('nextDelay doubles per failure up to the cap', () => {
  assert.equal(nextDelay(1000, 0), 1000);
  assert.equal(nextDelay(1000, 1), 2000);
  assert.equal(nextDelay(1000, 3), 8000);
  assert.equal(nextDelay(1000, 50), 30000);
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

test('stateQuery asks only for pages past the first, for whatever groups the server named', () => {
  assert.equal(stateQuery({}), 'state');
  assert.equal(stateQuery({ running: 0, staged: 0 }), 'state');
  assert.equal(stateQuery({ staged: 2, finished: 7, failed: 1 }), 'state?failed=1&finished=7&staged=2');
});

test('pageRange names the rows a page shows', () => {
  assert.equal(pageRange(26, 25, 60), '26–50 of 60');
  assert.equal(pageRange(51, 10, 60), '51–60 of 60');
});

test('errorLine is one line: the server\'s own for bad input, a word for a missing extension', () => {
  assert.match(errorLine(404, null), /server extension not found/);
  assert.equal(errorLine(400, { error: "invalid value 'abc' for flag 'lr': expected a number" }),
    "invalid value 'abc' for flag 'lr': expected a number");
  assert.equal(errorLine(409, { error: 'run 1a2b is completed' }), 'run 1a2b is completed');
  assert.equal(errorLine(403, { error: 'no' }), 'not allowed (HTTP 403): no');
  assert.equal(errorLine(500, { error: 'a\n  b\n' }), 'Guild API error (HTTP 500): a b');
  assert.equal(errorLine(502, null), 'Guild API error (HTTP 502)');
  assert.equal(oneLine('x'.repeat(300), 10), 'xxxxxxxxx…');
});
