"""Turning on the magics in every IPython kernel without touching the user's
config.

A startup file in the profile's ``startup/`` directory runs in every shell
of that profile after its config is loaded, so it adds ``%guild`` to
whatever the user's ``ipython_config.py`` / ``ipython_kernel_config.*`` set
up (``extensions`` lists included) and overwrites nothing. ``autoload(True)``
writes that one file; ``autoload(False)`` removes it, and only it (a file
there that we did not write is never touched).
"""

from __future__ import annotations

import os

from .errors import BadInput, StoreError

FILE_NAME = "50-guild_jupyter.py"
MARK = "# guild_jupyter autoload: written by `guild-jupyter autoload on`; removed by `... off`."
BODY = MARK + """
try:
    get_ipython().extension_manager.load_extension("guild_jupyter")
except Exception as e:  # never break a kernel's start-up
    print(f"guild_jupyter: %guild not loaded: {e}")
"""


def startup_file(profile: str = "default", ipython_dir: str | None = None) -> str:
    if not profile or os.sep in profile or profile.startswith("."):
        raise BadInput(f"bad IPython profile name {profile!r}")
    if ipython_dir is None:
        from IPython.paths import get_ipython_dir

        ipython_dir = get_ipython_dir()
    return os.path.join(ipython_dir, f"profile_{profile}", "startup", FILE_NAME)


def autoload(on: bool = True, profile: str = "default", ipython_dir: str | None = None) -> str:
    """Turns auto-loading of the magics on or off for an IPython profile;
    returns a one-line description of what was done."""
    path = startup_file(profile, ipython_dir)
    ours = _is_ours(path)
    if on:
        if ours:
            return f"already on: {path}"
        if os.path.exists(path):
            raise BadInput(f"{path} exists and was not written by guild_jupyter; not replacing it")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(BODY)
        except OSError as e:
            raise StoreError(f"cannot write {path}: {e.strerror}") from e
        return f"on: every kernel of profile {profile!r} loads %guild ({path})"
    if not os.path.exists(path):
        return f"already off: {path} does not exist"
    if not ours:
        raise BadInput(f"{path} was not written by guild_jupyter; not removing it")
    try:
        os.unlink(path)
    except OSError as e:
        raise StoreError(f"cannot remove {path}: {e.strerror}") from e
    return f"off: removed {path}"


def status(profile: str = "default", ipython_dir: str | None = None) -> bool:
    return _is_ours(startup_file(profile, ipython_dir))


def _is_ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().rstrip("\n") == MARK
    except OSError:
        return False
