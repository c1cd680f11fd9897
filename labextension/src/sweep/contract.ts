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
}

export interface ISweepScalar {
  tag: string;
  direction: 'min' | 'max' | string;
  /** "lowest loss" */
  best_text: string;
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
}

/** [x, y] pairs of one tag, oldest first (more fields may follow y). */
export type IPoints = number[][];

/** GET sweeps/ID/scalars?since=TOKEN&tags=&x=: what is new since TOKEN. */
export interface IScalarsReply {
  token: string;
  x: string;
  series: Record<string, Record<string, IPoints>>;
  /** The client drops what it has (a file was replaced, x changed). */
  reset: boolean;
}

export { ISweepLink } from '../contract';
