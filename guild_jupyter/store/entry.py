"""What the listing index (``index``) knows of one run: its ``Entry``,
read from the run's files under a *stamp*, and the stamp itself (the
staleness rule is described in ``index``'s docstring).

A stamp is taken *before* the files are read: a file changed while it is
read then leaves a stamp that no longer holds, and the run is read again
next time (taken after, the old values would hold under the new stamp)."""

from __future__ import annotations

import json
import os
import stat as stat_
import sys
import time

from . import attrs as attrlib
from .markers import LOCK, LOCK_REMOTE, PENDING_MARKER, STAGED_MARKER
from .records import priority_of
from .regular_file import read_small_stat
from .scalars import reader as scalarlib
from .run import FINISHED, QUEUE_OPS, RUNNING, Run, STATUSES, flags_of, gpus_of, label_of, op_name_of, sweep_of

#: The attrs a listing shows (besides status and opref): a run row's, then
#: what ``runs --json`` and a row's words add (most runs have none of those:
#: an absent attr costs a listing nothing once its stamp found it absent).
KEYS = ("started", "initialized", "stopped", "label", "run_params", "exit_status", "flags", "unstaged", "queue_id",
        "priority", "after", "after_failure", "sweep",
        "cmd", "comments", "marked", "tags", "retry_attempt", "retry_origin", "retry_of", "retries", "stopped_by",
        "dask_worker", "dask_host")
#: ``_opref_text``: the opref line as Guild wrote it (what ``runs --json`` prints).
CACHED = KEYS + ("status", "_opref", "_opref_text")

#: The files whose own (mtime, size, inode) are part of a run's stamp: every
#: file a listed value comes from. An attr rewritten in place (as Guild
#: writes attrs: ``guild label``, ``guild run --restart``) changes its own
#: stamp and nothing else; one created or removed changes ``attrs/``.
STAMPED = tuple("/.guild/attrs/" + k for k in KEYS) + ("/.guild/opref",)
_STARTED_BIT = 1  # STAMPED[0] is attrs/started: the sort key's file

SETTLE_NS = 2_000_000_000  # a stamp this young is read again on every pass
NONE_INT = -(1 << 63)  # an int field that holds no int (persisted form)

#: Bits of ``Entry.markers``: which of the status files ``.guild`` holds.
HAS_PENDING, HAS_STAGED, HAS_LOCK = 1, 2, 4

#: Positions in a stamp tuple.
G, A, MASK, FILES, NEWEST, KEY_MTIME, KEY_SIZE, KEY_INO = range(8)


def stamp_of(run_id: str, runs_fd, runs_dir: str = "", hint=None):
    """The stamp of ``runs/<run_id>``: ``(mtime .guild, mtime attrs/, which
    STAMPED files exist (bits), hash of their (mtime, size, inode), the
    newest mtime of all, and the sort key's file (mtime, size, inode):
    attrs/started, else attrs/ itself)``, all in ns; None when ``.guild`` is
    no readable directory. Paths are relative to ``runs_fd`` (an open
    ``runs/``), else under ``runs_dir``. ``hint``: the run's previous stamp;
    when attrs/ has not changed since, only the files that existed then are
    looked at (a file created or removed would have changed attrs/, or
    .guild for the opref)."""
    stat = os.stat
    base = run_id if runs_fd is not None else runs_dir + "/" + run_id
    try:
        gs = stat(base + "/.guild", dir_fd=runs_fd)
    except OSError:
        return None
    if not stat_.S_ISDIR(gs.st_mode):
        return None
    g = newest = gs.st_mtime_ns
    try:
        a = stat(base + "/.guild/attrs", dir_fd=runs_fd).st_mtime_ns
    except OSError:
        a = 0
    if a > newest:
        newest = a
    stamping = _Stamping(newest, a)
    for bit, path in (_stamped(hint[MASK]) if hint is not None and hint[A] == a and hint[G] == g else _ALL_STAMPED):
        try:
            s = stat(base + path, dir_fd=runs_fd)
        except OSError:
            continue
        stamping.add(bit, s)
    return stamping.stamp(g, a)


