/**
 * The trial table: the server's columns in its order (the varying flags,
 * status, progress, the main scalar now and its best so far), a row per
 * trial with its words, and its actions (stop, restage with the flag
 * form, retry, output...) by the shared action renderer. A click on a
 * heading sorts by that column's ``sort`` values (again: the other way;
 * a third time: the server's order), nulls last; the status filter shows
 * the trials of one status. The best trial's row is marked, with the
 * server's words for why ("lowest loss"). Rows are kept across answers
 * (keyed by run id), so a button or an open form under the pointer stays.
 */
import { IActionHost, renderActions } from '../render/actions';
import { h, setAttr, setText } from '../render/dom';
import { ISweep, ISweepColumn, ITrialRow } from './contract';

export type SortDir = 1 | -1;

/** Orders rows by one column's sort values; nulls last whatever the direction; ties keep ``rows``' order. */
export function sortTrials(rows: ITrialRow[], key: string | null, dir: SortDir): ITrialRow[] {
  if (!key) {
    return rows.slice();
  }
  const indexed = rows.map((row, i) => ({ row, i, v: row.cells?.[key]?.sort ?? null }));
  indexed.sort((a, b) => {
    const an = a.v === null;
    const bn = b.v === null;
    if (an || bn) {
      return an === bn ? a.i - b.i : an ? 1 : -1;
    }
    let c: number;
    if (typeof a.v === 'number' && typeof b.v === 'number') {
      c = a.v - b.v;
    } else {
      c = String(a.v) < String(b.v) ? -1 : String(a.v) > String(b.v) ? 1 : 0;
    }
    return c === 0 ? a.i - b.i : c * dir;
  });
  return indexed.map(x => x.row);
}

export class TrialTable {
  readonly node = h('section', 'gj-section gj-trials');
  readonly filter = h('select', 'gj-select gj-status-filter');
  /** The trial whose row the pointer is on (the chart brings its line forward). */
  onHover: ((id: string | null) => void) | null = null;
  private readonly count = h('span', 'gj-count');
  private readonly table = h('table', 'gj-trial-table');
  private readonly head = h('tr');
  private columns: ISweepColumn[] = [];
  private columnsKey = '';
  private sortKey: string | null = null;
  private sortDir: SortDir = 1;
  private status = '';
  private sweep: ISweep | null = null;
  private colors = new Map<string, string>();
  /** The rows and columns whose widths are frozen (see ``freeze``); null: laid out by their content. */
  private frozenKey: string | null = null;
  /** Per column, the longest text when the widths were frozen: a longer one lays the table out again. */
  private frozenChars: number[] = [];
  private freezeFrame: number | null = null;
  /** Row groups on screen or near it (the others' cell texts wait: ``pendingCells``). */
  private readonly near = new Set<Element>();
  /** Rows whose cell texts changed while they were off screen: written when they come near it. */
  private readonly pendingCells = new Map<Element, ITrialRow>();
  /**
   * A second's update changes the progress and scalar texts of every row;
   * writing them into rows off screen costs layout and paint for nothing
   * (100 rows: most of the update's main-thread time), so those wait
   * until their row comes within a tenth of a screen of the viewport
   * (written in the frame after it does: what it showed is a second old).
   */
  private readonly visibility = new IntersectionObserver(entries => {
    for (const e of entries) {
      if (e.isIntersecting) {
        this.near.add(e.target);
        const row = this.pendingCells.get(e.target);
        if (row) {
          this.pendingCells.delete(e.target);
          this.writeCells(e.target as HTMLTableSectionElement, row);
        }
      } else {
        this.near.delete(e.target);
      }
    }
  }, { rootMargin: '10% 0px' });

  constructor(private readonly host: IActionHost) {
    const headBar = h('div', 'gj-section-head');
    const label = h('label', 'gj-control');
    label.append(h('span', 'gj-muted', 'status'), this.filter);
    this.filter.addEventListener('change', () => {
      this.status = this.filter.value;
      this.renderRows();
    });
    headBar.append(h('span', 'gj-section-title', 'Trials'), this.count, label);
    const thead = h('thead');
    thead.append(this.head);
    this.table.append(thead);
    const scroll = h('div', 'gj-trial-scroll');
    scroll.append(this.table);
    this.node.append(headBar, scroll);
    this.table.addEventListener('mouseover', ev => {
      const tr = (ev.target as HTMLElement).closest<HTMLElement>('tr.gj-trial[data-run]');
      this.onHover?.(tr ? tr.dataset.run! : null);
    });
    this.table.addEventListener('mouseleave', () => this.onHover?.(null));
  }

  /** The rows shown now, in their order (sorted, filtered). */
  shownRows(): ITrialRow[] {
    const rows = this.sweep?.trials || [];
    const filtered = this.status ? rows.filter(r => r.status === this.status) : rows;
    return sortTrials(filtered, this.sortKey, this.sortDir);
  }

