"""The machine-wide run-status lock, shared with Guild itself.

Guild 0.9 takes ``filelock.FileLock($GUILD_HOME/locks/run-status)`` around
every status change made by its queues; taking the same lock makes our queues
and Guild's exclude each other. This module is the only importer of filelock.
"""

from __future__ import annotations

import contextlib
import os

from ..errors import LockTimeout, StoreError

RUN_STATUS = "run-status"
DEFAULT_TIMEOUT = float(os.environ.get("GUILD_JUPYTER_LOCK_TIMEOUT", "30"))

_locks: dict[str, object] = {}


def _lock_for(path: str):
    import filelock

    lock = _locks.get(path)
    if lock is None:
        # One FileLock object per path and process. Its state is per thread
        # (filelock's default), so each thread holds its own file descriptor
        # and threads of one process exclude each other like processes do;
        # nested use within a thread is reentrant.
        lock = _locks[path] = filelock.FileLock(path)
    return lock


@contextlib.contextmanager
def run_status_lock(guild_home: str, timeout: float | None = None):
    import filelock

    locks_dir = os.path.join(guild_home, "locks")
    try:
        os.makedirs(locks_dir, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create lock directory {locks_dir}: {e.strerror}") from e
    path = os.path.join(locks_dir, RUN_STATUS)
    lock = _lock_for(path)
    t = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        lock.acquire(timeout=t)
    except filelock.Timeout as e:
        raise LockTimeout(path, t) from e
    except PermissionError as e:
        raise StoreError(f"cannot take the run-status lock {path}: permission denied") from e
    try:
        yield
    finally:
        lock.release()
