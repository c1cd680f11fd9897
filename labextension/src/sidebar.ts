/**
 * The "Guild" left-sidebar panel: queues with their state and controls,
 * runs by status (staged runs say why they wait), the latest scalar and a
 * sparkline, GPUs, and a followed output. It shows GuildModel's snapshot
 * and renders only while visible; each group is a page of 25 rows from the
 * state API, so a 10,000-run store costs the same as a small one.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { calls, GROUPS, IGpu, IGroup, IQueueRow, IRunRow, IState } from './api';
import { button, confirmButton, h, setAttr, setText, sparkline, syncList } from './dom';
import { gpuLabel, memoryText, sparkPoints, statusText, turnPage } from './format';
import { GuildModel } from './model';
import { OutputView } from './output';

const TITLES: Record<string, string> = {
  running: 'Running',
  pending: 'Starting',
  staged: 'Staged',
  finished: 'Finished'
};

interface IGroupParts {
  node: HTMLDetailsElement;
  count: HTMLElement;
  pager: HTMLElement;
  pageText: HTMLElement;
  list: HTMLElement;
}

export class GuildSidebar extends Widget {
  private readonly summary = h('div', 'jp-GuildSidebar-summary');
  private readonly error = h('div', 'jp-GuildSidebar-error');
  private readonly message = h('div', 'jp-GuildSidebar-message');
  private readonly warnings = h('div', 'jp-GuildSidebar-warnings');
  private readonly queueList = h('div', 'jp-GuildSidebar-list');
  private readonly gpuList = h('div', 'jp-GuildSidebar-list');
  private readonly groups: Record<string, IGroupParts> = {};
  private readonly output = new OutputView();
  private messageTimer: number | null = null;

  constructor(readonly model: GuildModel, pageUrl: string) {
    super();
    this.id = 'guild-jupyter-sidebar';
    this.addClass('jp-GuildSidebar');
    this.title.caption = 'Guild: runs, queues and GPUs';

    const head = h('div', 'jp-GuildSidebar-header');
    const title = h('span', 'jp-GuildSidebar-title', 'Guild');
    const link = h('a', 'jp-GuildSidebar-link', 'open /guild page');
    link.href = pageUrl;
    link.target = '_blank';
    link.rel = 'noopener';
    head.append(title, this.summary, link);
    this.error.hidden = true;
    this.message.hidden = true;

    const queues = this.section('Queues', this.queueList);
    queues.head.append(button('start queue', 'Start a queue on this server (any GPU)', () =>
      this.act('starting a queue', calls.startQueue())
    ));
    this.node.append(head, this.error, this.message, this.warnings, queues.node);
    for (const g of GROUPS) {
      this.groups[g] = this.groupSection(g);
      this.node.append(this.groups[g].node);
    }
    this.node.append(this.section('GPUs', this.gpuList).node, this.output.node);
    model.changed.connect(() => {
      if (this.isVisible) {
        this.render();
      }
    });
  }

  dispose(): void {
    this.output.close();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this.model.setFast(true);
    this.render();
  }

  protected onAfterHide(msg: Message): void {
    this.model.setFast(false);
  }

  private section(title: string, list: HTMLElement): { node: HTMLElement; head: HTMLElement } {
    const node = h('section', 'jp-GuildSidebar-section');
    const head = h('div', 'jp-GuildSidebar-sectionHead');
    head.append(h('span', 'jp-GuildSidebar-sectionTitle', title));
    node.append(head, list);
    return { node, head };
  }

  private groupSection(group: string): IGroupParts {
    const node = h('details', 'jp-GuildSidebar-section jp-GuildSidebar-group');
    node.dataset.group = group;
    node.open = group !== 'finished' && group !== 'pending';
    const summary = h('summary', 'jp-GuildSidebar-sectionHead');
    const count = h('span', 'jp-GuildSidebar-muted');
    const pager = h('span', 'jp-GuildSidebar-pager');
    const pageText = h('span', 'jp-GuildSidebar-muted');
    const move = (delta: number) => () => {
      const g = this.model.state?.groups[group];
      this.model.setPage(group, turnPage(g ? g.page : 0, delta, g ? g.pages : 1));
    };
    pager.append(button('‹', 'Newer runs', move(-1)), pageText, button('›', 'Older runs', move(1)));
    summary.append(h('span', 'jp-GuildSidebar-sectionTitle', TITLES[group]), count, pager);
    const list = h('div', 'jp-GuildSidebar-list');
    node.append(summary, list);
    return { node, count, pager, pageText, list };
  }

  /** One line for an action's outcome (cleared after 5 s). */
  private say(text: string, isError = false): void {
    setText(this.message, text);
    this.message.classList.toggle('jp-mod-error', isError);
    this.message.hidden = !text;
    if (this.messageTimer !== null) {
      window.clearTimeout(this.messageTimer);
    }
    this.messageTimer = window.setTimeout(() => {
      this.message.hidden = true;
      this.messageTimer = null;
    }, 5000);
  }

  private async act(what: string, call: Promise<unknown>): Promise<void> {
    this.say(what + '…');
    try {
      await call;
      this.say(what + ': done');
    } catch (e) {
      this.say(`${what}: ${(e as Error).message}`, true);
    }
    this.model.refresh();
  }

  render(): void {
    const { state, error } = this.model;
    setText(this.error, error ? error : '');
    this.error.hidden = !error;
    this.node.classList.toggle('jp-mod-stale', !!error);
    if (!state) {
      setText(this.summary, error ? '' : 'loading…');
      return;
    }
    setText(this.summary, statusText(state.counts));
    this.renderWarnings(state);
    if (state.queues.length) {
      syncList(this.queueList, state.queues, q => q.id, q => this.queueNode(q), (el, q) => this.updateQueue(el, q));
    } else {
      syncList(this.queueList, ['no queue is running'], () => '-empty', x => h('div', 'jp-GuildSidebar-empty', x), () => undefined);
    }
    for (const g of GROUPS) {
      this.renderGroup(g, state.groups[g]);
    }
    this.renderGpus(state);
  }

  private renderWarnings(state: IState): void {
    const shown = (state.warnings || []).slice(0, 3);
    syncList(this.warnings, shown, w => w, w => h('div', 'jp-GuildSidebar-warning', w), () => undefined);
  }

  private renderGroup(name: string, group: IGroup | undefined): void {
    const parts = this.groups[name];
    const rows = group ? group.rows : [];
    setText(parts.count, String(group ? group.total : 0));
    parts.pager.hidden = !group || group.pages <= 1;
    if (group && group.pages > 1) {
      setText(parts.pageText, `${group.first}–${group.first + rows.length - 1} of ${group.total}`);
    }
    syncList(parts.list, rows, r => r.id, r => this.runNode(r), (el, r) => this.updateRun(el, r));
  }

  private runNode(row: IRunRow): HTMLElement {
    const el = h('div', 'jp-GuildRun');
    el.dataset.run = row.id;
    const line = h('div', 'jp-GuildRun-line');
    line.append(
      h('span', 'jp-GuildRun-dot'),
      h('span', 'jp-GuildRun-id', row.short_id),
      h('span', 'jp-GuildRun-op'),
      h('span', 'jp-GuildRun-scalar'),
      h('span', 'jp-GuildRun-sparkSlot')
    );
    const detail = h('div', 'jp-GuildRun-line');
    detail.append(h('span', 'jp-GuildRun-detail'), h('span', 'jp-GuildRun-actions'));
    el.append(line, detail, h('div', 'jp-GuildRun-waiting'));
    return el;
  }

  private updateRun(el: HTMLElement, row: IRunRow): void {
    const q = (c: string) => el.querySelector('.' + c) as HTMLElement;
    if (el.dataset.status !== row.status) {
      el.dataset.status = row.status;
      this.runActions(q('jp-GuildRun-actions'), row);
    }
    setAttr(el, 'title', `${row.id}\n${row.flags_text || ''}`);
    setText(q('jp-GuildRun-op'), row.op || '');
    setText(q('jp-GuildRun-scalar'), row.scalar_text || '');
    const points = sparkPoints(row.spark, 40, 12);
    const slot = q('jp-GuildRun-sparkSlot');
    if (slot.dataset.points !== points) {
      slot.dataset.points = points;
      slot.replaceChildren(...(points ? [sparkline(points, 40, 12)] : []));
    }
    const what = row.label_text || row.varying_text || row.flags_text || '';
    const when = [row.status_text, gpuLabel(row.gpus_text), row.elapsed_text || row.time_text].filter(x => x).join(' · ');
    setText(q('jp-GuildRun-detail'), what ? `${when} · ${what}` : when);
    const waiting = q('jp-GuildRun-waiting');
    setText(waiting, row.status === 'staged' && row.waiting ? `#${row.position} · ${row.waiting}` : '');
    waiting.hidden = !waiting.textContent;
  }

  private runActions(node: HTMLElement, row: IRunRow): void {
    const buttons = [button('output', 'Follow this run\'s output', () => this.output.follow(row.id, row.short_id))];
    if (row.status === 'running' || row.status === 'pending') {
      buttons.push(confirmButton('stop', 'Stop this run (click twice)', () => this.act(`stopping ${row.short_id}`, calls.stop(row.id))));
    } else if (row.status === 'staged') {
      buttons.push(button('unstage', 'Take this run off the queue', () =>
        this.act(`unstaging ${row.short_id}`, calls.unstage(row.id))
      ));
    }
    node.replaceChildren(...buttons);
  }

  private queueNode(q: IQueueRow): HTMLElement {
    const el = h('div', 'jp-GuildQueue');
    el.dataset.queue = q.id;
    const line = h('div', 'jp-GuildRun-line');
    line.append(h('span', 'jp-GuildRun-dot'), h('span', 'jp-GuildRun-id', q.short_id), h('span', 'jp-GuildQueue-text'),
      h('span', 'jp-GuildRun-actions'));
    el.append(line, h('div', 'jp-GuildRun-detail'));
    return el;
  }

  private updateQueue(el: HTMLElement, q: IQueueRow): void {
    const find = (c: string) => el.querySelector('.' + c) as HTMLElement;
    const slots = q.slots ? ` ${q.slots.used}/${q.slots.total}` : '';
    setText(find('jp-GuildQueue-text'), `${q.state}${slots}`);
    const detail = [gpuLabel(q.gpus_text), q.host_text, q.options_text, q.current_short ? `runs ${q.current_short}` : '']
      .filter(x => x).join(' · ');
    setText(find('jp-GuildRun-detail'), detail);
    if (el.dataset.status !== q.state) {
      el.dataset.status = q.state;
      const id = q.id;
      const short = q.short_id;
      const buttons: HTMLButtonElement[] = [];
      if (q.state === 'paused') {
        buttons.push(button('resume', 'Start runs again', () => this.act(`resuming ${short}`, calls.queueAction(id, 'resume'))));
      } else if (q.state !== 'draining') {
        buttons.push(button('pause', 'Start no new runs', () => this.act(`pausing ${short}`, calls.queueAction(id, 'pause'))));
      }
      if (q.state !== 'draining') {
        buttons.push(button('drain', 'Start no new runs and stop once the running ones end', () =>
          this.act(`draining ${short}`, calls.queueAction(id, 'drain'))));
      }
      buttons.push(confirmButton('stop', 'Stop this queue (click twice); its runs keep running', () =>
        this.act(`stopping queue ${short}`, calls.stopQueue(id))));
      find('jp-GuildRun-actions').replaceChildren(...buttons);
    }
  }

  private renderGpus(state: IState): void {
    const gpus = state.gpus || { available: false, error: null, devices: [] };
    if (!gpus.devices.length) {
      syncList(this.gpuList, [gpus.error || 'no GPU'], () => '-empty', () => h('div', 'jp-GuildSidebar-empty'),
        (el, x) => setText(el, x));
      return;
    }
    syncList(this.gpuList, gpus.devices, d => String(d.index), () => h('div', 'jp-GuildGpu'), (el, d) =>
      setText(el, gpuText(d)));
  }
}

function gpuText(d: IGpu): string {
  const parts = [`GPU ${d.index}`, d.name || ''];
  if (typeof d.utilization === 'number') {
    parts.push(`${d.utilization}%`);
  }
  parts.push(memoryText(d.memory_used, d.memory_total));
  if (d.runs && d.runs.length) {
    parts.push('runs ' + d.runs.map(r => r.short_id).join(', '));
  }
  return parts.filter(x => x).join(' · ');
}
