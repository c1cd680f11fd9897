"""Which Guild home a store is: the one Guild 0.9 finds, or one given
explicitly (checked to be a Guild home, not a run or ``runs/`` directory)."""

from __future__ import annotations

import os

from ..errors import StoreError


def default_guild_home(cwd: str | None = None) -> str:
    """The Guild home exactly as Guild 0.9 finds it: ``$GUILD_HOME``; else
    ``.guild`` under an activated conda env or virtualenv (``$CONDA_PREFIX``
    first, then ``$VIRTUAL_ENV``) when that directory exists; else the
    nearest ``.guild`` directory from the working directory up to the user's
    home; else ``~/.guild``."""
    env = os.environ.get("GUILD_HOME")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    activated = os.environ.get("CONDA_PREFIX") or os.environ.get("VIRTUAL_ENV")
    if activated:
        candidate = os.path.realpath(os.path.join(activated, ".guild"))
        if os.path.isdir(candidate):
            return candidate
    user_home = os.path.expanduser("~")
    stop = os.path.realpath(user_home)
    cur = os.path.abspath(cwd or os.getcwd())
    while True:
        candidate = os.path.join(cur, ".guild")
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(cur)
        if os.path.realpath(cur) == stop or parent == cur:
            break
        cur = parent
    return os.path.join(user_home, ".guild")


def check_home(home: str) -> None:
    """A home given explicitly must be a Guild home: not a ``runs``
    directory, not a file, writable or creatable."""
    if os.path.isfile(home):
        raise StoreError(f"store {home} is a file, not a Guild home (a directory holding runs/)")
    if os.path.basename(os.path.normpath(home)) == "runs" and not os.path.isdir(os.path.join(home, "runs")):
        parent = os.path.dirname(os.path.normpath(home))
        raise StoreError(f"store {home} is a runs/ directory: give its Guild home instead ({parent})")
    if os.path.isdir(os.path.join(home, ".guild", "attrs")):
        raise StoreError(f"store {home} is a run directory, not a Guild home")
