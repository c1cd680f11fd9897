/**
 * The REST client as JupyterLab code gets it: ServerConnection's settings
 * (the token, the XSRF cookie, the base URL) on /guild/api/. Shared by the
 * sidebar plugin and the sweep view's MIME renderer, neither of which talks
 * to a kernel.
 */
import { ServerConnection } from '@jupyterlab/services';

import { GuildClient, Transport } from './client';

export function labTransport(): Transport {
  const settings = ServerConnection.makeSettings();
  const base = settings.baseUrl.replace(/\/$/, '') + '/guild/api/';
  return (path, init) => ServerConnection.makeRequest(base + path, init, settings);
}

let shared: GuildClient | null = null;

/** One client per browser tab. */
export function labClient(): GuildClient {
  if (!shared) {
    shared = new GuildClient(labTransport());
  }
  return shared;
}
