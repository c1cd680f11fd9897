/**
 * The notices: the server's recent events (a run or a sweep that ended, a
 * queue paused, drained or ended, a retry staged), newest first, each the
 * sentence the server wrote, with a failed run's last lines and its
 * actions (its output, one click away). The same list in the sidebar and
 * on the page; a reload shows it again, because the server keeps it.
 * "clear" hides the notices shown so far (remembered in the browser).
 */
import { IEvent } from '../contract';
import { IActionHost, renderActions } from './actions';
import { h, setAttr, setText, syncList } from './dom';

export const SHOWN = 6;

export class NoticeList {
  readonly node = h('section', 'gj-section gj-notices');
  private readonly list = h('div', 'gj-list');
  private clearedBelow = 0;
  private boot = '';

  constructor(private readonly host: IActionHost, private readonly storage: Storage | null, private readonly key: string) {
    const head = h('div', 'gj-section-head');
    const clear = h('button', 'gj-button gj-notices-clear', 'clear');
    clear.type = 'button';
    clear.title = 'Hide these notices';
    clear.addEventListener('click', () => this.clear());
    head.append(h('span', 'gj-section-title', 'Notices'), clear);
    this.node.append(head, this.list);
    this.node.hidden = true;
    this.latest = [];
  }

  private latest: IEvent[];

  render(notices: IEvent[], boot: string): void {
    if (boot !== this.boot) {
      this.boot = boot;
      this.clearedBelow = this.readCleared(boot);
    }
    this.latest = notices;
    const shown = notices.filter(n => n.seq > this.clearedBelow).slice(0, SHOWN);
    syncList(this.list, shown, n => String(n.seq), n => noticeNode(n), (el, n) => this.update(el, n));
    this.node.hidden = shown.length === 0;
  }

  private update(el: HTMLElement, n: IEvent): void {
    setAttr(el, 'data-level', n.level);
    setAttr(el, 'data-kind', n.kind);
    if (n.run) {
      setAttr(el, 'data-run', n.run);
    }
    setText(el.querySelector('.gj-notice-text') as HTMLElement, n.text);
    const tail = el.querySelector('.gj-notice-tail') as HTMLElement;
    const t = (n.tail || '').replace(/\s+$/, '');
    if (tail.textContent !== t) {
      tail.textContent = t;
      tail.hidden = !t;
      tail.scrollTop = tail.scrollHeight; // the last lines (the error) first in view
    }
    const subject = { id: n.run || '', short_id: (n.run || '').slice(0, 8) };
    renderActions(el.querySelector('.gj-actions') as HTMLElement, el.querySelector('.gj-form-slot') as HTMLElement,
      n.actions, subject, this.host);
  }

  private clear(): void {
    const newest = this.latest.length ? this.latest[0].seq : 0;
    this.clearedBelow = Math.max(this.clearedBelow, newest);
    try {
      this.storage?.setItem(this.key, JSON.stringify({ boot: this.boot, seq: this.clearedBelow }));
    } catch (e) {
      // storage full or denied: cleared for this page only
    }
    this.render(this.latest, this.boot);
  }

  private readCleared(boot: string): number {
    try {
      const saved = JSON.parse(this.storage?.getItem(this.key) || 'null');
      return saved && saved.boot === boot && typeof saved.seq === 'number' ? saved.seq : 0;
    } catch (e) {
      return 0;
    }
  }
}

function noticeNode(n: IEvent): HTMLElement {
  const el = h('div', 'gj-notice');
  el.dataset.seq = String(n.seq);
  const line = h('div', 'gj-notice-line');
  line.append(h('span', 'gj-dot'), h('span', 'gj-notice-text'), h('span', 'gj-actions'));
  el.append(line, h('pre', 'gj-notice-tail'), h('div', 'gj-form-slot'));
  return el;
}
