/**
 * Flags against results, as TensorBoard's HParams view shows them: one
 * point per trial, a chosen flag across, the main scalar's last value up
 * (the sweep's ``hparams``: Python chose the flags and the scalar and read
 * the values). A flag whose values are all numbers is on a linear axis,
 * or a log one when all are positive and span two decades or more
 * (learning rates); any other flag puts its values side by side, in the
 * order of their text. The best trial's point is larger and ringed; the
 * hover (an SVG title) names the trial's flags and its value.
 * A sweep's trials are few (hundreds at most): SVG, redrawn whole.
 */
import { h, setText } from '../render/dom';
import { IHparams, ISweep } from './contract';
import { formatNumber } from './series';

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

/** Where a flag's values go across, on [0, 1], and the axis's tick labels. */
export function flagAxis(values: unknown[]): { pos: (v: unknown) => number | null; ticks: [number, string][]; log: boolean } {
  const present = values.filter(v => v !== null && v !== undefined);
  const numeric = present.length > 0 && present.every(v => typeof v === 'number' && Number.isFinite(v));
  if (numeric) {
    const nums = present as number[];
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
    const at = (v: number) => (f(v) - a) / (b - a);
    const pos = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? at(v) : null);
    // The distinct values as ticks (a sweep's grid has few), else the ends.
    const distinct = Array.from(new Set(nums)).sort((x, y) => x - y);
    const shown = distinct.length <= 8 ? distinct : [lo, hi];
    return { pos, ticks: shown.map(v => [at(v), String(v)]), log };
  }
  // Anything else: its values side by side, in their order as text.
  const cats = Array.from(new Set(present.map(v => label(v)))).sort();
  const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  const pos = (v: unknown) => {
    const i = v === null || v === undefined ? -1 : cats.indexOf(label(v));
    return i < 0 ? null : at(i);
  };
  return { pos, ticks: cats.map((t, i) => [at(i), t]), log: false };
}

