/**
 * Flags against results, as TensorBoard's HParams view shows them: one
 * point per trial, a chosen flag across, the main scalar's last value up
 * (the ``scalar`` column's sort value: Python decided which scalar and
 * read it). A flag whose values are all numbers is on a linear axis, or
 * a log one when all are positive and span two decades or more (learning
 * rates); any other flag puts its values side by side in the order of
 * their sort values. The best trial's point is larger and ringed; the
 * hover (an SVG title) names the trial's flags and its value.
 * A sweep's trials are few (hundreds at most): SVG, redrawn whole.
 */
import { h, setText } from '../render/dom';
import { ISweep, ISweepColumn, ITrialRow } from './contract';

const SVG = 'http://www.w3.org/2000/svg';
const W = 420;
const H = 240;
const PAD = { left: 64, right: 14, top: 12, bottom: 40 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    el.setAttribute(k, String(v));
  }
  return el;
}

/** Where a flag's values go on [0, 1]: a function of a trial, and the axis's tick labels. */
export function flagAxis(rows: ITrialRow[], key: string): { pos: (r: ITrialRow) => number | null; ticks: [number, string][]; log: boolean } {
  const values = rows.map(r => r.cells?.[key]).filter(c => c && c.sort !== null) as { text: string; sort: number | string }[];
  const numeric = values.length > 0 && values.every(c => typeof c.sort === 'number' && Number.isFinite(c.sort));
  if (numeric) {
    const nums = values.map(c => c.sort as number);
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    const log = lo > 0 && hi / lo >= 100;
    const f = log ? Math.log10 : (v: number) => v;
    let a = f(lo);
    let b = f(hi);
    if (a === b) {
      a -= 1;
      b += 1;
    }
    const pos = (r: ITrialRow) => {
      const c = r.cells?.[key];
      return c && typeof c.sort === 'number' ? (f(c.sort) - a) / (b - a) : null;
    };
    // The distinct values as ticks (a sweep's grid has few), else the ends.
    const distinct = new Map<number, string>();
    values.forEach(c => distinct.set(c.sort as number, c.text));
    const ticks: [number, string][] = distinct.size <= 8
      ? Array.from(distinct.entries()).map(([v, t]) => [(f(v) - a) / (b - a), t])
      : [[(f(lo) - a) / (b - a), String(lo)], [(f(hi) - a) / (b - a), String(hi)]];
    return { pos, ticks, log };
  }
  // Categories, in their sort order.
  const order = new Map<string, string | number>();
  values.forEach(c => order.set(c.text, c.sort));
  const cats = Array.from(order.keys()).sort((x, y) => {
    const a = order.get(x)!;
    const b = order.get(y)!;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  const pos = (r: ITrialRow) => {
    const c = r.cells?.[key];
    const i = c ? cats.indexOf(c.text) : -1;
    return i < 0 ? null : at(i);
  };
  return { pos, ticks: cats.map((t, i) => [at(i), t]), log: false };
}

export class FlagScatter {
  readonly node = h('section', 'gj-section gj-scatter');
  readonly picker = h('select', 'gj-select gj-scatter-flag');
  private readonly plot = h('div', 'gj-scatter-plot');
  private readonly note = h('div', 'gj-empty');
  private flag: string | null = null;
  private last: { sweep: ISweep; colors: Map<string, string> } | null = null;

  constructor() {
    const head = h('div', 'gj-section-head');
    const label = h('label', 'gj-control');
    label.append(h('span', 'gj-muted', 'flag'), this.picker);
    head.append(h('span', 'gj-section-title', 'Flags against results'), label);
    this.picker.addEventListener('change', () => {
      this.flag = this.picker.value;
      if (this.last) {
        this.render(this.last.sweep, this.last.colors);
      }
    });
    this.node.append(head, this.plot, this.note);
  }

  render(sweep: ISweep, colors: Map<string, string>): void {
    this.last = { sweep, colors };
    const flags = sweep.columns.filter(c => c.kind === 'flag');
    const scalarCol = sweep.columns.find(c => c.key === 'scalar');
    this.node.hidden = !flags.length || !scalarCol;
    if (this.node.hidden) {
      return;
    }
    this.renderPicker(flags);
    const flag = flags.find(f => f.key === this.flag) || flags[0];
    this.draw(sweep, flag, scalarCol!, colors);
  }

  private renderPicker(flags: ISweepColumn[]): void {
    const key = JSON.stringify(flags.map(f => [f.key, f.title]));
    if (this.picker.dataset.options !== key) {
      this.picker.dataset.options = key;
      this.picker.replaceChildren(...flags.map(f => {
        const o = h('option', '', f.title);
        o.value = f.key;
        return o;
      }));
    }
    if (!this.flag || !flags.some(f => f.key === this.flag)) {
      this.flag = flags[0].key;
    }
    this.picker.value = this.flag;
  }

  private draw(sweep: ISweep, flag: ISweepColumn, scalar: ISweepColumn, colors: Map<string, string>): void {
    const rows = sweep.trials;
    const xAxis = flagAxis(rows, flag.key);
    const ys = rows.map(r => r.cells?.[scalar.key]?.sort).filter(v => typeof v === 'number' && Number.isFinite(v)) as number[];
    const withValue = rows.filter(r => typeof r.cells?.[scalar.key]?.sort === 'number' && xAxis.pos(r) !== null);
    setText(this.note, withValue.length ? '' : `no trial has a ${scalar.title} yet`);
    this.note.hidden = withValue.length > 0;
    let lo = Math.min(...ys);
    let hi = Math.max(...ys);
    if (!(lo < hi)) {
      lo -= 1;
      hi += 1;
    }
    const pw = W - PAD.left - PAD.right;
    const ph = H - PAD.top - PAD.bottom;
    const px = (t: number) => PAD.left + 8 + t * (pw - 16);
    const py = (v: number) => PAD.top + ph - ((v - lo) / (hi - lo)) * ph;
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'gj-scatter-svg', role: 'img' });
    root.setAttribute('aria-label', `${scalar.title} against ${flag.title}`);
    root.append(svg('rect', { x: PAD.left, y: PAD.top, width: pw, height: ph, class: 'gj-scatter-frame' }));
    for (const [t, text] of xAxis.ticks) {
      const tick = svg('text', { x: px(t), y: H - PAD.bottom + 14, 'text-anchor': 'middle', class: 'gj-scatter-tick' });
      tick.textContent = text;
      root.append(tick);
    }
    for (const v of [lo, hi]) {
      const tick = svg('text', { x: PAD.left - 4, y: py(v) + 4, 'text-anchor': 'end', class: 'gj-scatter-tick' });
      tick.textContent = String(Number(v.toPrecision(4)));
      root.append(tick);
    }
    const xl = svg('text', { x: PAD.left + pw / 2, y: H - 6, 'text-anchor': 'middle', class: 'gj-scatter-label' });
    xl.textContent = flag.title + (xAxis.log ? ' (log)' : '');
    const yl = svg('text', { x: 12, y: PAD.top + ph / 2, 'text-anchor': 'middle', class: 'gj-scatter-label',
      transform: `rotate(-90 12 ${PAD.top + ph / 2})` });
    yl.textContent = scalar.title;
    root.append(xl, yl);
    // The best trial last: on top.
    const ordered = withValue.filter(r => !r.is_best).concat(withValue.filter(r => r.is_best));
    for (const r of ordered) {
      const t = xAxis.pos(r)!;
      const v = r.cells[scalar.key].sort as number;
      const dot = svg('circle', { cx: px(t), cy: py(v), r: r.is_best ? 7 : 4.5, class: 'gj-scatter-point' });
      dot.setAttribute('fill', colors.get(r.id) || 'currentColor');
      dot.dataset.run = r.id;
      dot.dataset.x = String(r.cells[flag.key]?.sort);
      dot.dataset.y = String(v);
      if (r.is_best) {
        dot.classList.add('gj-mod-best');
      }
      const title = svg('title', {});
      title.textContent = `${r.flags_hover || r.title}: ${scalar.title} ${r.cells[scalar.key].text}`;
      dot.append(title);
      root.append(dot);
    }
    this.plot.replaceChildren(root);
  }
}
