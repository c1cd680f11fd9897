"""The machine-wide run-status lock, shared with Guild itself.

Guild 0.9 takes ``filelock.FileLock($GUILD_HOME/locks/run-status)`` around
every status change made by its queues. On POSIX that lock is an exclusive
``flock(2)`` on the file, so we take the very same flock directly: importing
filelock costs about 40 ms a process (it pulls in asyncio), more than a whole
run's start-up budget. Where ``fcntl`` is missing we fall back to filelock.
The tests check mutual exclusion against filelock in both directions.

Within one process the lock is reentrant per thread, and threads exclude
each other like processes do (each thread holds its own descriptor).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time

from ..errors import LockTimeout, StoreError, StoreNotWritable

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

RUN_STATUS = "run-status"
DEFAULT_TIMEOUT = float(os.environ.get("GUILD_JUPYTER_LOCK_TIMEOUT", "30"))

SHORT_WAIT = 0.25  # seconds of waiting for the lock during which it is tried every SHORT_WAIT_POLL at most
SHORT_WAIT_POLL = 0.002

_held = threading.local()  # path -> [fd, depth] for this thread

# Errors that say the store's disk refuses writes (errno names; some are
# missing on some systems).
_NOT_WRITABLE = {getattr(errno, n) for n in ("EROFS", "EACCES", "EPERM", "ENOSPC", "EDQUOT") if hasattr(errno, n)}


def _store_error(what: str, path: str, e: OSError) -> StoreError:
    """The package's error for an OSError on the lock file: one line, no errno noise."""
    reason = e.strerror or str(e)
    if e.errno in _NOT_WRITABLE:
        return StoreNotWritable(f"store not writable: cannot {what} {path}: {reason}")
    return StoreError(f"cannot {what} {path}: {reason}")


def _table() -> dict:
    t = getattr(_held, "table", None)
    if t is None:
        t = _held.table = {}
    return t


def _flock_acquire(path: str, timeout: float) -> None:
    table = _table()
    entry = table.get(path)
    if entry is not None:
        entry[1] += 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    deadline = start + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                os.close(fd)
                raise LockTimeout(path, timeout) from None
            time.sleep(min(delay, left))
            # The lock is held for a few ms at a time (a claim, a start, an
            # outcome): looked at again within 2 ms while that is likely, so
            # a run's start does not wait out a long sleep; less often after.
            delay = min(delay * 2, SHORT_WAIT_POLL if now - start < SHORT_WAIT else 0.01)
        except OSError:
            os.close(fd)
            raise
    table[path] = [fd, 1]


def _flock_release(path: str) -> None:
    table = _table()
    entry = table[path]
    entry[1] -= 1
    if entry[1] == 0:
        del table[path]
        try:
            fcntl.flock(entry[0], fcntl.LOCK_UN)
        finally:
            os.close(entry[0])


_filelocks: dict = {}


@contextlib.contextmanager
def _with_filelock(path: str, timeout: float):  # pragma: no cover - not POSIX
    import filelock

    lock = _filelocks.get(path) or _filelocks.setdefault(path, filelock.FileLock(path))
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise LockTimeout(path, timeout) from None
    except OSError as e:
        raise _store_error("take the run-status lock", path, e) from e
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def run_status_lock(guild_home: str, timeout: float | None = None):
    locks_dir = os.path.join(guild_home, "locks")
    try:
        os.makedirs(locks_dir, exist_ok=True)
    except OSError as e:
        raise _store_error("create the lock directory", locks_dir, e) from e
    path = os.path.join(locks_dir, RUN_STATUS)
    t = DEFAULT_TIMEOUT if timeout is None else timeout
    if fcntl is None:  # pragma: no cover
        with _with_filelock(path, t):
            yield
        return
    try:
        _flock_acquire(path, t)
    except OSError as e:  # EROFS, EACCES, ENOSPC, EDQUOT, ENOLCK...
        raise _store_error("take the run-status lock", path, e) from e
    try:
        yield
    finally:
        _flock_release(path)
