/**
 * guild-jupyter: the JupyterLab side of guild_jupyter. A left sidebar of
 * runs, queues and GPUs (the same renderer as the /guild page, in a Lumino
 * widget), a status bar item with the server's summary ("Guild: 2 running
 * · 3 staged · 1 failed") that opens the sidebar, and a JupyterLab
 * notification when a run fails (any run or sweep that ends, with the
 * setting ``notifyAllEnds``). It talks only to the server extension
 * (/guild/api), never to a kernel, so it acts and tells at once while a
 * cell runs, after a kernel restart, and with no kernel at all.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification, WidgetTracker } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { GuildClient } from './client';
import { labClient } from './labclient';
import { GuildModel } from './model';
import { noticesToRaise } from './notify';
import { h } from './render/dom';
import { GuildView } from './render/view';
import { SweepView } from './sweep/view';

/** A queue of runs feeding a play mark: not the table of contents' bars. */
const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
<g class="jp-icon3" fill="#616161">
<rect x="2" y="4" width="4" height="4" rx="1"/><rect x="2" y="10" width="4" height="4" rx="1"/>
<rect x="2" y="16" width="4" height="4" rx="1"/><path d="M10 5.2v13.6c0 .8.9 1.3 1.6.8l10-6.8c.6-.4.6-1.2 0-1.6l-10-6.8c-.7-.5-1.6 0-1.6.8z"/>
</g></svg>`;

export const guildIcon = new LabIcon({ name: 'guild-jupyter:guild', svgstr: ICON_SVG });

export const CommandIds = {
  open: 'guild-jupyter:open',
  page: 'guild-jupyter:open-page',
  sweep: 'guild-jupyter:open-sweep'
};

const PLUGIN_ID = 'guild-jupyter:sidebar';

/** The sidebar: the shared view in a Lumino widget, rendered while shown. */
export class GuildSidebar extends Widget {
  readonly view: GuildView;

  constructor(readonly model: GuildModel, pageUrl: string, openPath: (path: string) => void,
              openSweep: (id: string, title: string) => void) {
    super();
    this.id = 'guild-jupyter-sidebar';
    this.addClass('jp-GuildSidebar');
    this.title.caption = 'Guild: runs, queues and GPUs';
    const link = h('a', 'gj-link gj-page-link', 'open /guild page');
    link.href = pageUrl;
    link.target = '_blank';
    link.rel = 'noopener';
    this.view = new GuildView(model, {
      layout: 'sidebar',
      heading: 'Guild',
      headerExtras: [link],
      storage: storage(),
      openPath,
      openSweep
    });
    this.node.append(this.view.node);
    model.onChange(() => {
      const attention = (model.state?.attention || 0) > 0;
      this.title.className = attention ? 'jp-GuildSidebar-attention' : '';
      if (this.isVisible) {
        this.view.render();
      }
    });
  }

  dispose(): void {
    this.view.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this.model.setActive(true);
    this.view.render();
  }

  protected onAfterHide(msg: Message): void {
    this.model.setActive(false);
  }
}

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch (e) {
    return null;
  }
}

/** A sweep's live view in a main-area tab (the sweep view in a Lumino widget). */
export class SweepPanel extends Widget {
  readonly view: SweepView;

  constructor(client: GuildClient, readonly sweepId: string, openPath: (path: string) => void) {
    super();
    this.id = `guild-jupyter-sweep-${sweepId}`;
    this.addClass('jp-GuildSweep');
    this.title.label = `Sweep ${sweepId}`;
    this.title.caption = `Guild sweep ${sweepId}`;
    this.title.closable = true;
    this.title.icon = guildIcon;
    this.view = new SweepView(client, sweepId, { layout: 'lab', openPath });
    this.node.append(this.view.node);
    this.view.model.onTable(() => {
      const sweep = this.view.model.sweep;
      if (sweep && sweep.title && this.title.label !== sweep.title) {
        this.title.label = sweep.title;
      }
    });
    this.view.start();
  }

  dispose(): void {
    this.view.dispose();
    super.dispose();
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A sidebar of Guild runs, queues and GPUs, a status bar item and notifications of failed runs.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IStatusBar, ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null
  ) => {
    const client = labClient();
    const model = new GuildModel(client);
    const pageUrl = PageConfig.getBaseUrl().replace(/\/$/, '') + '/guild';
    // A GET action other than output names a path of the server: a file
    // under its root opens in JupyterLab, anything else in a new tab.
    const openPath = (path: string) => {
      const tree = /^lab\/tree\/(.+)$/.exec(path);
      if (tree) {
        void app.commands.execute('docmanager:open', { path: decodeURIComponent(tree[1]) });
      } else {
        window.open(PageConfig.getBaseUrl() + path, '_blank', 'noopener');
      }
    };
    // A sweep's live view: one tab per sweep, opened again after a reload.
    const sweeps = new WidgetTracker<SweepPanel>({ namespace: 'guild-jupyter-sweep' });
    const openSweep = (id: string) => {
      const open = sweeps.find(w => w.sweepId === id);
      if (open) {
        app.shell.activateById(open.id);
        return open;
      }
      const panel = new SweepPanel(client, id, openPath);
      app.shell.add(panel, 'main');
      void sweeps.add(panel);
      app.shell.activateById(panel.id);
      return panel;
    };
    const sidebar = new GuildSidebar(model, pageUrl, openPath, id => void openSweep(id));
    sidebar.title.icon = guildIcon;
    app.shell.add(sidebar, 'left', { rank: 650 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id); // open again after a reload if it was open
    }

    app.commands.addCommand(CommandIds.open, {
      label: args => (args.isLauncher ? 'Guild' : 'Open Guild Sidebar'),
      caption: 'Runs, queues and GPUs of the Guild store',
      icon: guildIcon,
      execute: () => {
        app.shell.activateById(sidebar.id);
      }
    });
    app.commands.addCommand(CommandIds.sweep, {
      label: args => (args.id ? `Open Guild Sweep ${String(args.id)}` : 'Open Guild Sweep'),
      caption: 'The live view of a sweep: its trials, charts and flags against results',
      icon: guildIcon,
      execute: args => {
        const id = typeof args.id === 'string' ? args.id.trim() : '';
        if (!id) {
          throw new Error(`${CommandIds.sweep} needs a sweep id ({"id": "..."})`);
        }
        return openSweep(id);
      }
    });
    if (restorer) {
      void restorer.restore(sweeps, {
        command: CommandIds.sweep,
        args: w => ({ id: w.sweepId }),
        name: w => w.sweepId
      });
    }
    app.commands.addCommand(CommandIds.page, {
      label: 'Open Guild Page in a New Tab',
      execute: () => {
        window.open(pageUrl, '_blank', 'noopener');
      }
    });
    if (palette) {
      palette.addItem({ command: CommandIds.open, category: 'Guild' });
      palette.addItem({ command: CommandIds.page, category: 'Guild' });
    }
    if (launcher) {
      launcher.add({ command: CommandIds.open, category: 'Other', rank: 1 });
    }
    if (statusBar) {
      const item = new Widget();
      item.addClass('jp-GuildStatus');
      item.node.title = 'Guild runs: click to open the sidebar';
      item.node.textContent = 'Guild';
      item.node.addEventListener('click', () => app.commands.execute(CommandIds.open));
      model.onChange(() => {
        const text = model.error ? 'Guild: unavailable' : model.state?.status_bar_text || 'Guild';
        if (item.node.textContent !== text) {
          item.node.textContent = text;
        }
        item.node.classList.toggle('jp-mod-attention', !model.error && (model.state?.attention || 0) > 0);
      });
      statusBar.registerStatusItem('guild-jupyter:status', { item, align: 'left', rank: 50 });
    }

    let notifyAllEnds = false;
    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const read = () => {
            notifyAllEnds = settings.get('notifyAllEnds').composite === true;
          };
          read();
          settings.changed.connect(read);
        })
        .catch(reason => console.warn('guild-jupyter: cannot load settings', reason));
    }
    model.onEvents((fresh, initial, boot) => {
      for (const { event, type, sticky } of noticesToRaise(fresh, initial, boot, storage(), notifyAllEnds)) {
        const actions: Notification.IAction[] = (event.actions || [])
          .filter(a => a.verb === 'output' && event.run)
          .map(a => ({
            label: a.label,
            caption: 'Open the sidebar and follow this output',
            displayType: 'accent',
            callback: () => {
              app.shell.activateById(sidebar.id);
              sidebar.view.openOutput(a, { id: event.run!, short_id: event.run!.slice(0, 8) });
            }
          }));
        Notification.emit(event.text, type, { autoClose: sticky ? false : 8000, actions });
      }
    });
    model.start();
  }
};

export default plugin;
