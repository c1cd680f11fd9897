/**
 * The sweep view in a cell's output: a MIME renderer for
 * ``application/vnd.guild-jupyter.sweep+json`` (``{"sweep": ID, "store":
 * HOME, "title": ...}``, what ``%guild sweep`` and ``guild_jupyter.sweep_view()``
 * display). It renders the same live component as the main-area tab and
 * talks to the Jupyter server's REST API, not to the kernel: the output
 * stays live while the kernel is busy, after a restart, and when a saved
 * notebook is opened again. Ranked before HTML (rank 0 < 50), so
 * JupyterLab shows this rather than the bundle's ``text/html`` fallback
 * (the table and a static plot), which other front ends show.
 *
 * ``safe``: the bundle holds only an id and a path; the view shows what
 * the user's own server answers for that id, and changes nothing without
 * the user's click, so an untrusted notebook may show it too.
 */
import { PageConfig } from '@jupyterlab/coreutils';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { labClient } from './labclient';
import { h } from './render/dom';
import { SweepView } from './sweep/view';

export const SWEEP_MIME = 'application/vnd.guild-jupyter.sweep+json';

interface ISweepBundle {
  sweep?: unknown;
  store?: unknown;
  title?: unknown;
}

export class SweepOutput extends Widget implements IRenderMime.IRenderer {
  view: SweepView | null = null;

  constructor(readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('jp-GuildSweepOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = (model.data[this.options.mimeType] || {}) as ISweepBundle;
    const id = typeof data.sweep === 'string' ? data.sweep : '';
    if (this.view && this.view.id === id) {
      return; // the same sweep: the live view goes on
    }
    this.view?.dispose();
    this.view = null;
    if (!id) {
      this.node.replaceChildren(h('div', 'gj-error', 'this output names no sweep'));
      return;
    }
    const store = typeof data.store === 'string' ? data.store : undefined;
    this.view = new SweepView(labClient(), id, {
      layout: 'cell',
      store,
      title: typeof data.title === 'string' ? data.title : undefined,
      openPath: path => window.open(PageConfig.getBaseUrl() + path, '_blank', 'noopener')
    });
    this.node.replaceChildren(this.view.node);
    this.view.start();
  }

  dispose(): void {
    this.view?.dispose();
    this.view = null;
    super.dispose();
  }
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [SWEEP_MIME],
  defaultRank: 0,
  createRenderer: options => new SweepOutput(options)
};

const extension: IRenderMime.IExtension = {
  id: 'guild-jupyter:sweep-output',
  description: 'The live Guild sweep view in a cell output.',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
