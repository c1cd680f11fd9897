"""The listing index's file, ``cache/guild_jupyter/listing.v4``: settled,
readable runs kept under their stamp, so a new process lists 10,000 runs
without opening 100,000 files, and shows the newest 20 of 100,000 after
one ``stat`` a run.

Layout: a JSON header line (format, record count, where the values start,
``runs/``'s mtime when its names were last listed and the names that have
no record), then one fixed-size binary record per run (its id, stamp, sort
keys, status and where its values are), then the values (JSON, one blob a
run) that only the runs a listing shows are decoded from.

Versions. The file's name carries its format, so another version of the
code keeps its own file instead of overwriting ours (and ours never throws
its away). Each record carries the version of its stamp rule and values
(``ENTRY_VERSION``): a record of another version is ignored alone, that
run read from its files, and the others kept.

The file is untrusted like every other file of the store: a record or
value of the wrong shape is dropped and the run read from its own files;
only a regular file is read (a FIFO or device put in its place is not
read), and at most ``MAX_BYTES``."""

from __future__ import annotations

import json
import os
import struct

from . import attrs as attrlib
from .entry import NONE_INT, STATUS_CODES
from .regular_file import open_regular
from .run import STATUSES

NAME = "listing.v4"
FORMAT = 4
ENTRY_VERSION = 4  # 2: the last byte holds the marker bits; 3: attrs/sweep stamped and kept (opref's stamp bit
# moved); 4: the attrs runs --json prints kept too (entry.KEYS; opref's bit moved again) and the opref's text
MAX_BYTES = 1 << 30

# id, stamp (g, a, mask, files, newest, key mtime, key size; key inode),
# started, stopped, timestamp, values offset, length, entry version, status, is_queue, markers (entry.HAS_*)
RECORD = struct.Struct("<16s7qQ3qQI4B")


def _int_or_none(v: int):
    return None if v == NONE_INT else v


def _none_to_int(v) -> int:
    return NONE_INT if v is None else v


def read_regular(path: str) -> bytes | None:
    """The whole file at ``path`` if it is a regular file of at most
    ``MAX_BYTES`` (``regular_file.open_regular``: a FIFO or a device put in
    its place is never read), else None."""
    try:
        fd, st = open_regular(path)
    except OSError:
        return None
    try:
        if st.st_size > MAX_BYTES:
            return None
        chunks, left = [], st.st_size + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 24))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks) if left > 0 else None  # grew past its size while read: not a file we wrote
    except OSError:
        return None
    finally:
        os.close(fd)


class Saved:
    """What the listing file holds: ``records`` (id -> record tuple),
    ``values_of(record)`` (the raw JSON of its values), ``runs_mtime`` and
    ``others`` (``runs/`` as last listed: the ids without a record)."""

    __slots__ = ("records", "buf", "values_at", "runs_mtime", "others")

    def __init__(self, records=None, buf=b"", runs_mtime=None, others=(), values_at=0):
        self.records = records if records is not None else {}
        self.buf = buf
        self.values_at = values_at  # where the values start in ``buf`` (records hold offsets from there)
        self.runs_mtime = runs_mtime
        self.others = others

    def ids(self) -> list:
        return list(self.records) + list(self.others)

    def values_of(self, rec) -> bytes:
        off = self.values_at + rec[12]
        return self.buf[off:off + rec[13]]

    @staticmethod
    def stamp_of(rec) -> tuple:
        return rec[1:9]

    @staticmethod
    def keys_of(rec):
        """``(status, started, stopped, timestamp, is_queue, markers)`` for an Entry."""
        return STATUSES[rec[15]], _int_or_none(rec[9]), _int_or_none(rec[10]), rec[11], bool(rec[16]), rec[17] & 7


def load(path: str) -> Saved:
    buf = read_regular(path)
    if not buf:
        return Saved()
    nl = buf.find(b"\n")
    try:
        head = json.loads(buf[:nl])
        count = head["count"]
        start = nl + 1
        values_at = start + count * RECORD.size
        ok = (head.get("format") == FORMAT and type(count) is int and 0 <= count and values_at <= len(buf)
              and head.get("record") == RECORD.format)
    except (ValueError, KeyError, TypeError, RecursionError):
        ok = False
    if not ok:
        return Saved()
    n_values = len(buf) - values_at
    records = {}
    dropped = []
    n_status = len(STATUSES)
    for rec in RECORD.iter_unpack(memoryview(buf)[start:values_at]):
        # Each record alone: another entry version, or a record of the wrong shape, is dropped; its
        # run stays among runs/'s names (``others``): read from its files, never left out of a listing.
        if rec[14] != ENTRY_VERSION or rec[15] >= n_status or rec[12] + rec[13] > n_values:
            dropped.append(rec[0].hex())
            continue
        records[rec[0].hex()] = rec
    runs_mtime = head.get("runs_mtime")
    others = head.get("others")
    if type(runs_mtime) is not int or type(others) is not list or not all(type(x) is str for x in others):
        runs_mtime, others = None, ()
    elif dropped:
        others = others + dropped
    return Saved(records, buf, runs_mtime, others, values_at)


def save(path: str, entries, now_ns: int, runs_mtime, all_ids) -> None:
    """Writes the persistable ``entries`` (``Entry.persistable``), and
    ``runs/``'s mtime with the ids it held (``all_ids``; None when the
    names were not all listed) so that a later process can skip listing it
    while that mtime holds."""
    recs = []
    blobs = []
    off = 0
    kept = set()
    for e in entries:
        if not e.persistable(now_ns):
            continue
        try:
            raw = e.encoded()
            rid = bytes.fromhex(e.id)
        except (TypeError, ValueError):  # a value JSON cannot hold (a date from YAML): leave that run out
            continue
        if len(rid) != 16:
            continue
        s = e.stamp
        try:
            rec = RECORD.pack(rid, s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
                              _none_to_int(e.started), _none_to_int(e.stopped), e.timestamp,
                              off, len(raw), ENTRY_VERSION, STATUS_CODES[e.status], int(e.is_queue), e.markers)
        except struct.error:  # an int attr past 64 bits (a started of 10**30): leave that run out
            continue
        recs.append(rec)
        blobs.append(raw)
        off += len(raw)
        kept.add(e.id)
    others = [] if all_ids is None else [i for i in all_ids if i not in kept]
    head = {"format": FORMAT, "record": RECORD.format, "count": len(recs),
            "runs_mtime": runs_mtime if all_ids is not None else None, "others": others}
    data = b"".join([json.dumps(head, separators=(",", ":")).encode(), b"\n"] + recs + blobs)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)  # a store new, or whose cache was removed
        attrlib.write_atomic(path, data)
    except OSError:
        pass  # a read-only store still lists, just without the file
