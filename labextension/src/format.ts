/**
 * Pure helpers (no DOM, no JupyterLab): the backoff between failed polls,
 * the state API's query, an error's one line, a followed output's tail.
 * Nothing here words a run, a queue or a GPU: the view model does. Kept
 * apart so that node's test runner checks them without a browser.
 */

/** Milliseconds to wait before the next poll: the base interval while
 * calls succeed, doubling per consecutive failure up to ``max``. */
export function nextDelay(base: number, failures: number, max = 30000): number {
  if (failures <= 0) {
    return base;
  }
  return Math.min(max, base * 2 ** Math.min(failures, 16));
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

/** The one line an error status gives: the server's own line for bad
 * input or a wrong state (400, 409: what a form shows), a word about a
 * missing server extension, else the status with the server's line. */
export function errorLine(status: number, data: any): string {
  const message = data && typeof data.error === 'string' ? oneLine(data.error, 200) : '';
  if (status === 404 && !message) {
    return 'Guild server extension not found (HTTP 404): is guild_jupyter enabled on this server?';
  }
  if (status === 403) {
    return `not allowed (HTTP 403)${message ? ': ' + message : ''}`;
  }
  if (message && status >= 400 && status < 500) {
    return message;
  }
  return `Guild API error (HTTP ${status})${message ? ': ' + message : ''}`;
}

/** The state API's path asking for each group's page (first pages are left out). */
export function stateQuery(pages: Record<string, number>): string {
  const parts = Object.keys(pages)
    .filter(g => pages[g] > 0)
    .sort()
    .map(g => `${encodeURIComponent(g)}=${pages[g]}`);
  return 'state' + (parts.length ? '?' + parts.join('&') : '');
}

/** "26–50 of 60": the rows a group's page shows. */
export function pageRange(first: number, shown: number, total: number): string {
  return `${first}–${first + shown - 1} of ${total}`;
}

/** ``text`` on one line (newlines folded), cut to ``max`` characters. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}
