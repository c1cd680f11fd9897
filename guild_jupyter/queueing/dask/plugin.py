"""The worker plugin a Dask queue registers: it starts the worker's
launcher (:mod:`.launcher`) as the worker joins, so that even a worker's
first run forks from a warm process. Imports ``distributed``: loaded by
the Dask queue (and by workers) only."""

from __future__ import annotations

import threading

from distributed.diagnostics.plugin import WorkerPlugin

from . import launcher


class LauncherPlugin(WorkerPlugin):
    name = "guild_jupyter-launcher"
    idempotent = True

    def setup(self, worker):
        # Off the worker's event loop: starting the launcher takes an interpreter's start.
        threading.Thread(target=_start_launcher, name="guild_jupyter-launcher", daemon=True).start()


def _start_launcher() -> None:
    try:
        conn = launcher.ensure(launcher.socket_name())
        if conn is not None:
            conn.close()
    except Exception:  # noqa: BLE001 - the worker's first task starts it then
        pass
