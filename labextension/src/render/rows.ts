/**
 * Rows of runs, queues and GPUs as the view model words them; the one
 * renderer of rows for the sidebar and the /guild page (their stylesheets
 * lay the same elements out differently: a narrow column that wraps, a
 * wide row of cells, a card per row on a small screen).
 *
 * A run row leads with its ``title`` (the flags that vary), then its
 * ``subtitle`` (op and short id); every other word is a field of the row
 * shown as it is. Nothing here decides a status, a group, a GPU phrase or
 * an allowed action.
 */
import { IGpuRow, IQueueRow, IRunRow } from '../contract';
import { IActionHost, renderActions } from './actions';
import { h, setAttr, setText, sparkline } from './dom';

/** A field's element: a span whose text is the field, hidden when empty. */
function field(el: HTMLElement, text: string | null | undefined): void {
  const t = text || '';
  setText(el, t);
  el.hidden = !t;
}

function part(parent: HTMLElement, cls: string): HTMLElement {
  return parent.querySelector(':scope > .' + cls) as HTMLElement;
}

export function runNode(row: IRunRow): HTMLElement {
  const el = h('div', 'gj-row gj-run');
  el.dataset.run = row.id;
  const what = h('div', 'gj-what');
  // Spaces between the parts, so the text reads (and copies) as words.
  what.append(h('span', 'gj-dot'), h('span', 'gj-title'), ' ', h('span', 'gj-subtitle'), ' ', h('span', 'gj-worker'),
    ' ', h('span', 'gj-label'));
  const scalar = h('span', 'gj-cell gj-scalar');
  scalar.append(h('span', 'gj-scalar-text'), h('span', 'gj-spark-slot'));
  el.append(
    what,
    h('span', 'gj-cell gj-status'),
    h('span', 'gj-cell gj-gpus'),
    h('span', 'gj-cell gj-time'),
    scalar,
    h('div', 'gj-note'),
    h('div', 'gj-actions'),
    h('div', 'gj-form-slot')
  );
  for (const [cls, label] of CELL_LABELS) {
    part(el, cls).dataset.label = label;
  }
  return el;
}

/** The headings a small screen's cards put before a cell (CSS ``::before``). */
const CELL_LABELS: [string, string][] = [
  ['gj-status', 'status'],
  ['gj-gpus', 'GPUs'],
  ['gj-time', 'when'],
  ['gj-scalar', 'scalar']
];

export function updateRun(el: HTMLElement, row: IRunRow, host: IActionHost): void {
  setAttr(el, 'data-status', row.status);
  setAttr(el, 'title', row.id);
  const what = part(el, 'gj-what');
  field(part(what, 'gj-title'), row.title);
  field(part(what, 'gj-subtitle'), row.subtitle);
  field(part(what, 'gj-label'), row.label_text);
  // The outcome says the status and more ("failed after 12s (exit 1)");
  // while there is none, the status and how long it has run.
  const status = row.outcome_text || [row.status_text, row.elapsed_text].filter(x => x).join(' · ');
  field(part(el, 'gj-status'), status);
  field(part(el, 'gj-gpus'), row.gpus_text);
  field(part(el, 'gj-time'), row.time_text);
  // A Dask queue's run: the worker it runs on (its host on hover).
  const worker = part(what, 'gj-worker');
  field(worker, row.worker ? `@ ${row.worker}` : '');
  setAttr(worker, 'title', row.worker_host || '');
  const scalar = part(el, 'gj-scalar');
  field(part(scalar, 'gj-scalar-text'), row.scalar_text);
  if (row.scalar) {
    setAttr(scalar, 'title', `${row.scalar.tag} = ${row.scalar.value}` + (row.scalar.step == null ? '' : ` at step ${row.scalar.step}`));
  }
  const slot = part(scalar, 'gj-spark-slot');
  const points = row.spark_points || '';
  if (slot.dataset.points !== points) {
    slot.dataset.points = points;
    slot.replaceChildren(...(points ? [sparkline(points)] : []));
  }
  scalar.hidden = !row.scalar_text && !points;
  // Where a staged run stands and why it waits, and what it retries.
  field(part(el, 'gj-note'), [row.position_text, row.waiting_text, row.retry_text].filter(x => x).join(' · '));
  renderActions(part(el, 'gj-actions'), part(el, 'gj-form-slot'), row.actions, row, host);
}

export function queueNode(q: IQueueRow): HTMLElement {
  const el = h('div', 'gj-row gj-queue');
  el.dataset.queue = q.id;
  const what = h('div', 'gj-what');
  what.append(h('span', 'gj-dot'), h('span', 'gj-title'), ' ', h('span', 'gj-subtitle'));
  el.append(
    what,
    h('span', 'gj-cell gj-state'),
    h('span', 'gj-cell gj-slots'),
    h('span', 'gj-cell gj-options'),
    h('div', 'gj-dask'),
    h('div', 'gj-actions'),
    h('div', 'gj-form-slot')
  );
  return el;
}

export function updateQueue(el: HTMLElement, q: IQueueRow, host: IActionHost): void {
  setAttr(el, 'data-status', q.state);
  setAttr(el, 'title', q.description || q.id);
  const what = part(el, 'gj-what');
  field(part(what, 'gj-title'), q.title);
  field(part(what, 'gj-subtitle'), q.host_text);
  field(part(el, 'gj-state'), q.state_text);
  field(part(el, 'gj-slots'), q.slots_text);
  field(part(el, 'gj-options'), q.options_text);
  renderDask(part(el, 'gj-dask'), q);
  renderActions(part(el, 'gj-actions'), part(el, 'gj-form-slot'), q.actions, q, host);
}

/** A Dask queue's cluster under its row: address, dashboard, and each
 * worker with its resources and runs (the structured part of the row). */
function renderDask(box: HTMLElement, q: IQueueRow): void {
  const d = q.dask;
  box.hidden = !d;
  if (!d) {
    box.replaceChildren();
    return;
  }
  const key = JSON.stringify(d);
  if (box.dataset.dask === q.id && box.dataset.shown === key) {
    return;
  }
  box.dataset.dask = q.id;
  box.dataset.shown = key;
  const parts: (string | Node)[] = ['Dask ', h('code', '', d.address), ' · '];
  if (d.dashboard) {
    const a = h('a', 'gj-link', d.dashboard_text || '');
    a.href = d.dashboard;
    a.target = '_blank';
    a.rel = 'noopener';
    parts.push(a);
  } else {
    parts.push(d.dashboard_text || '');
  }
  parts.push(' · ', d.workers_text || '');
  if (d.waiting) {
    parts.push(' · ', d.waiting);
  }
  box.replaceChildren(...parts);
}

export function gpuNode(): HTMLElement {
  const el = h('div', 'gj-row gj-gpu');
  el.append(
    h('span', 'gj-title'),
    h('span', 'gj-cell gj-memory'),
    h('span', 'gj-cell gj-util'),
    h('span', 'gj-cell gj-gpu-runs')
  );
  return el;
}

export function updateGpu(el: HTMLElement, g: IGpuRow): void {
  setAttr(el, 'data-gpu', String(g.index));
  field(part(el, 'gj-title'), g.text);
  field(part(el, 'gj-memory'), g.memory_text);
  field(part(el, 'gj-util'), g.utilization_text);
  field(part(el, 'gj-gpu-runs'), g.runs_text);
}
