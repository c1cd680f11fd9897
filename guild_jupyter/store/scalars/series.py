"""A run's series for charts, read incrementally as numpy columns.

Charts (the live sweep view, ``plot``, REST's ``scalars``) want every point
of a few tags of many runs, and again each second only the points logged
since. ``SeriesRead(run_dir, since, tags)`` yields them a chunk at a time
as ``(tag, steps, values, walls)`` arrays, in file order, and leaves
``token`` ({event file: [offset, inode, index records read to there]}:
where to start next time; a third item of -1 marks a file corrupt at that
offset, never read past it),
``errors`` and ``reset`` (a file read before was replaced or truncated: what
the caller held from it is void, and it was read again from its start).

Where our writer's index of an event file (:mod:`.sidecar`) covers the
bytes to read, its fixed-size records are sliced with numpy, with no
event decoded; anything else (files written by Guild, TensorBoard or an
older writer; the part of a file past its index) is decoded as every
reader decodes it (:mod:`.tfrecord`, CRCs checked). Either way a file is
read a chunk at a time: memory holds one chunk and what the caller keeps.

A caller that thins what it reads (charts) or wants only totals (a run's
summary) may say so (``overview``, ``totals_only``): then a file read from
its start whose writer's overview (:mod:`.overview`) covers its first
records gives, for those, one ``OverviewGroup`` (each tag's totals, and
the wanted tags' points already thinned) instead of every record, and
the records after them are read as usual.

numpy is imported here only: the CLI's listings never import this module.
"""

from __future__ import annotations

import os
import stat
import struct

import numpy as np

from ..regular_file import open_regular
from . import overview as overview_file
from . import sidecar
from .tfrecord import Corrupt, decode_event, read_records, wall_time

__all__ = ["SeriesRead", "OverviewGroup", "RECORD_DTYPE", "EVENT_PREFIX", "indexed_tags"]

EVENT_PREFIX = "events.out.tfevents"
RECORD_DTYPE = np.dtype([("wall", "<f8"), ("step", "<i8"), ("value", "<f4"), ("tag", "<u4"), ("end", "<u8")])
#: Events decoded (without an index) before their points are handed on.
DECODE_CHUNK = 8192
POINT_DTYPE = np.dtype([("step", "<i8"), ("value", "<f8"), ("wall", "<f8")])


class OverviewGroup(list):
    """A group standing for the first records of a file (its overview's):
    items as ``chunks()``' for the wanted tags, their points already
    thinned; ``totals``: {tag: ``overview.TagTotals``} over those records,
    every tag."""

    totals: dict = {}
    records = 0
    offset = 0


def indexed_tags(run_dir: str) -> set:
    """The tags our writer's indexes of the run's event files name (a few
    small reads, no event read): what a run logged, as far as indexes
    tell (files without one are not looked into)."""
    gdir = run_dir + "/.guild"
    try:
        names = sorted(n for n in os.listdir(gdir) if n.startswith(EVENT_PREFIX))
    except OSError:
        return set()
    out: set = set()
    for name in names:
        try:
            st = os.stat(gdir + "/" + name)
        except OSError:
            continue
        index = sidecar.open_index(gdir, name, st.st_ino, st.st_size)
        if index is not None:
            try:
                if index.count:
                    out.update(index.tags)
            finally:
                index.close()
    return out


