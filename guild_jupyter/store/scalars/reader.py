"""Reading a run's scalars back from its TensorBoard event files, incrementally.

Every viewer (run rows of the panel, the ``/guild`` page, the REST API,
``runs``, ``compare``) wants the latest value of each scalar, and the panel
asks again every second while runs append to their files. So one shared
cache keyed by run directory remembers, per event file, the byte offset read
so far and what was read (the last value of each tag, the last
:data:`RECENT` values of each for sparklines); a refresh stats the files and
decodes only the bytes appended since.

Records are decoded by :mod:`.tfrecord` (plain Python, no protobuf
import), and only what Guild reads is kept: ``simple_value`` scalars with
their tag and step. What was read of settled files is kept across
processes by :mod:`.cache_file`.

Reading never raises, and its memory is bounded whatever a file holds:
only regular files are opened (a FIFO or a link to ``/dev/zero`` is named
in ``errors`` and never read), a chunk at a time, and a record longer than
``tfrecord.MAX_RECORD`` is corruption. A trailing record not yet complete
(a writer in the middle of a flush) is left for the next read. A corrupt record (a CRC that
does not match, a length past any sane size, an undecodable event) stops
that file's reading: what came before it is kept and the problem is named in
``RunScalars.errors``. A file shorter than what was read (replaced) makes the
run read afresh. A run directory that is gone drops its cache entry.
"""

from __future__ import annotations

import os
import time
import _thread  # a lock without threading's import cost (every CLI command imports this module)
import struct
from collections import OrderedDict, deque
from stat import S_ISREG

from ..regular_file import kind_of, open_regular
from . import cache_file as scalars_file
from .tfrecord import (CHUNK, Corrupt, crc32c, decode_event, masked_crc32c, read_records, records,  # noqa: F401
                       wall_time)

__all__ = ["RECENT", "MAX_RUNS", "RunScalars", "read", "last_scalars", "series", "series_since", "iter_events",
           "forget", "clear", "main_tag", "masked_crc32c", "save", "prime", "prefetch", "seed"]

#: Values kept per tag for a sparkline, oldest first.
RECENT = 32
#: Run directories the cache holds at most (least recently read dropped first).
MAX_RUNS = 5000
#: Tags per run that keep recent values (a run logging hundreds of tags keeps
#: the last value of each, and the recent values of the first ones only).
RECENT_TAGS = 16
PREFIX = "events.out.tfevents"

# -- per-run state ----------------------------------------------------------------------------------


class _File:
    __slots__ = ("offset", "size", "error", "mtime_ns", "ino")

    def __init__(self):
        self.offset = 0  # bytes consumed (complete records)
        self.size = 0  # the file's size when last read
        self.error: str | None = None  # why reading stopped for good
        self.mtime_ns = 0  # the file's stat when last looked at (scalars_file keeps it)
        self.ino = 0


