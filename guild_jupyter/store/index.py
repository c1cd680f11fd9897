"""The one listing index of a store: what a listing shows of every run,
kept up to date by one staleness rule. ``Store.runs`` (the CLI, the magics,
the API), the panel, the ``/guild`` page and the REST API all read it.

**The rule.** A run's listed values hold while its *stamp* holds: the
modification times of ``.guild`` (every status change adds or removes a
marker there: STAGED, PENDING, LOCK), of ``.guild/attrs`` (every attr we
write is renamed into it; Guild creates and deletes attr files there) and
of ``.guild/attrs/label`` (the one attr Guild rewrites in place, with
``guild label``). ``guild runs rm`` and ``guild runs restore`` move the run
directory out of or into ``runs/``: the set of runs changes, and the store's
change token (``runs/``'s own mtime) with it. Mtimes are coarse (a clock
tick of a few ms), so a stamp younger than ``SETTLE_NS`` is never trusted:
such a run is read again on every pass and never persisted. A running run
can end without a file changing (its supervisor killed): the holder of a
running run's LOCK is checked on every pass.

**The cadence.** ``update()`` stats every run (three ``stat`` calls, ~9 µs
a run) when the change token moved, when asked (``Store.runs``: every
listing is exact) or when the last full pass is older than
``FULL_PASS_EVERY`` times what it cost; so a store of up to ~1,000 runs is
checked in full on every (1 s) panel refresh, and 10,000 runs every ~7 s,
at most 1% of a core. Between full passes only active and settling runs
are looked at.

**Persistence** (``listing_file``). Finished, settled, readable runs are
kept in ``cache/guild_jupyter/listing.json`` under their stamp, so a new
process lists 10,000 runs without opening 50,000 files. The file is
untrusted like every other file of the store: an entry of the wrong shape
is dropped and the run read from its own files. (An ``Entry`` and its
stamp: ``entry``.)
"""

from __future__ import annotations

import os
import stat as stat_
import threading
import time

from ..errors import GuildJupyterError
from . import listing_file
from .entry import SETTLE_NS, Entry, read_entry, settling, stamp_of
from .run import FINISHED, PENDING, RUNNING, STAGED, Run

__all__ = ["RunIndex", "Entry", "stamp_of", "SETTLE_NS"]

ACTIVE = (STAGED, PENDING, RUNNING)

FULL_PASS_EVERY = 100  # a full pass at most every 100x its own cost (<= 1% of a core)
SAVE_INTERVAL = 10.0  # seconds between saves of the listing file by refreshing viewers


