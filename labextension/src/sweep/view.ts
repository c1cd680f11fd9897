/**
 * The live sweep view, one component wherever it shows: a JupyterLab
 * main-area tab (opened from the sidebar or the command
 * ``guild-jupyter:open-sweep``), a cell's output (the MIME type
 * ``application/vnd.guild-jupyter.sweep+json``), and the /guild page
 * (``/guild?sweep=ID``). Plain DOM over the REST API: the heading and
 * summary, the chart's controls (tag, x axis, log scale, smoothing), the
 * live chart, flags against results, the trial table with each trial's
 * actions, and a trial's followed output.
 *
 * Every word and number is the server's (SWEEP.md); the browser only
 * chooses what to draw: a trial's colour (its place in the sweep), the
 * smoothing (a display choice), the sort and the status filter.
 */
import { GuildClient } from '../client';
import { IAction } from '../contract';
import { IActionHost, ISubject } from '../render/actions';
import { ActionFeedback } from '../render/feedback';
import { h, setText } from '../render/dom';
import { OutputView } from '../render/output';
import { LiveChart } from './chart';
import { trialColor } from './colors';
import { ISweep } from './contract';
import { SweepModel } from './model';
import { FlagScatter } from './scatter';
import { TrialTable } from './table';

/** Statuses of a trial that may still log. */
const LIVE = ['staged', 'pending', 'running'];

export interface ISweepViewOptions {
  /** 'lab' (a main-area tab), 'cell' (an output) or 'page': a class for the stylesheet. */
  layout: 'lab' | 'cell' | 'page';
  /** The Guild home the cell's bundle names: said when the server does not know the sweep. */
  store?: string;
  /** The heading until the server answers (the cell's bundle has it). */
  title?: string;
  /** Opens a GET action's path other than an output (a notebook: ``lab/tree/nb.ipynb``). */
  openPath?: (path: string) => void;
  /** Elements put in the header after the summary (a link). */
  headerExtras?: HTMLElement[];
}

export class SweepView implements IActionHost {
  readonly node: HTMLElement;
  readonly model: SweepModel;
  readonly chart: LiveChart;
  readonly table: TrialTable;
  readonly scatter: FlagScatter;
  readonly output: OutputView;
  private readonly heading = h('span', 'gj-heading');
  private readonly summary = h('span', 'gj-summary');
  private readonly best = h('div', 'gj-sweep-best');
  private readonly problems = h('div', 'gj-warning gj-sweep-problems');
  private readonly error = h('div', 'gj-error');
  private readonly tagPicker = h('select', 'gj-select gj-tag-picker');
  private readonly xPicker = h('select', 'gj-select gj-x-picker');
  private readonly logBox = h('input', 'gj-log-scale');
  private readonly smoothing = h('input', 'gj-smoothing');
  private readonly smoothingText = h('span', 'gj-muted gj-smoothing-text');
  private readonly colors = new Map<string, string>();
  private readonly visibility: IntersectionObserver;
  /** The store the server serves (asked once when it does not know the sweep). */
  private serverStore: string | null = null;
  private askedStore = false;
  private readonly feedback: ActionFeedback;