_ALL_STAMPED = tuple((1 << i, path) for i, path in enumerate(STAMPED))  # (bit, path) of each stamped file
_STAMPED_OF_MASK: dict = {}


def _stamped(mask: int) -> tuple:
    """``(bit, path)`` of the stamped files a stamp's mask names (a few
    masks are shared by every run: one walk of ``STAMPED`` each, not one a
    run)."""
    got = _STAMPED_OF_MASK.get(mask)
    if got is None:
        got = tuple(x for x in _ALL_STAMPED if mask & x[0])
        if len(_STAMPED_OF_MASK) < 4096:  # (a mask comes from a file: never let them grow without bound)
            _STAMPED_OF_MASK[mask] = got
    return got


class _Stamping:
    """A stamp being made: the stamped files found so far (their bits, and
    (mtime, size, inode) each), the newest mtime, the sort key's file."""

    __slots__ = ("mask", "parts", "newest", "key")

    def __init__(self, newest: int, a: int):
        self.mask = 0
        self.parts: list = []
        self.newest = newest
        self.key = (a, 0, 0)

    def add(self, bit: int, s) -> None:
        m = s.st_mtime_ns
        self.mask |= bit
        self.parts += (bit, m, s.st_size, s.st_ino)
        if m > self.newest:
            self.newest = m
        if bit == _STARTED_BIT:
            self.key = (m, s.st_size, s.st_ino)

    def stamp(self, g: int, a: int) -> tuple:
        key = self.key
        return (g, a, self.mask, hash(tuple(self.parts)), self.newest, key[0], key[1], key[2])


def key_stamp(run_id: str, runs_fd, runs_dir: str, stamp):
    """``(mtime, size, inode)`` of the file a run's sort key comes from, as
    ``stamp_of`` records it (attrs/started, else attrs/ itself); None when
    it cannot be stat'ed. One stat: what a ``-n N`` listing pays for the
    runs it does not show."""
    base = run_id if runs_fd is not None else runs_dir + "/" + run_id
    try:
        if stamp[MASK] & _STARTED_BIT:
            s = os.stat(base + "/.guild/attrs/started", dir_fd=runs_fd)
            return (s.st_mtime_ns, s.st_size, s.st_ino)
        return (os.stat(base + "/.guild/attrs", dir_fd=runs_fd).st_mtime_ns, 0, 0)
    except OSError:
        return None


def settling(stamp, now_ns: int) -> bool:
    return stamp is None or now_ns - stamp[NEWEST] < SETTLE_NS