class RunScalars:
    """What a run's event files say so far: ``last`` {tag: (step, value)},
    ``tags`` in the order first logged, ``recent(tag)`` (up to ``RECENT``
    values, oldest first), ``errors`` (corrupt files, one line each) and
    ``partial`` (a file ends with an incomplete record)."""

    __slots__ = ("dir", "files", "last", "tags", "_recent", "errors", "partial", "guild_mtime", "dirty")

    def __init__(self, run_dir: str):
        self.dir = run_dir
        self.files: dict[str, _File] = {}
        self.last: dict[str, tuple[int, float]] = {}
        self.tags: list[str] = []
        self._recent: dict[str, deque] = {}
        self.errors: list[str] = []
        self.partial = False
        self.guild_mtime = 0  # of .guild when its files were last listed (scalars_file keeps it)
        self.dirty = True  # read since scalars_file last had it

    def recent(self, tag: str) -> list[float]:
        d = self._recent.get(tag)
        return list(d) if d is not None else []

    def values(self) -> dict[str, float]:
        return {k: v for k, (_s, v) in self.last.items()}

    def _add(self, events) -> None:
        last, recent = self.last, self._recent
        for step, tag, value in events:
            if tag not in last:
                self.tags.append(tag)
                if len(recent) < RECENT_TAGS:
                    recent[tag] = deque(maxlen=RECENT)
            last[tag] = (step, value)
            d = recent.get(tag)
            if d is not None:
                d.append(value)

    def _update(self, listing=None) -> bool:
        """Reads what was appended; False when the run directory is gone.
        ``listing``: ``(mtime, names)`` of ``.guild`` (the mtime taken
        before the names were listed) as a listing just read them
        (``prime``), instead of listing it again."""
        gdir = self.dir + "/.guild"
        try:
            if listing is not None:
                mtime, names = listing
            else:
                mtime = os.stat(gdir).st_mtime_ns  # before listing: a file added after moves it
                names = os.listdir(gdir)
            if mtime != self.guild_mtime:
                self.guild_mtime, self.dirty = mtime, True
            names = sorted(n for n in names if n.startswith(PREFIX))
        except FileNotFoundError:
            return False
        except OSError as e:
            self.guild_mtime = 0
            self.errors = [f"cannot list {gdir}: {e.strerror or e}"]
            return True
        partial = False
        for name in names:
            state = self.files.get(name)
            if state is None:
                state = self.files[name] = _File()
                # Never looked at: opened at once, its descriptor's stat taken as the file's.
                self._read_new_file(gdir + "/" + name, name, state)
                partial = partial or (state.error is None and state.offset < state.size)
                continue
            if state.error is not None:
                continue
            path = gdir + "/" + name
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not S_ISREG(st.st_mode):  # a FIFO would hang a read, /dev/zero never end it
                state.error = f"{name}: not a regular file ({kind_of(st.st_mode)}); not read"
                self.errors.append(state.error)
                continue
            size = st.st_size
            if size < state.size or (state.ino and st.st_ino != state.ino):  # replaced: read the run afresh
                self._reset()
                return self._update()
            if size > state.offset:
                self.dirty = True
                self._read_file(path, name, state, size)
                partial = partial or (state.error is None and state.offset < state.size)
            state.mtime_ns, state.ino = st.st_mtime_ns, st.st_ino
        self.partial = partial
        return True

    def _reset(self) -> None:
        self.files.clear()
        self.last.clear()
        self.tags.clear()
        self._recent.clear()
        self.errors = []

    def _read_new_file(self, path: str, name: str, state: _File) -> None:
        """The first look at an event file: ``_update``'s stat and
        ``_read_file``'s in one (a listing whose cache was lost reads
        10,000 of them). A file gone meanwhile is left for the next look."""
        try:
            fd, st = open_regular(path)
        except FileNotFoundError:
            del self.files[name]
            return
        except OSError as e:
            state.error = f"{name}: {e.strerror or e}; not read"
            self.errors.append(state.error)
            return
        if st.st_size > 0:
            self.dirty = True
            self._read_file(path, name, state, st.st_size, fd)
        else:
            os.close(fd)
        state.mtime_ns, state.ino = st.st_mtime_ns, st.st_ino

    def _read_file(self, path: str, name: str, state: _File, size: int, fd: int | None = None) -> None:
        """Decodes the records from ``state.offset`` to ``size``, a chunk at
        a time (``tfrecord.read_records``): memory stays bounded whatever
        the file's size. ``fd``: the file opened already (closed here)."""
        add = self._add
        consumed = state.offset
        if fd is None:
            try:
                fd, _st = open_regular(path)
            except OSError as e:
                state.error = f"{name}: {e.strerror or e}; not read"
                self.errors.append(state.error)
                return
        try:
            for data, end in read_records(fd, state.offset, size):
                add(decode_event(data))
                consumed = end
        except (Corrupt, IndexError, struct.error) as e:
            state.error = f"{name}: corrupt record after byte {consumed} ({e}); later records not read"
            self.errors.append(state.error)
        except OSError as e:
            state.error = f"{name}: {e.strerror or e}; later records not read"
            self.errors.append(state.error)
        finally:
            os.close(fd)
        state.offset = consumed
        state.size = size


scalars_file.bind_file_class(_File)

# -- the shared cache -------------------------------------------------------------------------------

_cache: OrderedDict = OrderedDict()
_lock = _thread.allocate_lock()


class _Direct:
    """``direct_reads()``: while active (in any thread), runs not yet read
    are read from their event files, not restored from the store's cache
    file: showing a few runs of a big store, their files cost less than the
    file that holds every run (read whole)."""

    depth = 0

    def __enter__(self):
        _Direct.depth += 1
        return self

    def __exit__(self, *exc):
        _Direct.depth -= 1