  constructor(client: GuildClient, readonly id: string, private readonly options: ISweepViewOptions) {
    this.node = h('div', `gj-view gj-sweep gj-sweep-${options.layout}${options.layout === 'page' ? ' gj-page' : ''}`);
    this.node.dataset.sweep = id;
    (this.node as any).gjSweep = this; // tests and bench/ read the chart's data through it
    this.model = new SweepModel(client, id);
    this.feedback = new ActionFeedback((a, body) => client.perform(a, body), () => this.model.refresh(),
                                       options.openPath);
    this.chart = new LiveChart(this.model.store);
    this.table = new TrialTable(this);
    this.scatter = new FlagScatter();
    this.output = new OutputView(client);

    const head = h('header', 'gj-header');
    setText(this.heading, options.title || `Sweep ${id}`);
    head.append(this.heading, this.summary, ...(options.headerExtras || []));
    this.error.hidden = true;
    this.best.hidden = true;

    const controls = h('div', 'gj-sweep-controls');
    const control = (label: string, el: HTMLElement, ...more: HTMLElement[]) => {
      const l = h('label', 'gj-control');
      l.append(h('span', 'gj-muted', label), el, ...more);
      return l;
    };
    this.logBox.type = 'checkbox';
    this.smoothing.type = 'range';
    this.smoothing.min = '0';
    this.smoothing.max = '0.99';
    this.smoothing.step = '0.01';
    this.smoothing.value = '0';
    this.smoothing.title = "an exponential moving average, as TensorBoard's smoothing (0: none)";
    setText(this.smoothingText, '0');
    controls.append(
      control('tag', this.tagPicker),
      control('x', this.xPicker),
      control('log scale', this.logBox),
      control('smoothing', this.smoothing, this.smoothingText)
    );
    this.tagPicker.addEventListener('change', () => this.chooseSeries());
    this.xPicker.addEventListener('change', () => this.chooseSeries());
    this.logBox.addEventListener('change', () => this.drawOptions());
    this.smoothing.addEventListener('input', () => {
      const w = Number(this.smoothing.value);
      setText(this.smoothingText, w.toFixed(2));
      this.model.store.setWeight(w);
      this.chart.invalidate();
    });

    const charts = h('div', 'gj-sweep-charts');
    const chartBox = h('section', 'gj-section gj-sweep-chart-section');
    this.problems.hidden = true;
    chartBox.append(controls, this.chart.node, this.problems);
    charts.append(chartBox, this.scatter.node);
    this.node.append(head, this.best, this.error, this.feedback.message, charts, this.table.node, this.output.node);

    // The chart's width: as laid out, else (the first ask, before the first layout) measured once, else the window's.
    this.model.chartWidth = () => this.chart.laidOutWidth || this.chart.node.clientWidth || window.innerWidth;
    this.table.onHover = id => this.chart.focus(id);
    this.model.onTable(() => this.renderTable());
    this.model.onSeries(() => {
      this.renderNote();
      this.chart.invalidate();
    });
    this.visibility = new IntersectionObserver(entries => {
      const e = entries[entries.length - 1];
      this.model.setShown(e.isIntersecting);
    });
    this.visibility.observe(this.node);
  }

  start(): void {
    this.model.start();
  }

  dispose(): void {
    this.visibility.disconnect();
    this.model.dispose();
    this.chart.dispose();
    this.output.close();
    this.feedback.dispose();
  }

  // -- IActionHost ----------------------------------------------------------------------------

  perform(action: IAction, subject: ISubject, body?: object): Promise<void> {
    return this.feedback.perform(action, subject, body);
  }

  openOutput(action: IAction, subject: ISubject): void {
    this.output.follow(subject.id, subject.short_id, action.path);
    this.output.node.scrollIntoView({ block: 'nearest' });
  }

  openPath(action: IAction, _subject: ISubject): void {
    this.feedback.openPath(action);
  }

  /** One line for an action's outcome, cleared after a while. */
  say(text: string, isError = false): void {
    this.feedback.say(text, isError);
  }

  // -- rendering ------------------------------------------------------------------------------

  private renderTable(): void {
    const t0 = performance.now();
    this.renderTableNow();
    performance.measure('gj-sweep:table', { start: t0 });
  }