def _int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class Entry:
    """What a listing knows of one run: Run attr values under a stamp.

    The values of an entry loaded from the listing file stay encoded until
    asked for (``values``): a ``-n 20`` listing of 100,000 runs decodes 20;
    if they turn out unusable, the run is read from its files then."""

    __slots__ = ("id", "_runs", "stamp", "_values", "_raw", "warnings", "_op", "is_queue", "lock_pid",
                 "lock_remote", "damaged", "status", "started", "stopped", "timestamp", "checked", "markers",
                 "_sweep", "_unstaged")

    def __init__(self, run: Run | None, stamp, damaged: bool = False, *, run_dir: str = "", raw: bytes = b"",
                 keys=None, run_id: str | None = None):
        """From a ``Run`` just read, or (``run=None``) from the listing file:
        ``raw`` (the values, JSON) and ``keys`` ``(status, started, stopped,
        timestamp, is_queue, markers)`` for ``run_dir``. ``run_id``: the
        caller's string of the run's id (its key in the index), kept
        instead of a copy of the same characters (~80 bytes a run)."""
        self.damaged = damaged
        self.checked = 0  # the index pass that last checked the stamp in full
        if run is None:
            self.stamp = _compact(stamp)
            self._runs, self.id = _split_dir(run_dir, run_id)
            self._values = None
            self._raw = raw
            self.warnings = _NO_WARNINGS
            self._sweep = self._unstaged = _UNKNOWN  # (``derive``: read from ``raw`` when first asked)
            self._op = None
            self.status, self.started, self.stopped, self.timestamp, self.is_queue, self.markers = keys
            if self.timestamp == self.started:
                self.timestamp = self.started  # one int object for both (as a run read from its files has)
            self.lock_pid = None
            self.lock_remote = False
            return
        self.stamp = stamp
        self._runs, self.id = _split_dir(run.dir, run_id)
        self._raw = None
        self._set_values(run)

    @property
    def dir(self) -> str:
        return self.id if self._runs is None else self._runs + "/" + self.id

    def _set_values(self, run: Run) -> None:
        values = self._values = run.cached(CACHED)
        self.warnings = list(run.warnings)
        self._op = run.op_name
        self.is_queue = self._op in QUEUE_OPS
        self.status = values["status"]
        self._sweep = _sweep_of(values.get("sweep"))
        self._unstaged = values.get("unstaged") is True
        names = run.marker_names()
        self.markers = ((HAS_PENDING if PENDING_MARKER in names else 0) | (HAS_STAGED if STAGED_MARKER in names else 0)
                        | (HAS_LOCK if LOCK in names else 0))
        running = self.status == RUNNING
        self.lock_pid = run.lock_pid() if running else None
        self.lock_remote = running and run.has_marker(LOCK_REMOTE)
        # Plain attributes: grouping and sorting 10,000 entries reads them.
        self.started = _int(values.get("started"))
        self.stopped = _int(values.get("stopped"))
        # Guild's sort key: ``started``, else ``initialized``.
        self.timestamp = self.started if self.started is not None else (_int(values.get("initialized")) or 0)

    def decoded(self) -> bool:
        """Decodes the values kept encoded; False (nothing changed) when
        they are unusable: the index then reads the run from its files."""
        if self._values is None:
            values = decode_values(self._raw)
            if values is None or not self._keys_match(values):
                return False
            self._values = values
            self._raw = None
        return True

    @property
    def values(self) -> dict:
        if self._values is None and not self.decoded():
            # Unusable values from the listing file, met outside the index's
            # passes (which read such a run from its files): the files say.
            self.stamp = None  # read again on the next pass too
            self._raw = None
            self._set_values(_read_run(self.dir)[0])
        return self._values

    def _keys_match(self, values: dict) -> bool:
        return (values["status"] == self.status and _int(values["started"]) == self.started
                and _int(values["stopped"]) == self.stopped
                and (op_name_of(values["_opref"]) in QUEUE_OPS) == self.is_queue)

    @property
    def op(self) -> str:
        if self._op is None:
            self._op = op_name_of(self.values["_opref"])
        return self._op

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
        if self._sweep is _UNKNOWN:
            self._derive(None)
        return self._sweep

    @property
    def unstaged(self) -> bool:
        """Taken off the queue before it started (``views.status_of``)."""
        if self._unstaged is _UNKNOWN:
            self._derive(None)
        return self._unstaged

    def _derive(self, values) -> None:
        """Sets ``sweep`` and ``unstaged`` from ``values`` (decoded from the
        listing file and checked; None: decode them now) without keeping
        the values decoded: a viewer groups 100,000 runs by these two, and
        their decoded values would take ten times the bytes of the encoded
        ones (only the rows shown need them)."""
        if values is None:
            values = self._values
            if values is None:
                values = decode_values(self._raw)
                if values is None or not self._keys_match(values):
                    values = self.values  # unusable: read from the files (and kept)
        self._sweep = _sweep_of(values.get("sweep"))
        self._unstaged = values.get("unstaged") is True

    def trusted(self, now_ns: int) -> bool:
        """Whether a listing may use these values instead of the run's files
        (the index checked the stamp in this pass: every entry it lists is)."""
        return self.damaged or not settling(self.stamp, now_ns)

    def run(self) -> Run:
        """A ``Run`` whose listed attrs are these values (reads nothing)."""
        values = self.values
        return Run.with_values(self.dir, values, self.warnings)

    def persistable(self, now_ns: int) -> bool:
        """Worth keeping in the listing file: readable, settled, and not
        running (a running run's holder is checked on every pass anyway, but
        its LOCK pid is not kept)."""
        return (not self.damaged and not self.warnings and self.status != RUNNING
                and not settling(self.stamp, now_ns))

    def encoded(self) -> bytes:
        """The values as the listing file keeps them (JSON)."""
        if self._raw is not None and self._values is None:
            return self._raw
        values = {k: self._values.get(k) for k in CACHED}
        values["_opref"] = list(values["_opref"] or ("", "", "", "", ""))
        return _ENCODE(values).encode()


