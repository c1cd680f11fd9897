"""The one listing index of a store: what a listing shows of every run,
kept up to date by one staleness rule. ``Store.runs`` (the CLI, the magics,
the API), the panel, the ``/guild`` page and the REST API all read it.

**The rule.** A run's listed values hold while its *stamp* holds
(``entry.stamp_of``): the modification times of ``.guild`` (every status
change adds or removes a marker there: STAGED, PENDING, LOCK) and of
``.guild/attrs`` (an attr created, removed or replaced atomically), and the
own (mtime, size, inode) of every file a listed value comes from (the
listed attrs and the opref): an attr rewritten in place, as Guild writes
attrs (``guild label``, ``guild run --restart``), changes nothing but its
own stamp. ``guild runs rm`` and ``guild runs restore`` move the run
directory out of or into ``runs/``, whose mtime then moves: only then is
``runs/`` listed again. Mtimes are coarse (a clock tick of a few ms), so a
stamp younger than ``SETTLE_NS`` is never trusted: such a run is read again
on every pass and never persisted. A running run can end without a file
changing (its supervisor killed): the holder of a running run's LOCK is
checked whenever the run is.

**Three passes.**
- ``listing()`` (``Store.runs``: every full listing is exact) checks every
  run's stamp in full (about ten ``stat`` calls a run).
- ``newest(n)`` (``runs -n N``) orders runs by their sort key, so it checks
  for each run only the file that key comes from (attrs/started: one
  ``stat``), and checks in full the runs it returns, again until the
  newest ``n`` are all checked: the rows shown are exact, and so is which
  rows they are, whatever rewrote a ``started``.
- ``update()`` (the viewers' refresh): when the store's change token moved,
  the runs our own transitions name in the change journal
  (``Store.notify_change``), new and removed run directories, and the
  active and settling runs; a full pass when the last one is older than
  ``FULL_PASS_EVERY`` times what it cost (at most 1% of a core), which is
  how a viewer sees what Guild's CLI changed in a run of a store too big
  to check on every refresh. The index remembers which runs its last
  ``CHANGES_KEPT`` changes touched (``changed_since``): a viewer moves
  those in its own arrangement of the runs instead of redoing it.

**Persistence** (``listing_file``). Settled, readable runs (finished,
staged and pending; a running run's holder is checked anyway) are kept in
``cache/guild_jupyter/listing.v4`` under their stamp, so a new process
checks stamps instead of opening every file, and decodes the values of the
rows it shows only. (An ``Entry`` and its stamp: ``entry``.)
"""

from __future__ import annotations

import collections
import heapq
import os
import threading
import time

from ..errors import GuildJupyterError
from . import cold_read as coldlib
from . import listing_file
from .gc_pause import paused
from .entry import (HAS_LOCK, HAS_PENDING, HAS_STAGED, KEY_INO, KEY_MTIME, KEY_SIZE, SETTLE_NS, Entry, decode_all,
                    key_stamp, read_entry, read_new, settling, stamp_of)
from .run import FINISHED, LOCK, PENDING, PENDING_MARKER, RUNNING, STAGED, STAGED_MARKER, Run

__all__ = ["RunIndex", "Entry", "stamp_of", "SETTLE_NS"]

ACTIVE = (STAGED, PENDING, RUNNING)
_MARKER_BITS = ((PENDING_MARKER, HAS_PENDING), (STAGED_MARKER, HAS_STAGED), (LOCK, HAS_LOCK))

FULL_PASS_EVERY = 100  # a full pass at most every 100x its own cost (<= 1% of a core)
SAVE_INTERVAL = 10.0  # seconds between saves of the listing file by refreshing viewers
SAVE_EVERY = 200  # ... and at least 200x what the last save cost (<= 0.5% of a core: 100,000 runs take ~0.5 s)
#: How many run changes (``changed_since``) the index remembers: a viewer
#: further behind regroups every run.
CHANGES_KEPT = 4096
#: A full pass that finds at least this many runs it knows nothing of (no
#: entry, no record in the listing file: a new store, a lost cache) reads
#: them together (``cold_read``: a helper process, threads while the disk
#: is what they wait on).
READ_AHEAD_MIN = 200