  private renderTableNow(): void {
    const { sweep, error } = this.model;
    let line = error || '';
    if (error && !sweep && this.options.store && this.serverStore === null && !this.askedStore) {
      this.askStore(); // says which store this server serves, once known
    }
    if (error && !sweep && this.options.store && this.serverStore !== null && this.serverStore !== this.options.store) {
      line += ` · this server serves ${this.serverStore}; the output's sweep was made in ${this.options.store}`;
    } else if (sweep?.store && this.options.store && sweep.store !== this.options.store) {
      line = `this server serves ${sweep.store}; the output's sweep was made in ${this.options.store}`;
    }
    setText(this.error, line);
    this.error.hidden = !line;
    this.node.classList.toggle('gj-mod-stale', !!error);
    if (!sweep) {
      setText(this.summary, error ? '' : 'loading…');
      return;
    }
    // A brief answer of the version rendered last: only the cells (and the scatter's values) moved.
    const cellsOnly = this.model.tableBrief && this.node.dataset.version === String(sweep.version ?? '');
    if (cellsOnly) {
      this.renderBest(sweep);
      this.table.render(sweep, this.colors, true);
      this.scatter.render(sweep, this.colors);
      return;
    }
    this.node.dataset.version = String(sweep.version ?? '');
    setText(this.heading, sweep.title || `Sweep ${sweep.id}`);
    setText(this.summary, sweep.summary_text || '');
    sweep.trials.forEach((t, i) => {
      if (!this.colors.has(t.id)) {
        this.colors.set(t.id, trialColor(i));
      }
    });
    this.renderBest(sweep);
    this.renderPickers(sweep);
    this.table.render(sweep, this.colors);
    this.scatter.render(sweep, this.colors);
    this.chart.setTrials(sweep.trials.map(t => ({
      id: t.id,
      label: t.title || t.short_id,
      color: this.colors.get(t.id)!,
      best: !!t.is_best || t.id === sweep.best,
      hover: t.flags_hover || t.title || t.short_id
    })));
    // While a trial may still log, the x axis keeps room on its right for what comes.
    this.chart.setLive(sweep.trials.some(t => LIVE.includes(t.status)));
    this.drawOptions();
  }

  private askStore(): void {
    this.askedStore = true;
    this.model.client.state('state').then(state => {
      this.serverStore = state.store;
      this.renderTable();
    }, () => undefined);
  }

  private renderBest(sweep: ISweep): void {
    const best = sweep.trials.find(t => t.id === sweep.best) || sweep.trials.find(t => t.is_best);
    this.best.hidden = !best;
    if (best) {
      const value = best.cells?.best?.text || best.cells?.scalar?.text || '';
      const why = sweep.scalar?.best_text || 'best';
      setText(this.best, `best: ${best.flags_hover || best.title} · ${why}${value ? ` ${value}` : ''} · ${best.short_id}`);
      this.best.title = best.subtitle || best.id;
      this.best.dataset.run = best.id;
    }
  }

  private renderPickers(sweep: ISweep): void {
    fill(this.tagPicker, sweep.tags);
    fill(this.xPicker, sweep.x_axes && sweep.x_axes.length ? sweep.x_axes : ['step']);
    const tag = this.model.wantedTag();
    if (tag !== null && this.tagPicker.value !== tag) {
      this.tagPicker.value = tag;
    }
    if (this.xPicker.value !== this.model.x) {
      this.xPicker.value = this.model.x;
    }
  }

  /** A new tag or x axis: the series are asked for from the start. */
  private chooseSeries(): void {
    this.model.choose(this.tagPicker.value || null, this.xPicker.value || 'step');
    this.drawOptions();
  }

  /** The chart's tag, x axis and scale (it draws again only when they changed). */
  private drawOptions(): void {
    this.chart.setView(this.model.wantedTag() || '', this.model.x, this.logBox.checked);
    this.renderNote();
  }

  /** What the chart says while it has nothing to draw, or why it stopped. */
  private renderNote(): void {
    const sweep = this.model.sweep;
    let empty = '';
    if (this.model.seriesError) {
      empty = this.model.seriesError;
    } else if (sweep && !sweep.tags.length) {
      empty = 'no trial has logged a scalar yet';
    } else if (!this.model.loaded) {
      empty = 'loading…';
    }
    this.chart.setEmpty(this.model.store.runs.size ? (this.model.seriesError || '') : empty);
    // What the server could not read (a corrupt event file): said, not hidden.
    const problems = this.model.seriesProblems.join(' · ');
    setText(this.problems, problems);
    if (this.problems.hidden !== !problems) {
      this.problems.hidden = !problems;
    }
  }
}

/** Makes ``select``'s options ``values`` (kept when they are the same). */
function fill(select: HTMLSelectElement, values: string[]): void {
  const key = values.join('\n');
  if (select.dataset.options === key) {
    return;
  }
  const chosen = select.value;
  select.dataset.options = key;
  select.replaceChildren(...values.map(v => {
    const o = h('option', '', v);
    o.value = v;
    return o;
  }));
  if (values.includes(chosen)) {
    select.value = chosen;
  }
}