#: ``json.dumps(..., separators=...)`` makes a new encoder on every call: 10,000 runs saved, one encoder.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_RUNS_DIRS: dict = {}  # each runs/ path once, shared by the entries of its runs


def _split_dir(run_dir: str, run_id: str | None = None) -> tuple:
    """``(runs/ path, run id)``: the path kept once for 100,000 entries
    instead of once each (~100 bytes a run), and the id as ``run_id`` when
    that is the run's (the index's key: one string for both)."""
    i = run_dir.rfind("/")
    if i < 0:
        return None, run_dir
    runs = run_dir[:i]
    name = run_id if run_id is not None and len(run_id) == len(run_dir) - i - 1 and run_dir.endswith(run_id) \
        else run_dir[i + 1:]
    return _RUNS_DIRS.setdefault(runs, runs), name


def _compact(stamp):
    """``stamp`` with the equal times of ``.guild``, ``attrs/``, the newest
    file and the sort key's file held by one int object (they often are
    equal: a run's last change is a marker or an attr created): a viewer of
    100,000 runs keeps each stamp, and each of those ints is 32 bytes."""
    if stamp is None or len(stamp) != 8:
        return stamp
    g, a, mask, files, newest, km, ks, ki = stamp
    if a == g:
        a = g
    if newest == g:
        newest = g
    elif newest == a:
        newest = a
    if km == a:
        km = a
    elif km == newest:
        km = newest
    return (g, a, mask, files, newest, km, ks, ki)


def _sweep_of(value):
    """``run.sweep_of``, the id kept once however many runs of the sweep
    an index holds (a viewer of 100,000 runs: ~60 bytes a run)."""
    sweep = sweep_of(value)
    return sweep if sweep is None else sys.intern(sweep)


_CACHED_SET = frozenset(CACHED)
_UNKNOWN = object()
_NO_WARNINGS: list = []  # shared by every entry from the listing file (none has warnings; never appended to)
STATUS_CODES = {s: i for i, s in enumerate(STATUSES)}


def decode_values(raw) -> dict | None:
    """The values of a listing file entry, or None unless they have the
    shape ``Entry.encoded`` writes: every listed attr and nothing else, the
    opref as five strings, a known status and int sort keys (the other
    values are whatever the attr files hold: their readers check types)."""
    try:
        values = json.loads(raw)
    except (ValueError, RecursionError, TypeError):
        return None
    return checked_values(values)


def checked_values(values) -> dict | None:
    """``values`` as ``decode_values`` accepts them, or None."""
    if type(values) is not dict or values.keys() != _CACHED_SET:
        return None
    opref = values["_opref"]
    if type(opref) is not list or len(opref) != 5 or not all(type(x) is str for x in opref):
        return None
    if values["_opref_text"] is not None and type(values["_opref_text"]) is not str:
        return None
    if values["status"] not in STATUS_CODES:
        return None
    for k in ("started", "initialized", "stopped"):
        v = values[k]
        if v is not None and type(v) is not int:
            return None
    values["_opref"] = tuple(opref)
    return values


