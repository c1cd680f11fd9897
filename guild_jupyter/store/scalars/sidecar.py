"""The writer's index of its own event file: each scalar it wrote, as a
fixed-size record, so charts read a run's series without decoding events.

A live sweep view asks for the series of a hundred runs logging tens of
thousands of values each. Decoding TensorBoard events costs a few µs a
record in Python; a record of fixed size costs nothing to slice. So next to
each event file it writes (``events.out.tfevents.REST``), our writer
(``writer.ScalarWriter``) keeps ``scalar-series.REST``:

- a 24-byte header: ``GJSERIES``, the event file's inode, and the event
  file offset where the records begin (what the file held before: the
  header event, or what an earlier writer appended to the same file);
- then one 32-byte record per scalar: wall time (f64), step (i64), value
  (the f32 the event holds), tag number (u32), and the event file's offset
  just past that scalar's event (u64): records are in file order, so these
  offsets rise, and an event-file offset (what readers keep as their
  place) finds its record by bisection;
- ``scalar-series.REST.tags``: the tag names, one a line, tag number = line
  number, each written before the first record that uses it.

It is an index, not a source: the event file is what Guild and TensorBoard
read, and a reader uses the index only while it matches its event file
(the same inode, offsets within the event file's size); whatever the index
does not cover is decoded from the event file. The index is written after
the events it describes, so it never runs ahead of them. Its name has no
``tfevents`` in it: TensorBoard and Guild never take it for an event file.
An event file changed in place (not appended to) is not noticed here: the
index trusts the file its writer wrote.
"""

from __future__ import annotations

import os
import struct

from ..regular_file import open_regular, read_small

__all__ = ["MAGIC", "HEADER", "RECORD", "EVENTS_PREFIX", "PREFIX", "name_for", "header_bytes", "record_bytes",
           "Index", "open_index"]

MAGIC = b"GJSERIES"
HEADER = struct.Struct("<8sQQ")  # magic, event file inode, offset the records begin at
RECORD = struct.Struct("<dqfIQ")  # wall time, step, value, tag number, event file offset past the event
EVENTS_PREFIX = "events.out.tfevents."
PREFIX = "scalar-series."
#: A tags file larger than this is not an index of ours.
MAX_TAGS_BYTES = 4 << 20
#: Records read at a time.
CHUNK_RECORDS = 32768


def name_for(event_name: str) -> str | None:
    """``scalar-series.REST`` for ``events.out.tfevents.REST``."""
    if not event_name.startswith(EVENTS_PREFIX):
        return None
    return PREFIX + event_name[len(EVENTS_PREFIX):]


def header_bytes(event_ino: int, start: int) -> bytes:
    return HEADER.pack(MAGIC, event_ino, start)


def record_bytes(wall: float, step: int, value_f32: bytes, tag: int, event_end: int) -> bytes:
    """One record; ``value_f32``: the 4 bytes the event holds."""
    return struct.pack("<dq", wall, step) + value_f32 + struct.pack("<IQ", tag, event_end)


class Index:
    """An open index that matches its event file: ``count`` records from
    ``start``; ``end(i)`` is record i's event offset; ``raw(i, j)`` the bytes
    of records i..j-1; ``tags`` their tag names. Close it."""

    __slots__ = ("fd", "path", "start", "count", "_tags")

    def __init__(self, fd: int, path: str, start: int, count: int):
        self.fd, self.path, self.start, self.count = fd, path, start, count
        self._tags: list[str] | None = None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def end(self, i: int) -> int:
        return struct.unpack_from("<Q", os.pread(self.fd, 8, HEADER.size + i * RECORD.size + 24))[0]

    def first_after(self, offset: int, hint: int = 0) -> int | None:
        """The first record whose event ends past ``offset``, when
        ``offset`` is where one of the index's events begins (its start or
        the end of a record); None when it is not (not a place of ours).
        ``hint``: the record a previous read stopped at (one read checks it)."""
        if offset == self.start:
            return 0
        if 0 < hint <= self.count and self.end(hint - 1) == offset:
            return hint
        lo, hi = 0, self.count  # the record whose end is offset, by bisection
        while lo < hi:
            mid = (lo + hi) // 2
            e = self.end(mid)
            if e < offset:
                lo = mid + 1
            elif e > offset:
                hi = mid
            else:
                return mid + 1
        return None

    def raw(self, i: int, j: int) -> bytes:
        n = (j - i) * RECORD.size
        data = os.pread(self.fd, n, HEADER.size + i * RECORD.size)
        return data[:len(data) - len(data) % RECORD.size]

    @property
    def tags(self) -> list[str]:
        """Tag names by number, read after the records they name were."""
        if self._tags is None:
            try:
                text = read_small(self.path + ".tags", MAX_TAGS_BYTES)
            except OSError:
                text = b""
            self._tags = text.decode("utf-8", "replace").split("\n")[:-1]
        return self._tags


def open_index(gdir: str, event_name: str, event_ino: int, event_size: int) -> Index | None:
    """The index of ``gdir/event_name`` when it matches that file (inode
    ``event_ino``, ``event_size`` bytes now), with only the records whose
    events lie within those bytes; None when there is none or it does not
    match."""
    name = name_for(event_name)
    if name is None:
        return None
    path = gdir + "/" + name
    try:
        fd, st = open_regular(path)
    except OSError:
        return None
    try:
        head = os.pread(fd, HEADER.size, 0)
        if len(head) < HEADER.size:
            raise ValueError
        magic, ino, start = HEADER.unpack(head)
        if magic != MAGIC or ino != event_ino or start > event_size:
            raise ValueError
        index = Index(fd, path, start, (st.st_size - HEADER.size) // RECORD.size)
        # Records whose events are not all in the event file's bytes seen (a
        # reader that stat'ed the event file before the writer's last flush).
        if index.count and index.end(index.count - 1) > event_size:
            lo, hi = 0, index.count
            while lo < hi:
                mid = (lo + hi) // 2
                if index.end(mid) <= event_size:
                    lo = mid + 1
                else:
                    hi = mid
            index.count = lo
        return index
    except (ValueError, OSError, struct.error):
        os.close(fd)
        return None
