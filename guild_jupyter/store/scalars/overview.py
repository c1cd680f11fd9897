"""The writer's overview of its own event file: per tag, the totals a sweep's
table shows and the series already thinned, so a viewer's first load reads
a few kilobytes a run instead of every record of the index.

A sweep view's first load asks, for a hundred runs at once, for each run's
summary (its table: the main scalar now and best so far, progress) and one
tag's series thinned to about a point per pixel column. From the index
(:mod:`.sidecar`) that is every record of every run: 32 bytes a scalar,
160 MB for 100 runs x 5 tags x 10,000 values, read and sliced twice, most
of a second before the first paint. The writer sees every value as it
writes it, so next to the index it keeps ``scalar-overview.REST``:

- a 44-byte header: ``GJOVIEW1``, the event file's inode, the number of
  index records it covers, the event-file offset just past them (where a
  reader goes on, through the index, for what came after), the directory's
  end, and the number of tags;
- a directory, one entry per tag in the order logged: its name, count,
  last step, last value, lowest and highest finite value (NaN: none), last
  wall time, its recent values (``RECENT``, oldest first), and where its
  points are;
- per tag, its points (step i64, value f64, wall time f64), in the order
  logged: the first, the lowest and highest of each bucket of ``width``
  consecutive values (``Decimator``: at most ``2 * MAX_BUCKETS`` buckets,
  two merged into one whenever that is reached), those of the bucket being
  filled, and the last.

The writer replaces it atomically (``overview.tmp`` renamed) now and then
(``writer.ScalarWriter``), never for a file of fewer than ``MIN_RECORDS``
scalars (reading such an index whole costs nothing). Like the index it is
never a source: a reader uses it only while it matches the index it came
with (the same inode; the records it covers within the index, and their
last one ending where it says), and a file of another shape is ignored.
Its name has no ``tfevents`` in it: TensorBoard and Guild never read it.

Thinned points from here are what thinning the whole series would keep,
bucket for bucket, give or take where the buckets' borders fall: a reader
uses them only for a series longer than the points asked for (which would
be thinned anyway) and when they are at least half as many as asked.
"""

from __future__ import annotations

import math
import os
import struct
from collections import deque

from ..regular_file import open_regular

__all__ = ["PREFIX", "MAGIC", "MIN_RECORDS", "MAX_BUCKETS", "RECENT", "name_for", "Decimator", "encode",
           "TagTotals", "Overview", "open_overview"]

PREFIX = "scalar-overview."
EVENTS_PREFIX = "events.out.tfevents."
MAGIC = b"GJOVIEW1"
HEADER = struct.Struct("<8sQQQQI")  # magic, event inode, index records covered, event offset past them, dir end, tags
#: count, last step, last, low, high, last wall, recent values, points, points' offset
ENTRY = struct.Struct("<QqddddIIQ")
POINT = struct.Struct("<qdd")  # step, value, wall time
#: Fewer scalars than this in an event file: no overview (its index is read whole in no time).
MIN_RECORDS = 4096
#: Buckets kept per tag between MAX_BUCKETS and twice that (points: about 2 a bucket).
MAX_BUCKETS = 512
#: Recent values kept per tag (a sparkline; the summaries' ``TagSummary.RECENT``).
RECENT = 32
#: A directory larger than this is not one of ours.
MAX_DIRECTORY = 4 << 20


def name_for(event_name: str) -> str | None:
    """``scalar-overview.REST`` for ``events.out.tfevents.REST``."""
    if not event_name.startswith(EVENTS_PREFIX):
        return None
    return PREFIX + event_name[len(EVENTS_PREFIX):]


# -- writing ----------------------------------------------------------------------------------------


def _lower(a: float, b: float) -> bool:
    """Whether ``a`` is a new low against ``b`` (a NaN is never one, and never stays one)."""
    return a == a and (b != b or a < b)


def _higher(a: float, b: float) -> bool:
    return a == a and (b != b or a > b)