function label(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export class FlagScatter {
  readonly node = h('section', 'gj-section gj-scatter');
  readonly picker = h('select', 'gj-select gj-scatter-flag');
  private readonly plot = h('div', 'gj-scatter-plot');
  private readonly note = h('div', 'gj-empty');
  private flag: string | null = null;
  private drawn = '';
  /** What the drawn SVG's elements stand for (the flag, the axes, the dots' trials in order, their colours):
   * while it holds, a new answer moves the dots and changes the words in place instead of drawing anew. */
  private frame = '';
  private dots: SVGElement[] = [];
  /** What each dot shows now (its y position, value and hover), so an answer writes only what changed. */
  private dotText: { cy: string; y: string; title: string }[] = [];
  private yTicks: SVGElement[] = [];
  private last: { sweep: ISweep; colors: Map<string, string> } | null = null;
  /** The flags-against-results answer drawn last (each table answer brings a new one). */
  private drawnHp: IHparams | null = null;

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
    const hp = sweep.hparams;
    const flags = hp?.flags || [];
    this.node.hidden = !hp || !flags.length || !sweep.scalar;
    if (this.node.hidden) {
      return;
    }
    this.renderPicker(flags);
    // Drawn again only when what it shows changed (each answer brings new values: moved in place, see draw).
    const key = `${this.flag}\n${sweep.best}\n${sweep.scalar?.tag}\n${hp!.points.map(p => colors.get(p.run) || '').join(',')}`;
    if (key !== this.drawn || hp !== this.drawnHp) {
      this.drawn = key;
      this.drawnHp = hp!;
      this.draw(sweep, hp!, this.flag!, colors);
    }
  }

  private renderPicker(flags: string[]): void {
    const key = flags.join('\n');
    if (this.picker.dataset.options !== key) {
      this.picker.dataset.options = key;
      this.picker.replaceChildren(...flags.map(f => {
        const o = h('option', '', f);
        o.value = f;
        return o;
      }));
    }
    if (!this.flag || !flags.includes(this.flag)) {
      this.flag = flags[0];
    }
    this.picker.value = this.flag;
  }

  private draw(sweep: ISweep, hp: IHparams, flag: string, colors: Map<string, string>): void {
    const tag = sweep.scalar?.tag || '';
    const xAxis = flagAxis(hp.points.map(p => p.flags?.[flag]));
    const points = hp.points.filter(p => typeof p.final === 'number' && Number.isFinite(p.final) &&
      xAxis.pos(p.flags?.[flag]) !== null);
    setText(this.note, points.length ? '' : `no trial has a ${tag} yet`);
    this.note.hidden = points.length > 0;
    const ys = points.map(p => p.final as number);
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
    const trials = new Map(sweep.trials.map(t => [t.id, t]));
    // The best trial last: on top.
    const ordered = points.filter(p => p.run !== sweep.best).concat(points.filter(p => p.run === sweep.best));
    const titleOf = (p: (typeof points)[number]) => {
      const trial = trials.get(p.run);
      return `${trial?.flags_hover || trial?.title || p.run.slice(0, 8)}: ${tag} ${formatNumber(p.final as number)}`;
    };
    const yTickText = (v: number) => formatNumber(Number(v.toPrecision(4)));
    const frame = [tag, flag, xAxis.ticks.map(([t, text]) => `${t}=${text}`).join(','), xAxis.log, sweep.best,
      ordered.map(p => `${p.run}:${colors.get(p.run) || ''}:${xAxis.pos(p.flags[flag])}`).join(',')].join('\n');
    if (frame === this.frame && this.dots.length === ordered.length) {
      ordered.forEach((p, i) => {
        const dot = this.dots[i];
        const held = this.dotText[i];
        const v = p.final as number;
        const cy = String(Math.round(py(v) * 10) / 10); // a tenth of a pixel: a move too small to see is not written
        if (held.cy !== cy) {
          held.cy = cy;
          dot.setAttribute('cy', cy);
        }
        const y = String(v);
        if (held.y !== y) {
          held.y = y;
          dot.dataset.y = y;
        }
        const title = titleOf(p);
        if (held.title !== title) {
          held.title = title;
          dot.firstElementChild!.textContent = title;
        }
      });
      [lo, hi].forEach((v, i) => {
        if (this.yTicks[i] && this.yTicks[i].textContent !== yTickText(v)) {
          this.yTicks[i].textContent = yTickText(v);
        }
      });
      return;
    }
    this.frame = frame;
    this.dots = [];
    this.dotText = [];
    this.yTicks = [];
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'gj-scatter-svg', role: 'img' });
    root.setAttribute('aria-label', `${tag} against ${flag}`);
    root.append(svg('rect', { x: PAD.left, y: PAD.top, width: pw, height: ph, class: 'gj-scatter-frame' }));
    for (const [t, text] of xAxis.ticks) {
      const tick = svg('text', { x: px(t), y: H - PAD.bottom + 14, 'text-anchor': 'middle', class: 'gj-scatter-tick' });
      tick.textContent = text;
      root.append(tick);
    }
    if (points.length) {
      for (const v of [lo, hi]) {
        const tick = svg('text', { x: PAD.left - 4, y: py(v) + 4, 'text-anchor': 'end', class: 'gj-scatter-tick' });
        tick.textContent = yTickText(v);
        this.yTicks.push(tick);
        root.append(tick);
      }
    }
    const xl = svg('text', { x: PAD.left + pw / 2, y: H - 6, 'text-anchor': 'middle', class: 'gj-scatter-label' });
    xl.textContent = flag + (xAxis.log ? ' (log)' : '');
    const yl = svg('text', { x: 12, y: PAD.top + ph / 2, 'text-anchor': 'middle', class: 'gj-scatter-label',
      transform: `rotate(-90 12 ${PAD.top + ph / 2})` });
    yl.textContent = `${tag} (last)`;
    root.append(xl, yl);
    for (const p of ordered) {
      const best = p.run === sweep.best;
      const v = p.final as number;
      const cy = String(Math.round(py(v) * 10) / 10);
      const dot = svg('circle', { cx: px(xAxis.pos(p.flags[flag])!), cy, r: best ? 7 : 4.5, class: 'gj-scatter-point' });
      dot.setAttribute('fill', colors.get(p.run) || 'currentColor');
      dot.dataset.run = p.run;
      dot.dataset.x = label(p.flags[flag]);
      dot.dataset.y = String(v);
      if (best) {
        dot.classList.add('gj-mod-best');
      }
      const title = svg('title', {});
      title.textContent = titleOf(p);
      dot.append(title);
      this.dots.push(dot);
      this.dotText.push({ cy, y: String(v), title: title.textContent });
      root.append(dot);
    }
    this.plot.replaceChildren(root);
  }
}
