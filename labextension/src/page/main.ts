/**
 * The standalone /guild page (a bundle the server extension serves from
 * /guild/static/): the same model and renderer as the JupyterLab sidebar,
 * over the browser's fetch. The XSRF token is the ``_xsrf`` cookie Jupyter
 * set when it served the page; the API lies under this page's own path.
 * Browser notifications of runs and sweeps that end, once a click allowed
 * them (browsers ask only on a person's gesture).
 */
import { GuildClient, Transport } from '../client';
import { IEvent } from '../contract';
import { GuildModel } from '../model';
import { h, setText } from '../render/dom';
import { GuildView } from '../render/view';
import { SweepView } from '../sweep/view';

function cookie(name: string): string {
  const found = document.cookie.split(';').map(c => c.trim()).find(c => c.startsWith(name + '='));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : '';
}

/** .../guild/api/ from the page's own path (.../guild), whatever the base URL. */
function apiBase(): string {
  return window.location.pathname.replace(/\/+$/, '') + '/api/';
}

const pageTransport: Transport = (path, init) => {
  const headers = new Headers(init.headers || {});
  const method = (init.method || 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') {
    headers.set('X-XSRFToken', cookie('_xsrf')); // Jupyter checks it on what changes things only (a second's polls skip the cookie)
  }
  if (init.body !== undefined) {
    headers.set('Content-Type', 'application/json');
  }
  return fetch(apiBase() + path, { ...init, headers, credentials: 'same-origin' });
};

/** The "notify me" button and what it turns on. */
class BrowserNotices {
  readonly button = h('button', 'gj-button gj-notify', 'notify me when runs end');
  readonly state = h('span', 'gj-muted gj-notify-state');
  private on = false;

  constructor() {
    this.button.type = 'button';
    this.button.title = 'Get a browser notification when a run or a sweep ends';
    this.button.addEventListener('click', () => this.ask());
    if (typeof Notification !== 'undefined' && Notification.permission === 'granted') {
      this.on = true;
      setText(this.state, 'notifications on');
    }
  }

  private ask(): void {
    if (typeof Notification === 'undefined') {
      setText(this.state, 'this browser has no notifications');
      return;
    }
    void Notification.requestPermission().then(p => {
      this.on = p === 'granted';
      this.button.dataset.permission = p;
      setText(this.state, this.on ? 'notifications on' : `notifications ${p}`);
    });
  }

  tell(fresh: IEvent[], initial: boolean): void {
    if (!this.on || initial) {
      return;
    }
    for (const e of fresh) {
      if (e.kind === 'run-ended' || e.kind === 'sweep-ended') {
        try {
          new Notification(e.text, { tag: `guild-${e.seq}`, body: (e.tail || '').trim().split('\n').slice(-2).join('\n') });
        } catch (err) {
          // some browsers allow notifications only from a service worker
        }
      }
    }
  }
}

/** ``/guild?sweep=ID``: the sweep's live view, with a link back to every run. */
function sweepPage(id: string): void {
  const back = h('a', 'gj-link', 'all runs');
  back.href = window.location.pathname;
  const view = new SweepView(new GuildClient(pageTransport), id, { layout: 'page', headerExtras: [back] });
  (document.getElementById('guild') || document.body).append(view.node);
  document.title = `Guild sweep ${id.slice(0, 8)}`;
  view.model.onTable(() => {
    const sweep = view.model.sweep;
    if (sweep) {
      document.title = `Guild · ${sweep.title}${sweep.summary_text ? ` · ${sweep.summary_text}` : ''}`;
    }
  });
  view.start();
}

function main(): void {
  const sweep = new URLSearchParams(window.location.search).get('sweep');
  if (sweep) {
    sweepPage(sweep);
    return;
  }
  const model = new GuildModel(new GuildClient(pageTransport));
  const notices = new BrowserNotices();
  let store: Storage | null = null;
  try {
    store = window.localStorage;
  } catch (e) {
    store = null;
  }
  const view = new GuildView(model, {
    layout: 'page',
    heading: 'Guild runs',
    headerExtras: [notices.button, notices.state],
    storage: store
  });
  const storeLine = h('div', 'gj-muted gj-store');
  view.node.querySelector('.gj-header')!.after(storeLine);
  (document.getElementById('guild') || document.body).append(view.node);
  model.onChange(() => {
    view.render();
    if (model.state) {
      setText(storeLine, `store: ${model.state.store}`);
      document.title = model.state.summary_text ? `Guild · ${model.state.summary_text}` : 'Guild runs';
      document.body.dataset.updated = String(model.state.time);
    }
  });
  model.onEvents((fresh, initial) => notices.tell(fresh, initial));
  model.setActive(true);
  model.start();
}

main();
