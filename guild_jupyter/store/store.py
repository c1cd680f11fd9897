"""The run store: a Guild home holding ``runs/`` and ``locks/``, its runs
listed (through the listing index) and selected the way Guild names them.

Which home (``home``), what a new run is made of (``new_run``) and how
flags read in labels (``flag_labels``) are modules of their own."""

from __future__ import annotations

import os
import stat as stat_

from ..errors import AmbiguousRun, BadInput, RunNotFound, StoreError, StoreNotWritable
from . import attrs as attrlib
from .gc_pause import paused
from .home import default_guild_home
from .locking import run_status_lock
from .run import STAGED, STATUSES, Run


JOURNAL_MAX = 1 << 18  # bytes of run ids the change marker holds before it starts afresh


class Store:
    """A Guild home. Only this package's store modules touch its files."""

    def __init__(self, home: str | os.PathLike | None = None):
        self.home = os.path.abspath(os.path.expanduser(os.fspath(home))) if home else default_guild_home()
        self.runs_dir = os.path.join(self.home, "runs")
        self.private_dir = os.path.join(self.home, "cache", "guild_jupyter")
        self.change_marker = os.path.join(self.private_dir, "changed")

    def __repr__(self):
        return f"Store({self.home!r})"

    def __eq__(self, other):
        return isinstance(other, Store) and other.home == self.home

    def __hash__(self):
        return hash(self.home)

    # -- basics -------------------------------------------------------------

    def in_trash(self, run_id: str) -> bool:
        """Guild's trash holds run ``run_id`` (``guild runs restore`` brings it back)."""
        return os.path.isdir(os.path.join(self.home, "trash", "runs", run_id))

    def ensure_writable(self) -> None:
        for d in (self.runs_dir, self.private_dir):
            try:
                os.makedirs(d, exist_ok=True)
            except OSError as e:
                raise StoreNotWritable(f"store not writable: cannot create {d}: {e.strerror}") from e
        if not os.access(self.runs_dir, os.W_OK | os.X_OK) or not os.access(self.private_dir, os.W_OK):
            raise StoreNotWritable(f"store not writable: {self.runs_dir}")

    def lock(self, timeout: float | None = None):
        return run_status_lock(self.home, timeout)

    def notify_change(self, *run_ids: str, created: bool = False) -> None:
        """Touches the change marker queues watch to pick up new runs at once,
        naming the runs that changed in it (the change journal): a viewer of
        a big store looks at those, not at every run. Past ``JOURNAL_MAX``
        bytes it starts afresh as a new file, which readers notice (its
        inode) and then look at everything."""
        data = "".join(i + "\n" for i in run_ids)
        if created:  # runs/'s mtime now: a reader need not list runs/ for these (see index)
            try:
                data = f"+{os.stat(self.runs_dir).st_mtime_ns}\n" + data
            except OSError:
                pass
        data = data.encode()
        try:
            fd = os.open(self.change_marker, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if data:
                    os.write(fd, data)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            os.utime(self.change_marker, None)
            if size > JOURNAL_MAX:
                attrlib.write_atomic(self.change_marker, b"")
        except OSError:
            pass

    def change_token(self):
        """Cheap value that changes when runs are added or change state."""
        out = []
        for p in (self.change_marker, self.runs_dir):
            try:
                out.append(os.stat(p).st_mtime_ns)
            except OSError:
                out.append(None)
        return tuple(out)

    def read_changes(self, since):
        """``(inode, offset, run ids)``: the runs the change journal named
        after ``since`` (an ``(inode, offset)`` this returned before; None:
        none, only where it ends now); ids None when the journal was started
        afresh meanwhile (what changed is then unknown)."""
        try:
            fd = os.open(self.change_marker, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return None, 0, ([] if since is None or since[0] is None else None)
        try:
            st = os.fstat(fd)
            if not stat_.S_ISREG(st.st_mode):
                return None, 0, None
            if since is None:
                return st.st_ino, st.st_size, []
            if since[0] != st.st_ino or st.st_size < since[1] or st.st_size - since[1] > 2 * JOURNAL_MAX:
                return st.st_ino, st.st_size, None
            data = os.pread(fd, st.st_size - since[1], since[1])
        except OSError:
            return None, 0, None
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        return st.st_ino, since[1] + end, data[:end].decode("ascii", "replace").split()

    # -- reading ------------------------------------------------------------

    def run_ids(self) -> list[str]:
        try:
            names = os.listdir(self.runs_dir)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise StoreError(f"cannot read {self.runs_dir}: {e.strerror}") from e
        return [n for n in names if not n.startswith(".")]

    def run(self, run_id: str) -> Run:
        if not _is_safe_id(run_id):
            raise RunNotFound(f"no run with id {run_id!r}")
        d = os.path.join(self.runs_dir, run_id)
        if not os.path.isdir(d):
            raise RunNotFound(f"no run with id {run_id!r}")
        return Run(d)

    def runs(self, status=None, op=None, label=None, limit=None, include_queues=True, sweep=None) -> list[Run]:
        """Runs, newest first, filtered by status(es), op name, label text
        and sweep id (exactly: the ``sweep`` attr).

        Every file is untrusted: a run that cannot be read (its ``.guild`` a
        symlink loop, unreadable or not a directory; an attr no reader can
        decode) is listed as an error with a warning, never hidden, never a
        traceback. A directory without ``.guild`` is not a run."""
        # lazy: the listing index (threading, json) loads with the first listing, never in a run's supervisor
        from .index import RunIndex

        with paused():  # a Run a listed run, none in a cycle (gc_pause)
            return self._runs(RunIndex.for_store(self), status, op, label, limit, include_queues, sweep)

    def _runs(self, index, status, op, label, limit, include_queues, sweep) -> list[Run]:
        statuses = _status_set(status)
        if (limit is not None and statuses is None and op is None and label is None and sweep is None
                and include_queues):
            return [e.run() for e in index.newest(limit)]  # the newest N: no need to check every run in full
        out = []
        for e in index.listing():
            if statuses is not None and e.status not in statuses:
                continue
            if not include_queues and e.is_queue:
                continue
            if op is not None and op not in e.op:
                continue
            if label is not None and label not in e.label:
                continue
            if sweep is not None and e.sweep != sweep:
                continue
            out.append(e)
        out.sort(key=lambda e: (e.timestamp, e.id), reverse=True)
        if limit is not None:
            out = out[:limit]
        return [e.run() for e in out]

    def left_locked(self) -> list[Run]:
        """Finished runs whose LOCK was left by a holder killed after it
        recorded the outcome, as the last listing saw them (read afresh)."""
        # lazy: as in runs()
        from .index import RunIndex

        return [Run(e.dir) for e in RunIndex.for_store(self).left_locked()]

    def staged_runs(self) -> list[Run]:
        """Staged runs, oldest first (the order queues start them)."""
        runs = self.runs(status=STAGED)
        runs.reverse()
        return runs

    def select(self, refs, listing: list[Run] | None = None, indices: bool = True) -> list[Run]:
        """Runs named the way Guild names them: a 1-based index in
        ``listing`` (default: every run, newest first) or a range of them
        (``2:4``, ``:3``, ``5:``, ends included); a number or range outside
        the listing is read as an id prefix, as Guild does; else a full id
        or a unique id prefix. Without ``indices`` only ids and prefixes."""
        out: list[Run] = []
        runs = listing
        for ref in refs:
            ref = str(ref).strip()
            if not ref:
                raise RunNotFound("empty run id")
            span = parse_index_range(ref) if indices else None
            if span is not None:
                if runs is None:
                    runs = self.runs()
                start, end = span
                if start >= 0 and (end is None or end <= len(runs)):
                    out.extend(runs[start:end])
                    continue
            out.append(self._by_id_prefix(ref, span))
        return out

    def resolve(self, ref, listing: list[Run] | None = None, indices: bool = True) -> Run:
        """Exactly one run (see ``select``)."""
        runs = self.select([ref], listing, indices)
        if len(runs) != 1:
            raise BadInput(f"{ref!r} names {len(runs)} runs; give one run")
        return runs[0]

    def _by_id_prefix(self, ref: str, span) -> Run:
        if not _is_safe_id(ref):
            if span is not None:
                raise RunNotFound(f"no run at {ref} (an index or range outside the listing, and no run id)")
            raise RunNotFound(f"no run with id {ref!r}")
        if len(ref) == 32 and os.path.isdir(os.path.join(self.runs_dir, ref)):
            return self.run(ref)  # a whole id: no listing of runs/ (viewers poll with one)
        matches = [i for i in self.run_ids() if i.startswith(ref)]
        if not matches:
            if span is not None:
                raise RunNotFound(f"no run at index {ref} and no run id starting with {ref!r}")
            raise RunNotFound(f"no run with id {ref!r}")
        if ref in matches:
            return self.run(ref)
        if len(matches) > 1:
            shown = ", ".join(sorted(m[:8] for m in matches)[:5])
            raise AmbiguousRun(f"run id {ref!r} is ambiguous: it matches {len(matches)} runs ({shown})")
        return self.run(matches[0])

    def prepare_scan(self, max_age: float) -> None:
        """Does the slow part of the next ``scan_waiting(max_age)`` now (its
        look at every run, when one is due), so that the scan under the
        run-status lock is quick."""
        # lazy: as in runs()
        from .index import RunIndex

        index = RunIndex.for_store(self)
        if index.exact_scan_due(max_age):  # else the scan under the lock is the quick one anyway
            index.scan(max_age)

    def scan_waiting(self, max_age: float = 0.0) -> tuple[list[Run], list[Run], list[Run]]:
        """What a claim reads, from the listing index (``RunIndex.scan``):
        (staged oldest first, pending, locked) where locked holds runs with a
        LOCK file (running or dead). Exact when ``max_age`` is 0; else
        whatever Guild changed in place in a run is seen within ``max_age``
        seconds (our own changes and new run directories at once)."""
        # lazy: as in runs()
        from .index import RunIndex

        index = RunIndex.for_store(self)
        staged, pending, locked = index.scan(max_age)
        # What a claim reads of every staged run (its order, GPUs, priority,
        # op) is what is on disk now: the values of a run whose stamp this
        # very pass checked and trusted (under the lock the caller holds),
        # else the files read again. A queue's claim would otherwise open
        # every staged run's attrs again on every claim.
        out = [index.run_if_checked(e) or Run(e.dir) for e in staged]
        out.sort(key=lambda r: (r.timestamp, r.id))
        return out, [Run(e.dir) for e in pending], [Run(e.dir) for e in locked]

def parse_index_range(ref: str):
    """``N`` -> (N-1, N); ``A:B``, ``A:``, ``:B`` -> slice bounds (ends
    included, 1-based); None when ``ref`` is neither (Guild's reading)."""
    if ref.isascii() and ref.isdigit():
        n = int(ref)
        return n - 1, n
    a, colon, b = ref.partition(":")
    if colon and (a or b) and (not a or (a.isascii() and a.isdigit())) and (not b or (b.isascii() and b.isdigit())):
        return (int(a) - 1 if a else 0), (int(b) if b else None)
    return None


def _is_safe_id(ref: str) -> bool:
    return bool(ref) and all(c in "0123456789abcdef" for c in ref) and len(ref) <= 32


def _status_set(status):
    if status is None:
        return None
    if isinstance(status, str):
        status = [status]
    s = set(status)
    bad = s - set(STATUSES)
    if bad:
        raise BadInput(f"unknown status {sorted(bad)[0]!r} (expected one of {', '.join(STATUSES)})")
    return s


__all__ = ["Store", "parse_index_range"]
