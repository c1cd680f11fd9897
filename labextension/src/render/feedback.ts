/**
 * What a view does with a row's action besides drawing its button, shared
 * by the sidebar, the /guild page and the sweep view: the REST call behind
 * a state-changing verb, the one line that says what came of it (cleared
 * after MESSAGE_MS), and opening what another GET action names.
 */
import { IAction } from '../contract';
import { ISubject } from './actions';
import { h, setText } from './dom';

export const MESSAGE_MS = 8000;

export class ActionFeedback {
  /** The one-line message; the view places it. */
  readonly message = h('div', 'gj-message');
  private timer: number | null = null;

  constructor(
    private readonly call: (action: IAction, body?: object) => Promise<any>,
    private readonly refresh: () => void,
    private readonly openPathOption?: (path: string) => void
  ) {
    this.message.setAttribute('role', 'status');
  }

  /** Performs ``action`` on ``subject``; says how it went; rejects with the server's one line. */
  async perform(action: IAction, subject: ISubject, body?: object): Promise<void> {
    const what = `${action.label} ${subject.short_id}`.trim();
    this.say(`${what}…`);
    try {
      const reply = await this.call(action, body);
      this.say(reply && typeof reply.text === 'string' && reply.text ? reply.text : `${what}: done`);
    } catch (e) {
      this.say(`${what}: ${(e as Error).message}`, true);
      throw e;
    } finally {
      this.refresh();
    }
  }

  /** Opens a GET action's path: through the view's opener (JupyterLab), else
   * a new tab at the Jupyter server's base URL (the page lives at <base>/guild). */
  openPath(action: IAction): void {
    if (this.openPathOption) {
      this.openPathOption(action.path);
    } else {
      const base = window.location.pathname.replace(/\/+$/, '').replace(/[^/]*$/, '');
      window.open(base + action.path, '_blank', 'noopener');
    }
  }

  /** One line for an action's outcome, cleared after a while. */
  say(text: string, isError = false): void {
    setText(this.message, text);
    this.message.title = text;
    this.message.classList.toggle('gj-mod-error', isError);
    this.message.classList.toggle('gj-mod-ok', !isError && !!text);
    this.clearTimer();
    this.timer = window.setTimeout(() => {
      setText(this.message, '');
      this.message.title = '';
      this.message.classList.remove('gj-mod-error', 'gj-mod-ok');
      this.timer = null;
    }, MESSAGE_MS);
  }

  dispose(): void {
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