class Decimator:
    """One tag's totals and thinned points, kept as values come (the writer's
    side, a second's values at a time): constant memory whatever the run
    logs, and a few C-level passes over each second's values rather than
    Python work per value (the writer runs alongside the user's script)."""

    __slots__ = ("count", "last", "low", "high", "recent", "width", "buckets", "lo", "hi", "filled", "first")

    def __init__(self):
        self.count = 0
        self.last = None  # (index, step, value, wall)
        self.low = math.nan
        self.high = math.nan
        self.recent: deque = deque(maxlen=RECENT)
        self.width = 1
        self.buckets: list = []  # (lowest point, highest point) of each full bucket
        self.lo = self.hi = None  # of the bucket being filled
        self.filled = 0
        self.first = None

    def extend(self, records: list) -> None:
        """The tag's next values: the index's records (``sidecar.RECORD``
        unpacked: wall, step, value, tag, end), in the order logged."""
        n = len(records)
        if not n:
            return
        base = self.count
        values = [r[2] for r in records]

        def point(i):
            r = records[i]
            return (base + i, r[1], r[2], r[0])

        self.count += n
        self.last = point(n - 1)
        if self.first is None:
            self.first = point(0)
        self.recent.extend(values[-RECENT:])
        total = sum(values)
        finite = values if total - total == 0.0 else [v for v in values if v - v == 0.0]
        if finite:
            lo, hi = min(finite), max(finite)
            if not self.low <= lo:
                self.low = lo
            if not self.high >= hi:
                self.high = hi
        i = 0
        while i < n:
            take = min(self.width - self.filled, n - i)
            part = values[i:i + take]
            s = sum(part)
            if s - s == 0.0:  # all finite: C-level min, max and index
                lo = point(i + part.index(min(part)))
                hi = point(i + part.index(max(part)))
            else:  # a NaN or an infinity: one by one (a NaN is never an extreme while another value is)
                lo = hi = point(i)
                for j in range(1, take):
                    v = part[j]
                    if _lower(v, lo[2]):
                        lo = point(i + j)
                    if _higher(v, hi[2]):
                        hi = point(i + j)
            if self.lo is None:
                self.lo, self.hi = lo, hi
            else:
                if _lower(lo[2], self.lo[2]):
                    self.lo = lo
                if _higher(hi[2], self.hi[2]):
                    self.hi = hi
            self.filled += take
            i += take
            if self.filled == self.width:
                self.buckets.append((self.lo, self.hi))
                self.lo = self.hi = None
                self.filled = 0
                if len(self.buckets) >= 2 * MAX_BUCKETS:
                    self._merge()

    def _merge(self) -> None:
        b = self.buckets
        merged = []
        for i in range(0, len(b) - 1, 2):
            (lo1, hi1), (lo2, hi2) = b[i], b[i + 1]
            merged.append((lo2 if _lower(lo2[2], lo1[2]) else lo1, hi2 if _higher(hi2[2], hi1[2]) else hi1))
        self.buckets = merged
        self.width *= 2

    def points(self) -> list:
        """The thinned points, in the order logged: the first, each bucket's
        extremes, the filling bucket's, the last; each once."""
        out = [self.first]
        for lo, hi in self.buckets:
            out += (lo, hi) if lo[0] <= hi[0] else (hi, lo)
        if self.lo is not None:
            out += (self.lo, self.hi) if self.lo[0] <= self.hi[0] else (self.hi, self.lo)
        out.append(self.last)
        kept, seen = [], -1
        for p in out:
            if p[0] > seen:
                kept.append(p)
                seen = p[0]
        return kept


