"""Output scalars: ``key: value`` lines recorded as TensorBoard events.

Guild 0.9 reads scalars from event files under the run's ``.guild`` dir, so
``guild compare`` and TensorBoard both show what we write there.

Output comes in chunks of any shape (``\\r`` progress bars without a newline,
binary data, lines of megabytes); :meth:`ScalarWriter.feed` takes each chunk
once, in time linear in its size. A line is judged as a terminal shows it:
one trailing ``\\r`` is dropped, and of a line containing ``\\r`` only the
text after the last ``\\r`` counts. Only the current partial line is kept
between chunks, and only its visible part (after its last ``\\r``), capped at
:data:`MAX_LINE`: a longer one is not a scalar line.

Steps. A run whose output sets ``step`` (``step: N``) gets Guild's rule:
each value is recorded at the step last set (0 before the first). A run
that never sets it gets, for each tag, step k on its k-th value (from 0):
an ``epoch: N`` / ``loss: X`` script draws a line, not every value at step
0. The last value of each tag (what ``guild compare`` shows) is the same
either way. A ``step:`` line that comes after values were logged switches
to Guild's rule from there on; the values before it keep the steps they
were given (an event file is append-only).

Events are written synchronously (no writer thread, no queue that a failing
disk could block on), buffered and flushed about every second and at
:meth:`ScalarWriter.close`. Events are serialized here as protobuf would
(tensorboardX's generated classes cost a run ~200 ms to import); the tests
read them back with tensorboardX's protobufs. Next to the event file the
writer keeps its index (:mod:`.sidecar`), which charts read instead of
decoding events, and, for a file of many scalars, its overview
(:mod:`.overview`: per tag the totals and the series thinned, what a
viewer's first load reads instead of the whole index), replaced every
``OVERVIEW_SECS`` or when what it covers grew by a quarter, and at close.
A write error (a full
disk) disables scalars for the rest of the run; it never reaches the caller.
"""

from __future__ import annotations

import os
import re
import struct
import time

from . import overview, sidecar

MAX_LINE = 64 * 1024
FLUSH_SECS = 1.0
OVERVIEW_SECS = 10.0

_WS = rb"[ \t\f\v]*"
_KEY = rb"([A-Za-z_][A-Za-z0-9_./-]*)"
_VALUE = rb"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf))"
#: One visible line (no \r, no \n) that is a scalar.
_LINE_RE = re.compile(_WS + _KEY + _WS + rb":" + _WS + _VALUE + _WS)
#: A scalar line inside a block of complete lines: it starts after a \n (the
#: line's start) or after a \r (the line's last one, since nothing after it
#: may be a \r but one that ends the line) and ends before a \n.
_CHUNK_RE = re.compile(rb"[\n\r]" + _WS + _KEY + _WS + rb":" + _WS + _VALUE + _WS + rb"\r?(?=\n)")


