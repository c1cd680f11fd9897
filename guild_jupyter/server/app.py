"""The extension application: configuration, server-hosted queues, handlers."""

from __future__ import annotations

import asyncio
import os
import threading

from jupyter_server.extension.application import ExtensionApp
from traitlets import Dict, Float, List, Unicode

from .. import api
from ..errors import BadInput
from .base import QUEUE_FIELDS
from .changes import Changes
from .handlers import handlers

SHUTDOWN_TIMEOUT = 10.0


class GuildJupyter(ExtensionApp):
    """Runs, queues and GPUs of a Guild store, over REST and at ``/guild``."""

    name = "guild_jupyter"
    load_other_extensions = True

    store = Unicode(
        None, allow_none=True, config=True,
        help="The Guild home to serve (default: $GUILD_HOME, else ~/.guild).",
    )
    allowed_roots = List(
        Unicode(), config=True,
        help="Directories besides the server's root where POST /guild/api/runs may find a script "
             "or set a cwd (relative entries are relative to the root); symlinks are resolved.",
    )
    queues = List(
        Dict(), config=True,
        help='Queues the server starts and hosts, e.g. [{"gpus": "0"}, {"gpus": "1", "run_once": True}]; '
             "keys: the queue flags with underscores (" + ", ".join(sorted(QUEUE_FIELDS)) + "), "
             "each number within its range (guild-jupyter queue -h lists them).",
    )

    watch_interval = Float(
        0.1, config=True,
        help="Seconds between the event watcher's looks at the store's change token (two stats when nothing moved).",
    )

    def initialize_settings(self):
        self.run_store = api.resolve_store(self.store)
        # The queues this server hosts (``QueueHost``s recorded as host
        # ``server``; also in ``api.queue_registry``).
        self.hosted: dict = {}
        self.monitor = api.monitor(self.run_store)
        self.monitor.queue_hosts = ("server", "detached")
        self.monitor.notebook_root = self.serverapp.root_dir
        # One watcher of the store for every viewer: /guild/api/events serves
        # its log; each look that saw something move wakes the long-polls.
        self.changes = Changes()
        self.events = api.EventWatcher(self.monitor)
        self.monitor.events = self.events
        self.watch = api.WatchThread(self.events, tick=self.watch_interval, on_change=self.changes.fire,
                                     on_error=lambda e: self.log.warning("guild_jupyter: watching the store: %s", e))
        self.settings["guild_jupyter"] = self
        # Read the store once in the background, so that the first listing
        # does not pay for it (about half a second for 10,000 runs).
        threading.Thread(target=self._warm_index, name="guild-index-warmup", daemon=True).start()
        for spec in self.queues:
            try:
                q = self.start_queue(dict(spec))
                self.log.info("guild_jupyter: started queue %s (%s)", q.id[:8], q.config.describe())
            except Exception as e:  # a bad entry must not stop the server
                self.log.error("guild_jupyter: cannot start configured queue %r: %s", spec, e)

    def allowed_root_dirs(self, root: str) -> list[str]:
        """The server's root and ``allowed_roots``, as real paths."""
        entries = [root] + [os.path.join(root, os.path.expanduser(d)) for d in self.allowed_roots if d]
        return [os.path.realpath(d) for d in entries]

    def _warm_index(self) -> None:
        try:
            self.monitor.update()
        except Exception as e:  # a listing request will report it
            self.log.warning("guild_jupyter: cannot read the store: %s", e)
        self.watch.start()  # its first look learns the store as it is now
        # The charts' module (numpy) too: a sweep view's first load would wait ~0.5 s for its import.
        # lazy: in this warm-up thread, after the server is up, never on its start-up path
        import guild_jupyter.charts  # noqa: F401

    def initialize_handlers(self):
        self.handlers.extend(handlers())

    # -- queues hosted here -------------------------------------------------------------

    def start_queue(self, spec: dict):
        """A queue on a thread of this server (a ``QueueHost``, host ``server``)."""
        unknown = set(spec) - QUEUE_FIELDS
        if unknown:
            raise BadInput(f"unknown queue field(s): {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(QUEUE_FIELDS))})")
        q = api.host_queue("server", store=self.run_store, **{k: v for k, v in spec.items() if v is not None})
        self.hosted[q.id] = q
        return q

    def stop_hosted(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Stops every queue this server hosts; the runs they started keep
        running under their own supervisors and record their outcome."""
        for q in list(self.hosted.values()):
            q.stop(wait=False)
        for q in list(self.hosted.values()):
            q.join(timeout)
        self.hosted.clear()

    async def stop_extension(self):
        self.watch.stop()
        self.changes.fire()  # long-polls answer now
        await asyncio.get_running_loop().run_in_executor(None, self.stop_hosted)