class SeriesRead:
    """One incremental read of a run's series (see the module docstring).
    ``since``: a previous ``token`` (None: from the start); ``tags``: the
    tags wanted (None: every one). Iterate ``chunks()`` once.

    ``overview``: (points, tags): the caller thins the series of ``tags``
    (None: every tag) to ``points`` each, so a file's overview may stand for
    the records it covers when each of those tags has more values there
    and it holds at least half as many points. ``totals_only``: the caller
    wants the tags' totals only (no points): an overview always stands.
    Either way ``groups()`` may then yield an ``OverviewGroup``;
    ``chunks()`` is for callers that gave neither."""

    def __init__(self, run_dir: str, since: dict | None = None, tags=None, overview=None,
                 totals_only: bool = False):
        self.run_dir = run_dir
        self.since = since if isinstance(since, dict) else {}
        self.wanted = None if tags is None else set(tags)
        self.overview = overview
        self.totals_only = totals_only
        self.token: dict = {}
        self.errors: list[str] = []
        self.reset = False
        self.indexed = 0  # points read from an index (for tests and the bench)
        self.decoded = 0  # points decoded from events
        self.overviewed = 0  # records an overview stood for
        self.seen: set = set()  # every tag met, wanted or not
        self._corrupt = False

    def chunks(self):
        """``(tag, steps, values, walls)`` arrays, in file order."""
        for group in self.groups():
            yield from group

    def groups(self):
        """Lists of ``chunks()``'s items, one list per chunk read (a chunk
        holds every tag's points of one stretch of a file)."""
        gdir = self.run_dir + "/.guild"
        try:
            names = sorted(n for n in os.listdir(gdir) if n.startswith(EVENT_PREFIX))
        except OSError:
            names = []
        if any(name not in names for name in self.since):  # a file read before is gone
            self.reset = True
        for name in names:
            yield from self._file(gdir, name)

    def _file(self, gdir: str, name: str):
        place = self.since.get(name)  # [offset, inode] or [offset, inode, records] (records < 0: corrupt there)
        if not (isinstance(place, (list, tuple)) and len(place) in (2, 3) and all(type(v) is int for v in place)):
            place = None
        if place is not None and len(place) == 3 and place[2] >= 0:
            try:  # read to its end before: a stat tells whether it grew, without opening it
                st = os.stat(gdir + "/" + name)
            except OSError:
                st = None
            if st is not None and st.st_ino == place[1] and st.st_size == place[0] and stat.S_ISREG(st.st_mode):
                self.token[name] = list(place)
                return
        try:
            fd, st = open_regular(gdir + "/" + name)
        except FileNotFoundError:
            return
        except OSError as e:
            self.errors.append(f"{name}: {e.strerror or e}; not read")
            return
        size, ino = st.st_size, st.st_ino
        offset = records = 0
        if place is not None:
            if place[1] == ino and 0 <= place[0] <= size:
                if len(place) == 3 and place[2] < 0:  # corrupt there: nothing past it is read
                    os.close(fd)
                    self.token[name] = list(place)
                    return
                offset = place[0]
                records = place[2] if len(place) == 3 else 0
            else:
                self.reset = True  # replaced or truncated: what was read of it is void
        self._corrupt = False
        try:
            if offset < size:
                index = sidecar.open_index(gdir, name, ino, size)
                if index is not None:
                    try:
                        if offset < index.start:
                            offset = yield from self._decode(fd, name, offset, index.start)
                        if offset >= index.start and not self._corrupt:
                            first = index.first_after(offset, records)
                            if first == 0 and (self.overview is not None or self.totals_only):
                                group = self._overview(gdir, name, ino, index)
                                if group is not None:
                                    yield group
                                    first, offset, records = group.records, group.offset, group.records
                            if first is not None and first < index.count:
                                offset, records = yield from self._indexed(index, first)
                    finally:
                        index.close()
                if offset < size and not self._corrupt:
                    offset = yield from self._decode(fd, name, offset, size)
        finally:
            os.close(fd)
            self.token[name] = [offset, ino, -1] if self._corrupt else [offset, ino, records]

    def _overview(self, gdir: str, name: str, ino: int, index) -> OverviewGroup | None:
        """The group the file's overview makes of the records it covers, when
        there is one and it may stand for them (see the class)."""
        ov = overview_file.open_overview(gdir, name, ino, index)
        if ov is None:
            return None
        try:
            group = OverviewGroup()
            if not self.totals_only:
                points, tags = self.overview
                want = [t for t in ov.tags if (tags is None or t in tags) and (self.wanted is None or t in self.wanted)]
                if any(ov.tags[t].count <= points or 2 * ov.tags[t].npoints < points for t in want):
                    return None  # a series shown whole, or thinned finer than the overview is
                for t in want:
                    data = ov.points(t)
                    if data is None:
                        return None
                    pts = np.frombuffer(data, dtype=POINT_DTYPE)
                    group.append((t, pts["step"].copy(), pts["value"].copy(), pts["wall"].copy()))
            group.totals = ov.tags
            group.records, group.offset = ov.records, ov.offset
        except OSError:
            return None
        finally:
            ov.close()
        self.seen.update(ov.tags)
        self.overviewed += ov.records
        return group

    def _indexed(self, index, first: int):
        """Points of records ``first``.. of the index; returns the event
        offset they cover and the number of records read to there."""
        offset = None
        wanted = self.wanted
        i = first
        while i < index.count:
            j = min(index.count, i + sidecar.CHUNK_RECORDS)
            recs = np.frombuffer(index.raw(i, j), dtype=RECORD_DTYPE)
            if not len(recs):
                break
            names = index.tags
            tag_ids = np.flatnonzero(np.bincount(recs["tag"]))
            if int(tag_ids[-1]) >= len(names):
                break  # a tag not named (yet): decode the events from here
            group = []
            for t in tag_ids.tolist():
                tag = names[t]
                self.seen.add(tag)
                if wanted is not None and tag not in wanted:
                    continue
                sel = recs[recs["tag"] == t] if len(tag_ids) > 1 else recs
                self.indexed += len(sel)
                group.append((tag, sel["step"].astype(np.int64), sel["value"].astype(np.float64), sel["wall"].copy()))
            if group:
                yield group
            offset = int(recs["end"][-1])
            i += len(recs)
        if offset is None:
            return (index.start if first == 0 else index.end(first - 1)), first
        return offset, i

    def _decode(self, fd: int, name: str, offset: int, end: int):
        """Points of the events from ``offset`` to ``end``, decoded; returns
        the offset after the last complete record read."""
        wanted = self.wanted
        done = offset
        acc: dict = {}
        n = 0
        try:
            for data, rec_end in read_records(fd, offset, end):
                wall = None
                for step, tag, value in decode_event(data):
                    self.seen.add(tag)
                    if wanted is not None and tag not in wanted:
                        continue
                    if wall is None:
                        wall = wall_time(data) or 0.0
                    cols = acc.get(tag)
                    if cols is None:
                        cols = acc[tag] = ([], [], [])
                    cols[0].append(step)
                    cols[1].append(value)
                    cols[2].append(wall)
                    n += 1
                done = rec_end
                if n >= DECODE_CHUNK:
                    yield from self._flush(acc)
                    n = 0
        except (Corrupt, IndexError, struct.error) as e:
            self.errors.append(f"{name}: corrupt record after byte {done} ({e}); later records not read")
            self._corrupt = True  # nothing past a corrupt record is read, now or later
        except OSError as e:
            self.errors.append(f"{name}: {e.strerror or e}; later records not read")
        yield from self._flush(acc)
        return done

    def _flush(self, acc: dict):
        group = []
        for tag, (steps, values, walls) in acc.items():
            if steps:
                self.decoded += len(steps)
                group.append((tag, np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64),
                              np.array(walls, dtype=np.float64)))
        acc.clear()
        if group:
            yield group