def visible(line: bytes) -> bytes:
    """What a terminal shows of one output line (without its \\n)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    cr = line.rfind(b"\r")
    return line if cr < 0 else line[cr + 1:]


def parse_line(line: bytes):
    """(key, value) for a scalar line, else None."""
    m = _LINE_RE.fullmatch(visible(line))
    if not m:
        return None
    try:
        return m.group(1).decode("ascii"), float(m.group(2))
    except ValueError:
        return None


class ScalarWriter:
    """Finds scalar lines in a run's output and records them as events."""

    def __init__(self, logdir: str, ignore: set[str]):
        self.logdir = logdir
        self.ignore = ignore
        self.step = 0
        self.counts: dict[str, int] | None = {}  # values per tag while no step was set; None once one was
        self.count = 0
        self.error: str | None = None  # why scalars stopped being recorded
        self._pending = b""  # visible part of the current partial line
        self._overlong = False  # the current partial line is past MAX_LINE
        self._ends_cr = False  # the last byte of the current partial line is a \r
        self._fd: int | None = None
        self._buf: list[bytes] = []
        self._last_flush = 0.0
        self._event_pos = 0  # the event file's size once the buffer is written
        self._tag_ids: dict[str, int] = {}
        self._side_fd: int | None = None  # the index (sidecar) of the event file, and its tag names
        self._side_tags_fd: int | None = None
        self._side_buf: list[bytes] = []
        self._side_tags: list[str] = []
        self._side_records = 0  # index records buffered or written
        self._overview: list = []  # [(tag, overview.Decimator)] by tag number
        self._overview_path: str | None = None  # None: no overview kept (no index)
        self._overview_ino = 0
        self._overview_records = 0  # records the overview on disk covers
        self._overview_time = 0.0
        self._fold_from = 0

    # -- finding scalar lines ------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """The next chunk of output, any shape."""
        nl = data.find(b"\n")
        if nl < 0:
            self._extend(data)
            return
        self._extend(data[:nl])
        if not self._overlong:
            self.feed_line(self._pending)
        self._pending, self._overlong, self._ends_cr = b"", False, False
        last = data.rfind(b"\n")
        if last > nl:
            self._scan(data, nl, last + 1)
        if last + 1 < len(data):
            self._extend(data[last + 1:])

    def finish(self) -> None:
        """End of output: a last line without a newline still counts."""
        if self._pending and not self._overlong:
            self.feed_line(self._pending)
        self._pending, self._overlong, self._ends_cr = b"", False, False

    def feed_line(self, line: bytes) -> None:
        parsed = parse_line(line)
        if parsed is not None:
            self._record(*parsed)

    def _extend(self, part: bytes) -> None:
        """Adds ``part`` (no \\n) to the current partial line, keeping only
        what a terminal would still show: the text after its last \\r (a \\r
        that ends ``part`` may be the line's trailing one, so it stays)."""
        if not part:
            return
        if self._ends_cr:  # the \r that ended the last part was not the line's end
            self._pending, self._overlong = b"", False
        self._ends_cr = part[-1:] == b"\r"
        cr = part.rfind(b"\r", 0, len(part) - 1)
        if cr >= 0:
            self._pending, self._overlong = part[cr + 1:], False
        elif not self._overlong:
            self._pending += part
        if len(self._pending) > MAX_LINE:
            self._pending, self._overlong = b"", True

    def _scan(self, data: bytes, start: int, end: int) -> None:
        """Scalar lines among the complete lines in ``data[start:end]``, which
        starts with the \\n that ends the line before and ends with a \\n."""
        colons = data.count(b":", start, end)
        if not colons:
            return
        if colons * 64 < end - start:  # few candidates: look at their lines only
            pos = data.find(b":", start, end)
            while pos >= 0:
                ls = data.rfind(b"\n", start, pos) + 1
                le = data.find(b"\n", pos, end)
                self.feed_line(data[ls:le])
                pos = data.find(b":", le, end)
            return
        for m in _CHUNK_RE.finditer(data, start, end):
            try:
                self._record(m.group(1).decode("ascii"), float(m.group(2)))
            except ValueError:
                pass

    # -- recording -------------------------------------------------------------------

    def _record(self, key: str, value: float) -> None:
        if key == "step":
            try:
                self.step = int(value)
            except (ValueError, OverflowError):
                return
            self.counts = None  # Guild's rule from here on
            return
        if key in self.ignore or self.error is not None:
            return
        counts = self.counts
        if counts is None:
            step = self.step
        else:
            step = counts.get(key, 0)
            counts[key] = step + 1
        try:
            self._write_event(key, value, step)
            self.count += 1
            if time.monotonic() - self._last_flush >= FLUSH_SECS:
                self.flush()
        except Exception as e:  # noqa: BLE001 - a full disk never ends the run
            self._fail(e)

    def _write_event(self, key: str, value: float, step: int) -> None:
        if self._fd is None:
            self._open()
        wall = time.time()
        tag = self._tag_ids.get(key)
        if tag is None:
            tag = self._tag_ids[key] = len(self._tag_ids)
            self._side_tags.append(key + "\n")
            self._overview.append((key, overview.Decimator()))
        f32 = _f32(value)
        rec = _record_bytes(event_bytes(wall, step, key, f32))
        self._buf.append(rec)
        self._event_pos += len(rec)
        self._side_buf.append(sidecar.record_bytes(wall, step, f32, tag, self._event_pos))

    def _open(self) -> None:
        import socket

        name = f"{sidecar.EVENTS_PREFIX}{int(time.time())}.{socket.gethostname()}"
        self._fd = os.open(os.path.join(self.logdir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        st = os.fstat(self._fd)
        head = _record_bytes(_HEAD + struct.pack("<d", time.time()) + _VERSION)
        self._buf.append(head)
        self._event_pos = st.st_size + len(head)
        self._open_sidecar(os.path.join(self.logdir, sidecar.name_for(name)), st.st_ino, self._event_pos,
                           os.path.join(self.logdir, overview.name_for(name)))

    def _open_sidecar(self, path: str, ino: int, start: int, ov_path: str) -> None:
        """The index of this event file (``sidecar``): a new one (an old
        one of the same name described what was there before: a restart
        in the same second appends to the same event file), and where its
        overview goes (an old one is removed with the old index)."""
        try:
            for p in (ov_path, path + ".tags", path):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
            self._side_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._side_tags_fd = os.open(path + ".tags", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._side_buf.append(sidecar.header_bytes(ino, start))
            self._overview_path, self._overview_ino = ov_path, ino
            self._fold_from = sidecar.HEADER.size  # the header in the buffer is no record
        except OSError:
            self._side_failed()

    def flush(self) -> None:
        """Writes the buffered events (called about every second), then
        their index."""
        self._last_flush = time.monotonic()
        if not self._buf or self._fd is None or self.error is not None:
            return
        data = b"".join(self._buf)
        self._buf.clear()
        try:
            _write_all(self._fd, data)
        except OSError as e:
            self._fail(e)
            return
        if self._side_fd is None:
            return
        try:  # the index after its events, tag names before the records naming them
            if self._side_tags:
                _write_all(self._side_tags_fd, "".join(self._side_tags).encode("utf-8"))
                self._side_tags.clear()
            records = b"".join(self._side_buf)
            _write_all(self._side_fd, records)
            self._side_buf.clear()
        except OSError:
            self._side_failed()
            return
        if self._overview_path is not None:
            self._fold(memoryview(records)[self._fold_from:])
            self._fold_from = 0
            self._write_overview()

    def _fold(self, records) -> None:
        """The records just written, added to their tags' overviews."""
        by_tag: dict = {}
        for rec in sidecar.RECORD.iter_unpack(records):
            got = by_tag.get(rec[3])
            if got is None:
                by_tag[rec[3]] = [rec]
            else:
                got.append(rec)
        for tag, recs in by_tag.items():
            self._overview[tag][1].extend(recs)
        self._side_records += len(records) // sidecar.RECORD.size

    def _write_overview(self, final: bool = False) -> None:
        """Replaces the overview when it is due: ``OVERVIEW_SECS`` since the
        last, or what it covers grew by a quarter, or ``final``."""
        n, done = self._side_records, self._overview_records
        if self._overview_path is None or n < overview.MIN_RECORDS or n == done or self._side_buf:
            return
        now = time.monotonic()
        if not final and n - done < max(overview.MIN_RECORDS, done // 4) and now - self._overview_time < OVERVIEW_SECS:
            return
        tmp = self._overview_path + ".tmp"
        try:
            data = overview.encode(self._overview_ino, n, self._event_pos, self._overview)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, self._overview_path)
        except OSError:  # none from here on: readers read the index (what an overview written before covers stays true)
            self._overview_path = None
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        self._overview_records, self._overview_time = n, now

    def _side_failed(self) -> None:
        """The index stops where it is (readers decode the events past it)."""
        for fd in (self._side_fd, self._side_tags_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._side_fd = self._side_tags_fd = None
        self._side_buf.clear()
        self._side_tags.clear()
        self._overview_path = None
        self._overview = [(tag, None) for tag, _d in self._overview]  # the decimators' memory let go

    def _fail(self, e: Exception) -> None:
        self.error = getattr(e, "strerror", None) or str(e) or type(e).__name__
        self._buf.clear()
        self._side_failed()

    def close(self) -> None:
        self.finish()
        self.flush()
        self._write_overview(final=True)
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        self._side_failed()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- the Event protobuf, written by hand (tensorboardX's classes cost ~200 ms to import per run) --

_HEAD = b"\x09"  # field 1 (wall_time), a double
_VERSION = b"\x1a\x0dbrain.Event:2"  # field 3 (file_version)
_F32 = struct.Struct("<f")


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # int64: a negative step takes ten bytes, as protobuf writes it
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _f32(value: float) -> bytes:
    """The float32 a ``simple_value`` holds (out of range: infinity, as protobuf stores it)."""
    try:
        return _F32.pack(value)
    except OverflowError:
        return _F32.pack(float("inf") if value > 0 else float("-inf"))


def event_bytes(wall: float, step: int, tag: str, value_f32: bytes) -> bytes:
    """An ``Event`` {wall_time, step, summary {value {tag, simple_value}}},
    serialized as protobuf does (proto3: a zero step is left out)."""
    t = tag.encode("utf-8")
    value = b"\x0a" + _varint(len(t)) + t + b"\x15" + value_f32
    summary = b"\x0a" + _varint(len(value)) + value
    return (b"\x09" + struct.pack("<d", wall) + (b"\x10" + _varint(step) if step else b"")
            + b"\x2a" + _varint(len(summary)) + summary)


def _record_bytes(data: bytes) -> bytes:
    """One TFRecord: length, its masked crc32c, data, its masked crc32c."""
    # lazy: with the first scalar: a run that prints none pays nothing
    from .tfrecord import masked_crc32c  # tensorboardX's would import the crc32c package (~40 ms)

    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))