def encode(event_ino: int, records: int, event_offset: int, tags: list) -> bytes:
    """The overview's bytes: ``tags``: [(name, Decimator)] in the order logged."""
    entries, blocks = [], []
    names = [name.encode("utf-8") for name, _d in tags]
    dir_end = HEADER.size + sum(2 + len(n) + ENTRY.size + 8 * len(d.recent) for n, (_x, d) in zip(names, tags))
    at = dir_end
    for name, (_x, d) in zip(names, tags):
        pts = d.points()
        recent = list(d.recent)
        _i, last_step, last, last_wall = d.last
        entries.append(struct.pack("<H", len(name)) + name
                       + ENTRY.pack(d.count, last_step, last, d.low, d.high, last_wall, len(recent), len(pts), at)
                       + struct.pack(f"<{len(recent)}d", *recent))
        blocks.append(b"".join(POINT.pack(p[1], p[2], p[3]) for p in pts))
        at += POINT.size * len(pts)
    return HEADER.pack(MAGIC, event_ino, records, event_offset, dir_end, len(tags)) + b"".join(entries) + b"".join(blocks)


# -- reading ----------------------------------------------------------------------------------------


class TagTotals:
    """One tag's totals over what an overview covers (``charts.TagSummary``'s
    fields): ``count``, ``last_step``, ``last``, ``low``, ``high`` (None:
    no finite value), ``last_wall``, ``recent``; and where its points are."""

    __slots__ = ("count", "last_step", "last", "low", "high", "last_wall", "recent", "npoints", "at")


class Overview:
    """An open overview that matches its index: ``records`` and ``offset``
    (what it covers), ``tags`` ({name: TagTotals}, in the order logged);
    ``points(tag)`` reads one tag's points. Close it."""

    __slots__ = ("fd", "records", "offset", "tags", "size")

    def __init__(self, fd: int, records: int, offset: int, tags: dict, size: int):
        self.fd, self.records, self.offset, self.tags, self.size = fd, records, offset, tags, size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def points(self, tag: str) -> bytes | None:
        """The tag's points, ``POINT`` records (None: not readable)."""
        t = self.tags[tag]
        n = POINT.size * t.npoints
        data = os.pread(self.fd, n, t.at)
        return data if len(data) == n else None


def open_overview(gdir: str, event_name: str, event_ino: int, index) -> Overview | None:
    """The overview of ``gdir/event_name`` when it matches that file (inode
    ``event_ino``) and ``index`` (a ``sidecar.Index`` of it, as far as a
    reader sees it now); None when there is none, it does not match, or it
    has another shape."""
    name = name_for(event_name)
    if name is None or index is None:
        return None
    try:
        fd, st = open_regular(gdir + "/" + name)
    except OSError:
        return None
    try:
        head = os.pread(fd, HEADER.size, 0)
        magic, ino, records, offset, dir_end, ntags = HEADER.unpack(head)
        if (magic != MAGIC or ino != event_ino or not 0 < records <= index.count or offset != index.end(records - 1)
                or not HEADER.size <= dir_end <= min(st.st_size, MAX_DIRECTORY)):
            raise ValueError
        data = os.pread(fd, dir_end - HEADER.size, HEADER.size)
        if len(data) != dir_end - HEADER.size:
            raise ValueError
        tags, pos = {}, 0
        for _ in range(ntags):
            (n,) = struct.unpack_from("<H", data, pos)
            tag = data[pos + 2:pos + 2 + n].decode("utf-8")
            pos += 2 + n
            t = TagTotals()
            (t.count, t.last_step, t.last, low, high, t.last_wall, nrecent, t.npoints,
             t.at) = ENTRY.unpack_from(data, pos)
            pos += ENTRY.size
            t.recent = list(struct.unpack_from(f"<{nrecent}d", data, pos))
            pos += 8 * nrecent
            t.low = None if low != low else low
            t.high = None if high != high else high
            if (not t.count or nrecent > RECENT or t.npoints > t.count or t.at < dir_end
                    or t.at + POINT.size * t.npoints > st.st_size or tag in tags):
                raise ValueError
            tags[tag] = t
        if pos != len(data):
            raise ValueError
        return Overview(fd, records, offset, tags, st.st_size)
    except (ValueError, OSError, struct.error, UnicodeDecodeError):
        os.close(fd)
        return None
