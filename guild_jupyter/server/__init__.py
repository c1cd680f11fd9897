"""The Jupyter server extension: a REST API under ``/guild/api/``, a plain
web page at ``/guild`` (``page.html`` and its bundle in ``static/``) and queues hosted by the server process.

Enabled by ``jupyter-config/jupyter_server_config.d/guild_jupyter.json``,
which installing the package puts in ``etc/jupyter/jupyter_server_config.d``.
Configure with ``c.GuildJupyter.store = "/path"`` and
``c.GuildJupyter.queues = [{"gpus": "0"}, {"gpus": "1", "run_once": True}]``.
"""


def _jupyter_server_extension_points():
    from .app import GuildJupyter  # lazy: Jupyter asks for the extension points before it loads the extension (tornado)

    return [{"module": "guild_jupyter.server", "app": GuildJupyter}]
