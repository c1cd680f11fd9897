"""Stopping runs: signals go only to a process shown to be the run's.

A running run is stopped by SIGTERM to the process that holds its LOCK (our
supervisor, which ends the run's whole process tree and records the outcome;
or Guild's own process for runs Guild started). The LOCK's pid is signalled
only after it is shown to be the run's (``Run.lock_holder``: our start
record, or for a Guild LOCK a process started no later than the LOCK was
written), so a reused pid is never signalled. When the grace runs out, or a
caller's timeout does, the holder and every process of the run are killed
and the outcome recorded (:func:`transitions.end_tree_and_record`). A run
whose supervisor was killed outright is settled (its orphans ended, its
outcome recorded) by whoever looks at it next.
"""

from __future__ import annotations

import os
import signal
import time

from ..errors import WrongState
from ..store import transitions
from ..store.dask_records import remote_host, remote_lost, request_stop
from ..store.run import FINISHED, LOCK, LOCK_REMOTE, PENDING, RUNNING, STAGED, Run

STOP_GRACE = float(os.environ.get("GUILD_JUPYTER_STOP_GRACE", "10"))

#: How long a verb acting on a finished run (restart, delete) waits for the
#: run to be let go by its supervisor: the outcome is written first and LOCK
#: removed right after, so a click as soon as a run reads finished works.
RELEASE_WAIT = 10.0


def signal_run(run: Run, sig) -> bool:
    holder = run.lock_holder()
    if holder is None:
        return False
    try:
        os.kill(holder.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def is_dead_run(run: Run) -> bool:
    """Our run whose supervisor died without recording an outcome."""
    return (os.path.exists(run.path(LOCK)) and run.get("exit_status") is None
            and run.lock_holder() is None and transitions.has_our_start_record(run)
            and (remote_host(run) is None or remote_lost(run) is not None))  # held elsewhere: judged by its heartbeat


def wait_for_release(run: Run, timeout: float = RELEASE_WAIT) -> None:
    """Waits (bounded) while a finished run's LOCK still names a live
    process: its supervisor between recording the outcome and removing LOCK
    (and its records). A verb that acted in between would race it: a restart
    be refused as held, a delete move LOCK into the trash with the run."""
    deadline = time.monotonic() + timeout
    while run.refresh().status in FINISHED and run.lock_holder() is not None and time.monotonic() < deadline:
        time.sleep(0.02)


def retry_copy_spec(run: Run, attempt: int, allowed: int):
    """How the retry of a failed run is made (``rerun.retry_spec``), for the
    settlers that stage it (``transitions.settle_dead``, ``record_outcome``).
    Imported on use: only a failure with retries left builds a copy."""
    # lazy: the operation layer (opdef, flag analysis) costs every supervisor and CLI start-up
    from ..rerun import retry_spec

    return retry_spec(run, attempt, allowed)


def is_left_locked(run: Run) -> bool:
    """A finished run whose holder died between recording the outcome and
    letting go: its LOCK (or LOCK.remote) left, naming no live process (or
    a machine no longer heard from)."""
    return (run.get("exit_status") is not None
            and (os.path.exists(run.path(LOCK)) or os.path.exists(run.path(LOCK_REMOTE)))
            and run.lock_holder() is None
            and (remote_host(run) is None or remote_lost(run) is not None))


def settle_if_dead(store, run: Run) -> bool:
    """Settles our run whose supervisor died (its retry staged when one is
    due); a finished one whose supervisor died before letting go is let go."""
    if is_dead_run(run):
        return transitions.settle_dead(store, run, 1, remote_lost(run), retry=retry_copy_spec)
    if is_left_locked(run):
        return transitions.let_go_dead(store, run)
    return False


def begin_stop(store, run: Run, reason: str | None = None, by_user: bool = False) -> bool:
    """Starts stopping one run whatever its state; True if there was
    something to stop (a staged or pending run is taken off the queue at
    once; a running one gets SIGTERM; a dead one is settled). ``by_user``:
    the user asked (``api.stop``): recorded first, so the run's end reads
    "stopped by you"."""
    status = run.refresh().status
    if status == STAGED:
        try:
            transitions.unstage(store, run)
            return True
        except WrongState:  # claimed meanwhile: stop it as pending or running below
            status = run.refresh().status
    if status == PENDING:
        if transitions.cancel_pending(store, run, reason):
            return True
        status = run.refresh().status
    if status == RUNNING:
        if by_user:
            transitions.note_user_stop(run)
        if remote_host(run):  # a Dask worker's machine holds it: its runner stops it there
            if is_dead_run(run):  # ... unless that machine is gone
                return settle_if_dead(store, run)
            request_stop(run)
            return True
        if os.path.exists(run.path(LOCK_REMOTE)):
            # A Dask runner on this machine marked it held and is starting its
            # supervisor: until that one writes LOCK there is no process to
            # signal. The stop file is what the supervisor looks for after
            # writing ``started`` (and the runner watches): it never starts.
            request_stop(run)
            signal_run(run, signal.SIGTERM)
            return True
        return signal_run(run, signal.SIGTERM)
    return settle_if_dead(store, run)


def finish_stop(store, runs: list[Run], timeout: float | None = None) -> None:
    """Waits for the runs to end; past the deadline (grace + 10 s by default)
    their whole process trees are killed and their outcomes recorded."""
    deadline = time.monotonic() + (timeout if timeout is not None else STOP_GRACE + 10)
    for r in runs:
        while r.refresh().status == RUNNING and time.monotonic() < deadline:
            time.sleep(0.02)
        if r.status == RUNNING and not remote_host(r):
            transitions.end_tree_and_record(
                store, r, -9, "stop: the run did not end within its grace period; its processes were killed")
        elif is_dead_run(r):
            transitions.settle_dead(store, r, retry=retry_copy_spec)
