"""Opening a run's files for reading: regular files only.

A run directory is written by scripts we do not control. A FIFO named like
an event file blocks a plain ``open`` until someone writes to it; a symlink
to ``/dev/zero`` never ends; a device may do anything when opened. So a
reader opens only what ``stat`` calls a regular file, and checks again on
the descriptor it got (the name may have been replaced in between): nothing
else is ever opened, let alone read. ``O_NONBLOCK`` makes even a FIFO swapped
in at the last moment return at once instead of hanging.
"""

from __future__ import annotations

import os
import stat

__all__ = ["NotRegular", "TooLarge", "open_regular", "read_small", "read_small_stat", "kind_of", "MAX_SMALL"]

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
#: The most a small file (an attr, a marker, a record) may hold: 16 MiB.
MAX_SMALL = 16 << 20


class NotRegular(OSError):
    """The path names something other than a regular file; ``strerror`` says what."""


class TooLarge(OSError):
    """A small file that is not small (past ``MAX_SMALL``)."""


def kind_of(mode: int) -> str:
    """``a FIFO``, ``a character device``, ... for a file that is not regular."""
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """``(fd, fstat)`` of the regular file at ``path`` (symlinks followed),
    opened read-only. Raises ``FileNotFoundError`` when it is missing,
    ``NotRegular`` when it is anything but a regular file, ``OSError``
    otherwise. The caller closes ``fd``."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegular(0, f"not a regular file ({kind_of(st.st_mode)})", path)
    fd = os.open(path, _FLAGS)
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):  # replaced between the stat and the open
            raise NotRegular(0, f"not a regular file ({kind_of(fst.st_mode)})", path)
    except BaseException:
        os.close(fd)
        raise
    return fd, fst


def read_small(path: str, limit: int = MAX_SMALL) -> bytes:
    """The whole content of a small regular file (an attr, a marker),
    with plain fds and one ``fstat`` (a listing reads tens of thousands of
    them). Raises ``FileNotFoundError``, ``NotRegular`` (checked on the
    descriptor: opening a FIFO with ``O_NONBLOCK`` returns at once),
    ``TooLarge`` past ``limit`` bytes, or ``OSError``."""
    return read_small_stat(path, limit)[1]


def read_small_stat(path: str, limit: int = MAX_SMALL, dir_fd: int | None = None) -> tuple[os.stat_result, bytes]:
    """``read_small``, with the descriptor's ``fstat`` taken before the
    read: what a listing stamps the file with, at no extra system call. An
    error met after the open (``NotRegular``, ``TooLarge``, a failed read)
    carries that ``fstat`` in its ``st`` attribute. ``dir_fd``: ``path``
    is relative to that open directory (a listing opens each run's
    ``attrs/`` once: one path component to look up a file instead of eight)."""
    fd = os.open(path, _FLAGS, dir_fd=dir_fd)
    st = None
    try:
        st = os.fstat(fd)
        mode = st.st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(0, f"not a regular file ({kind_of(mode)})", path)
        data = chunk = os.read(fd, 65536)
        if len(chunk) == 65536:  # a regular file reads whole up to EOF
            chunks, size = [chunk], len(chunk)  # joined once: += would copy all read so far each time
            while len(chunk) == 65536:
                if size > limit:
                    raise TooLarge(0, f"larger than {limit} bytes", path)
                chunk = os.read(fd, 65536)
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
        if len(data) > limit:
            raise TooLarge(0, f"larger than {limit} bytes", path)
    except OSError as e:
        e.st = st
        raise
    finally:
        os.close(fd)
    return st, data