def direct_reads() -> _Direct:
    return _Direct()


#: run dir -> (monotonic time, .guild's mtime, its names) as a listing just read them (``prime``).
_primed: dict = {}
#: Runs ``prime`` keeps at most (a listing of more reads the rest's ``.guild`` again).
MAX_PRIMED = 20000
#: How long a primed listing of ``.guild`` stands in for listing it again.
PRIMED_FOR = 10.0


def prime(run_dir: str, guild_mtime: int, names) -> None:
    """``.guild`` of ``run_dir`` as a listing just read it (its mtime taken
    before its names were listed): the next ``read`` of a run not yet in
    the cache, within ``PRIMED_FOR`` seconds, takes these names instead
    of listing ``.guild`` again (a listing of 10,000 runs shows the main
    scalar of each right after the index read them)."""
    if len(_primed) >= MAX_PRIMED:  # (the older ones were not read within PRIMED_FOR: a viewer's first pass)
        _primed.clear()
        if not MAX_PRIMED:
            return
    _primed[run_dir] = (time.monotonic(), guild_mtime, tuple(n for n in names if n.startswith(PREFIX)))


def prefetch(run_dir: str) -> None:
    """Reads the first chunk of each event file ``prime`` named for
    ``run_dir`` (into the OS's cache, nothing decoded): what a listing's
    read-ahead threads do while its runs' files are on the disk, so that
    the rows read them from memory, one after the other, after. Only
    regular files are read (``open_regular``)."""
    got = _primed.get(run_dir)
    if got is None:
        return
    for name in got[2]:
        try:
            fd, st = open_regular(run_dir + "/.guild/" + name)
        except OSError:
            continue
        try:
            if st.st_size:
                os.pread(fd, min(st.st_size, CHUNK), 0)
        except OSError:
            pass
        finally:
            os.close(fd)


#: run dir -> (monotonic time, what ``cache_file`` keeps of it) as a listing's helper process just read it.
_seeded: dict = {}


def seed(run_dir: str, entry) -> None:
    """What a listing's helper process (``store.cold_read``) read of the
    run's event files, as the scalars' file keeps it: the next ``read`` of
    a run not yet in the cache, within ``PRIMED_FOR`` seconds, takes it
    as if it had read the files itself (and the next ``save`` keeps it)."""
    if len(_seeded) >= MAX_PRIMED:
        _seeded.clear()
        if not MAX_PRIMED:
            return
    _seeded[run_dir] = (time.monotonic(), entry)


def _take_seeded(run_dir: str):
    got = _seeded.pop(run_dir, None)
    if got is None or time.monotonic() - got[0] > PRIMED_FOR:
        return None
    return got[1]


def _take_primed(run_dir: str):
    got = _primed.pop(run_dir, None)
    if got is None or time.monotonic() - got[0] > PRIMED_FOR:
        return None
    return got[1], got[2]


def read(run_dir: str) -> RunScalars:
    """The run's scalars as they are now (the cache brought up to date)."""
    with _lock:
        rs = _cache.get(run_dir)
        if rs is None:
            rs = RunScalars(run_dir)
            _cache[run_dir] = rs
            if len(_cache) > MAX_RUNS:
                scalars_file.evicted(_cache.popitem(last=False)[1])  # kept for the next save
            seeded = _take_seeded(run_dir) if _seeded else None
            if seeded is not None and scalars_file.fill(rs, seeded, check=False):
                rs.dirty = True  # (for the next save: the store's file has no entry of it)
                _primed.pop(run_dir, None)
                return rs
            # The file holds every run of the store: for a few runs shown (direct_reads) it is
            # used only if this process has it already (staging costs the same in any store).
            if (not _Direct.depth or scalars_file.is_loaded(run_dir)) and scalars_file.restore(rs):
                _primed.pop(run_dir, None)
                return rs  # every file just checked unchanged
            if not rs._update(_take_primed(run_dir)):
                _cache.pop(run_dir, None)
                return RunScalars(run_dir)
            return rs
        else:
            _cache.move_to_end(run_dir)
        if not rs._update():
            _cache.pop(run_dir, None)
            return RunScalars(run_dir)
        return rs


