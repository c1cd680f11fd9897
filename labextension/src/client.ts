/**
 * The REST API under /guild/api/, over whatever transport the viewer has:
 * JupyterLab's ServerConnection in the sidebar (its token, XSRF cookie and
 * base URL), the browser's fetch on the /guild page. Nothing here knows
 * JupyterLab or talks to a kernel, so the page bundle stays small and the
 * sidebar keeps working while kernels are busy, restarting or absent.
 */
import { IAction, IEventsReply, IOutputPiece, IState } from './contract';
import { errorLine } from './format';

/** Sends a request to /guild/api/PATH and returns the raw response. */
export type Transport = (path: string, init: RequestInit) => Promise<Response>;

/** A failed call, with the one line viewers show for it. */
export class GuildApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

/** Seconds a long poll may wait on the server (the server caps it too). */
export const LONG_POLL_S = 25;

export class GuildClient {
  constructor(private readonly transport: Transport) {}

  /** Calls /guild/api/PATH and returns its JSON; errors become one line. */
  async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const text = await this.text(path, init);
    try {
      return (text ? JSON.parse(text) : null) as T;
    } catch (e) {
      return null as T;
    }
  }

  /** Calls /guild/api/PATH and returns its body unparsed (a caller that
   * times its own parsing: the sweep view's scalars); errors become one line. */
  async text(path: string, init: RequestInit = {}): Promise<string> {
    let response: Response;
    try {
      response = await this.transport(path, init);
    } catch (e) {
      if ((e as Error).name === 'AbortError') {
        throw e;
      }
      throw new GuildApiError('cannot reach the Jupyter server', 0);
    }
    const text = await response.text();
    if (!response.ok) {
      let data: any = null;
      try {
        data = text ? JSON.parse(text) : null;
      } catch (e) {
        data = null;
      }
      throw new GuildApiError(errorLine(response.status, data), response.status);
    }
    return text;
  }

  /** The snapshot; with ``version``, the server holds the answer until the
   * snapshot's version differs from it, or ``wait`` seconds passed (a long
   * poll: ``after_version``; a server without it answers at once). */
  state(query: string, version?: number | string, signal?: AbortSignal, wait = LONG_POLL_S): Promise<IState> {
    let path = query;
    if (version !== undefined) {
      path += (path.includes('?') ? '&' : '?') + `after_version=${encodeURIComponent(String(version))}&timeout=${wait}`;
    }
    return this.request<IState>(path, { signal });
  }

  /** Events newer than ``after`` (``timeout`` 0: answer at once). */
  events(after: number, timeout = 0, signal?: AbortSignal): Promise<IEventsReply> {
    return this.request<IEventsReply>(`events?after=${after}&timeout=${timeout}`, { signal });
  }

  /** Carries out a row's action as the server described it (method and
   * path); ``body`` for a form's values. */
  perform(action: IAction, body?: object): Promise<any> {
    const method = (action.method || 'POST').toUpperCase();
    const init: RequestInit = { method };
    if (method !== 'GET' && method !== 'DELETE') {
      init.body = JSON.stringify(body || {});
    }
    return this.request<any>(action.path, init);
  }

  /** A piece of a run's output from byte ``since`` (``path``: the output action's). */
  output(path: string, since: number): Promise<IOutputPiece> {
    return this.request<IOutputPiece>(`${path}${path.includes('?') ? '&' : '?'}since=${since}`);
  }
}
