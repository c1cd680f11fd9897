"""The groups runs are shown in, defined once for every front end: their
order, titles, which ones are open, what each holds and how it is sorted,
and the one-line summary of a store (``2 running · 3 staged · 1 failed``).

``failed`` holds the runs that ended ``error``, most recent first, and is
open: a failed run is seen without expanding anything. ``finished`` holds
the other ended runs (completed, terminated, unstaged) and is closed.
"""

from __future__ import annotations

from ..store.run import COMPLETED, ERROR, PENDING, RUNNING, STAGED, TERMINATED
from .runs import UNSTAGED

__all__ = ["Group", "GROUPS", "GROUP_NAMES", "GROUP_OF_STATUS", "ATTENTION_SECONDS", "group", "summary_text",
           "status_bar_text"]

#: A run that failed this recently counts for ``attention`` (a badge) and as
#: ``failed`` in the summary.
ATTENTION_SECONDS = 24 * 3600


class Group:
    """One group. ``open``: shown expanded by default; ``statuses``: the
    display statuses it holds; ``order``: what its rows are sorted by
    (``started``: oldest first; ``ended``: most recent first);
    ``time_kind``: which time its rows show; ``columns``: (row key, title)
    pairs, a hint for wide tables. (A plain class: ``dataclasses`` would
    double the import time of every CLI command.)"""

    __slots__ = ("name", "title", "open", "statuses", "order", "time_kind", "empty_text", "columns")

    def __init__(self, name: str, title: str, open: bool, statuses: tuple, order: str,  # noqa: A002
                 time_kind: str, empty_text: str, columns: tuple):
        self.name, self.title, self.open, self.statuses = name, title, open, statuses
        self.order, self.time_kind, self.empty_text, self.columns = order, time_kind, empty_text, columns

    def __repr__(self) -> str:
        return f"<Group {self.name}>"

    def view(self) -> dict:
        """The group's fixed part, as a snapshot carries it."""
        return {"name": self.name, "title": self.title, "open": self.open, "empty_text": self.empty_text,
                "time_kind": self.time_kind,
                "columns": [{"key": key, "title": title} for key, title in self.columns]}


def _columns(time_title: str, *extra, status: bool = True) -> tuple:
    return ((("short_id", "run"),) + ((("status_text", "status"),) if status else ()) +
            (("op", "op"), ("gpus_text", "gpus"), ("time_text", time_title)) + extra + (("flags_text", "flags"),))


GROUPS: tuple[Group, ...] = (
    Group("running", "Running", True, (RUNNING,), "started", "started", "nothing running",
          _columns("started", ("elapsed_text", "elapsed"), ("scalar_text", "scalar"))),
    Group("pending", "Pending", True, (PENDING,), "started", "staged", "nothing pending",
          _columns("staged", ("waiting_text", "state"))),
    Group("staged", "Staged", True, (STAGED,), "started", "staged", "nothing staged",
          (("position_text", "#"),) + _columns("staged", ("waiting_text", "why it waits"), status=False)),
    Group("failed", "Failed", True, (ERROR,), "ended", "ended", "no failed runs",
          _columns("ended", ("elapsed_text", "took"), ("scalar_text", "scalar"))),
    Group("finished", "Finished", False, (COMPLETED, TERMINATED, UNSTAGED), "ended", "ended", "nothing finished yet",
          _columns("ended", ("elapsed_text", "took"), ("scalar_text", "scalar"))),
)
GROUP_NAMES = tuple(g.name for g in GROUPS)
GROUP_OF_STATUS = {s: g.name for g in GROUPS for s in g.statuses}
_BY_NAME = {g.name: g for g in GROUPS}


def group(name: str) -> Group:
    return _BY_NAME[name]


def summary_text(counts: dict, attention: int = 0) -> str:
    """``2 running · 3 staged · 1 failed``: always running and staged, pending
    and recent failures (``attention``) when there are any."""
    parts = [f"{counts.get(RUNNING, 0)} running"]
    if counts.get(PENDING):
        parts.append(f"{counts[PENDING]} pending")
    parts.append(f"{counts.get(STAGED, 0)} staged")
    if attention:
        parts.append(f"{attention} failed")
    return " · ".join(parts)


def status_bar_text(counts: dict, attention: int = 0) -> str:
    """``Guild: 2 running · 3 staged · 1 failed``."""
    return "Guild: " + summary_text(counts, attention)
