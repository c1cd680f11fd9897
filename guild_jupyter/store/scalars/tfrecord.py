"""TFRecord files of TensorBoard ``Event`` protobufs, decoded by hand.

A file is a sequence of records (length, its masked CRC32C, data, its
masked CRC32C); each data is an ``Event``. Only what Guild reads is
decoded: ``simple_value`` scalars with their tag and step (and the event's
wall time, for series). Plain Python, no protobuf import: importing the
generated classes costs more than reading a run's records, and every CLI
command may read some.

Files are read in bounded memory (:func:`read_records`): a chunk at a time,
never more than one record beyond it, and a record is at most
:data:`MAX_RECORD` bytes -- a longer length field is corruption (a 4 GiB
length in a file of scalars is never what a writer wrote), so a damaged or
hostile file costs a chunk, not its size.
"""

from __future__ import annotations

import os
import struct
import sys

__all__ = ["Corrupt", "crc32c", "masked_crc32c", "decode_event", "wall_time", "records", "read_records",
           "MAX_RECORD", "CHUNK"]

#: A record longer than this (64 MiB) is taken for a corrupt length. Scalar
#: events are tens of bytes; the largest records TensorBoard writers make
#: (graphs, images) stay well below it.
MAX_RECORD = 64 << 20
#: Bytes read from a file at a time.
CHUNK = 1 << 20

# -- CRC32C (Castagnoli), as TFRecords are checked ------------------------------------------------


def _table() -> list[int]:
    out = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        out.append(c)
    return out


_CRC_TABLE: list[int] = []
_CRC_TABLE16: list[int] = []
_LITTLE = sys.byteorder == "little"  # the two-byte steps read native 16-bit words
#: Bytes checked with the byte table before the two-byte table is built: a
#: command reading a few runs never pays the ~20 ms it takes to build.
TABLE16_AFTER = 256 << 10
_checked = 0
#: The compiled ``crc32c`` package's function (about 25x faster), loaded at
#: the same point as the two-byte table: its import (~40 ms) repays itself
#: only on a big read, such as a first compare of a large store.
_native = None
_native_tried = False


def _load_native():
    try:
        from crc32c import crc32c as native
    except Exception:  # not installed, or a broken build: the tables serve
        return None
    return native if native(b"123456789") == 0xE3069283 else None  # the standard check value


def _table16(t: list[int]) -> list[int]:
    """The state after two bytes, by the 16 bits they xor in: half the
    Python-level steps of the byte table."""
    out = []
    for x in range(65536):
        c = t[x & 0xFF] ^ (x >> 8)
        out.append(t[c & 0xFF] ^ (c >> 8))
    return out


def crc32c(data: bytes) -> int:
    global _CRC_TABLE16, _checked, _native, _native_tried
    if _native is not None:
        return _native(data)
    if not _CRC_TABLE:  # built on first use (a race builds the same table twice)
        _CRC_TABLE[:] = _table()
    table = _CRC_TABLE
    table16 = _CRC_TABLE16
    crc = 0xFFFFFFFF
    if not table16:
        _checked += len(data)
        if _checked > TABLE16_AFTER:
            if not _native_tried:
                _native_tried = True
                _native = _load_native()
                if _native is not None:
                    return _native(data)
            if _LITTLE:
                _CRC_TABLE16 = _table16(table)
        for b in data:
            crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF
    n = len(data) & ~1
    if n:
        for w in memoryview(data)[:n].cast("H"):
            crc = table16[(crc ^ w) & 0xFFFF] ^ (crc >> 16)
    for b in data[n:]:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# -- protobuf (the wire format, only the fields read here) ------------------------------------------

_LEN = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


class Corrupt(ValueError):
    """A record or event that cannot be what a writer wrote."""


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Corrupt("bad varint")


