"""Space for a run's outcome, reserved while there is room.

``acquire`` writes two small files; when the disk is full at the run's end,
the outcome is written into them and renamed into place, which needs no new
blocks. Only :mod:`.transitions` uses this.
"""

from __future__ import annotations

import os

from . import attrs as attrlib
from .run import Run

RESERVE_PREFIX = ".reserve-"
OUTCOME_ATTRS = ("exit_status", "stopped")


def write_reserved(run: Run, name: str, path: str, data: str) -> bool:
    """Writes ``data`` into the file reserved at start, then renames it into
    place: no new blocks are needed."""
    reserve = run.path(RESERVE_PREFIX + name)
    try:
        with open(reserve, "r+b") as f:
            f.write(data.encode())
            f.truncate(len(data.encode()))
        os.replace(reserve, path)
        return True
    except OSError:
        return False


def reserve(run: Run) -> None:
    """Raises OSError when there is no room: a run whose outcome could not
    be recorded must not start (the caller undoes what it wrote)."""
    for name in OUTCOME_ATTRS:
        attrlib.write_atomic(run.path(RESERVE_PREFIX + name), b" " * 64)


def drop(run: Run) -> None:
    for name in OUTCOME_ATTRS:
        attrlib.remove(run.path(RESERVE_PREFIX + name))