def _decoded_together(todo):
    """``(entry, values)`` of the entries ``todo`` (values kept encoded)
    whose values are usable, decoded in one JSON parse; none when that
    parse fails (each is then decoded alone when asked)."""
    if len(todo) < 2:
        return
    try:
        decoded = json.loads(b"[" + b",".join(e._raw for e in todo) + b"]")
    except (ValueError, RecursionError, TypeError):
        return
    if type(decoded) is not list or len(decoded) != len(todo):
        return
    for e, values in zip(todo, decoded):
        values = checked_values(values)
        if values is not None and e._keys_match(values):
            yield e, values


def decode_all(entries) -> None:
    """Decodes the values of every entry still encoded, in one JSON parse
    (a full listing needs them all: one parse of 10,000 is much cheaper than
    10,000 parses)."""
    for e, values in _decoded_together([e for e in entries if e._values is None]):
        e._values = values
        e._raw = None
        e._derive(values)


def derive_all(entries) -> None:
    """``Entry.sweep`` and ``unstaged`` of every entry that has not derived
    them yet, from one JSON parse, keeping no values decoded (what a viewer
    that groups every run needs; ``Entry._derive``)."""
    todo = [e for e in entries if e._sweep is _UNKNOWN and e._values is None]
    for i in range(0, len(todo), 1000):  # a thousand at a time: 100,000 decoded at once would take ~300 MB
        for e, values in _decoded_together(todo[i:i + 1000]):
            e._derive(values)


def _read_run(run_dir: str, mask: int = -1, run: Run | None = None):
    """(a Run with every listed value read, damaged?). ``mask``: which
    attrs of ``KEYS`` existed when the stamp was taken (its bits, as
    ``stamp_of`` records them): the others are not opened (one created
    since changed attrs/, so the stamp no longer holds and the run is read
    again). ``run``: one whose listed attrs were read already (``read_new``)."""
    if run is None:
        run = Run(run_dir)
    if mask != -1:
        run.assume_absent([k for i, k in enumerate(KEYS) if not mask & (1 << i)])
    try:
        _ = run.status
        for k in KEYS:
            run.get(k)
        _ = (run.op_name, run.label, run.timestamp)  # what filters and sort keys read: neither may raise
    except Exception as e:  # e.g. YAML's ValueError for a date 2001-02-30
        run.mark_damaged(f"unreadable files ({type(e).__name__}: {e})")
        return run, True
    return run, False


def read_entry(run_dir: str, stamp, full_look: bool = False) -> Entry | None:
    """The entry of ``run_dir`` read from its files (``stamp`` taken just
    before); None when it is no run. A run that cannot be read is an error
    with a warning, never hidden.

    ``full_look``: the stamp looked at every stamped file (no hint). Then,
    if the run had settled (its newest file older than ``SETTLE_NS``), the
    attrs the stamp found absent are not opened: one created since moves
    attrs/ into a new mtime tick, so the stamp no longer holds. Otherwise
    every attr is read: a file created within the same tick as the last
    change leaves attrs/'s mtime as it was."""
    if stamp is None:
        run = Run(run_dir)
        if not run.is_run():
            return None
        if not run.warnings:  # .guild stat'ed fine meanwhile, or attrs/ alone is odd
            run.mark_damaged(".guild is not a readable directory")
        return Entry(run, None, damaged=True)
    trusted = full_look and not settling(stamp, time.time_ns())
    run, damaged = _read_run(run_dir, stamp[MASK] if trusted else -1)
    return Entry(run, stamp, damaged=damaged)


