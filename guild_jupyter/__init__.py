"""Guild AI staged runs and queues, brought into Jupyter.

The package root stays free of imports so that the run supervisor and the
script runner (both on every run's critical path) start quickly. The Python
API (``run``, ``queue``, ``runs``, ...) is loaded on first attribute access.
"""

__version__ = "0.1.0"

_API_NAMES = {
    "run", "queue", "queues", "runs", "stop", "unstage", "delete", "output",
    "compare", "panel", "Store", "wait", "wait_until", "monitor", "plot", "follow",
    "queue_control", "pause_queue", "resume_queue", "drain_queue", "restart", "restage", "prioritize",
    "sweep_view", "sweep_table", "scalars", "sweep_scalars", "retry",
}


def __getattr__(name):
    if name == "panel":
        from .frontends.panel import panel  # lazy: the root stays import-free (see above)

        return panel
    if name in _API_NAMES:
        from . import api  # lazy: as above

        return getattr(api, name)
    raise AttributeError(f"module 'guild_jupyter' has no attribute {name!r}")


def load_ipython_extension(ipython):
    from .frontends.magics import load_ipython_extension as load  # lazy: as above

    load(ipython)


def _jupyter_server_extension_points():
    from .server.app import GuildJupyter  # lazy: as above

    return [{"module": "guild_jupyter.server", "app": GuildJupyter}]
