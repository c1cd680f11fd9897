/**
 * The server extension's REST API under /guild/api, reached through
 * ServerConnection so that the token, the XSRF cookie and the base URL are
 * the ones JupyterLab itself uses. Nothing here talks to a kernel: the
 * sidebar keeps working while kernels are busy, restarting or absent.
 */
import { ServerConnection } from '@jupyterlab/services';

import { errorLine, stateQuery } from './format';

/** The main scalar of a run (contract of views.run_row). */
export interface IScalar {
  tag: string;
  value: number;
  step: number;
}

/** One run row (views.run_row); only the fields the sidebar reads. */
export interface IRunRow {
  id: string;
  short_id: string;
  op: string;
  status: string;
  status_text: string;
  label_text?: string;
  varying_text?: string;
  flags_text?: string;
  gpus_text?: string;
  time_text?: string;
  elapsed_text?: string;
  waiting?: string | null;
  position?: number | null;
  scalar?: IScalar | null;
  scalar_text?: string;
  spark?: number[];
}

export interface IGroup {
  total: number;
  page: number;
  pages: number;
  page_size: number;
  first: number;
  rows: IRunRow[];
}

export interface IQueueRow {
  id: string;
  short_id: string;
  host_text: string;
  gpus_text: string;
  state: string;
  control?: string;
  current_short?: string | null;
  options_text?: string;
  slots?: { used: number; total: number; per_gpu: Record<string, number> | null } | null;
  hosted_here?: boolean;
}

export interface IGpu {
  index: number | null;
  name: string | null;
  memory_used: number | null;
  memory_total: number | null;
  utilization: number | null;
  runs: { id: string; short_id: string; op: string }[];
}

export interface IState {
  store: string;
  time: number;
  counts: Record<string, number>;
  queues: IQueueRow[];
  groups: Record<string, IGroup>;
  gpus: { available: boolean; error: string | null; devices: IGpu[] };
  warnings: string[];
}

export interface IOutputPiece {
  id: string;
  text: string;
  offset: number;
  status: string;
  done: boolean;
}

/** A failed call, with the one line the sidebar shows for it. */
export class GuildApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export { GROUPS } from './format';

/** Calls /guild/api/PATH and returns its JSON; errors become one line. */
export async function request<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = settings.baseUrl.replace(/\/$/, '') + '/guild/api/' + path;
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (e) {
    throw new GuildApiError('cannot reach the Jupyter server', 0);
  }
  let data: any = null;
  const text = await response.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!response.ok) {
    throw new GuildApiError(errorLine(response.status, data), response.status);
  }
  return data as T;
}

const post = (body: object = {}): RequestInit => ({ method: 'POST', body: JSON.stringify(body) });

export const calls = {
  state: (pages: Record<string, number>) => request<IState>(stateQuery(pages)),
  stop: (id: string) => request<IRunRow>(`runs/${id}/stop`, post({})),
  unstage: (id: string) => request<unknown>(`runs/${id}`, { method: 'DELETE' }),
  output: (id: string, since: number) => request<IOutputPiece>(`runs/${id}/output?since=${since}`),
  startQueue: () => request<unknown>('queues', post({})),
  stopQueue: (id: string) => request<unknown>(`queues/${id}`, { method: 'DELETE' }),
  queueAction: (id: string, action: 'pause' | 'resume' | 'drain') => request<unknown>(`queues/${id}/${action}`, post())
};
