"""Every change of a run's status, in one place.

A run's status is written only here: the STAGED and PENDING markers, LOCK and
its start-time record, and the outcome attrs (``exit_status``, ``stopped``).
Each transition below is one function; the ones the SPEC puts under Guild's
run-status lock take it themselves (it is reentrant per thread, so a caller
that already holds it, like a queue claiming under one scan, is fine).

The transitions::

    create(staged=True)   (new)      -> staged
    create(owner=...)     (new)      -> pending, claimed by ``owner``
    claim                 staged     -> pending, claimed by a queue
    return_to_staged      pending    -> staged  (claimer died before starting it)
    transfer_claim        pending    -> pending, another owner (a batch host)
    acquire               pending/staged -> running (LOCK + start record)
    record_outcome        running    -> completed / error / terminated
    record_start_failure  pending/staged -> error, with the reason
    unstage               staged     -> terminated, never started
    cancel_pending        pending    -> terminated, never started
    settle_dead           running, holder gone -> error (orphans ended)
    delete                finished/staged -> trash (never still staged)
    rerun.restart         finished   -> pending / staged, in place (its own module)

Claims and start records (who owns a run) are read and explained in
:mod:`.records`.

Disk faults. ``acquire`` reserves the space the outcome needs (two small
files written while there is room); ``record_outcome`` falls back to them
when the disk is full, so a run always gets its recorded outcome.
"""

from __future__ import annotations

import errno
import json
import os

from ..errors import RunStartError, StoreError, StoreNotWritable, WrongState
from ..procs import Identity, kill_identities, tree_identities
from . import attrs as attrlib
from . import reserve
# Claims and process records are re-exported: callers see one lifecycle module.
from .records import (Claim, gpu_occupancy, gpu_slot_full, has_our_start_record, read_claim,  # noqa: F401
                      record_processes, recorded_processes)
from .run import LOCK, LOCK_PROCS, LOCK_START, PENDING, PENDING_MARKER, RUNNING, STAGED, STAGED_MARKER, Run, now_us

OUTCOME_ATTRS = reserve.OUTCOME_ATTRS
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def _store_error(e: OSError, what: str) -> StoreError:
    if e.errno in DISK_ERRNOS or e.errno in (errno.EACCES, errno.EPERM):
        return StoreNotWritable(f"store not writable: cannot {what}: {e.strerror}")
    return StoreError(f"cannot {what}: {e}")


def _write_outcome(run: Run, exit_status: int, stopped: int | None = None) -> None:
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
                    run._cache.pop(os.path.basename(done), None)
                raise
        written.append(path)
        run._cache[name] = values[name]
    reserve.drop(run)


def _note(run: Run, text: str) -> None:
    """Appends one line of ours to a run's output (best effort)."""
    try:
        with open(run.path("output"), "ab") as f:
            f.write(f"guild_jupyter: {text}\n".encode())
    except OSError:
        pass


# -- creating -----------------------------------------------------------------------


def create(store, specs: list, *, staged: bool, owner: Claim | None = None) -> list[Run]:
    """Initializes runs, all or nothing: staged, or pending and claimed by
    ``owner`` (who starts them itself: a launch, a sweep's batch host).

    Each run directory is completed in a private scratch area, then all are
    moved into ``runs/`` under the run-status lock; if any step fails the ones
    already moved are removed before the lock is released, so no queue ever
    sees a partial batch."""
    from .store import build_run_dir, new_run_id

    if not staged and owner is None:
        owner = Claim.by_this_process(kind="launch")
    marker = (STAGED_MARKER, b"") if staged else (PENDING_MARKER, owner.encode().encode())
    store.ensure_writable()
    scratch = os.path.join(store.private_dir, "new", new_run_id())
    moved: list[str] = []
    try:
        os.makedirs(scratch)
        built = []
        t0 = now_us()
        for n, spec in enumerate(specs):
            run_id = new_run_id()
            # Distinct, increasing timestamps keep the staging order.
            built.append((run_id, build_run_dir(scratch, run_id, spec, t0 + n, staged, marker)))
        with store.lock():
            try:
                for run_id, path in built:
                    dest = os.path.join(store.runs_dir, run_id)
                    os.rename(path, dest)
                    moved.append(dest)
            except BaseException:
                for dest in moved:
                    _rmtree(dest)
                raise
    except OSError as e:
        raise _store_error(e, f"initialize runs in {store.runs_dir}") from e
    finally:
        try:
            os.rmdir(scratch)  # empty once every run moved out: no shutil on the common path
        except OSError:
            _rmtree(scratch)
    store.notify_change()
    return [Run(d) for d in moved]


# -- claims ---------------------------------------------------------------------------