  /** ``cellsOnly``: only the rows' cells changed since the last render (a brief answer of the same version). */
  render(sweep: ISweep, colors: Map<string, string>, cellsOnly = false): void {
    const sameRows = cellsOnly && !!this.sweep && this.sweep.trials.length === sweep.trials.length;
    this.sweep = sweep;
    this.colors = colors;
    const key = JSON.stringify(sweep.columns.map(c => [c.key, c.title, c.kind]));
    if (key !== this.columnsKey) {
      this.columnsKey = key;
      this.columns = sweep.columns;
      if (this.sortKey && !this.columns.some(c => c.key === this.sortKey)) {
        this.sortKey = null;
      }
      this.renderHead();
      for (const tb of Array.from(this.table.tBodies)) {
        this.visibility.unobserve(tb);
        tb.remove(); // cells follow the columns: rows are made again
      }
      this.near.clear();
      this.pendingCells.clear();
    }
    this.renderFilter(sweep);
    this.renderRows(sameRows);
  }

  private renderHead(): void {
    const cells: HTMLElement[] = [h('th', 'gj-trial-swatch-head')];
    for (const col of this.columns) {
      const th = h('th');
      th.dataset.key = col.key;
      th.dataset.kind = col.kind;
      const b = h('button', 'gj-sort', col.title);
      b.type = 'button';
      b.title = `sort by ${col.title}`;
      b.addEventListener('click', () => this.sortBy(col.key));
      th.append(b);
      cells.push(th);
    }
    cells.push(h('th', 'gj-trial-actions-head', ''));
    this.head.replaceChildren(...cells);
    this.markSort();
  }

  private sortBy(key: string): void {
    if (this.sortKey !== key) {
      this.sortKey = key;
      this.sortDir = 1;
    } else if (this.sortDir === 1) {
      this.sortDir = -1;
    } else {
      this.sortKey = null;
    }
    this.markSort();
    this.renderRows();
  }

  private markSort(): void {
    for (const th of Array.from(this.head.querySelectorAll<HTMLElement>('th[data-key]'))) {
      const on = th.dataset.key === this.sortKey;
      th.setAttribute('aria-sort', on ? (this.sortDir === 1 ? 'ascending' : 'descending') : 'none');
    }
  }

  private renderFilter(sweep: ISweep): void {
    const statuses = sweep.statuses || Array.from(new Set(sweep.trials.map(t => t.status)));
    if (this.status && !statuses.includes(this.status)) {
      statuses.push(this.status); // keep the choice while no trial has it
    }
    const options = [['', 'all'], ...statuses.map(s => [s, s])];
    const key = JSON.stringify(options);
    if (this.filter.dataset.options !== key) {
      this.filter.dataset.options = key;
      this.filter.replaceChildren(...options.map(([value, text]) => {
        const o = h('option', '', text);
        o.value = value;
        return o;
      }));
      this.filter.value = this.status;
    }
  }

  /** ``cellsOnly``: the rows' other words, classes and actions are as rendered last (only their cells are written). */
  private renderRows(cellsOnly = false): void {
    const rows = this.shownRows();
    const all = this.sweep?.trials.length || 0;
    setText(this.count, rows.length === all ? String(all) : `${rows.length} of ${all}`);
    // One <tbody> per trial (its row and the row under it for a form),
    // kept by run id and moved into the order shown.
    const existing = new Map<string, HTMLTableSectionElement>();
    for (const tb of Array.from(this.table.tBodies)) {
      existing.set(tb.dataset.run!, tb);
    }
    let prev: Element = this.table.tHead!;
    const keep = new Set<Element>();
    for (const row of rows) {
      let tb = existing.get(row.id);
      const made = !tb;
      if (!tb) {
        tb = this.create(row);
        this.visibility.observe(tb);
      }
      if (made || !cellsOnly) {
        this.update(tb, row);
      }
      if (made || this.near.has(tb)) {
        this.pendingCells.delete(tb);
        this.writeCells(tb, row);
      } else {
        this.pendingCells.set(tb, row);
      }
      keep.add(tb);
      if (prev.nextElementSibling !== tb) {
        prev.after(tb);
      }
      prev = tb;
    }
    for (const tb of Array.from(this.table.tBodies)) {
      if (!keep.has(tb)) {
        this.visibility.unobserve(tb);
        this.near.delete(tb);
        this.pendingCells.delete(tb);
        tb.remove();
      }
    }
    const key = `${this.columnsKey}\n${rows.map(r => `${r.id}:${(r.actions || []).map(a => a.verb).join('/')}`).join(',')}`;
    if (key !== this.frozenKey || this.outgrown(rows)) {
      this.thaw();
      this.frozenKey = key;
      this.freezeFrame ??= requestAnimationFrame(() => this.freeze());
    }
  }

