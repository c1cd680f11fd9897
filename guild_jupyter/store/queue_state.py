"""The state a person asked a queue to be in: running, paused or draining.

It lives in the queue run's directory (``.guild/guild_jupyter-control``, one
word), so that every host of a queue sees it whatever process asked: a
thread of this kernel, a detached queue, a queue in another kernel, the
server's. Guild ignores the file. Its loop reads it once per pass (one small
read); a change touches the store's change marker so that an idle queue
looks at once.
"""

from __future__ import annotations

import os

from . import attrs as attrlib
from .markers import QUEUE_CONTROL
from .regular_file import read_small
from .run import Run
from .transitions_end import store_error

CONTROL_FILE = QUEUE_CONTROL
RUNNING, PAUSED, DRAINING = "running", "paused", "draining"
CONTROL_STATES = (RUNNING, PAUSED, DRAINING)


def read_control(run: Run) -> str:
    """The requested state; ``running`` when none was asked for (or the file
    cannot be read: a queue never stops starting runs on a damaged file)."""
    try:
        text = read_small(run.path(CONTROL_FILE), 4096)[:32].decode("ascii", "replace").strip()
    except OSError:
        return RUNNING
    return text if text in CONTROL_STATES else RUNNING


def write_control(store, run: Run, state: str) -> None:
    """Records ``state`` atomically and wakes idle queues."""
    if state not in CONTROL_STATES:
        raise ValueError(f"unknown queue state {state!r}")
    try:
        attrlib.write_atomic(run.path(CONTROL_FILE), state + "\n")
    except OSError as e:
        raise store_error(e, f"record the state of queue {run.id[:8]}") from e
    store.notify_change(run.id)


def has_control(run: Run) -> bool:
    return os.path.exists(run.path(CONTROL_FILE))
