"""What the listing index (``index``) knows of one run: its ``Entry``,
read from the run's files under a *stamp* (the staleness rule is described
in ``index``'s docstring)."""

from __future__ import annotations

import os
import stat as stat_

from .markers import LOCK_REMOTE
from .records import priority_of
from .run import FINISHED, QUEUE_OPS, RUNNING, Run, flags_of, gpus_of, label_of, op_name_of, sweep_of

#: The attrs a listing shows (besides status and opref).
KEYS = ("started", "initialized", "stopped", "label", "run_params", "exit_status", "flags", "unstaged", "queue_id",
        "priority", "after", "after_failure", "sweep")
CACHED = KEYS + ("status", "_opref")

SETTLE_NS = 2_000_000_000  # a stamp this young is read again on every pass


def stamp_of(guild_dir: str):
    """``(mtime .guild, mtime attrs/, mtime attrs/label)`` in ns (0 for a
    missing attrs dir or label); None when ``.guild`` is no readable
    directory."""
    try:
        st = os.stat(guild_dir)
    except OSError:
        return None
    if not stat_.S_ISDIR(st.st_mode):
        return None
    try:
        a = os.stat(guild_dir + "/attrs").st_mtime_ns
    except OSError:
        a = 0
    try:
        lab = os.stat(guild_dir + "/attrs/label").st_mtime_ns
    except OSError:
        lab = 0
    return (st.st_mtime_ns, a, lab)


def settling(stamp, now_ns: int) -> bool:
    return stamp is None or now_ns - max(stamp) < SETTLE_NS


class Entry:
    """What a listing knows of one run: Run attr values under a stamp."""

    __slots__ = ("id", "dir", "stamp", "values", "warnings", "op", "is_queue", "lock_pid", "lock_remote",
                 "damaged", "status", "started", "stopped", "timestamp")

    def __init__(self, run: Run | None, stamp, damaged: bool = False, *, run_dir: str = "", values=None):
        """From a ``Run`` just read, or (``run=None``) from ``values`` of the
        listing file for ``run_dir`` (a finished run: no lock to look at)."""
        if run is None:
            self.id = run_dir[run_dir.rfind("/") + 1:]
            self.dir = run_dir
            self.values = values
            self.warnings = []
            self.op = op_name_of(values["_opref"])
            self.lock_pid = None
            self.lock_remote = False
        else:
            self.id = run.id
            self.dir = run.dir
            self.values = run.cached(CACHED)
            self.warnings = list(run.warnings)
            self.op = run.op_name
            running = self.values.get("status") == RUNNING
            self.lock_pid = run.lock_pid() if running else None
            self.lock_remote = running and run.has_marker(LOCK_REMOTE)
        self.is_queue = self.op in QUEUE_OPS
        self.stamp = stamp
        self.damaged = damaged
        # Plain attributes: grouping and sorting 10,000 entries reads them.
        self.status = self.values["status"]
        self.started = self._int("started")
        self.stopped = self._int("stopped")
        # Guild's sort key: ``started``, else ``initialized``.
        self.timestamp = self.started if self.started is not None else (self._int("initialized") or 0)

    def _int(self, name):
        v = self.values.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    @property
    def queue_id(self):
        q = self.values.get("queue_id")
        return q if isinstance(q, str) else None

    # The same accessors as Run's, on the listed values.

    @property
    def gpus(self):
        return gpus_of(self.values.get("run_params"))

    @property
    def priority(self) -> int:
        """The order our queues start it in (SPEC 12: highest first)."""
        return priority_of(self.values.get("priority"))

    @property
    def label(self) -> str:
        return label_of(self.values.get("label"))

    @property
    def flags(self) -> dict:
        return flags_of(self.values.get("flags"))

    @property
    def sweep(self) -> str | None:
        return sweep_of(self.values.get("sweep"))

    def trusted(self, now_ns: int) -> bool:
        """Whether a listing may use these values instead of the run's files."""
        return self.damaged or (self.status in FINISHED and not settling(self.stamp, now_ns))

    def run(self) -> Run:
        """A ``Run`` whose listed attrs are these values (reads nothing)."""
        return Run.with_values(self.dir, self.values, self.warnings)


def read_entry(run_dir: str, stamp) -> Entry | None:
    """The entry of ``run_dir`` read from its files; None when it is no run.
    A run that cannot be read is an error with a warning, never hidden."""
    run = Run(run_dir)
    if stamp is None:
        if not run.is_run():
            return None
        if not run.warnings:  # .guild stat'ed fine meanwhile, or attrs/ alone is odd
            run.mark_damaged(".guild is not a readable directory")
        return Entry(run, None, damaged=True)
    try:
        status = run.status
        for k in KEYS:
            run.get(k)
        _ = (run.op_name, run.label, run.timestamp)  # what filters and sort keys read: neither may raise
    except Exception as e:  # e.g. YAML's ValueError for a date 2001-02-30
        run.mark_damaged(f"unreadable files ({type(e).__name__}: {e})")
        return Entry(run, stamp, damaged=True)
    return Entry(run, stamp)
