/**
 * The sweep contract (coord: SWEEP.md): GET /guild/api/sweeps/ID (the
 * trials as a table) and GET /guild/api/sweeps/ID/scalars (their series,
 * incrementally). Python decides every word, column, allowed action and
 * the best trial; the browser renders, sorts, filters and draws. Unknown
 * fields are ignored.
 */
import { IRunRow } from '../contract';

/** A column of the trial table, in the server's order (varying flags first). */
export interface ISweepColumn {
  key: string;
  title: string;
  /** 'flag' | 'status' | 'text' | 'number' | ... */
  kind: string;
}

/** A cell: its words, and the value it sorts by (null sorts last). */
export interface ISweepCell {
  text: string;
  sort: number | string | null;
}

export interface ITrialRow extends IRunRow {
  cells: Record<string, ISweepCell>;
  /** What a chart's hover shows for this trial ("lr=0.1 batch=32"). */
  flags_hover?: string;
  is_best?: boolean;
  sweep?: string;
  /** The run this one retries (the chain's origin; its own id for a first attempt). */
  trial?: string;
  /** 0 for the original, 1.. for its retries (listed right after it). */
  attempt?: number;
}

export interface ISweepScalar {
  tag: string;
  direction: 'min' | 'max' | string;
  /** "lowest loss" */
  best_text: string;
}

/** A table answer with ``brief=1`` whose version is the one asked after:
 * only what moves without the version (the rows' cells, the scatter's points). */
export interface ISweepBrief {
  id: string;
  version: number;
  brief: true;
  trials: { id: string; cells: ITrialRow['cells'] }[];
  hparams?: IHparams | null;
}

export interface ISweep {
  id: string;
  title: string;
  op?: string;
  counts?: Record<string, number>;
  summary_text?: string;
  version?: number | string;
  columns: ISweepColumn[];
  scalar?: ISweepScalar | null;
  best?: string | null;
  tags: string[];
  x_axes: string[];
  statuses?: string[];
  trials: ITrialRow[];
  /** The Guild home the sweep was read from (a cell's bundle names its own). */
  store?: string;
  /** The varying flag names, in column order. */
  flags?: string[];
  /** Flags against results: the flags a scatter may put across, and per trial its flags and the main scalar's values. */
  hparams?: IHparams | null;
}

export interface IHparamsPoint {
  run: string;
  flags: Record<string, unknown>;
  /** The main scalar's last value; null: none yet. */
  final: number | null;
  best?: number | null;
}

export interface IHparams {
  flags: string[];
  points: IHparamsPoint[];
}

/** [x, y] pairs of one tag, oldest first ([step, value, time] without ``x``; more may follow). */
export type IPoints = number[][];

/** GET sweeps/ID/scalars?since=TOKEN&tags=&x=: what is new since TOKEN. */
export interface IScalarsReply {
  token: string;
  x: string;
  series: Record<string, Record<string, IPoints>>;
  /** This answer is from the start: drop what is held and use it (an unknown
   * token, a file replaced, another x or tags). */
  reset: boolean;
  /** Tags in this answer's series. */
  tags?: string[];
  /** A series had more than ``points`` points and was thinned (first and last kept, each bucket's extremes). */
  thinned?: boolean;
  /** Every trial ended and all was read: nothing more will come. */
  done?: boolean;
  /** Files that could not be read whole, one line each. */
  errors?: string[];
  /** Asked with ``main=1`` (before the table came): the main scalar the series are of; null: none logged yet. */
  main?: string | null;
  /** Asked with ``brief=V``: the table's brief now (its cells; its version may differ from V: a row changed). */
  table?: ISweepBrief;
}

export { ISweepLink } from '../contract';
