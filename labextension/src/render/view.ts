/**
 * Everything a viewer shows of the Guild store, as plain DOM: the summary,
 * notices, a followed output, queues, the run groups in the server's order
 * (each a page of rows, open or closed as the server says until the person
 * toggles it), GPUs and warnings. The JupyterLab sidebar puts this node in
 * a Lumino widget; the /guild page puts it in its body. One renderer, two
 * stylesheets (``style/sidebar.css`` and ``style/page.css`` over
 * ``style/rows.css``).
 */
import { IAction, IGroup, IRunRow, IState, ISweepLink } from '../contract';
import { pageRange, turnPage } from '../format';
import { GuildModel } from '../model';
import { IActionHost, ISubject } from './actions';
import { ActionFeedback } from './feedback';
import { button, h, setText, syncList } from './dom';
import { NoticeList } from './notices';
import { OutputView } from './output';
import { gpuNode, queueNode, runNode, updateGpu, updateQueue, updateRun } from './rows';


export interface IViewOptions {
  /** 'sidebar' or 'page': a class on the root for the stylesheet. */
  layout: 'sidebar' | 'page';
  /** The heading's word ("Guild"). */
  heading: string;
  /** Elements put in the header after the summary (a link, a button). */
  headerExtras?: HTMLElement[];
  /** Where "clear" of the notices is remembered (localStorage). */
  storage?: Storage | null;
  /** Opens a GET action's path other than an output (``lab/tree/nb.ipynb``):
   * the sidebar opens it in JupyterLab; by default a new tab at the Jupyter
   * server's base URL + path. */
  openPath?: (path: string) => void;
  /** Opens the live view of a sweep (the snapshot's ``sweeps``): a main-area
   * tab in JupyterLab; by default the /guild page's ``?sweep=ID``. */
  openSweep?: (id: string, title: string) => void;
}

interface IGroupParts {
  node: HTMLDetailsElement;
  title: HTMLElement;
  count: HTMLElement;
  pager: HTMLElement;
  pageText: HTMLElement;
  list: HTMLElement;
  toggled: boolean;
}

export class GuildView implements IActionHost {
  readonly node: HTMLElement;
  readonly output: OutputView;
  private readonly summary = h('span', 'gj-summary');
  private readonly error = h('div', 'gj-error');
  private readonly warnings = h('div', 'gj-warnings');
  private readonly queueList = h('div', 'gj-list gj-queue-list');
  private readonly groupBox = h('div', 'gj-groups');
  private readonly gpuList = h('div', 'gj-list gj-gpu-list');
  private readonly sweepList = h('div', 'gj-list gj-sweep-list');
  private readonly sweepsSection: HTMLElement;
  private readonly notices: NoticeList;
  private readonly groups = new Map<string, IGroupParts>();
  private readonly startQueue: HTMLButtonElement;
  private readonly feedback: ActionFeedback;

  constructor(readonly model: GuildModel, private readonly options: IViewOptions) {
    this.node = h('div', `gj-view gj-${options.layout}`);
    this.output = new OutputView(model.client);
    this.feedback = new ActionFeedback((a, body) => model.client.perform(a, body), () => model.refresh(),
                                       options.openPath);
    this.notices = new NoticeList(this, options.storage || null, 'guild-jupyter:cleared-notices');

    const head = h('header', 'gj-header');
    head.append(h('span', 'gj-heading', options.heading), this.summary, ...(options.headerExtras || []));
    this.error.hidden = true;

    const queues = this.section('Queues', this.queueList, 'gj-queues-section');
    this.startQueue = button('start queue', 'Start a queue on this server (any GPU)', () => this.startAQueue());
    queues.head.append(this.startQueue);
    const gpus = this.section('GPUs', this.gpuList, 'gj-gpus-section');
    this.sweepsSection = this.section('Sweeps', this.sweepList, 'gj-sweeps-section').node;
    this.sweepsSection.hidden = true;
    this.node.append(head, this.error, this.feedback.message, this.warnings, this.notices.node, this.output.node, queues.node,
      this.sweepsSection, this.groupBox, gpus.node);
    this.sweepList.addEventListener('click', ev => {
      const el = (ev.target as HTMLElement).closest<HTMLElement>('.gj-sweep-row[data-sweep]');
      if (el) {
        ev.preventDefault();
        this.openSweep(el.dataset.sweep!, el.dataset.title || '');
      }
    });
    // A click on a run (not on a button or a form) opens its output.
    this.groupBox.addEventListener('click', ev => {
      const target = ev.target as HTMLElement;
      if (target.closest('button, form, a, summary')) {
        return;
      }
      const el = target.closest<HTMLElement>('.gj-run[data-run]');
      const row = el && this.findRun(el.dataset.run!);
      const action = row && (row.actions || []).find(a => a.verb === 'output');
      if (row && action) {
        this.openOutput(action, row);
      }
    });
  }