  /**
   * The columns' widths, as laid out by their content, fixed
   * (``table-layout: fixed``): a second's update changes the progress and
   * scalar texts of every row, and an automatic table lays out all its
   * cells again for each change (measuring every cell for the widths); a
   * fixed one lays out only the changed cells. Made again when the rows,
   * their actions or the columns change, or a text grows longer than its column's longest
   * was (``outgrown``).
   */
  private freeze(): void {
    this.freezeFrame = null;
    if (!this.table.isConnected || this.frozenKey === null) {
      return;
    }
    const ths = Array.from(this.head.cells) as HTMLElement[];
    const widths = ths.map(th => th.getBoundingClientRect().width);
    if (!widths.some(w => w > 0)) {
      this.frozenKey = null; // not shown (a hidden tab): frozen once it is rendered again
      return;
    }
    ths.forEach((th, i) => {
      th.style.width = `${widths[i]}px`;
    });
    this.frozenChars = this.columns.map(col => Math.max(0, ...this.shownRows().map(r => cellText(r, col).length)));
    this.table.classList.add('gj-mod-fixed');
  }

  private thaw(): void {
    if (this.table.classList.contains('gj-mod-fixed')) {
      this.table.classList.remove('gj-mod-fixed');
      for (const th of Array.from(this.head.cells) as HTMLElement[]) {
        th.style.width = '';
      }
    }
    this.frozenChars = [];
  }

  /** Whether a row's text is longer than its column's longest when the widths were frozen. */
  private outgrown(rows: ITrialRow[]): boolean {
    if (!this.frozenChars.length) {
      return false;
    }
    return rows.some(r => this.columns.some((col, i) => cellText(r, col).length > this.frozenChars[i]));
  }

  private create(row: ITrialRow): HTMLTableSectionElement {
    const tb = h('tbody', 'gj-trial-group');
    tb.dataset.run = row.id;
    const tr = h('tr', 'gj-trial');
    tr.dataset.run = row.id;
    const swatch = h('td', 'gj-trial-swatch');
    swatch.append(h('span', 'gj-swatch'));
    tr.append(swatch);
    for (const col of this.columns) {
      const td = h('td', `gj-cell-${col.kind}`);
      td.dataset.key = col.key;
      tr.append(td);
    }
    const actions = h('td', 'gj-trial-actions');
    actions.append(h('span', 'gj-actions'));
    tr.append(actions);
    const more = h('tr', 'gj-trial-more');
    const td = h('td');
    td.colSpan = this.columns.length + 2;
    const slot = h('div', 'gj-form-slot');
    td.append(slot);
    more.append(td);
    more.hidden = true;
    // The form's row shows only while it holds a form (opened or closed by a click, or gone with its action).
    new MutationObserver(() => {
      more.hidden = !slot.firstElementChild;
    }).observe(slot, { childList: true });
    tb.append(tr, more);
    return tb;
  }

  private update(tb: HTMLTableSectionElement, row: ITrialRow): void {
    const el = tb.rows[0] as HTMLElement;
    setAttr(el, 'data-status', row.status);
    el.classList.toggle('gj-mod-best', !!row.is_best);
    tb.classList.toggle('gj-mod-best', !!row.is_best);
    setAttr(el, 'title', row.flags_hover || row.title || row.id);
    const color = this.colors.get(row.id) || '';
    const swatch = el.querySelector('.gj-swatch') as HTMLElement;
    if (swatch.dataset.color !== color) {
      swatch.dataset.color = color;
      swatch.style.backgroundColor = color;
    }
    const best = this.sweep?.scalar?.best_text || 'best';
    setAttr(swatch, 'title', row.is_best ? `best trial: ${best}` : '');
    setText(swatch, row.is_best ? '★' : '');
    // A retry sits under what it retries (the server's order) and says so by its status.
    tb.classList.toggle('gj-mod-retry', (row.attempt || 0) > 0);
    const slot = tb.querySelector('.gj-form-slot') as HTMLElement;
    renderActions(el.querySelector('.gj-actions') as HTMLElement, slot, row.actions, row, this.host);
  }

  /** The row's cells' texts. */
  private writeCells(tb: HTMLTableSectionElement, row: ITrialRow): void {
    const cells = Array.from(tb.rows[0].children) as HTMLElement[];
    this.columns.forEach((col, i) => setCellText(cells[i + 1], cellText(row, col)));
  }
}

/** What a row shows in a column (a retry's status says what it retries). */
function cellText(row: ITrialRow, col: ISweepColumn): string {
  const cell = row.cells?.[col.key];
  const text = cell ? cell.text : '';
  if (col.kind === 'status' && row.retry_text) {
    return [text, row.retry_text].filter(x => x).join(' · ');
  }
  return text;
}

/** A cell's words: its text node changed in place (cheaper to lay out again than a new node). */
function setCellText(el: HTMLElement, text: string): void {
  const node = el.firstChild;
  if (node && node.nodeType === Node.TEXT_NODE && !node.nextSibling) {
    if ((node as Text).data !== text) {
      (node as Text).data = text;
    }
  } else if (el.textContent !== text) {
    el.textContent = text;
  }
}