def claim(store, run: Run, by: Claim, *, gpus: str | None = None, per_gpu: int | None = None) -> None:
    """staged -> pending, claimed by ``by``. The caller holds the run-status
    lock across the scan that chose the run and this claim. The STAGED
    marker stays (PENDING takes precedence), so a dead claim can be undone.

    ``gpus``: the GPUs given to the run (in ``run_params``; what it asked for
    is kept in ``gpus_requested`` for a return to staged). ``per_gpu``: a GPU
    slot claim, refused (WrongState) if, counted again under this lock, one
    of the GPUs already has ``per_gpu`` of our runs: no number of queues in
    any processes puts more on a GPU."""
    with store.lock():
        if not os.path.exists(run.path(STAGED_MARKER)) or os.path.exists(run.path(PENDING_MARKER)):
            raise WrongState(f"run {run.id[:8]} is no longer staged")
        full = gpu_slot_full(store, gpus or run.gpus, per_gpu) if per_gpu is not None else None
        if full:
            raise WrongState(full)
        # The claim first: if a later write fails (a full disk), removing it
        # (which needs no space) leaves the run staged as it was.
        try:
            attrlib.write_atomic(run.path(PENDING_MARKER), by.encode())
        except OSError as e:
            raise _store_error(e, f"claim run {run.id[:8]}") from e
        try:
            if by.queue_id:  # harmless if left on a run returned to staged
                run.write_attr("queue_id", by.queue_id)
            if gpus:  # last: a failed atomic write leaves the old value
                params = run.get("run_params", {}) or {}
                params = dict(params) if isinstance(params, dict) else {}
                run.write_attr("gpus_requested", params.get("gpus"))
                params["gpus"] = gpus
                run.write_attr("run_params", params)
        except OSError as e:
            attrlib.remove(run.path(PENDING_MARKER))
            raise _store_error(e, f"claim run {run.id[:8]}") from e
        finally:
            run.refresh()


def transfer_claim(store, run: Run, frm: Identity, to: Claim) -> None:
    """A pending run claimed by ``frm`` passes to ``to`` (the launcher hands
    a sweep's trials to the batch host that starts them)."""
    with store.lock():
        c = read_claim(run)
        if not isinstance(c, Claim) or c.owner != frm:
            raise WrongState(f"run {run.id[:8]} is not claimed by process {frm.pid}")
        attrlib.write_atomic(run.path(PENDING_MARKER), to.encode())
        run.refresh()


def return_to_staged(store, run: Run) -> None:
    """pending -> staged: a claim of ours whose claimer died before starting
    the run. The caller checked the claim under the lock it holds. GPUs the
    claim gave the run are given back (it asks again for what it asked)."""
    with store.lock():
        attrlib.remove(run.path(PENDING_MARKER))
        try:
            if os.path.exists(os.path.join(run.attrs_dir, "gpus_requested")):
                params = dict(run.get("run_params", {}) or {})
                params["gpus"] = run.get("gpus_requested")
                run.write_attr("run_params", params)
                attrlib.remove(os.path.join(run.attrs_dir, "gpus_requested"))
        except (OSError, TypeError, ValueError):
            pass  # best effort: the run then keeps the GPUs it was given
        run.refresh()
    store.notify_change()


def recover_pending(store, pending: list[Run], log=None) -> list[Run]:
    """Settles runs left pending by claimers of ours that died; returns the
    ones returned to staged. Ownerless PENDINGs (Guild's) and live claims are
    never touched. The caller holds the run-status lock."""
    back = []
    for r in pending:
        if os.path.exists(r.path(LOCK)):
            continue
        c = read_claim(r)
        if c is None or (isinstance(c, Claim) and c.owner.alive()):
            continue
        why = ("its claim record is unreadable" if c == "damaged"
               else f"its claimer (pid {c.owner.pid}) died before starting it")
        if os.path.exists(r.path(STAGED_MARKER)):
            return_to_staged(store, r)
            if log:
                log(f"Returned run {r.id} to staged ({why})")
            back.append(r)
        else:
            record_start_failure(store, r, f"never started: {why}")
            if log:
                log(f"Run {r.id} was never started ({why}); recorded as error")
    return back


def cancel_pending(store, run: Run, reason: str | None = None) -> bool:
    """pending -> terminated, never started (a stop before the run's start).
    False when the run is no longer pending (it started meanwhile)."""
    with store.lock():
        run.refresh()
        if run.status != PENDING:
            return False
        _write_outcome(run, -15)
        run.write_attr("unstaged", True)  # never started: shown as such
        attrlib.remove(run.path(PENDING_MARKER))
        attrlib.remove(run.path(STAGED_MARKER))
        run.refresh()
    if reason:
        _note(run, reason)
    store.notify_change()
    return True


# -- starting and ending ------------------------------------------------------------------


