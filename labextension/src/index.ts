/**
 * guild-jupyter: a JupyterLab 4 sidebar for the guild_jupyter server
 * extension. It talks only to the server (/guild/api), never to a kernel,
 * so its buttons act at once while a cell runs, after a kernel restart, and
 * with no kernel at all.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { PageConfig } from '@jupyterlab/coreutils';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { statusText } from './format';
import { GuildModel } from './model';
import { GuildSidebar } from './sidebar';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
<path class="jp-icon3" fill="#616161" d="M4 4h16v3H4zm0 6.5h10v3H4zM4 17h16v3H4zm13-6.5h3v3h-3z"/></svg>`;

export const guildIcon = new LabIcon({ name: 'guild-jupyter:guild', svgstr: ICON_SVG });

export const CommandIds = {
  open: 'guild-jupyter:open',
  page: 'guild-jupyter:open-page'
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'guild-jupyter:sidebar',
  description: 'A sidebar of Guild runs, queues and GPUs, with a status bar item.',
  autoStart: true,
  optional: [ICommandPalette, ILauncher, IStatusBar, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null
  ) => {
    const model = new GuildModel();
    const pageUrl = PageConfig.getBaseUrl().replace(/\/$/, '') + '/guild';
    const sidebar = new GuildSidebar(model, pageUrl);
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
      model.changed.connect(() => {
        const text = model.error ? 'Guild: unavailable' : statusText(model.state?.counts);
        if (item.node.textContent !== text) {
          item.node.textContent = text;
        }
      });
      statusBar.registerStatusItem('guild-jupyter:status', { item, align: 'left', rank: 50 });
    }
    model.start();
  }
};

export default plugin;
