"""The outcome side of a run's lifecycle: how a run ends, and the writes
every transition shares. Part of :mod:`.transitions`, which re-exports all
of it: callers only ever call ``transitions.X``.

It is a module of its own so the lifecycle stays readable in two halves of
a size one can hold: :mod:`.transitions` creates, claims and starts runs;
this one records how they end -- the outcome attrs (``exit_status`` then
``stopped``), the dropped LOCK and its records, the reason in the run's
output -- and the ``LOCK.remote`` marker of a run held by another machine.
Only these two modules write a status; the ownership test allows exactly
them.

The transitions here::

    record_outcome        running    -> completed / error / terminated
    record_start_failure  pending/staged -> error, with the reason
    settle_dead           running, holder gone -> error (orphans ended)
    end_tree_and_record   running, grace ran out -> processes ended, outcome
    mark_remote           pending    -> running on another host (LOCK.remote)

Disk faults. ``transitions.acquire`` reserves the space the outcome needs;
``write_outcome`` falls back to it when the disk is full, so a run always
gets its recorded outcome.
"""

from __future__ import annotations

import errno
import os

from ..errors import StoreError, StoreNotWritable
from ..procs import Identity, kill_identities, tree_identities
from . import attrs as attrlib
from . import reserve
from .records import recorded_processes
from .run import LOCK, LOCK_PROCS, LOCK_REMOTE, LOCK_START, PENDING_MARKER, STAGED_MARKER, Run, now_us

OUTCOME_ATTRS = reserve.OUTCOME_ATTRS
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def store_error(e: OSError, what: str) -> StoreError:
    """The package's error for an OSError while writing a run: one line,
    ``StoreNotWritable`` when the disk is full or the store read-only."""
    if e.errno in DISK_ERRNOS or e.errno in (errno.EACCES, errno.EPERM):
        return StoreNotWritable(f"store not writable: cannot {what}: {e.strerror}")
    return StoreError(f"cannot {what}: {e}")


def write_outcome(run: Run, exit_status: int, stopped: int | None = None) -> None:
    """Writes ``exit_status`` then ``stopped`` (the status follows exit_status,
    so it goes first), using the reserved space when the disk is full."""
    values = {"exit_status": exit_status, "stopped": now_us() if stopped is None else stopped}
    written = []
    for name in OUTCOME_ATTRS:
        data = attrlib.encode(values[name])
        path = os.path.join(run.attrs_dir, name)
        try:
            attrlib.write_atomic(path, data)
        except OSError as e:
            if e.errno not in DISK_ERRNOS or not reserve.write_reserved(run, name, path, data):
                for done in written:  # all or nothing: never half an outcome
                    attrlib.remove(done)
                    run.forget(os.path.basename(done))
                raise
        written.append(path)
        run.remember(name, values[name])
    reserve.drop(run)


def note(run: Run, text: str) -> None:
    """Appends one line of ours to a run's output (best effort)."""
    try:
        with open(run.path("output"), "ab") as f:
            f.write(f"guild_jupyter: {text}\n".encode())
    except OSError:
        pass


# -- ending ------------------------------------------------------------------------


def record_outcome(store, run: Run, exit_status: int, holder: Identity | None = None) -> None:
    """running -> finished: records ``exit_status`` and ``stopped`` (unless an
    outcome is already recorded) and drops LOCK. With ``holder``, LOCK is
    dropped only if it is still ``holder``'s (a later ``guild run --restart``
    may have taken the run)."""
    run.refresh()
    if holder is not None and os.path.exists(run.path(LOCK)):
        if run.lock_pid() != holder.pid:
            return  # someone else holds the run now: not ours to end
    try:
        if run.get("exit_status") is None:
            write_outcome(run, exit_status)
    finally:
        clear_lock(run)
        run.refresh()
        store.notify_change(run.id)


def clear_lock(run: Run) -> None:
    for name in (LOCK_PROCS, LOCK_START, LOCK, LOCK_REMOTE):
        try:
            attrlib.remove(run.path(name))
        except OSError:
            pass
    reserve.drop(run)


def record_start_failure(store, run: Run, reason: str) -> None:
    """A run that could not start ends ``error``, the reason in its output."""
    with store.lock():
        run.refresh()
        if run.get("exit_status") is not None or run.lock_holder() is not None:
            return
        note(run, reason)
        try:
            write_outcome(run, 1)
        except OSError as e:
            raise store_error(e, f"record the failure of run {run.id[:8]}") from e
        attrlib.remove(run.path(PENDING_MARKER))
        attrlib.remove(run.path(STAGED_MARKER))
        clear_lock(run)
        run.refresh()
    store.notify_change(run.id)


def settle_dead(store, run: Run, exit_status: int = 1, reason: str | None = None) -> bool:
    """A run whose LOCK holder died without recording an outcome (a supervisor
    killed with SIGKILL): ends the processes it left (its script, their
    descendants) and records the outcome. True if it settled the run."""
    with store.lock():
        run.refresh()
        if run.get("exit_status") is not None or not os.path.exists(run.path(LOCK)):
            return False
        if run.lock_holder() is not None:
            return False
        pid = run.lock_pid()
        orphans = []
        for ident in recorded_processes(run):
            if ident.alive():
                orphans.extend(tree_identities(ident.pid))
        kill_identities(orphans)
        note(run, reason or f"the run's supervisor (pid {pid}) died; "
                             f"{len(orphans)} process(es) it left were ended")
        try:
            write_outcome(run, exit_status)
        except OSError as e:
            raise store_error(e, f"record the outcome of run {run.id[:8]}") from e
        clear_lock(run)
        run.refresh()
    store.notify_change(run.id)
    return True


def end_tree_and_record(store, run: Run, exit_status: int = -9, reason: str | None = None) -> None:
    """The last resort of a stop whose grace ran out: ends the holder, every
    process of the run it recorded and their descendants, then records the
    outcome (the holder can no longer)."""
    holder = run.lock_holder()
    idents = []
    if holder is not None:
        idents.extend(tree_identities(holder.pid))
    for ident in recorded_processes(run):
        if ident.alive():
            idents.extend(tree_identities(ident.pid))
    kill_identities(idents)
    settle_dead(store, run, exit_status, reason)


# -- runs held by another machine (a Dask worker) --------------------------------------

def mark_remote(store, run: Run, host: str) -> None:
    """A pending run a Dask worker's runner is about to start: LOCK.remote
    names the host that holds it, so guild and ours show it running on
    every machine, and only that host judges its processes (a pid means
    nothing elsewhere). Cleared with LOCK whenever its outcome is recorded
    (``clear_lock``)."""
    with store.lock():
        try:
            attrlib.write_atomic(run.path(LOCK_REMOTE), host)
        except OSError as e:
            raise store_error(e, f"mark run {run.id[:8]} as held by {host}") from e
        run.refresh()
    store.notify_change(run.id)