  private findRun(id: string): IRunRow | undefined {
    for (const g of this.model.state?.groups || []) {
      const row = g.rows.find(r => r.id === id);
      if (row) {
        return row;
      }
    }
    return undefined;
  }

  // -- IActionHost --------------------------------------------------------------------------

  perform(action: IAction, subject: ISubject, body?: object): Promise<void> {
    return this.feedback.perform(action, subject, body);
  }

  openOutput(action: IAction, subject: ISubject): void {
    this.output.follow(subject.id, subject.short_id, action.path);
    this.markFollowed();
  }

  openPath(action: IAction, _subject: ISubject): void {
    this.feedback.openPath(action);
  }

  // -- rendering ------------------------------------------------------------------------------

  render(): void {
    const { state, error } = this.model;
    setText(this.error, error || '');
    this.error.hidden = !error;
    this.node.classList.toggle('gj-mod-stale', !!error);
    if (!state) {
      setText(this.summary, error ? '' : 'loading…');
      return;
    }
    setText(this.summary, state.summary_text || '');
    this.node.dataset.version = String(state.version ?? state.time);
    this.node.classList.toggle('gj-mod-attention', (state.attention || 0) > 0);
    syncList(this.warnings, (state.warnings || []).slice(0, 5), w => w, w => h('div', 'gj-warning', w), () => undefined);
    this.notices.render(this.model.notices, this.model.boot || '');
    this.renderQueues(state);
    this.renderSweeps(state);
    this.renderGroups(state.groups || []);
    this.renderGpus(state);
    this.markFollowed();
  }

  /** One line for an action's outcome, cleared after a while. */
  say(text: string, isError = false): void {
    this.feedback.say(text, isError);
  }

  dispose(): void {
    this.output.close();
    this.feedback.dispose();
  }

  private section(title: string, list: HTMLElement, cls: string): { node: HTMLElement; head: HTMLElement } {
    const node = h('section', `gj-section ${cls}`);
    const head = h('div', 'gj-section-head');
    head.append(h('span', 'gj-section-title', title));
    node.append(head, list);
    return { node, head };
  }

  private async startAQueue(): Promise<void> {
    const form = this.model.state?.queue_form;
    const action: IAction = {
      verb: 'queue', label: 'start queue', confirm: null,
      method: form?.method || 'POST', path: form?.path || 'queues'
    };
    await this.perform(action, { id: '', short_id: '' }).catch(() => undefined);
  }

  private renderQueues(state: IState): void {
    if (state.queues.length) {
      syncList(this.queueList, state.queues, q => q.id, q => queueNode(q), (el, q) => updateQueue(el, q, this));
    } else {
      syncList(this.queueList, ['no queue is running'], () => '-empty', x => h('div', 'gj-empty', x), () => undefined);
    }
  }

  /** Opens a sweep's live view (the JupyterLab tab, or the page's ``?sweep=ID``). */
  openSweep(id: string, title: string): void {
    if (this.options.openSweep) {
      this.options.openSweep(id, title);
    } else {
      window.open(`${window.location.pathname}?sweep=${encodeURIComponent(id)}`, '_blank', 'noopener');
    }
  }

