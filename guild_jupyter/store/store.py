"""The run store: a Guild home holding ``runs/`` and ``locks/``, its runs
listed (through the listing index) and selected the way Guild names them.

Which home (``home``), what a new run is made of (``new_run``) and how
flags read in labels (``flag_labels``) are modules of their own."""

from __future__ import annotations

import os
import time

from ..errors import AmbiguousRun, BadInput, RunNotFound, StoreError, StoreNotWritable
from .home import default_guild_home
from .locking import run_status_lock
from .run import LOCK, PENDING_MARKER, STAGED, STAGED_MARKER, STATUSES, Run


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

    def notify_change(self) -> None:
        """Touches the change marker queues watch to pick up new runs at once."""
        try:
            with open(self.change_marker, "ab"):
                pass
            os.utime(self.change_marker, None)
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

        statuses = _status_set(status)
        out = []
        now_ns = time.time_ns()
        for entry in RunIndex.for_store(self).listing():
            if entry.trusted(now_ns):
                run = entry.run()
            else:  # active or just written: read from its files, as every listing does
                run = Run(entry.dir)
                try:
                    _ = (run.status, run.op_name, run.label, run.timestamp)  # what filters and sorting read
                except Exception as e:  # e.g. YAML's ValueError for a date 2001-02-30
                    run.mark_damaged(f"unreadable files ({type(e).__name__}: {e})")
            if statuses is not None and run.status not in statuses:
                continue
            if op is not None and op not in run.op_name:
                continue
            if label is not None and label not in run.label:
                continue
            if sweep is not None and run.sweep != sweep:
                continue
            if not include_queues and run.is_queue:
                continue
            out.append(run)
        out.sort(key=lambda r: (r.timestamp, r.id), reverse=True)
        if limit is not None:
            out = out[:limit]
        return out

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

    def scan_waiting(self) -> tuple[list[Run], list[Run], list[Run]]:
        """One pass over the run directories: (staged oldest first, pending,
        locked) where locked holds runs with a LOCK file (running or dead)."""
        staged, pending, locked = [], [], []
        for run_id in self.run_ids():
            gdir = os.path.join(self.runs_dir, run_id, ".guild")
            try:
                names = os.listdir(gdir)
            except OSError:
                continue
            if PENDING_MARKER in names:
                pending.append(Run(os.path.dirname(gdir)))
            elif STAGED_MARKER in names:
                staged.append(Run(os.path.dirname(gdir)))
            elif LOCK in names:
                locked.append(Run(os.path.dirname(gdir)))
        staged.sort(key=lambda r: (r.timestamp, r.id))
        return staged, pending, locked


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
