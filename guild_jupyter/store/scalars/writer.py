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

Events are written synchronously (no writer thread, no queue that a failing
disk could block on), buffered and flushed about every second and at
:meth:`ScalarWriter.close`. The TensorBoard protobufs are imported on the
first scalar only: runs that print none pay nothing. A write error (a full
disk) disables scalars for the rest of the run; it never reaches the caller.
"""

from __future__ import annotations

import os
import re
import struct
import time

MAX_LINE = 64 * 1024
FLUSH_SECS = 1.0

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
        self.count = 0
        self.error: str | None = None  # why scalars stopped being recorded
        self._pending = b""  # visible part of the current partial line
        self._overlong = False  # the current partial line is past MAX_LINE
        self._ends_cr = False  # the last byte of the current partial line is a \r
        self._fd: int | None = None
        self._buf: list[bytes] = []
        self._last_flush = 0.0
        self._pb = None

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
                pass
            return
        if key in self.ignore or self.error is not None:
            return
        try:
            self._write_event(key, value)
            self.count += 1
            if time.monotonic() - self._last_flush >= FLUSH_SECS:
                self.flush()
        except Exception as e:  # noqa: BLE001 - a full disk never ends the run
            self._fail(e)

    def _write_event(self, key: str, value: float) -> None:
        if self._pb is None:
            self._open()
        event_pb2, summary_pb2 = self._pb
        ev = event_pb2.Event(wall_time=time.time(), step=self.step,
                             summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=key, simple_value=value)]))
        self._buf.append(_record_bytes(ev.SerializeToString()))

    def _open(self) -> None:
        import socket

        from tensorboardX.proto import event_pb2, summary_pb2

        self._pb = (event_pb2, summary_pb2)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._fd = os.open(os.path.join(self.logdir, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        head = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        self._buf.append(_record_bytes(head.SerializeToString()))

    def flush(self) -> None:
        """Writes the buffered events (called about every second)."""
        self._last_flush = time.monotonic()
        if not self._buf or self._fd is None or self.error is not None:
            return
        data = b"".join(self._buf)
        self._buf.clear()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as e:
            self._fail(e)

    def _fail(self, e: Exception) -> None:
        self.error = getattr(e, "strerror", None) or str(e) or type(e).__name__
        self._buf.clear()

    def close(self) -> None:
        self.finish()
        self.flush()
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


def _record_bytes(data: bytes) -> bytes:
    """One TFRecord: length, its masked crc32c, data, its masked crc32c."""
    # lazy: with the first scalar, like the protobufs: a run that prints none pays nothing
    from .tfrecord import masked_crc32c  # tensorboardX's would import the crc32c package (~40 ms)

    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))
