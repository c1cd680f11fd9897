"""Process identity: a pid is only a process together with its start time.

Pids are reused, so every record of a process we keep (a run's LOCK, a
queue's claim, a supervisor's children) carries the process's start time,
and a live pid whose start time differs is another process. A zombie is
dead: it has exited and only waits for its parent to collect it.

Start times are read from ``/proc`` (as psutil computes them: boot time plus
the start tick), without importing psutil on the hot path; psutil is the
fallback elsewhere and the tool for walking process trees.
"""

from __future__ import annotations

import os
import signal
import time

_BTIME: float | None = None
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
TOLERANCE = 1.0  # seconds: start times are recorded as floats, read back as ticks


def _boot_time() -> float:
    global _BTIME
    if _BTIME is None:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime"):
                    _BTIME = float(line.split()[1])
                    break
            else:
                raise ValueError("no btime")
    return _BTIME


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data.rsplit(b")", 1)[1].split()


def start_time(pid: int) -> float | None:
    """Start time (seconds since epoch) of a live process; None when it is
    gone or a zombie."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        fields = _stat_fields(pid)
        if fields is None:
            return None
        if fields[0] in (b"Z", b"X", b"x"):
            return None
        return _boot_time() + int(fields[19]) / _TICKS
    except (OSError, ValueError, IndexError):
        return _psutil_start_time(pid)


def _psutil_start_time(pid: int) -> float | None:
    import psutil

    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def own_start_time() -> float:
    t = start_time(os.getpid())
    if t is None:  # pragma: no cover - /proc missing and psutil refused
        raise OSError("cannot read this process's start time")
    return t


class Identity:
    """A process as pid + start time. ``alive()`` is false for a reused pid."""

    __slots__ = ("pid", "start")

    def __init__(self, pid: int, start: float | None):
        self.pid = pid
        self.start = start

    @classmethod
    def current(cls) -> "Identity":
        return cls(os.getpid(), own_start_time())

    @classmethod
    def of(cls, pid: int) -> "Identity | None":
        t = start_time(pid)
        return None if t is None else cls(pid, t)

    def alive(self) -> bool:
        t = start_time(self.pid)
        if t is None:
            return False
        if self.start is None:
            return True
        return abs(t - self.start) < TOLERANCE

    def as_record(self) -> dict:
        return {"pid": self.pid, "start": self.start}

    @classmethod
    def from_record(cls, value) -> "Identity | None":
        """The identity a record names, or None when the record is not one
        (wrong shape, wrong types)."""
        if not isinstance(value, dict):
            return None
        pid, start = value.get("pid"), value.get("start")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        if isinstance(start, bool) or not isinstance(start, (int, float)):
            return None
        return cls(pid, float(start))

    def __eq__(self, other):
        return isinstance(other, Identity) and other.pid == self.pid and other.start == self.start

    def __hash__(self):
        return hash(self.pid)

    def __repr__(self):
        return f"Identity({self.pid}, {self.start!r})"


# -- process trees --------------------------------------------------------------


def descendants(pid: int) -> list:
    """Live descendants of ``pid`` (psutil Processes), children first."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def signal_identities(idents, sig) -> int:
    """Sends ``sig`` to each process still alive as recorded; returns how many."""
    n = 0
    for ident in idents:
        if ident.alive():
            try:
                os.kill(ident.pid, sig)
                n += 1
            except (ProcessLookupError, PermissionError):
                pass
    return n


def tree_identities(pid: int) -> list[Identity]:
    """``pid`` (if alive) and its live descendants, as identities."""
    out = []
    root = Identity.of(pid)
    if root is not None:
        out.append(root)
    for p in descendants(pid):
        try:
            out.append(Identity(p.pid, p.create_time()))
        except Exception:  # noqa: BLE001 - gone meanwhile
            pass
    return out


def kill_identities(idents, grace: float = 0.0) -> None:
    """SIGTERM (when ``grace`` > 0, then wait up to ``grace``) and SIGKILL
    every process still alive as recorded, waiting until they are gone."""
    idents = list(idents)
    if grace > 0 and signal_identities(idents, signal.SIGTERM):
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(i.alive() for i in idents):
            time.sleep(0.02)
    signal_identities(idents, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(i.alive() for i in idents):
        time.sleep(0.005)


# -- reaping ----------------------------------------------------------------------


_PRCTL = []  # libc's prctl, loaded once: a forked supervisor inherits it for free


def prepare_subreaper() -> None:
    """Loads what ``set_child_subreaper`` needs (ctypes, libc: ~3 ms). A
    long-lived launcher calls it once before forking supervisors."""
    if _PRCTL:
        return
    try:
        import ctypes

        _PRCTL.append(ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError):
        _PRCTL.append(None)


def set_child_subreaper() -> bool:
    """Makes this process the reaper of its orphaned descendants (Linux), so a
    child that starts its own session stays in our process tree."""
    prepare_subreaper()
    prctl = _PRCTL[0]
    PR_SET_CHILD_SUBREAPER = 36
    return prctl is not None and prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