def acquire(store, run: Run, holder: Identity, claimed_by: Identity | None = None) -> None:
    """pending/staged -> running: under the run-status lock, checks the run is
    still waiting to start (it may have been stopped, or its claim may have
    passed to another), that its attrs can be read (a run is never started
    with made-up flags), writes LOCK with ``holder``'s pid and its start
    record, ``started``, and clears the STAGED/PENDING markers."""
    with store.lock():
        run.refresh()
        if run.get("exit_status") is not None:
            raise WrongState(f"run {run.id[:8]} was stopped before it started")
        if os.path.exists(run.path(LOCK)) and run.lock_holder() is not None:
            raise WrongState(f"run {run.id[:8]} is already running")
        if not (os.path.exists(run.path(PENDING_MARKER)) or os.path.exists(run.path(STAGED_MARKER))):
            raise WrongState(f"run {run.id[:8]} is {run.status}, not waiting to start")
        if claimed_by is not None:
            c = read_claim(run)
            if isinstance(c, Claim) and c.owner != claimed_by:
                raise WrongState(f"run {run.id[:8]} is claimed by another process (pid {c.owner.pid})")
        for name in ("flags", "op", "run_params"):
            try:
                attrlib.read(os.path.join(run.attrs_dir, name), None)
            except attrlib.AttrReadError as e:
                raise RunStartError(f"attr {name} of run {run.id[:8]} cannot be read ({e}); not started") from None
        try:
            reserve.reserve(run)
            attrlib.write_atomic(run.path(LOCK_START), json.dumps(holder.as_record()))
            attrlib.write_atomic(run.path(LOCK), str(holder.pid))
            run.write_attr("started", now_us())
        except OSError as e:
            attrlib.remove(run.path(LOCK))
            attrlib.remove(run.path(LOCK_START))
            reserve.drop(run)
            raise _store_error(e, f"start run {run.id[:8]}") from e
        attrlib.remove(run.path(PENDING_MARKER))
        attrlib.remove(run.path(STAGED_MARKER))
        run.refresh()
    store.notify_change()


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
            _write_outcome(run, exit_status)
    finally:
        _clear_lock(run)
        run.refresh()
        store.notify_change()


def _clear_lock(run: Run) -> None:
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
        _note(run, reason)
        try:
            _write_outcome(run, 1)
        except OSError as e:
            raise _store_error(e, f"record the failure of run {run.id[:8]}") from e
        attrlib.remove(run.path(PENDING_MARKER))
        attrlib.remove(run.path(STAGED_MARKER))
        _clear_lock(run)
        run.refresh()
    store.notify_change()


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
        _note(run, reason or f"the run's supervisor (pid {pid}) died; "
                             f"{len(orphans)} process(es) it left were ended")
        try:
            _write_outcome(run, exit_status)
        except OSError as e:
            raise _store_error(e, f"record the outcome of run {run.id[:8]}") from e
        _clear_lock(run)
        run.refresh()
    store.notify_change()
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


# -- removing from the queue, deleting ----------------------------------------------------


def unstage(store, run: Run) -> None:
    """staged -> terminated, never started: no start time, no elapsed time."""
    with store.lock():
        run.refresh()
        if run.status != STAGED:
            raise WrongState(f"run {run.id[:8]} is {run.status}, not staged")
        try:
            _write_outcome(run, -15)
            run.write_attr("unstaged", True)
            attrlib.remove(run.path(STAGED_MARKER))
        except OSError as e:
            raise _store_error(e, f"unstage run {run.id[:8]}") from e
        run.refresh()
    store.notify_change()


def delete(store, run: Run) -> None:
    """Moves a run to Guild's trash (``guild runs restore`` brings it back).
    A staged run is unstaged first, so restoring it never requeues it."""
    with store.lock():
        run.refresh()
        if run.status in (RUNNING, PENDING):
            raise WrongState(f"run {run.id[:8]} is {run.status}: stop it before deleting it")
        try:
            if run.status == STAGED:
                unstage(store, run)
            trash = os.path.join(store.home, "trash", "runs")
            os.makedirs(trash, exist_ok=True)
            dest = os.path.join(trash, run.id)
            if os.path.exists(dest):
                _rmtree(dest, ignore_errors=False)
            os.rename(run.dir, dest)
        except OSError as e:
            raise _store_error(e, f"delete run {run.id[:8]}") from e
    store.notify_change()


def _rmtree(path: str, ignore_errors: bool = True) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=ignore_errors)


# -- runs held by another machine (a Dask worker) --------------------------------------

LOCK_REMOTE = "LOCK.remote"  # Guild's marker of a run held elsewhere: status "running" everywhere


def mark_remote(store, run: Run, host: str) -> None:
    """A pending run a Dask worker's runner is about to start: LOCK.remote
    names the host that holds it, so guild and ours show it running on
    every machine, and only that host judges its processes (a pid means
    nothing elsewhere). Cleared with LOCK whenever its outcome is recorded
    (``_clear_lock``)."""
    with store.lock():
        try:
            attrlib.write_atomic(run.path(LOCK_REMOTE), host)
        except OSError as e:
            raise _store_error(e, f"mark run {run.id[:8]} as held by {host}") from e
        run.refresh()
    store.notify_change()
