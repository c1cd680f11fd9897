"""The one view model: how runs and queues read, for every front end.

The panel, the ``/guild`` page, the REST API, the CLI and the magics all
show runs through these: one status list, one flag formatter, one time
formatter, one wording for "any GPU" and for a run removed from the queue
before it started. Rows are plain data (dicts of JSON values), so the page
and the REST API send them as they are and the panel renders the same.
"""

from __future__ import annotations

import time

from .store.run import COMPLETED, ERROR, FINISHED, PENDING, RUNNING, STAGED, STATUSES, TERMINATED
from .store.store import format_flag_value

__all__ = [
    "STATUSES", "STAGED", "PENDING", "RUNNING", "COMPLETED", "ERROR", "TERMINATED", "FINISHED",
    "UNSTAGED", "ANY_GPU", "format_flag", "flags_text", "format_time", "gpus_text", "status_of",
]

#: How a run removed from the queue before it ever started is shown (Guild
#: lists it ``terminated``; it has no start time and no elapsed time).
UNSTAGED = "unstaged"

#: The wording for "no GPU affinity" everywhere (a queue without ``gpus``
#: serves such runs only; a run without ``--gpus`` runs on any queue's GPUs).
ANY_GPU = "any GPU"

format_flag = format_flag_value


def flags_text(flags: dict, first=()) -> str:
    """``k=v`` pairs; the names in ``first`` (e.g. the flags that vary in a
    listing) come first, in that order, then the rest in the run's order."""
    keys = [k for k in first if k in flags] + [k for k in flags if k not in first]
    return " ".join(f"{k}={format_flag(flags[k])}" for k in keys)


def format_time(us, now: float | None = None, short: bool = False) -> str:
    """A timestamp in µs since the epoch, local time; ``short`` drops the
    date for today's times (panel rows)."""
    if not isinstance(us, int) or isinstance(us, bool):
        return ""
    t = time.localtime(us / 1e6)
    if short:
        today = time.localtime(now if now is not None else time.time())
        if (t.tm_year, t.tm_yday) == (today.tm_year, today.tm_yday):
            return time.strftime("%H:%M:%S", t)
        return time.strftime("%m-%d %H:%M", t)
    return time.strftime("%Y-%m-%d %H:%M:%S", t)


def gpus_text(gpus: str | None) -> str:
    return gpus if gpus else ANY_GPU


def status_of(run) -> str:
    """The status a person reads: Guild's, except that a run taken off the
    queue before it started (unstaged, or a sweep's trial never reached)
    reads ``unstaged``: Guild and the attrs say terminated, and its
    ``started`` is only the staging time Guild orders staged runs by."""
    st = run.status
    if st == TERMINATED and run.get("unstaged") is True:
        return UNSTAGED
    return st
