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

**Persistence.** Finished, settled, readable runs are kept in
``cache/guild_jupyter/listing.json`` under their stamp, so a new process
lists 10,000 runs without opening 50,000 files. The file is untrusted like
every other file of the store: an entry of the wrong shape is dropped and
the run read from its own files.
"""

from __future__ import annotations

import json
import os
import stat as stat_
import threading
import time

from . import attrs as attrlib
from .run import FINISHED, PENDING, RUNNING, STAGED, Run

__all__ = ["RunIndex", "Entry", "stamp_of", "SETTLE_NS"]

NAME = "listing.json"
VERSION = 3
#: The attrs a listing shows (besides status and opref).
KEYS = ("started", "initialized", "stopped", "label", "run_params", "exit_status", "flags", "unstaged", "queue_id")
_CACHED = KEYS + ("status", "_opref")
ACTIVE = (STAGED, PENDING, RUNNING)

SETTLE_NS = 2_000_000_000  # a stamp this young is read again on every pass
FULL_PASS_EVERY = 100  # a full pass at most every 100x its own cost (<= 1% of a core)
SAVE_INTERVAL = 10.0  # seconds between saves of the listing file by refreshing viewers


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


def _settling(stamp, now_ns: int) -> bool:
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
            self.op = _op_name(values["_opref"])
            self.lock_pid = None
            self.lock_remote = False
        else:
            self.id = run.id
            self.dir = run.dir
            self.values = {k: run._cache[k] for k in _CACHED if k in run._cache}
            self.warnings = list(run.warnings)
            self.op = run.op_name
            running = self.values.get("status") == RUNNING
            self.lock_pid = run.lock_pid() if running else None
            self.lock_remote = running and run.has_marker("LOCK.remote")
        self.is_queue = self.op in ("queue", "guild_jupyter:queue")
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

    @property
    def gpus(self):
        params = self.values.get("run_params")
        g = params.get("gpus") if isinstance(params, dict) else None
        return None if g in (None, "") else str(g)

    @property
    def label(self) -> str:
        v = self.values.get("label")
        return "" if v is None else str(v)

    @property
    def flags(self) -> dict:
        v = self.values.get("flags")
        return v if isinstance(v, dict) else {}

    def trusted(self, now_ns: int) -> bool:
        """Whether a listing may use these values instead of the run's files."""
        return self.damaged or (self.status in FINISHED and not _settling(self.stamp, now_ns))

    def run(self) -> Run:
        """A ``Run`` whose listed attrs are these values (reads nothing)."""
        r = Run(self.dir)
        r._cache.update(self.values)
        r.warnings = list(self.warnings)
        return r


def read_entry(run_dir: str, stamp) -> Entry | None:
    """The entry of ``run_dir`` read from its files; None when it is no run.
    A run that cannot be read is an error with a warning, never hidden."""
    from .store import Store

    run = Run(run_dir)
    if stamp is None:
        if not Store._is_run(run):
            return None
        if not run.warnings:  # .guild stat'ed fine meanwhile, or attrs/ alone is odd
            Store._list_damaged(run, ".guild is not a readable directory")
        return Entry(run, None, damaged=True)
    try:
        status = run.status
        for k in KEYS:
            run.get(k)
        _ = (run.op_name, run.label, run.timestamp)  # what filters and sort keys read: neither may raise
    except Exception as e:  # e.g. YAML's ValueError for a date 2001-02-30
        Store._list_damaged(run, f"unreadable files ({type(e).__name__}: {e})")
        return Entry(run, stamp, damaged=True)
    return Entry(run, stamp)


# -- the persisted part ------------------------------------------------------------------


_CACHED_SET = frozenset(_CACHED)


def _op_name(opref) -> str:
    """``Run.op_name`` of an opref tuple (kind, pkg, version, model, op)."""
    kind, _pkg, _ver, model, op = opref
    if not op:
        return "?"
    if kind == "script" or not model:
        return op
    return f"{model}:{op}"


def _valid_values(values) -> bool:
    """The shape ``_save`` writes: every listed attr and nothing else, the
    opref as five strings, a finished status and int sort keys (the other
    values are whatever the attr files hold: their readers check the types)."""
    if type(values) is not dict or values.keys() != _CACHED_SET:
        return False
    opref = values["_opref"]
    if type(opref) is not list or len(opref) != 5:
        return False
    for x in opref:
        if type(x) is not str:
            return False
    if values["status"] not in FINISHED:
        return False
    for k in ("started", "initialized", "stopped"):
        v = values[k]
        if v is not None and type(v) is not int:
            return False
    return True


def _dumpable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return {}
    if isinstance(data, dict) and data.get("v") == VERSION and isinstance(data.get("runs"), dict):
        return data["runs"]
    return {}


def _from_saved(run_dir: str, saved, stamp) -> Entry | None:
    """An entry from the listing file when it has the right shape and its
    stamp still holds; the values are the only keys it may set."""
    if type(saved) is not list or len(saved) != 2 or list(stamp) != saved[0] or not _valid_values(saved[1]):
        return None
    values = dict(saved[1])
    values["_opref"] = tuple(values["_opref"])
    return Entry(None, stamp, run_dir=run_dir, values=values)


# -- the index ----------------------------------------------------------------------------


class RunIndex:
    """Every run of one store, kept current by ``update()``. Thread-safe; one
    per store per process (``for_store``)."""

    _shared: dict = {}
    _shared_lock = threading.Lock()

    def __init__(self, store):
        self.store = store
        self.path = os.path.join(store.private_dir, NAME)
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
        from ..errors import GuildJupyterError

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
            self._saved = _load(self.path)
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
        if old is None and st is not None and run_id in saved and not _settling(st, now_ns):
            e = _from_saved(prefix + run_id, saved[run_id], st)
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
            if old is not None and st is not None and old.stamp == st and not _settling(st, now_ns):
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
        if new.status in ACTIVE or _settling(st, now_ns):
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
        now_ns = time.time_ns()
        out = {}
        for e in self.entries.values():
            if e.status in FINISHED and not e.damaged and not e.warnings and not _settling(e.stamp, now_ns):
                values = {k: e.values.get(k) for k in _CACHED}
                values["_opref"] = list(values["_opref"] or ("", "", "", "", ""))
                out[e.id] = [list(e.stamp), values]
        self._dirty = False
        self._last_save = now
        try:
            text = json.dumps({"v": VERSION, "runs": out}, separators=(",", ":"))
        except (TypeError, ValueError):  # a value YAML gave that JSON cannot hold (a date): leave that run out
            out = {k: v for k, v in out.items() if _dumpable(v)}
            text = json.dumps({"v": VERSION, "runs": out}, separators=(",", ":"))
        try:
            attrlib.write_atomic(self.path, text)
        except OSError:
            pass  # a read-only store still lists, just without the file

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