class RunIndex:
    """Every run of one store, kept current by ``update()``. Thread-safe; one
    per store per process (``for_store``)."""

    _shared: dict = {}
    _shared_lock = threading.Lock()

    def __init__(self, store):
        self.store = store
        self.path = os.path.join(store.private_dir, listing_file.NAME)
        self.entries: dict[str, Entry] = {}
        self.version = 0  # moves whenever a run is added, removed or any listed value changes
        self.lock = threading.RLock()
        self.errors: list[str] = []
        self._saved = None  # id -> [stamp, values] as loaded, until the first full pass
        self._dirty = False
        self._last_save = 0.0
        self._token = None
        self._last_full = None
        self._full_cost = 0.0
        self._watch: set = set()  # active or settling runs: looked at on every pass

    @classmethod
    def for_store(cls, store) -> "RunIndex":
        with cls._shared_lock:
            index = cls._shared.get(store.home)
            if index is None:
                index = cls._shared[store.home] = cls(store)
            return index

    @classmethod
    def forget(cls, home: str | None = None) -> None:
        """Drops this process's index of ``home`` (every store without one):
        the next use starts from the listing file, as a new process would."""
        with cls._shared_lock:
            if home is None:
                cls._shared.clear()
            else:
                cls._shared.pop(os.path.abspath(home), None)

    # -- bringing it up to date ------------------------------------------------------

    def update(self, full: bool | None = None) -> bool:
        """Re-reads what changed; returns whether anything did. ``full``:
        True stats every run, False only active and settling ones, None
        decides (see the module docstring)."""
        with self.lock:
            before = self.version
            self.errors = []
            token = self.store.change_token()
            now = time.monotonic()
            if full is None:
                full = (token != self._token or self._last_full is None
                        or now - self._last_full >= self._full_cost * FULL_PASS_EVERY)
            if full:
                self._full_pass(token)
                self._full_cost = time.monotonic() - now
                self._last_full = time.monotonic()
            else:
                self._watch_pass()
            self._check_running()
            if self._dirty and (full or now - self._last_save >= SAVE_INTERVAL):
                self._save(now)
            return self.version != before

    def listing(self) -> list[Entry]:
        """Every run, after a full pass (what ``Store.runs`` lists)."""
        with self.lock:
            self.update(full=True)
            return list(self.entries.values())

    def _full_pass(self, token) -> None:
        try:
            ids = self.store.run_ids()
        except GuildJupyterError as e:
            self.errors.append(str(e))
            return
        now_ns = time.time_ns()
        # A token written within the settle window may move again without its
        # mtime changing: keep doing full passes until it is older.
        recent = any(isinstance(t, int) and now_ns - t < SETTLE_NS for t in token)
        self._token = None if recent else token
        if self._saved is None:
            self._saved = listing_file.load(self.path)
        saved, self._saved = self._saved, {}
        entries = self.entries
        prefix = self.store.runs_dir + os.sep
        try:  # stat relative to runs/: shorter lookups, ~20% faster
            runs_fd = os.open(self.store.runs_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            runs_fd = None
        stat, isdir, settled_before = os.stat, stat_.S_ISDIR, now_ns - SETTLE_NS
        try:
            for run_id in ids:  # the hot loop of a 10,000-run store: keep it lean
                g = run_id + "/.guild"
                try:
                    gs = stat(g, dir_fd=runs_fd) if runs_fd is not None else stat(prefix + g)
                    if not isdir(gs.st_mode):
                        raise NotADirectoryError
                except OSError:
                    st = None
                else:
                    try:
                        a = (stat(g + "/attrs", dir_fd=runs_fd) if runs_fd is not None
                             else stat(prefix + g + "/attrs")).st_mtime_ns
                    except OSError:
                        a = 0
                    try:
                        lab = (stat(g + "/attrs/label", dir_fd=runs_fd) if runs_fd is not None
                               else stat(prefix + g + "/attrs/label")).st_mtime_ns
                    except OSError:
                        lab = 0
                    st = (gs.st_mtime_ns, a, lab)
                old = entries.get(run_id)
                if old is not None and st is not None and old.stamp == st and max(st) < settled_before:
                    continue
                self._pass_one(run_id, old, st, now_ns, saved, prefix)
        finally:
            if runs_fd is not None:
                os.close(runs_fd)
        present = set(ids)
        for run_id in [i for i in entries if i not in present]:
            self._drop(run_id)
        if saved.keys() - entries.keys():
            self._dirty = True

    def _pass_one(self, run_id, old, st, now_ns, saved, prefix) -> None:
        """A run whose stamp changed (or is new): from the listing file when
        its entry still holds, else from its files."""
        if old is None and st is not None and run_id in saved and not settling(st, now_ns):
            e = listing_file.from_saved(prefix + run_id, saved[run_id], st)
            if e is not None:
                self.entries[run_id] = e
                self.version += 1
                return
        self._refresh(run_id, old, st, now_ns)

    def _watch_pass(self) -> None:
        now_ns = time.time_ns()
        prefix = self.store.runs_dir + os.sep
        for run_id in list(self._watch):
            st = stamp_of(prefix + run_id + "/.guild")
            old = self.entries.get(run_id)
            if old is not None and st is not None and old.stamp == st and not settling(st, now_ns):
                if old.status not in ACTIVE:
                    self._watch.discard(run_id)
                continue
            if st is None and not os.path.isdir(prefix + run_id):
                self._drop(run_id)  # removed (guild runs rm, our delete)
                continue
            self._refresh(run_id, old, st, now_ns)

    def _refresh(self, run_id: str, old: Entry | None, st, now_ns: int) -> None:
        new = read_entry(self.store.runs_dir + os.sep + run_id, st)
        if new is None:
            if old is not None:
                self._drop(run_id)
            return
        self.entries[run_id] = new
        if old is None or old.values != new.values or old.warnings != new.warnings or old.lock_pid != new.lock_pid:
            self.version += 1
        if new.status in ACTIVE or settling(st, now_ns):
            self._watch.add(run_id)
        else:
            self._watch.discard(run_id)
        if new.status in FINISHED and not new.damaged:
            self._dirty = True

    def _drop(self, run_id: str) -> None:
        self.entries.pop(run_id, None)
        self._watch.discard(run_id)
        self.version += 1
        self._dirty = True

    def _check_running(self) -> None:
        """A run whose process died without recording an outcome turns to
        ``error`` with no file changing: check the holders of running runs."""
        now_ns = time.time_ns()
        for run_id in list(self._watch):
            e = self.entries.get(run_id)
            if e is None or e.status != RUNNING or e.lock_remote:
                continue
            if not Run(e.dir).lock_pid_alive():
                self._refresh(run_id, e, stamp_of(e.dir + "/.guild"), now_ns)

    def _save(self, now: float) -> None:
        out = listing_file.saved_form(self.entries.values(), time.time_ns())
        self._dirty = False
        self._last_save = now
        listing_file.save(self.path, out)

    # -- what viewers ask ----------------------------------------------------------------

    def active(self) -> list[Entry]:
        """Staged, pending and running runs (queues included)."""
        with self.lock:
            return [e for e in (self.entries.get(i) for i in self._watch) if e is not None and e.status in ACTIVE]

    def warnings(self) -> list[str]:
        with self.lock:
            out = list(self.errors)
            for e in self.entries.values():
                out.extend(e.warnings)
            return out