def _fields(buf: bytes):
    """(field number, wire type, value) of a message; a length-delimited
    value is its bytes, fixed ones their raw bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value = buf[pos:pos + n]
            pos += n
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        else:
            raise Corrupt(f"wire type {wire}")
        if pos > end:
            raise Corrupt("field past the end")
        yield field, wire, value


def decode_event(data: bytes) -> list[tuple[int, str, float]]:
    """(step, tag, value) of each ``simple_value`` in one ``Event``."""
    step = 0
    summary = None
    pos, end = 0, len(data)
    while pos < end:  # the Event's fields, inline: this runs once per record
        key = data[pos]
        if key == 0x09:  # wall_time
            pos += 9
        elif key == 0x10:  # step
            step, pos = _varint(data, pos + 1)
            if step >= 1 << 63:
                step -= 1 << 64
        elif key == 0x2A:  # summary
            n, pos = _varint(data, pos + 1)
            summary = data[pos:pos + n]
            pos += n
        else:
            return _decode_event_slow(data)
    if pos > end:
        raise Corrupt("field past the end")
    if summary is None:
        return []
    out = []
    for field, wire, value in _fields(summary):
        if field == 1 and wire == 2:
            tv = _tag_value(value)
            if tv is not None:
                out.append((step, tv[0], tv[1]))
    return out


def wall_time(data: bytes) -> float | None:
    """The ``wall_time`` (seconds since the epoch) of one ``Event``; None
    when it has none. Writers put it first, where it is read directly."""
    if len(data) >= 9 and data[0] == 0x09:
        return _F64.unpack_from(data, 1)[0]
    for field, wire, value in _fields(data):
        if field == 1 and wire == 1 and len(value) == 8:
            return _F64.unpack(value)[0]
    return None


def _decode_event_slow(data: bytes) -> list[tuple[int, str, float]]:
    step = 0
    summary = None
    for field, wire, value in _fields(data):
        if field == 2 and wire == 0:
            step = value - (1 << 64) if value >= 1 << 63 else value
        elif field == 5 and wire == 2:
            summary = value
    if summary is None:
        return []
    return [(step, tv[0], tv[1]) for f, w, v in _fields(summary) if f == 1 and w == 2
            for tv in (_tag_value(v),) if tv is not None]


def _tag_value(value: bytes):
    """(tag, simple_value) of a ``Summary.Value``, None without both. The
    layout every writer uses (tag, then the float) is read directly."""
    n = len(value)
    if n > 6 and value[0] == 0x0A and value[1] < 0x80:
        end = 2 + value[1]
        if end + 5 == n and value[end] == 0x15:
            return value[2:end].decode("utf-8", "replace"), _F32.unpack_from(value, end + 1)[0]
    tag = simple = None
    for f, w, v in _fields(value):
        if f == 1 and w == 2:
            tag = v.decode("utf-8", "replace")
        elif f == 2 and w == 5:
            simple = _F32.unpack(v)[0]
    return None if tag is None or simple is None else (tag, simple)


_HEADER_CRCS: dict[bytes, int] = {}


def records(buf: bytes, pos: int = 0):
    """``(data, end)`` of each complete record from ``pos``; stops before a
    record not complete yet; raises ``Corrupt`` at a bad one."""
    n = len(buf)
    header_crcs = _HEADER_CRCS
    while pos + 12 <= n:
        header = buf[pos:pos + 8]
        expected = header_crcs.get(header)
        if expected is None:  # records of one length share a header: checksum each length once
            expected = masked_crc32c(header)
            if len(header_crcs) > 4096:
                header_crcs.clear()
            header_crcs[header] = expected
        if _U32.unpack_from(buf, pos + 8)[0] != expected:
            raise Corrupt(f"bad length checksum at byte {pos}")
        (length,) = _LEN.unpack(header)
        if length > MAX_RECORD:
            raise Corrupt(f"record length {length} at byte {pos}")
        end = pos + 12 + length + 4
        if end > n:
            return
        data = buf[pos + 12:pos + 12 + length]
        if _U32.unpack_from(buf, end - 4)[0] != masked_crc32c(data):
            raise Corrupt(f"bad data checksum at byte {pos}")
        yield data, end
        pos = end


def read_records(fd: int, offset: int, end: int, chunk: int = CHUNK):
    """``(data, end offset)`` of each complete record of the open file
    ``fd`` from byte ``offset`` up to byte ``end`` (the size the caller saw),
    read ``chunk`` bytes at a time: memory stays within a chunk plus one
    record (at most ``MAX_RECORD``), whatever the file's size. Stops before
    a record not complete by ``end`` (a writer in the middle of a flush);
    raises ``Corrupt`` at a bad one, ``OSError`` when reading fails."""
    buf = b""
    pos = 0  # index in buf of the next record
    at = offset  # file offset of buf[0]
    while True:
        for data, rec_end in records(buf, pos):
            pos = rec_end
            yield data, at + rec_end
        have = at + len(buf)
        if have >= end:
            return
        want = chunk
        rest = len(buf) - pos
        if rest >= 12:  # a header records() checked: its record needs this much more
            want = max(chunk, _LEN.unpack_from(buf, pos)[0] + 16 - rest)
        new = os.pread(fd, min(want, end - have), have)
        if not new:  # the file shrank meanwhile
            return
        buf = buf[pos:] + new
        at += pos
        pos = 0
