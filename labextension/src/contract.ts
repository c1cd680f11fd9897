/**
 * The view model the server sends (coord contract: GET /guild/api/state
 * and GET /guild/api/events). Python decides every word, group, action and
 * notice; these types name only what the browser renders, and every
 * renderer ignores fields it does not know.
 */

/** A verb allowed on a row now (stop, unstage, output, restart, retry, restage, pause, ...). */
export interface IAction {
  verb: string;
  label: string;
  /** Not null: the verb needs a second click, and this is the question. */
  confirm: string | null;
  method: string;
  /** Relative to /guild/api/. */
  path: string;
  form?: IActionForm | null;
  /** A tooltip sentence. */
  help?: string;
}

export interface IFormFlag {
  name: string;
  value: string;
  type?: string;
}

export interface IActionForm {
  flags: IFormFlag[];
}

export interface IScalar {
  tag: string;
  value: number | string;
  step: number | null;
}

export interface IRunRow {
  id: string;
  short_id: string;
  status: string;
  status_text: string;
  outcome_text?: string;
  title: string;
  subtitle?: string;
  label_text?: string;
  gpus_text?: string;
  time_text?: string;
  elapsed_text?: string;
  position_text?: string;
  waiting_text?: string;
  retry_text?: string;
  scalar?: IScalar | null;
  scalar_text?: string;
  spark_points?: string;
  worker?: string;
  worker_host?: string;
  actions?: IAction[];
  /** The sweep the run belongs to (issue 22). */
  sweep?: string;
}

export interface IGroup {
  name: string;
  title: string;
  open: boolean;
  total: number;
  page: number;
  pages: number;
  page_size: number;
  first: number;
  empty_text?: string;
  rows: IRunRow[];
}

export interface IDaskWorker {
  name: string;
  resources?: Record<string, number>;
  runs?: string[];
}

export interface IQueueRow {
  id: string;
  short_id: string;
  state: string;
  title: string;
  state_text: string;
  slots_text?: string;
  host_text?: string;
  options_text?: string;
  description?: string;
  dask?: {
    address: string;
    dashboard?: string | null;
    dashboard_text?: string;
    workers?: IDaskWorker[];
    /** Each worker in words ("gpu0 [GPU=1]: 1a2b3c4d"), and all in one line ("no workers"). */
    worker_texts?: string[];
    workers_text?: string;
    waiting?: string | null;
    connected?: boolean;
  } | null;
  actions?: IAction[];
}

export interface IGpuRow {
  index: number | null;
  text: string;
  memory_text?: string;
  utilization_text?: string;
  runs_text?: string;
}

export interface IGpus {
  available: boolean;
  error: string | null;
  text?: string;
  devices: IGpuRow[];
}

export interface IQueueForm {
  path: string;
  method: string;
}

export interface IState {
  store: string;
  time: number;
  version?: number | string;
  counts?: Record<string, number>;
  summary_text?: string;
  status_bar_text?: string;
  attention?: number;
  queues: IQueueRow[];
  groups: IGroup[];
  gpus: IGpus;
  warnings?: string[];
  queue_form?: IQueueForm | null;
  last_event?: number;
  /** Recent sweeps (issue 22): each opens the live sweep view. */
  sweeps?: ISweepLink[];
}

/** A recent sweep as the snapshot lists it (SWEEP.md: In the sidebar). */
export interface ISweepLink {
  id: string;
  title: string;
  summary_text?: string;
  open_action?: IAction | null;
}

export interface IEvent {
  seq: number;
  time: number;
  kind: string;
  level: 'success' | 'error' | 'warning' | 'info' | string;
  text: string;
  run?: string | null;
  tail?: string;
  actions?: IAction[];
}

export interface IEventsReply {
  events: IEvent[];
  last: number;
  boot: string;
}

/** A followed output piece (GET runs/ID/output?since=OFFSET). */
export interface IOutputPiece {
  text: string;
  offset: number;
  status: string;
  done: boolean;
}