class RunIndex:
    """Every run of one store, kept current by its passes. Thread-safe; one
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
        self._saved = None  # listing_file.Saved, until every run has been looked at once
        self._dirty = False
        self._last_save = 0.0
        self._save_cost = 0.0
        self._changes: collections.deque = collections.deque(maxlen=CHANGES_KEPT)  # (version, run id)
        self._warned: dict = {}  # ids of the entries with warnings (what ``warnings`` reads)
        self._token = None
        self._last_full = None
        self._full_cost = 0.0
        self._watch: set = set()  # active or settling runs: looked at on every pass
        self._ids: list | None = None  # runs/ as last listed
        self._id_set: set = set()
        self._ids_changed = True  # runs/ listed anew since the last drop of the runs gone
        self._added: set = set()  # ids new in runs/'s last listing
        self._created_mtime = None  # runs/'s mtime after the last create the journal named, and its runs
        self._created: list = []
        self._listed_whole = True  # False: runs/'s last picture took in our creations without a listing
        self._runs_mtime = None  # runs/'s mtime then (None: list it again)
        self._pass = 0
        self._journal = None  # (inode, offset) read so far of the change journal
        self._last_exact = None  # when scan() last looked at every run's .guild
        self._light: set = set()  # staged runs the last quick scan took as they were (``_staged_held``)
        self._light_pass = 0  # ... in that pass
        self._marked: set = set()  # runs whose .guild holds PENDING, STAGED or LOCK (what scan() sorts)

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

    # -- what callers ask --------------------------------------------------------------

    def listing(self) -> list[Entry]:
        """Every run, each stamp checked in full now (what ``Store.runs`` lists)."""
        with self.lock, paused():
            self.update(full=True)
            decode_all(self.entries.values())
            self._decode([e for e in self.entries.values() if e._values is None])
            return list(self.entries.values())

    def newest(self, n: int) -> list[Entry]:
        """The ``n`` newest runs (Guild's order: ``started``, else
        ``initialized``, then id), newest first, each checked in full now;
        every other run's sort key checked with one ``stat``."""
        with self.lock, paused():
            self.errors = []
            self._pass += 1
            now_ns = time.time_ns()
            ids = self._current_ids(now_ns)
            if ids is None:
                return []
            with _RunsDir(self.store.runs_dir) as fd:
                kept = self._key_pass(ids, fd, now_ns)
                # (timestamp, id), newest first as _order sorts entries: the newest n, all only if needed
                everything = kept
                kept = heapq.nlargest(n, everything)
                saved = self._saved_records()
                taken = 0  # kept records made entries so far (the newest ones)
                while True:
                    top = heapq.nlargest(n, self.entries.values(), key=_order)
                    # A kept record that could be among the newest n becomes an entry, checked like the others.
                    bound = _order(top[-1]) if len(top) >= n else None
                    more = 0
                    while taken < len(kept) and (bound is None and more < n or bound is not None and kept[taken] > bound):
                        run_id = kept[taken][1]
                        taken += 1
                        if run_id not in self.entries and saved is not None and self._from_saved(run_id, saved):
                            more += 1
                    if more:
                        continue
                    if taken >= len(kept) and len(kept) < len(everything) and (bound is None or kept[-1] > bound):
                        kept = sorted(everything, reverse=True)  # entries fell below records not yet taken
                        continue
                    stale = [e for e in top if e.checked != self._pass]
                    for e in stale:
                        self._check(e.id, e, fd, now_ns)
                    if not stale and self._decode([e for e in top if e._values is None], fd) == 0:
                        break
            self._after_pass(now_ns, save=self._dirty)
            return top

    def left_locked(self) -> list[Entry]:
        """Finished runs whose ``.guild`` still held LOCK when last looked
        at: a holder killed between recording the outcome and letting go
        (what a settler clears). Read from the runs with markers only."""
        with self.lock:
            out = []
            for run_id in self._marked:
                e = self.entries.get(run_id)
                if e is not None and e.markers & HAS_LOCK and e.status in FINISHED:
                    out.append(e)
            return out

    def scan(self, max_age: float = 0.0) -> tuple[list[Entry], list[Entry], list[Entry]]:
        """What a queue's claim reads, under the run-status lock: ``(staged,
        pending, locked)`` by the markers each run's ``.guild`` holds
        (PENDING first, then STAGED, then LOCK: a LOCK left by a dead
        holder too). Exact (every run's ``.guild`` stat'ed, one ``stat`` a
        run) when the last exact look is older than ``max_age`` seconds;
        in between, the runs the change journal names, new run directories
        (``runs/`` is listed again when its mtime moved) and the active
        runs (a staged one by its ``.guild`` and ``attrs`` mtimes:
        ``_staged_held``): whatever Guild changed in place in another run
        is then seen within ``max_age`` (a queue's poll interval). A
        claim's cost then follows what changed, not how many runs wait or
        just ended."""
        with self.lock:
            self.errors = []
            self._pass += 1
            now = time.monotonic()
            now_ns = time.time_ns()
            named = self._read_journal()
            self._added = set()
            quick = not (named is None or self._last_exact is None or now - self._last_exact >= max_age)
            ids = self._current_ids(now_ns, self._created if quick else None)
            if ids is None:
                return [], [], []
            self._light = set()
            with _RunsDir(self.store.runs_dir) as fd:
                if not quick:
                    self._guild_pass(ids, fd, now_ns)
                    self._last_exact = now
                else:
                    look = set(self._watch)
                    look.update(named)
                    look.update(self._added)
                    light = self._light = set()
                    self._light_pass = self._pass
                    for run_id in look:
                        if run_id in self._id_set:
                            e = self.entries.get(run_id)
                            if run_id in named or run_id in self._added:
                                self._check(run_id, e, fd, now_ns, markers_only=True)
                            elif e is not None and not e.markers and e.status not in ACTIVE:
                                # Ended, watched only while its stamp settles: no marker of it
                                # changed but through our transitions (which the journal names)
                                # or Guild's, which the next exact scan sees, as for other runs.
                                continue
                            elif self._staged_held(run_id, e, fd, now_ns):
                                light.add(run_id)
                            else:
                                self._check(run_id, e, fd, now_ns, markers_only=True)
            self._after_pass(now_ns, save=False)  # (under the run-status lock: a viewer or listing saves)
            staged, pending, locked = [], [], []
            for run_id in list(self._marked):
                e = self.entries.get(run_id)
                if e is None:
                    continue
                m = e.markers
                if m & HAS_PENDING:
                    pending.append(e)
                elif m & HAS_STAGED:
                    staged.append(e)
                elif m & HAS_LOCK:
                    locked.append(e)
            return staged, pending, locked

    def _guild_pass(self, ids, fd, now_ns: int) -> None:
        """One stat a run (its ``.guild``, where every marker comes and
        goes): a run whose ``.guild`` moved, or that is active, settling or
        unknown, is checked in full."""
        entries = self.entries
        saved = self._saved_records()
        runs_dir = self.store.runs_dir
        watch = self._watch
        settled_before = now_ns - SETTLE_NS
        stat = os.stat
        for run_id in ids:
            e = entries.get(run_id)
            if e is None and saved is not None:
                e = self._from_saved(run_id, saved)
            if e is None or e.stamp is None or run_id in watch or e.stamp[4] >= settled_before:
                self._check(run_id, e, fd, now_ns, markers_only=True)
                continue
            try:
                g = (stat(run_id + "/.guild", dir_fd=fd) if fd is not None
                     else stat(runs_dir + "/" + run_id + "/.guild")).st_mtime_ns
            except OSError:
                g = None
            if g != e.stamp[0]:
                self._check(run_id, e, fd, now_ns, markers_only=True)

    def active(self) -> list[Entry]:
        """Staged, pending and running runs (queues included)."""
        with self.lock:
            return [e for e in (self.entries.get(i) for i in self._watch) if e is not None and e.status in ACTIVE]

    def warnings(self) -> list[str]:
        with self.lock:
            out = list(self.errors)
            for run_id in self._warned:
                out.extend(self.entries[run_id].warnings)
            return out

    def changed_since(self, version: int):
        """The ids of the runs added, removed or changed since ``version``
        (a ``version`` this index had), or None when it no longer knows
        (more than ``CHANGES_KEPT`` changes since): what a viewer that keeps
        its own arrangement of the runs updates instead of redoing it."""
        with self.lock:
            if version == self.version:
                return set()
            changes = self._changes
            if version > self.version or not changes or changes[0][0] > version + 1:
                return None
            out = set()
            for v, run_id in reversed(changes):
                if v <= version:
                    break
                out.add(run_id)
            return out

    def _moved(self, run_id: str) -> None:
        self.version += 1
        self._changes.append((self.version, run_id))

    # -- bringing it up to date ------------------------------------------------------

    def update(self, full: bool | None = None) -> bool:
        """Re-reads what changed; returns whether anything did. ``full``:
        True checks every run's stamp, False only what the change token and
        journal point at and the active and settling runs, None decides
        (see the module docstring)."""
        with self.lock, paused():
            before = self.version
            self.errors = []
            self._pass += 1
            token = self.store.change_token()
            now = time.monotonic()
            now_ns = time.time_ns()
            if full is None:
                full = self._last_full is None or now - self._last_full >= self._full_cost * FULL_PASS_EVERY
            if full:
                self._read_journal()  # before the pass: whatever it names, the pass checks
                self._full_pass(now_ns)
                self._full_cost = time.monotonic() - now
                self._last_full = time.monotonic()
            else:
                self._changed_pass(token, now_ns)
            self._token = token
            self._after_pass(now_ns, save=self._dirty and (
                full or now - self._last_save >= max(SAVE_INTERVAL, SAVE_EVERY * self._save_cost)))
            return self.version != before

    def _full_pass(self, now_ns: int) -> None:
        ids = self._current_ids(now_ns)
        if ids is None:
            return
        entries = self.entries
        saved = self._saved_records()
        unknown = [i for i in ids if i not in entries and (saved is None or i not in saved)]
        ready = _read_unknown(self.store.runs_dir, unknown) if len(unknown) >= READ_AHEAD_MIN else {}
        with _RunsDir(self.store.runs_dir) as fd:
            for run_id in ids:
                got = ready.pop(run_id, None)
                if got is not None:  # read just now, its stamp taken before: as _check would have
                    self._refresh(run_id, None, got[0], now_ns, got[1])
                else:
                    self._check(run_id, entries.get(run_id), fd, now_ns)
        rest = self._saved_records()
        if rest:  # records of runs no longer in runs/: dropped, so that the file's bytes can go
            for run_id in [i for i in rest if i not in self._id_set]:
                del rest[run_id]
        self._saved_records()  # every record taken: the file's bytes go now, not at the next pass

    def _changed_pass(self, token, now_ns: int) -> None:
        look = set(self._watch)
        if token != self._token:
            named = self._read_journal()
            if named is None:  # the journal was rotated under us: what changed is unknown
                self._full_pass(now_ns)
                return
            look.update(named)
            self._added = set()
            self._current_ids(now_ns, self._created)
            look.update(self._added)
        if not look:
            return
        with _RunsDir(self.store.runs_dir) as fd:
            for run_id in look:
                if self._ids is not None and run_id not in self._id_set:
                    continue
                self._check(run_id, self.entries.get(run_id), fd, now_ns)

    def _key_pass(self, ids, fd, now_ns: int) -> list:
        """One stat a run: the file its sort key comes from. A run whose key
        file moved, that is active, settling or unknown, is checked in full.
        Returns ``(timestamp, id)`` of the runs still only in the listing
        file whose key held: no entry is made for them (a ``-n 20`` listing
        of 100,000 runs makes 20)."""
        entries = self.entries
        saved = self._saved_records()
        runs_dir = self.store.runs_dir
        watch = self._watch
        settled_before = now_ns - SETTLE_NS
        stat = os.stat
        kept = []
        for run_id in ids:
            e = entries.get(run_id)
            if e is None:
                rec = saved.get(run_id) if saved is not None else None
                if rec is not None and not rec[17] and rec[5] < settled_before:  # no marker: not active
                    try:  # the record's own key stamp (see Entry.stamp: KEY_* at 6..8, the mask at 3)
                        if rec[3] & 1:
                            k = stat(run_id + "/.guild/attrs/started", dir_fd=fd) if fd is not None else \
                                stat(runs_dir + "/" + run_id + "/.guild/attrs/started")
                            held = (k.st_mtime_ns, k.st_size, k.st_ino) == (rec[6], rec[7], rec[8])
                        else:
                            held = (stat(run_id + "/.guild/attrs", dir_fd=fd) if fd is not None else
                                    stat(runs_dir + "/" + run_id + "/.guild/attrs")).st_mtime_ns == rec[6]
                    except OSError:
                        held = False
                    if held:
                        kept.append((rec[11], run_id))
                        continue
                if saved is not None:
                    e = self._from_saved(run_id, saved)
            if e is None or e.stamp is None or run_id in watch or e.stamp[4] >= settled_before:
                self._check(run_id, e, fd, now_ns)
                continue
            s = e.stamp
            if key_stamp(run_id, fd, runs_dir, s) != (s[KEY_MTIME], s[KEY_SIZE], s[KEY_INO]):
                self._check(run_id, e, fd, now_ns)
        return kept

    def _after_pass(self, now_ns: int, save: bool) -> None:
        if self._ids is not None and self._ids_changed:
            present = self._id_set
            gone = [i for i in self.entries if i not in present]
            for run_id in gone:
                self._drop(run_id)
            self._ids_changed = False
        self._check_running()
        if save:
            self._save(now_ns)

    # -- one run -----------------------------------------------------------------------------

    def _check(self, run_id: str, old: Entry | None, fd, now_ns: int, markers_only: bool = False) -> None:
        """Checks one run's stamp in full; reads it again when the stamp moved.

        ``markers_only`` (a claim's scan, which reads nothing of a run but
        the markers in its ``.guild``): a run whose stamp held but is too
        young to be trusted has its markers looked at (three ``stat``
        calls) instead of being read again in full; it stays unchecked (and
        watched), so the next listing still reads it. A queue that claims
        while short runs end would otherwise read every run that ended in
        the last ``SETTLE_NS`` again on every claim."""
        if old is None:
            saved = self._saved_records()
            if saved is not None:
                old = self._from_saved(run_id, saved)
            if old is None:  # never read: stamped as it is read, in one look
                got = read_new(self.store.runs_dir, run_id, now_ns)
                if got is not None:
                    self._refresh(run_id, None, got[0], now_ns, got[1])
                    return
        st = stamp_of(run_id, fd, self.store.runs_dir, old.stamp if old is not None else None)
        if old is not None and st is not None and old.stamp == st:
            young = settling(st, now_ns)
            if not young or (markers_only and old._values is not None and self._markers_held(run_id, old, fd)):
                if old.status != RUNNING or old.lock_remote or Run(old.dir).lock_pid_alive():
                    if young:
                        self._watch.add(run_id)  # read again in full by the next pass that lists it
                        return
                    old.checked = self._pass
                    if old.status in ACTIVE:
                        self._watch.add(run_id)
                    else:
                        self._watch.discard(run_id)
                    return
        if st is None and old is None and not os.path.isdir(self.store.runs_dir + "/" + run_id):
            return
        self._refresh(run_id, old, st, now_ns, full_look=old is None)  # (no old stamp: no hint was used)

    def exact_scan_due(self, max_age: float) -> bool:
        """Whether ``scan(max_age)`` would look at every run now (the part
        a claim does before taking the run-status lock)."""
        with self.lock:
            return self._last_exact is None or time.monotonic() - self._last_exact >= max_age

    def run_if_checked(self, e: Entry) -> Run | None:
        """A ``Run`` holding ``e``'s values when the last pass trusted them
        (checked its stamp in full, or, a staged run between two exact
        scans, found its ``.guild`` and ``attrs`` unchanged), else None (the
        caller reads the run's files)."""
        with self.lock:
            light = self._light_pass == self._pass and e.id in self._light
            if (e.checked != self._pass and not light) or e._values is None or e.stamp is None:
                return None
            return Run.with_values(e.dir, e._values, e.warnings)

    def _staged_held(self, run_id: str, e: Entry | None, fd, now_ns: int) -> bool:
        """Between two exact scans: a staged run, settled, whose ``.guild``
        (its markers) and ``attrs`` (an attr written by us, always
        replaced whole) have not moved, is taken as it was (two ``stat``
        calls instead of its whole stamp). What Guild rewrote in place in a
        staged run's attrs is then seen by the next exact scan, within its
        ``max_age``, as for any run not active; a claim reads the attrs a
        start needs from the files."""
        if e is None or e.status != STAGED or e._values is None or e.stamp is None or settling(e.stamp, now_ns):
            return False
        base = run_id if fd is not None else self.store.runs_dir + "/" + run_id
        try:
            return (os.stat(base + "/.guild", dir_fd=fd).st_mtime_ns == e.stamp[0]
                    and os.stat(base + "/.guild/attrs", dir_fd=fd).st_mtime_ns == e.stamp[1])
        except OSError:
            return False

    def _markers_held(self, run_id: str, old: Entry, fd) -> bool:
        """Whether the markers in the run's ``.guild`` (PENDING, STAGED, LOCK)
        are still those of ``old``."""
        base = run_id + "/.guild/" if fd is not None else self.store.runs_dir + "/" + run_id + "/.guild/"
        markers = 0
        for name, bit in _MARKER_BITS:
            try:
                os.stat(base + name, dir_fd=fd)
            except OSError:
                continue
            markers |= bit
        return markers == old.markers

    def _decode(self, entries, fd=None) -> int:
        """Decodes the values of ``entries`` kept encoded; a run whose
        values in the listing file are unusable is read from its files (and
        the file written again). Returns how many were read so."""
        bad = [e for e in entries if not e.decoded()]
        now_ns = time.time_ns()
        for e in bad:
            self._refresh(e.id, None, stamp_of(e.id, fd, self.store.runs_dir), now_ns)
        if bad:
            self._save(now_ns)
        return len(bad)

    def _from_saved(self, run_id: str, saved) -> Entry | None:
        """An entry from the listing file (values left encoded), or None."""
        rec = saved.pop(run_id, None)
        if rec is None:
            return None
        e = Entry(None, listing_file.Saved.stamp_of(rec), run_dir=self.store.runs_dir + "/" + run_id,
                  raw=self._saved.values_of(rec), keys=listing_file.Saved.keys_of(rec), run_id=run_id)
        self.entries[run_id] = e
        if e.markers:
            self._marked.add(run_id)
        self._moved(run_id)
        return e

    def _refresh(self, run_id: str, old: Entry | None, st, now_ns: int, new: Entry | None = None,
                 full_look: bool = False) -> None:
        if new is None:
            new = read_entry(self.store.runs_dir + "/" + run_id, st, full_look)
        if new is None:
            if old is not None:
                self._drop(run_id)
            return
        new.checked = self._pass
        self.entries[run_id] = new
        if new.markers:
            self._marked.add(run_id)
        else:
            self._marked.discard(run_id)
        if new.warnings:
            self._warned[run_id] = None
        else:
            self._warned.pop(run_id, None)
        if (old is None or old.values != new.values or old.warnings != new.warnings
                or old.lock_pid != new.lock_pid):
            self._moved(run_id)
        if new.status in ACTIVE or settling(st, now_ns):
            self._watch.add(run_id)
        else:
            self._watch.discard(run_id)
        self._dirty = True

    def _drop(self, run_id: str) -> None:
        self.entries.pop(run_id, None)
        self._watch.discard(run_id)
        self._marked.discard(run_id)
        self._warned.pop(run_id, None)
        self._moved(run_id)
        self._dirty = True

    def _check_running(self) -> None:
        """A run whose process died without recording an outcome turns to
        ``error`` with no file changing: check the holders of running runs."""
        now_ns = time.time_ns()
        for run_id in list(self._watch):
            e = self.entries.get(run_id)
            if e is None or e.status != RUNNING or e.lock_remote or e.checked == self._pass:
                continue
            if not Run(e.dir).lock_pid_alive():
                self._refresh(run_id, e, stamp_of(run_id, None, self.store.runs_dir), now_ns)

    # -- runs/ and the listing file ----------------------------------------------------------

    def _current_ids(self, now_ns: int, created=None):
        """The run ids in ``runs/``: listed again only when its mtime moved
        (or is too young to be trusted), unless ``created`` (the runs the
        change journal says our own ``create`` moved in; None: a pass that
        looks at every run, which lists runs/ itself when its last picture
        came from the journal) explains the move; None when it cannot be
        read."""
        try:
            m = os.stat(self.store.runs_dir).st_mtime_ns
        except FileNotFoundError:
            m = None
        except OSError as e:
            self.errors.append(f"cannot read {self.store.runs_dir}: {e.strerror}")
            return None
        if m is None:
            self._set_ids([], None)
            return self._ids
        if self._ids is not None and m == self._runs_mtime and (created is not None or self._listed_whole):
            return self._ids
        if created and self._ids is not None and m == self._created_mtime:
            # runs/ moved as far as runs we just made took it (the journal says so): no listing of it.
            # (A directory another program added in that same moment waits for the next listing of runs/.)
            new = [i for i in created if i not in self._id_set]
            self._ids = self._ids + new
            self._id_set.update(new)
            self._added = set(new)
            self._runs_mtime = m
            self._listed_whole = False  # the next pass that looks at every run lists runs/ itself
            self._created = []
            return self._ids
        trusted = m if now_ns - m >= SETTLE_NS else None
        if self._ids is None and trusted is not None:
            saved = self._load_saved()
            if saved.runs_mtime == m:
                self._set_ids(list(saved.records) + list(saved.others), m, from_file=True)
                self._listed_whole = True
                return self._ids
        try:
            ids = self.store.run_ids()
        except GuildJupyterError as e:
            self.errors.append(str(e))
            return None
        self._set_ids(ids, trusted)
        self._listed_whole = True
        self._created = []
        return ids

    def _set_ids(self, ids: list, runs_mtime, from_file: bool = False) -> None:
        new = set(ids)
        if not from_file:
            known = self._id_set if self._ids is not None else set(self._load_saved().ids())
            if new != known:
                self._dirty = True  # the file's picture of runs/ is out of date (its mtime alone: kept next time)
                self._ids_changed = True
                self._added = new - known  # what a pass that looks at changes only must look at
        self._ids = ids
        self._id_set = new
        self._runs_mtime = runs_mtime

    def _load_saved(self):
        if self._saved is None:
            self._saved = listing_file.load(self.path)
        return self._saved

    def _saved_records(self):
        """The listing file's records not yet taken into ``entries``."""
        saved = self._load_saved()
        if saved.records:
            return saved.records
        saved.buf = b""  # every record taken: its entries hold their own values (the file's bytes go)
        return None

    def _read_journal(self):
        """Run ids named in the change journal since the last read ([] on
        the first read), or None when it was rotated meanwhile. A ``+MTIME``
        token (``Store.notify_change(created=True)``) records ``runs/``'s
        mtime right after our ``create`` moved the runs that follow it in."""
        ino, offset, tokens = self.store.read_changes(self._journal)
        first = self._journal is None
        self._journal = (ino, offset)
        if first or tokens is None:
            return [] if first else None
        ids = []
        for tok in tokens:
            if tok[:1] == "+":
                try:
                    self._created_mtime = int(tok[1:])
                except ValueError:
                    self._created_mtime = None
            else:
                ids.append(tok)
        self._created += ids  # (kept until runs/ is listed or they are taken: only new ones matter)
        return ids

    def _save(self, now_ns: int) -> None:
        self._dirty = False
        t = time.monotonic()
        rest = self._saved_records()
        if rest:  # runs not looked at since the file was loaded keep their records as they were
            for run_id in [i for i in rest if i in self._id_set]:
                self._from_saved(run_id, rest)
        listing_file.save(self.path, self.entries.values(), now_ns, self._runs_mtime,
                          self._ids if self._runs_mtime is not None else None)
        self._last_save = time.monotonic()
        self._save_cost = self._last_save - t

def _read_unknown(runs_dir: str, ids: list, probe: int = 32) -> dict:
    """``{id: (stamp, entry)}`` of many runs never read (``cold_read``)."""
    return coldlib.read_many(runs_dir, ids, probe)


def _order(e: Entry):
    return (e.timestamp, e.id)


class _RunsDir:
    """``runs/`` opened for the stat calls of a pass (relative lookups: ~20%
    faster); None inside when it cannot be opened (paths are then joined)."""

    def __init__(self, path: str):
        self.path = path
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            self.fd = None
        return self.fd

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