def read_new(runs_dir: str, run_id: str, now_ns: int):
    """``(stamp, entry)`` of a run never read before, in one look: each
    listed file is opened once, and stamped by the ``fstat`` of the
    descriptor it is read through (what ``stamp_of`` followed by
    ``read_entry(full_look=True)`` would give, with about half the system
    calls: a listing whose cache was lost reads 10,000 runs so). Which attrs
    exist comes from one listing of ``attrs/``, taken after its mtime (an
    attr created since moves that mtime, and the stamp no longer holds).
    None when that look is not enough: no readable ``.guild``, or a run
    that has not settled (its newest file younger than ``SETTLE_NS``, when
    an attr created in the same mtime tick would not show in ``attrs/``'s
    mtime): the caller then stamps and reads it the usual way."""
    base = runs_dir + "/" + run_id
    try:
        gfd = os.open(base + "/.guild", _DIR_FLAGS)
    except OSError:
        return None
    try:
        g = os.fstat(gfd).st_mtime_ns
        try:
            afd = os.open("attrs", _DIR_FLAGS, dir_fd=gfd)
        except OSError:
            return None  # (no attrs/, or an odd one: the usual way says what it is)
        try:
            a = os.fstat(afd).st_mtime_ns
            present = set(os.listdir(afd))
            stamping = _Stamping(max(g, a), a)
            bit = 1
            got = {}
            for name in KEYS:
                if name in present:
                    st, data, err = got[name] = _read_stat(name, afd)
                    if st is not None:
                        stamping.add(bit, st)
                bit <<= 1
        finally:
            os.close(afd)
        st, opref, opref_err = _read_stat("opref", gfd)  # (bit: the last of STAMPED)
        if st is not None:
            stamping.add(bit, st)
        guild_names = os.listdir(gfd)  # (after g: a marker that came since moves it)
    except OSError:
        return None
    finally:
        os.close(gfd)
    if now_ns - stamping.newest < SETTLE_NS:
        return None
    stamp = stamping.stamp(g, a)
    values = dict.fromkeys(KEYS)  # (an attr not there reads None)
    errors = []
    parse = attrlib.parse
    for name in _READ_ORDER:  # exit_status first: the warnings in the order read_entry's reads give them
        r = got.get(name)
        if r is None:
            continue
        if r[1] is not None:
            try:
                values[name] = parse(name, r[1])
            except attrlib.AttrReadError as e:
                errors.append((name, e))
        elif r[2] is not None:
            errors.append((name, attrlib.read_error(name, r[2])))
    run = Run(base)
    run.set_read_all(values, errors)
    run.set_opref(opref, opref_err)
    run.set_guild_names(guild_names)
    run, damaged = _read_run(base, run=run)
    entry = Entry(run, stamp, damaged=damaged)
    # .guild as listed for the markers (after its mtime g was taken): the row that shows the run's main
    # scalar next takes its event files from here instead of listing .guild again.
    scalarlib.prime(base, g, guild_names)
    return stamp, entry


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_READ_ORDER = ("exit_status",) + tuple(k for k in KEYS if k != "exit_status")


def _read_stat(name: str, dir_fd: int):
    """``(stat or None, bytes or None, OSError or None)`` of the file
    ``name`` in the open directory ``dir_fd``: its descriptor's stat and
    content; a missing file is (None, None, None); one that cannot be
    opened has its stat taken by name (``stamp_of`` stamps what ``stat``
    sees)."""
    try:
        st, data = read_small_stat(name, dir_fd=dir_fd)
        return st, data, None
    except FileNotFoundError:
        return None, None, None
    except OSError as e:
        st = getattr(e, "st", None)
        if st is None:
            try:
                st = os.stat(name, dir_fd=dir_fd)
            except OSError:
                st = None
        return st, None, e


__all__ = ["Entry", "KEYS", "CACHED", "SETTLE_NS", "NONE_INT", "STATUS_CODES", "stamp_of", "key_stamp",
           "settling", "read_entry", "read_new", "decode_values", "decode_all", "derive_all"]
