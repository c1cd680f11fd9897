/**
 * A row's buttons, from the row's ``actions`` (the verbs the server allows
 * now, their labels, whether they ask first, and where they go). A verb
 * with a ``confirm`` question acts on a second click within CONFIRM_MS (the
 * first shows the question on the button); ``output`` opens the followed
 * output, another GET opens what it names (a notebook in JupyterLab); a
 * verb with a ``form`` (restage) opens a small form of the run's
 * flags under the row, which shows the server's one-line error when a
 * value is refused (nothing is written then).
 */
import { IAction, IFormFlag } from '../contract';
import { h } from './dom';

export const CONFIRM_MS = 4000;

/** What a row needs from the view around it to carry out its actions. */
export interface IActionHost {
  /** Performs a state-changing action (POST/DELETE); rejects with the one line. */
  perform(action: IAction, subject: ISubject, body?: object): Promise<void>;
  /** Opens the followed output of ``subject`` (the ``output`` verb). */
  openOutput(action: IAction, subject: ISubject): void;
  /** Opens what another GET action names (e.g. a notebook: ``lab/tree/PATH``). */
  openPath(action: IAction, subject: ISubject): void;
}

/** The run or queue a row shows. */
export interface ISubject {
  id: string;
  short_id: string;
}

/** A key of an action list: the buttons are rebuilt only when it changes,
 * so a button under the pointer survives new snapshots. */
function actionsKey(actions: IAction[]): string {
  return actions.map(a => `${a.verb}|${a.label}|${a.method}|${a.path}|${a.confirm || ''}`).join('\n');
}

/** Makes ``bar``'s buttons the row's actions; ``formSlot`` holds an open form. */
export function renderActions(
  bar: HTMLElement,
  formSlot: HTMLElement,
  actions: IAction[] | undefined,
  subject: ISubject,
  host: IActionHost
): void {
  const list = actions || [];
  const key = actionsKey(list);
  if (bar.dataset.actions === key) {
    return;
  }
  bar.dataset.actions = key;
  bar.replaceChildren(...list.map(a => actionButton(a, subject, host, formSlot)));
  bar.hidden = list.length === 0;
  // A form whose action went away (the run changed state) goes too.
  const open = formSlot.firstElementChild as HTMLElement | null;
  if (open && !list.some(a => a.form && open.dataset.path === a.path)) {
    formSlot.replaceChildren();
  }
}

function actionButton(action: IAction, subject: ISubject, host: IActionHost, formSlot: HTMLElement): HTMLButtonElement {
  const b = h('button', 'gj-button', action.label);
  b.type = 'button';
  b.dataset.action = action.verb;
  b.title = action.help || action.confirm || action.label;
  let armed: number | null = null;
  const disarm = () => {
    if (armed !== null) {
      window.clearTimeout(armed);
      armed = null;
    }
    b.textContent = action.label;
    b.classList.remove('gj-mod-armed');
  };
  b.addEventListener('click', ev => {
    ev.stopPropagation();
    if (action.verb === 'output') {
      host.openOutput(action, subject);
      return;
    }
    if ((action.method || '').toUpperCase() === 'GET') {
      host.openPath(action, subject);
      return;
    }
    if (action.form) {
      toggleForm(formSlot, action, subject, host);
      return;
    }
    if (action.confirm && armed === null) {
      b.textContent = action.confirm;
      b.classList.add('gj-mod-armed');
      armed = window.setTimeout(disarm, CONFIRM_MS);
      return;
    }
    disarm();
    b.disabled = true;
    host.perform(action, subject).then(
      () => undefined,
      () => undefined // the host shows the line
    ).finally(() => {
      b.disabled = false;
    });
  });
  return b;
}

function toggleForm(slot: HTMLElement, action: IAction, subject: ISubject, host: IActionHost): void {
  const open = slot.firstElementChild as HTMLElement | null;
  if (open && open.dataset.path === action.path) {
    slot.replaceChildren();
    return;
  }
  slot.replaceChildren(flagForm(action, subject, host, () => slot.replaceChildren()));
  (slot.querySelector('input') as HTMLInputElement | null)?.focus();
}

/** The form of a ``form`` action: one field per flag, the run's values
 * filled in; only the values changed are sent (``{"flags": {...}}``), as
 * typed: the server reads and checks them as the CLI's NAME=VALUE. */
function flagForm(action: IAction, subject: ISubject, host: IActionHost, close: () => void): HTMLFormElement {
  const form = h('form', 'gj-form');
  form.dataset.path = action.path;
  form.dataset.action = action.verb;
  const fields = h('div', 'gj-form-fields');
  const inputs: [IFormFlag, HTMLInputElement][] = [];
  for (const flag of action.form?.flags || []) {
    const label = h('label', 'gj-form-field');
    const name = h('span', 'gj-form-name', flag.name);
    const input = h('input', 'gj-form-input');
    input.name = flag.name;
    input.value = flag.value;
    input.spellcheck = false;
    input.autocomplete = 'off';
    if (flag.type) {
      input.title = flag.type;
    }
    label.append(name, input);
    fields.append(label);
    inputs.push([flag, input]);
  }
  const error = h('div', 'gj-form-error');
  error.setAttribute('role', 'alert');
  error.hidden = true;
  const submit = h('button', 'gj-button gj-mod-accept', action.label);
  submit.type = 'submit';
  const cancel = h('button', 'gj-button', 'Cancel');
  cancel.type = 'button';
  cancel.addEventListener('click', ev => {
    ev.stopPropagation();
    close();
  });
  const buttons = h('div', 'gj-form-buttons');
  buttons.append(submit, cancel);
  form.append(fields, error, buttons);
  form.addEventListener('click', ev => ev.stopPropagation());
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    const flags: Record<string, string> = {};
    for (const [flag, input] of inputs) {
      if (input.value !== flag.value) {
        flags[flag.name] = input.value;
      }
    }
    submit.disabled = true;
    error.hidden = true;
    host.perform(action, subject, { flags }).then(
      () => close(),
      (e: Error) => {
        error.textContent = e.message;
        error.hidden = false;
      }
    ).finally(() => {
      submit.disabled = false;
    });
  });
  return form;
}
