"""Reading a run's output file in bounded memory.

A run's ``.guild/output`` can grow to gigabytes. ``tail`` finds the last
lines by reading backwards from the end in fixed-size blocks, so asking for
the last 10 lines of a 1 GiB output reads a few KiB; ``read_from`` reads
from an offset (for following output); ``follow`` copies the file as it
grows until the run is over. They return bytes: the text as
written, ``\\r`` progress-bar updates included, as ``guild cat --output``
shows it. Lines are ``\\n``-terminated; a last line without ``\\n`` counts.

Only a regular file is read (``regular_file.open_regular``): an output that
is a FIFO or a link to a device reads as no output, never as a read that
hangs or never ends.
"""

from __future__ import annotations

import os
import time

from .regular_file import NotRegular, open_regular

BLOCK = 64 * 1024
FOLLOW_INTERVAL = 0.01  # seconds between looks at a followed file's size
FOLLOW_CHUNK = 1 << 20


def tail(path: str, lines: int, block: int = BLOCK) -> bytes:
    """The last ``lines`` lines of the file at ``path`` (b"" when it is
    missing or ``lines`` is 0). Memory: one block plus the answer."""
    if lines <= 0:
        return b""
    try:
        fd, st = open_regular(path)
    except (FileNotFoundError, NotRegular):
        return b""
    try:
        end = st.st_size
        start = _start_of_last_lines(fd, end, lines, block)
        return _pread_all(fd, start, end - start)
    finally:
        os.close(fd)


def _start_of_last_lines(fd: int, end: int, lines: int, block: int) -> int:
    """Offset where the last ``lines`` lines of the first ``end`` bytes begin."""
    if end == 0:
        return 0
    # A newline that ends the file ends the last line: it does not start one.
    pos = end - 1 if os.pread(fd, 1, end - 1) == b"\n" else end
    found = 0
    while pos > 0:
        size = min(block, pos)
        pos -= size
        chunk = os.pread(fd, size, pos)
        if len(chunk) < size:  # the file shrank meanwhile: give what is there
            return pos + len(chunk)
        i = len(chunk)
        while True:
            i = chunk.rfind(b"\n", 0, i)
            if i < 0:
                break
            found += 1
            if found == lines:
                return pos + i + 1
    return 0


def read_from(path: str, offset: int = 0, limit: int | None = None,
              whole_chars: bool = True) -> tuple[bytes, int]:
    """``(data, next_offset)``: the file's bytes from ``offset`` (at most
    ``limit`` of them). With ``whole_chars`` a multi-byte UTF-8 character
    cut at the end is left for the next read (a live run may be writing
    it), so that decoding each piece never garbles one."""
    try:
        fd, st = open_regular(path)
    except (FileNotFoundError, NotRegular):
        return b"", offset
    try:
        size = st.st_size
        n = max(0, size - offset)
        if limit is not None:
            n = min(n, limit)
        data = _pread_all(fd, offset, n)
    finally:
        os.close(fd)
    if whole_chars:
        data = data[: len(data) - _cut_utf8_tail(data)]
    return data, offset + len(data)


def _cut_utf8_tail(data: bytes) -> int:
    """How many bytes at the end of ``data`` are an incomplete UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b < 0x80:  # ASCII: nothing cut
            return 0
        if b >= 0xC0:  # a lead byte: complete when its sequence fits
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            return back if back < need else 0
    return 0  # only continuation bytes: not UTF-8 anyway, leave it


def _pread_all(fd: int, offset: int, n: int) -> bytes:
    parts = []
    while n > 0:
        chunk = os.pread(fd, min(n, 1 << 24), offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
        n -= len(chunk)
    return b"".join(parts)


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def follow(path: str, write, finished, offset: int = 0, interval: float = FOLLOW_INTERVAL,
           check_every: float = 0.1) -> int:
    """Copies the file at ``path`` from ``offset`` to ``write(text)`` as it
    grows, until ``finished()`` says the writer is done and everything it
    wrote is copied; returns the offset reached. The file stays open and
    only its size is looked at every ``interval`` (a stat costs a
    microsecond; new lines show within one interval). ``finished`` may be
    costly (a run's status): it is asked only when nothing new was read,
    at most every ``check_every`` seconds. A missing file is waited for."""
    fd = None
    last_check = float("-inf")
    try:
        while True:
            data = b""
            if fd is None:
                try:
                    fd = open_regular(path)[0]
                except (FileNotFoundError, NotRegular):
                    pass
            if fd is not None:
                size = os.fstat(fd).st_size
                if size > offset:
                    data = _pread_all(fd, offset, min(size - offset, FOLLOW_CHUNK))
                    data = data[: len(data) - _cut_utf8_tail(data)]
                    offset += len(data)
            if data:
                write(decode(data))
                continue
            now = time.monotonic()
            if now - last_check >= check_every:
                last_check = now
                if finished():
                    return _copy_rest(path, fd, offset, write)
            time.sleep(interval)
    finally:
        if fd is not None:
            os.close(fd)


def _copy_rest(path: str, fd, offset: int, write) -> int:
    """The writer is done: copy what is left, a cut character included."""
    if fd is None:
        data, offset = read_from(path, offset, whole_chars=False)
        if data:
            write(decode(data))
        return offset
    data = _pread_all(fd, offset, max(0, os.fstat(fd).st_size - offset))
    if data:
        write(decode(data))
    return offset + len(data)