  /** Recent sweeps, each a row that opens its live view. */
  private renderSweeps(state: IState): void {
    const sweeps = state.sweeps || [];
    this.sweepsSection.hidden = sweeps.length === 0;
    syncList(this.sweepList, sweeps, s => s.id, s => sweepNode(s), (el, s) => {
      el.dataset.title = s.title;
      el.title = s.open_action?.help || `open the live view of sweep ${s.id}`;
      setText(el.querySelector('.gj-title') as HTMLElement, s.title);
      setText(el.querySelector('.gj-sweep-summary') as HTMLElement, s.summary_text || '');
      setText(el.querySelector('.gj-button') as HTMLElement, s.open_action?.label || 'Open');
    });
  }

  private renderGroups(groups: IGroup[]): void {
    syncList(this.groupBox, groups, g => g.name, g => this.groupNode(g), (el, g) => this.updateGroup(g));
  }

  private groupNode(group: IGroup): HTMLElement {
    const node = h('details', 'gj-section gj-group');
    node.dataset.group = group.name;
    node.open = group.open;
    const summary = h('summary', 'gj-section-head');
    const title = h('span', 'gj-section-title');
    const count = h('span', 'gj-count');
    const pager = h('span', 'gj-pager');
    const pageText = h('span', 'gj-muted gj-pager-text');
    const move = (delta: number) => () => {
      const g = this.model.state?.groups.find(x => x.name === group.name);
      this.model.setPage(group.name, turnPage(g ? g.page : 0, delta, g ? g.pages : 1));
    };
    pager.append(button('‹', 'Newer runs', move(-1)), pageText, button('›', 'Older runs', move(1)));
    summary.append(title, count, pager);
    const list = h('div', 'gj-list');
    node.append(summary, list);
    const parts: IGroupParts = { node, title, count, pager, pageText, list, toggled: false };
    // Open or closed as the server says, until the person toggles it.
    summary.addEventListener('click', ev => {
      if ((ev.target as HTMLElement).closest('button')) {
        ev.preventDefault();
        return;
      }
      parts.toggled = true;
    });
    this.groups.set(group.name, parts);
    return node;
  }

  private updateGroup(group: IGroup): void {
    const parts = this.groups.get(group.name)!;
    if (!parts.toggled && parts.node.open !== group.open) {
      parts.node.open = group.open;
    }
    setText(parts.title, group.title);
    setText(parts.count, String(group.total));
    parts.pager.hidden = group.pages <= 1;
    if (group.pages > 1) {
      setText(parts.pageText, pageRange(group.first, group.rows.length, group.total));
    }
    if (group.rows.length) {
      syncList(parts.list, group.rows, r => r.id, r => runNode(r), (el, r) => updateRun(el, r, this));
    } else {
      syncList(parts.list, [group.empty_text || ''], () => '-empty', () => h('div', 'gj-empty'),
        (el, text) => setText(el, text));
    }
  }

  private renderGpus(state: IState): void {
    const gpus = state.gpus || { available: false, error: null, devices: [] };
    if (!gpus.devices || !gpus.devices.length) {
      syncList(this.gpuList, [gpus.text || gpus.error || ''], () => '-empty', () => h('div', 'gj-empty gj-no-gpu'),
        (el, text) => setText(el, text));
      return;
    }
    syncList(this.gpuList, gpus.devices, d => String(d.index), () => gpuNode(), (el, d) => updateGpu(el, d));
  }

  private markFollowed(): void {
    const id = this.output.following;
    for (const el of Array.from(this.node.querySelectorAll<HTMLElement>('.gj-run[data-run]'))) {
      el.classList.toggle('gj-mod-followed', el.dataset.run === id);
    }
  }
}

function sweepNode(s: ISweepLink): HTMLElement {
  const el = h('div', 'gj-row gj-sweep-row');
  el.dataset.sweep = s.id;
  const what = h('div', 'gj-what');
  what.append(h('span', 'gj-title'), ' ', h('span', 'gj-muted gj-sweep-summary'));
  const open = h('button', 'gj-button');
  open.type = 'button';
  open.dataset.action = 'open-sweep';
  const actions = h('div', 'gj-actions');
  actions.append(open);
  el.append(what, actions);
  return el;
}
