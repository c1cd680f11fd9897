/**
 * Pure helpers (no DOM, no JupyterLab): the status bar's words, the
 * backoff between failed polls, sparkline points, byte sizes. Kept apart
 * so that node's test runner checks them without a browser.
 */

/** "N running · M staged" from the snapshot's counts. */
export function statusText(counts: Record<string, number> | null | undefined): string {
  const c = counts || {};
  return `${c.running || 0} running · ${c.staged || 0} staged`;
}

/** Milliseconds to wait before the next poll: the base interval while
 * calls succeed, doubling per consecutive failure up to ``max``. */
export function nextDelay(base: number, failures: number, max = 30000): number {
  if (failures <= 0) {
    return base;
  }
  return Math.min(max, base * 2 ** Math.min(failures, 16));
}

/** SVG polyline points for ``values`` in a ``width``×``height`` box (empty
 * for fewer than two finite values); a flat series is drawn mid-height. */
export function sparkPoints(values: number[] | null | undefined, width: number, height: number): string {
  const v = (values || []).filter(x => typeof x === 'number' && isFinite(x));
  if (v.length < 2) {
    return '';
  }
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  const span = hi - lo;
  const step = width / (v.length - 1);
  return v
    .map((x, i) => {
      const y = span > 0 ? height - ((x - lo) / span) * height : height / 2;
      return `${round(i * step)},${round(y)}`;
    })
    .join(' ');
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** "3.0/80 GiB" (memory in bytes; empty when unknown). */
export function memoryText(used: number | null | undefined, total: number | null | undefined): string {
  if (typeof used !== 'number' || typeof total !== 'number') {
    return '';
  }
  const g = 2 ** 30;
  return `${(used / g).toFixed(1)}/${Math.round(total / g)} GiB`;
}

/** Keeps the end of a followed output under ``limit`` characters, cut at a
 * line start, so that a chatty run cannot grow the page without bound. */
export function keepTail(text: string, limit: number): string {
  if (text.length <= limit) {
    return text;
  }
  const cut = text.length - limit;
  const nl = text.indexOf('\n', cut);
  return '…\n' + text.slice(nl >= 0 ? nl + 1 : cut);
}

/** Which page of a group to ask for after a click (clamped to 0..pages-1). */
export function turnPage(page: number, delta: number, pages: number): number {
  return Math.max(0, Math.min(Math.max(1, pages) - 1, page + delta));
}

/** The run groups of the state API, in the order the sidebar shows them. */
export const GROUPS = ['running', 'pending', 'staged', 'finished'];

/** The one line an error status gives, e.g. when the server extension is missing. */
export function errorLine(status: number, data: any): string {
  const message = data && typeof data.error === 'string' ? oneLine(data.error, 200) : '';
  if (status === 404 && !message) {
    return 'Guild server extension not found (HTTP 404): is guild_jupyter enabled on this server?';
  }
  if (status === 403) {
    return `not allowed (HTTP 403)${message ? ': ' + message : ''}`;
  }
  return `Guild API error (HTTP ${status})${message ? ': ' + message : ''}`;
}

/** The state API's path asking for each group's page (0 pages are left out). */
export function stateQuery(pages: Record<string, number>): string {
  const parts = GROUPS.filter(g => pages[g]).map(g => `${g}=${pages[g]}`);
  return 'state' + (parts.length ? '?' + parts.join('&') : '');
}

/** ``text`` on one line (newlines folded), cut to ``max`` characters. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** "GPU 0", "GPUs 0,1" for a GPU column's value (views.gpus_text); other
 * wordings ("any GPU", a UUID) as they are. */
export function gpuLabel(text: string | null | undefined): string {
  const t = (text || '').trim();
  if (/^\d+$/.test(t)) {
    return `GPU ${t}`;
  }
  return /^\d+(\s*,\s*\d+)+$/.test(t) ? `GPUs ${t.replace(/\s+/g, '')}` : t;
}
