"""The scalars' file, ``cache/guild_jupyter/scalars.json``: what was read of
each run's event files, so a new process (every CLI command) decodes only
what changed since.

Decoding event files in Python costs a few µs a record: a ``compare`` of
1,000 runs logging 100 values each would spend seconds on it in every
process, and a listing of 10,000 runs would open 10,000 files. Per run this
file keeps the mtime of ``.guild`` (creating an event file changes it), for
each event file the offset read, its modification time and inode, and the
last value of each tag (runs without event files too). A run is restored
from it only when all of those still hold (two stats for a run with one
event file); otherwise the run is read from its files as if the entry were
absent. Recent values (sparklines) are not kept:
a run restored from here has none until it logs again.

Only clean entries are written: files read to their end without error and
not modified within ``SETTLE_NS`` (mtimes are coarse, so a younger file may
still change without its mtime moving). The file is untrusted like every
other: an entry of the wrong shape is ignored, and it is read only when it
is a regular file of at most ``MAX_BYTES``. A read-only store is read
without the file being written.
"""

from __future__ import annotations

import json
import os
import time

from ..attrs import write_atomic
from ..gc_pause import paused
from ..regular_file import read_small

NAME = "scalars.json"
VERSION = 2
#: A larger file is not read (taken for damage): about a million runs' entries.
MAX_BYTES = 256 << 20
SETTLE_NS = 2_000_000_000

#: path -> {run id: entry} as loaded (then updated by ``save``).
_loaded: dict[str, dict] = {}
#: runs dir -> its store's file.
_paths: dict[str, str] = {}


def path_for(run_dir: str) -> str:
    runs_dir = run_dir.rpartition("/")[0]
    path = _paths.get(runs_dir)
    if path is None:
        home = os.path.dirname(os.path.abspath(runs_dir or "."))
        path = _paths[runs_dir] = os.path.join(home, "cache", "guild_jupyter", NAME)
    return path


def _entries(path: str) -> dict:
    entries = _loaded.get(path)
    if entries is None:
        entries = {}
        try:
            with paused():  # a dict a run, never in a cycle: see gc_pause
                data = json.loads(read_small(path, MAX_BYTES))
            if isinstance(data, dict) and data.get("v") == VERSION and isinstance(data.get("runs"), dict):
                entries = data["runs"]
        except (OSError, ValueError, RecursionError):
            pass
        _loaded[path] = entries
    return entries


#: path -> {run id: entry} of runs the cache dropped before a save.
_pending: dict[str, dict] = {}


def is_loaded(run_dir: str) -> bool:
    """Whether the file of ``run_dir``'s store was read by this process."""
    return (_paths.get(run_dir.rpartition("/")[0]) or path_for(run_dir)) in _loaded


def forget_loaded() -> None:
    _loaded.clear()
    _pending.clear()


def evicted(rs) -> None:
    """A run the cache drops: its entry waits for the next ``save``."""
    if rs.dirty:
        entry = entry_of(rs, time.time_ns())
        if entry is not None:
            _pending.setdefault(path_for(rs.dir), {})[rs.dir.rpartition("/")[2]] = entry


# An entry: [guild_mtime_ns, {name: [offset, mtime_ns, ino]}, [tag, ...], [[step, value], ...]],
# the tags in the order logged.


def restore(rs) -> bool:
    """Fills a new ``RunScalars`` from the file when its entry still holds:
    ``.guild`` has the same mtime (no event file came or went) and each
    event file the same inode, size and mtime. Two stats a run, no listing
    (a listing of 10,000 runs does this for every one of them)."""
    head, _, run_id = rs.dir.rpartition("/")
    path = _paths.get(head) or path_for(rs.dir)
    entries = _loaded.get(path)
    return fill(rs, (entries if entries is not None else _entries(path)).get(run_id))


def fill(rs, entry, check: bool = True) -> bool:
    """Fills a new ``RunScalars`` from ``entry`` (as this file keeps one)
    when it has that shape and, ``check``, still holds (``restore``).
    Without ``check``: an entry just made from the files by another
    process (``entry_of`` in a listing's helper), as good as reading them."""
    if type(entry) is not list or len(entry) != 4 or type(entry[0]) is not int:
        return False
    guild_mtime, files, tags, last = entry
    gdir = rs.dir + "/.guild"
    stat = os.stat
    try:
        if check and stat(gdir).st_mtime_ns != guild_mtime:
            return False
        states = {}
        for name, (offset, mtime_ns, ino) in files.items():
            if type(name) is not str or not all(type(x) is int for x in (offset, mtime_ns, ino)):
                return False
            if check:
                st = stat(gdir + "/" + name)
                if st.st_size != offset or st.st_mtime_ns != mtime_ns or st.st_ino != ino:
                    return False
            state = states[name] = _File()
            state.offset = state.size = offset
            state.mtime_ns, state.ino = mtime_ns, ino
        values = {}
        for t, (step, value) in zip(tags, last, strict=True):
            if type(t) is not str or type(step) is not int or type(value) not in (int, float):
                return False
            values[t] = (step, float(value))
    except (OSError, TypeError, ValueError, AttributeError):  # gone, or an entry of the wrong shape
        return False
    rs.files.update(states)
    rs.guild_mtime = guild_mtime
    rs.dirty = False
    rs.tags[:] = values
    rs.last.update(values)
    return True


class _File:
    """A stand-in until :mod:`.reader` gives its own (no import cycle at load)."""


def bind_file_class(cls) -> None:
    """Called by :mod:`.reader` at import with its class of a read file."""
    global _File
    _File = cls


def entry_of(rs, now_ns: int):
    """What this file keeps of ``rs`` (``RunScalars``), or None when it is
    not clean (errors, a partial record, a file or ``.guild`` too young)."""
    if rs.errors or rs.partial or not rs.guild_mtime or now_ns - rs.guild_mtime < SETTLE_NS:
        return None
    files = {}
    for name, state in rs.files.items():
        if state.error is not None or state.offset != state.size or not state.ino \
                or now_ns - state.mtime_ns < SETTLE_NS:
            return None
        files[name] = [state.offset, state.mtime_ns, state.ino]
    return [rs.guild_mtime, files, list(rs.tags), [[rs.last[t][0], rs.last[t][1]] for t in rs.tags]]


def save(cached) -> None:
    """Writes the clean entries of ``cached`` (``RunScalars``) into their
    stores' files, keeping the other entries of runs that still exist."""
    now_ns = time.time_ns()
    by_path: dict[str, dict] = {}
    kept: dict[str, list] = {}
    for path, entries in _pending.items():
        by_path[path] = dict(entries)
        kept[path] = []
    _pending.clear()
    for rs in cached:
        if not rs.dirty:  # restored from the file, or saved, and not read since
            continue
        entry = entry_of(rs, now_ns)
        if entry is not None:
            path = path_for(rs.dir)
            by_path.setdefault(path, {})[rs.dir.rpartition("/")[2]] = entry
            kept.setdefault(path, []).append(rs)
    for path, fresh in by_path.items():
        entries = _entries(path)
        if any(entries.get(k) != v for k, v in fresh.items()):
            runs_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(path))), "runs")
            try:
                present = set(os.listdir(runs_dir))
            except OSError:
                continue
            merged = {k: v for k, v in entries.items() if k in present}
            merged.update(fresh)
            try:
                text = json.dumps({"v": VERSION, "runs": merged}, separators=(",", ":"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                write_atomic(path, text)
            except (OSError, ValueError):
                continue  # a read-only store: read again next time
            _loaded[path] = merged
        for rs in kept[path]:
            rs.dirty = False