def save() -> None:
    """Keeps what was read of settled, clean event files in each store's
    ``scalars.json``, so the next process reads only what changed since
    (``compare`` and ``runs --json`` call it after reading many runs)."""
    with _lock:
        scalars_file.save(list(_cache.values()))


def last_scalars(run_dir: str) -> dict:
    """{tag: (step, value)} of the last value of each scalar."""
    return dict(read(run_dir).last)


def forget(run_dir: str) -> None:
    with _lock:
        _cache.pop(run_dir, None)
        _primed.pop(run_dir, None)
        _seeded.pop(run_dir, None)


def clear() -> None:
    """Forgets every run read (and the ``scalars.json`` files loaded)."""
    with _lock:
        _cache.clear()
        _primed.clear()
        _seeded.clear()
        scalars_file.forget_loaded()


def main_tag(rs: RunScalars, wanted: str | None = None) -> str | None:
    """The scalar a run row shows: ``wanted`` when given (None when the run
    has not logged it), else ``loss``, else the first tag the run logged."""
    if wanted:
        return wanted if wanted in rs.last else None
    if "loss" in rs.last:
        return "loss"
    return rs.tags[0] if rs.tags else None


def series(run_dir: str, tags=None) -> tuple[dict, list[str]]:
    """Every value of each tag (or of ``tags``), as ``{tag: [(step, value),
    ...]}`` in the order logged, and the errors met (not cached: for plots).
    Read in bounded memory: what it keeps is the points asked for."""
    out: dict = {}
    errors: list[str] = []
    wanted = None if tags is None else set(tags)
    for name, _end, events, _time in iter_events(run_dir, errors=errors):
        for step, tag, value in events:
            if wanted is None or tag in wanted:
                out.setdefault(tag, []).append((step, value))
    return out, errors


def series_since(run_dir: str, token: dict | None = None, tags=None) -> tuple[dict, dict, list[str]]:
    """The values logged since ``token`` (None: since the start), as
    ``{tag: [[step, value, wall_time], ...]}``, the token to ask with next
    time, and the errors met. The token maps each event file to
    ``[offset, inode]`` (JSON as it is): a file replaced since (another
    inode, or shorter than its offset) is read again from its start."""
    out: dict = {}
    errors: list[str] = []
    wanted = None if tags is None else set(tags)
    given = token if isinstance(token, dict) else {}
    offsets = {}
    for name, v in given.items():
        if isinstance(name, str) and isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v):
            offsets[name] = (v[0], v[1])
    new_token: dict = {}
    for name, end, events, wall in iter_events(run_dir, offsets, errors, new_token):
        for step, tag, value in events:
            if wanted is None or tag in wanted:
                out.setdefault(tag, []).append([step, value, wall])
    return out, new_token, errors


def iter_events(run_dir: str, since: dict | None = None, errors: list | None = None, token: dict | None = None):
    """``(file name, end offset, [(step, tag, value), ...], wall_time)`` of
    each record of the run's event files, in file order, one at a time:
    nothing is held but the record being decoded and the chunk it came in.
    ``since``: {name: (offset, inode)} to start from. Files that are not
    regular (a FIFO, a link to a device) and corrupt records are named in
    ``errors`` and skipped; ``token`` gets each file's ``[offset, inode]``
    as read."""
    errors = [] if errors is None else errors
    gdir = run_dir + "/.guild"
    try:
        names = sorted(n for n in os.listdir(gdir) if n.startswith(PREFIX))
    except OSError:
        return
    for name in names:
        try:
            fd, st = open_regular(gdir + "/" + name)
        except FileNotFoundError:
            continue
        except OSError as e:
            errors.append(f"{name}: {e.strerror or e}; not read")
            continue
        offset, ino = (since or {}).get(name, (0, st.st_ino))
        if ino != st.st_ino or offset > st.st_size or offset < 0:
            offset = 0
        done = offset
        try:
            for data, end in read_records(fd, offset, st.st_size):
                yield name, end, decode_event(data), wall_time(data)
                done = end
        except (Corrupt, IndexError, struct.error) as e:
            errors.append(f"{name}: corrupt record after byte {done} ({e}); later records not read")
        except OSError as e:
            errors.append(f"{name}: {e.strerror or e}; later records not read")
        finally:
            os.close(fd)
            if token is not None:
                token[name] = [done, st.st_ino]
