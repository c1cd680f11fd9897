"""Every change of a run's status, in one place.

A run's status is written only here (with the outcome half below): the
STAGED and PENDING markers, LOCK and its start-time record, and the outcome
attrs (``exit_status``, ``stopped``).
Each transition below is one function; the ones the SPEC puts under Guild's
run-status lock take it themselves (it is reentrant per thread, so a caller
that already holds it, like a queue claiming under one scan, is fine).

How runs end (marked * below) is written in :mod:`.transitions_end`, this
module's outcome half, re-exported here so that every caller still calls
``transitions.X``: the two are one lifecycle owner, split only for size.

The transitions::

    create(staged=True)   (new)      -> staged
    create(after=...)     (new)      -> pending, held for its dependencies
    create(owner=...)     (new)      -> pending, claimed by ``owner``
    release_held          held       -> staged  (every dependency completed)
    fail_held             held       -> error, never started (a dependency failed)
    set_priority          staged/held (no status change: the order queues start runs in)
    claim                 staged     -> pending, claimed by a queue
    return_to_staged      pending    -> staged  (claimer died before starting it)
    transfer_claim        pending    -> pending, another owner (a batch host)
    acquire               pending/staged -> running (LOCK + start record)
  * record_outcome        running    -> completed / error / terminated
  * record_start_failure  pending/staged -> error, with the reason
    unstage               staged/held -> terminated, never started
    cancel_pending        pending    -> terminated, never started
  * settle_dead           running, holder gone -> error (orphans ended)
  * let_go_dead           finished, holder killed before letting go -> LOCK cleared
  * end_tree_and_record   running, grace ran out -> processes ended, outcome
  * mark_remote           pending    -> running on another host (LOCK.remote)
  * stage_retry           failed     -> a staged copy (once per failure)
  * stage_requested_retry failed     -> a staged copy the user asked for (api.retry)
    delete                finished/staged/held -> trash (never still staged)
    restart               finished   -> pending / staged / held, in place
    note_user_stop        running    (records who asked it to stop: the user)

Claims and start records (who owns a run), priorities and dependency
records are read and explained in :mod:`.records`; when a held run's
dependencies let it go, or end it, is :mod:`.dependencies`' to judge.

Disk faults. ``acquire`` reserves the space the outcome needs (two small
files written while there is room); ``record_outcome`` falls back to them
when the disk is full, so a run always gets its recorded outcome.
"""

from __future__ import annotations

import json
import os

from ..errors import BadInput, GuildJupyterError, RunStartError, WrongState
from ..procs import Identity
from . import attrs as attrlib
from . import reserve
# Claims and process records are re-exported: callers see one lifecycle module.
from .records import (AFTER, AFTER_FAILURE, PRIORITY, Claim, dependency_cycle, ended_while_held,  # noqa: F401
                      gpu_occupancy, gpu_slot_full, has_our_start_record, is_held, read_claim, record_processes,
                      recorded_processes, START_ATTRS, taken_over, unreadable_start_attr)
from .run import FINISHED, LOCK, LOCK_START, PENDING, PENDING_MARKER, RUNNING, STAGED, STAGED_MARKER, Run, now_us
# The outcome side (how runs end, and the writes shared by every transition)
# is in .transitions_end, re-exported here: callers only call transitions.X.
from .transitions_end import (DISK_ERRNOS, LOCK_REMOTE, OUTCOME_ATTRS, RETRIED_AS, RETRY_POLICY,  # noqa: F401
                              build_and_move_runs, clear_lock, note, remove_tree, store_error, write_outcome,
                              end_tree_and_record, let_go_dead, mark_remote, record_outcome, record_retry_policy,
                              record_start_failure, retry_copy_id, retry_due, settle_dead, stage_requested_retry,
                              stage_retry)


# -- creating -----------------------------------------------------------------------


def create(store, specs: list, *, staged: bool, owner: Claim | None = None, after: list | None = None) -> list[Run]:
    """Initializes runs, all or nothing: staged, held for their dependencies
    (``after``: the ``after`` record, :func:`.records.after_record`; staged
    runs only), or pending and claimed by ``owner`` (who starts them itself:
    a launch, a sweep's batch host).

    Each run directory is completed in a private scratch area, then all are
    moved into ``runs/`` under the run-status lock; if any step fails the ones
    already moved are removed before the lock is released, so no queue ever
    sees a partial batch. A held run is written staged in every other way
    (``started`` is its staging time: released, it keeps its place in line)."""
    if after is not None:
        if not staged:
            raise ValueError("a run held for its dependencies is staged for a queue")
        for spec in specs:
            spec.extra_attrs = {**spec.extra_attrs, AFTER: after}
        marker = (PENDING_MARKER, b"")  # ownerless, as Guild's: no queue starts it, no recovery returns it
    elif not staged and owner is None:
        owner = Claim.by_this_process(kind="launch")
        marker = (PENDING_MARKER, owner.encode().encode())
    else:
        marker = (STAGED_MARKER, b"") if staged else (PENDING_MARKER, owner.encode().encode())
    runs = build_and_move_runs(store, specs, staged, marker)
    store.notify_change(*(r.id for r in runs), created=True)
    return runs


# -- claims ---------------------------------------------------------------------------


def claim(store, run: Run, by: Claim, *, gpus: str | None = None, per_gpu: int | None = None,
          held: dict | None = None, retries: int = 0) -> None:
    """staged -> pending, claimed by ``by``. The caller holds the run-status
    lock across the scan that chose the run and this claim. The STAGED
    marker stays (PENDING takes precedence), so a dead claim can be undone.

    ``gpus``: the GPUs given to the run (in ``run_params``; what it asked for
    is kept in ``gpus_requested`` for a return to staged). ``per_gpu``: a GPU
    slot claim, refused (WrongState) if, counted again under this lock, one
    of the GPUs already has ``per_gpu`` of our runs: no number of queues in
    any processes puts more on a GPU. ``held``: the GPUs' counts from a
    scan the caller made under the lock it still holds (else counted here).

    ``retries``: the retry policy in force for this run (its own
    ``retries``, else the claiming queue's), recorded with the run
    (``retry_policy``) so that whoever settles a failure of it -- its
    supervisor, a listing that finds its supervisor dead, a queue -- stages
    the retry, even when the queue that claimed it is gone."""
    with store.lock():
        if not os.path.exists(run.path(STAGED_MARKER)) or os.path.exists(run.path(PENDING_MARKER)):
            raise WrongState(f"run {run.id[:8]} is no longer staged")
        full = gpu_slot_full(store, gpus or run.gpus, per_gpu, held) if per_gpu is not None else None
        if full:
            raise WrongState(full)
        # The claim first: if a later write fails (a full disk), removing it
        # (which needs no space) leaves the run staged as it was.
        try:
            attrlib.write_atomic(run.path(PENDING_MARKER), by.encode())
        except OSError as e:
            raise store_error(e, f"claim run {run.id[:8]}") from e
        try:
            if by.queue_id:  # harmless if left on a run returned to staged
                run.write_attr("queue_id", by.queue_id)
            record_retry_policy(run, retries, by.queue_id)
            if gpus:  # last: a failed atomic write leaves the old value
                assign_gpus(run, gpus)
        except OSError as e:
            attrlib.remove(run.path(PENDING_MARKER))
            raise store_error(e, f"claim run {run.id[:8]}") from e
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
            give_back_gpus(run)
        except OSError:
            pass  # best effort: the run then keeps the GPUs it was given
        run.refresh()
    store.notify_change(run.id)


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
        if taken_over(r):  # a Dask runner has it: its queue died, the runner starts or settles it
            continue
        if os.path.exists(r.path(LOCK_REMOTE)):  # marked held here by a runner that died before the start
            record_start_failure(store, r, "worker lost: its Dask runner died before starting it")
            if log:
                log(f"Run {r.id}: its Dask runner died before starting it; recorded as error")
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
        write_outcome(run, -15)
        run.write_attr("unstaged", True)  # never started: shown as such
        attrlib.remove(run.path(PENDING_MARKER))
        attrlib.remove(run.path(STAGED_MARKER))
        run.refresh()
    if reason:
        note(run, reason)
    store.notify_change(run.id)
    return True


# -- runs held for their dependencies (SPEC 12) -------------------------------------------------


def release_held(store, run: Run) -> bool:
    """held -> staged: every dependency has completed (the caller judged it,
    holding the run-status lock across its reading and this call). STAGED
    is written before PENDING goes, so a writer killed in between leaves a
    run still held, which the next pass releases. False when the run is no
    longer held (stopped, released or ended meanwhile)."""
    with store.lock():
        run.refresh()
        if not is_held(run) or run.get("exit_status") is not None:
            return False
        try:
            if not os.path.exists(run.path(STAGED_MARKER)):
                attrlib.write_atomic(run.path(STAGED_MARKER), "")
            attrlib.remove(run.path(PENDING_MARKER))
        except OSError as e:
            raise store_error(e, f"stage run {run.id[:8]} after its dependencies") from e
        finally:
            run.refresh()
    store.notify_change(run.id)
    return True


def fail_held(store, run: Run, reason: str) -> bool:
    """held -> error, never started: a dependency failed (``reason``: one
    line naming it, kept in ``after_failure`` and the run's output). The
    outcome comes before the markers go: a writer killed in between leaves a
    held run with an outcome (``ended_while_held``), whose markers the next
    pass (this function again) removes without writing another outcome.
    False when the run is neither held nor ended while held."""
    with store.lock():
        run.refresh()
        if not (is_held(run) or ended_while_held(run)):
            return False
        ended = run.get("exit_status") is not None
        try:
            if not ended:
                note(run, f"not started: {reason}")
                run.write_attr(AFTER_FAILURE, reason)
                write_outcome(run, 1)
            attrlib.remove(run.path(PENDING_MARKER))
            attrlib.remove(run.path(STAGED_MARKER))
        except OSError as e:
            raise store_error(e, f"record the failure of run {run.id[:8]}") from e
        finally:
            run.refresh()
    store.notify_change(run.id)
    return True


def set_priority(store, runs: list[Run], priority: int) -> None:
    """The priority of staged or held runs (the order our queues start them
    in), all or nothing: ``WrongState`` naming the first run that is neither
    (it started, or ended, meanwhile), and nothing is written."""
    with store.lock():
        for run in runs:
            run.refresh()
            if run.status != STAGED and not (run.status == PENDING and is_held(run)):
                raise WrongState(f"run {run.id[:8]} is {run.status}: only a staged run, or one waiting for "
                                 f"its dependencies, has a priority to change")
        for run in runs:
            try:
                run.write_attr(PRIORITY, priority)
            except OSError as e:
                raise store_error(e, f"set the priority of run {run.id[:8]}") from e
    store.notify_change(*(r.id for r in runs))


# -- starting ------------------------------------------------------------------


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
        bad = unreadable_start_attr(run)
        if bad:
            raise RunStartError(f"attr {bad[0]} of run {run.id[:8]} cannot be read ({bad[1]}); not started")
        try:
            reserve.reserve(run)
            attrlib.write_atomic(run.path(LOCK_START), json.dumps(holder.as_record()))
            attrlib.write_atomic(run.path(LOCK), str(holder.pid))
            run.write_attr("started", now_us())
        except OSError as e:
            attrlib.remove(run.path(LOCK))
            attrlib.remove(run.path(LOCK_START))
            reserve.drop(run)
            raise store_error(e, f"start run {run.id[:8]}") from e
        attrlib.remove(run.path(PENDING_MARKER))
        attrlib.remove(run.path(STAGED_MARKER))
        run.refresh()
    store.notify_change(run.id)


# -- stopping ------------------------------------------------------------------------------

#: Who asked a run to stop, when it was the user (``api.stop`` from any front
#: end): its end then reads "stopped by you"; a run ended by a signal from
#: anything else (``guild stop``, a kill) reads "terminated".
STOPPED_BY = "stopped_by"


def note_user_stop(run: Run) -> None:
    """Records, before the run is signalled, that the user asked it to stop.
    Best effort: a store that cannot take the attr still stops the run (it
    then reads terminated)."""
    try:
        run.write_attr(STOPPED_BY, "user")
    except OSError:
        pass


# -- removing from the queue, deleting ----------------------------------------------------


def unstage(store, run: Run) -> None:
    """staged (or held for its dependencies) -> terminated, never started:
    no start time, no elapsed time."""
    with store.lock():
        run.refresh()
        held = run.status == PENDING and is_held(run)
        if run.status != STAGED and not held:
            raise WrongState(f"run {run.id[:8]} is {run.status}, not staged")
        try:
            write_outcome(run, -15)
            run.write_attr("unstaged", True)
            attrlib.remove(run.path(STAGED_MARKER))
            if held:
                attrlib.remove(run.path(PENDING_MARKER))
        except OSError as e:
            raise store_error(e, f"unstage run {run.id[:8]}") from e
        run.refresh()
    store.notify_change(run.id)


def delete(store, run: Run) -> None:
    """Moves a run to Guild's trash (``guild runs restore`` brings it back).
    A staged run is unstaged there, so restoring it never requeues it: moved
    first, it goes from staged straight to gone for every watcher (never
    seen unstaged in between), and if it cannot be unstaged it is moved back,
    still staged."""
    with store.lock():
        run.refresh()
        held = run.status == PENDING and is_held(run)  # waits for its dependencies: as good as staged
        if run.status in (RUNNING, PENDING) and not held:
            raise WrongState(f"run {run.id[:8]} is {run.status}: stop it before deleting it")
        staged = run.status == STAGED or held
        try:
            trash = os.path.join(store.home, "trash", "runs")
            os.makedirs(trash, exist_ok=True)
            dest = os.path.join(trash, run.id)
            if os.path.exists(dest):
                remove_tree(dest, ignore_errors=False)
            os.rename(run.dir, dest)
        except OSError as e:
            raise store_error(e, f"delete run {run.id[:8]}") from e
        if staged:
            try:
                unstage(store, Run(dest))
            except GuildJupyterError:
                try:
                    os.rename(dest, run.dir)  # all or nothing: back in place, still staged
                except OSError:
                    pass
                raise
    store.notify_change(run.id)


# -- GPUs a queue (or a Dask worker) gave a run ---------------------------------------


def assign_gpus(run: Run, gpus: str) -> None:
    """The run gets ``gpus`` (``run_params.gpus``, its CUDA_VISIBLE_DEVICES);
    what it asked for is kept in ``gpus_requested`` for ``give_back_gpus``.
    ``run_params`` is written last: a failed write leaves the old value."""
    params = run.get("run_params", {}) or {}
    params = dict(params) if isinstance(params, dict) else {}
    run.write_attr("gpus_requested", params.get("gpus"))
    params["gpus"] = gpus
    run.write_attr("run_params", params)


def give_back_gpus(run: Run) -> None:
    """GPUs given by ``assign_gpus`` go back to what the run asked for, so a
    run staged again asks anew."""
    path = os.path.join(run.attrs_dir, "gpus_requested")
    if not os.path.exists(path):
        return
    params = run.get("run_params", {}) or {}
    params = dict(params) if isinstance(params, dict) else {}
    params["gpus"] = run.get("gpus_requested")
    run.write_attr("run_params", params)
    attrlib.remove(path)


# -- running again ----------------------------------------------------------------------


#: What a restart clears: the outcome, the mark of a run unstaged before it
#: started, who stopped it, the queue that started it last time (a queue
#: shows the active run naming it as its current run), and the retry policy
#: and retry of its last claim (a new claim records its own).
CLEARED = ("exit_status", "stopped", "unstaged", "queue_id", STOPPED_BY, RETRY_POLICY, RETRIED_AS,
           PRIORITY, AFTER, AFTER_FAILURE)


def restart(store, run: Run, *, stage: bool, owner: Claim | None = None, after: list | None = None,
            priority: int | None = None) -> None:
    """finished -> pending (claimed by ``owner``, default this process),
    staged, or (``after``: a dependency record; with ``stage``) held for its
    dependencies, with ``priority`` when given (a restart clears the old
    ones). Raises ``WrongState`` unless the run is finished and no process
    holds it, ``BadInput`` when ``after`` would make it wait for itself
    (through runs waiting for it); nothing is changed then."""
    if not stage and owner is None:
        owner = Claim.by_this_process(kind="launch")
    if (after is not None or priority is not None) and not stage:
        raise ValueError("dependencies and priorities are for a run staged for a queue")
    with store.lock():
        if settle_dead(store, run):  # its supervisor died: end what it left, record it, first
            run.refresh()
        if run.status not in FINISHED:
            raise WrongState(f"run {run.id[:8]} is {run.status}: only a finished run can be restarted")
        if os.path.exists(run.path(LOCK)) and run.lock_holder() is not None:
            raise WrongState(f"run {run.id[:8]} is held by a running process: it cannot be restarted")
        if after:  # read under the lock: no run starts or is held anew meanwhile
            cycle = dependency_cycle(store, run.id, [rid for rid, _any in _after_pairs(after)])
            if cycle:
                raise BadInput(cycle_text(cycle))
        try:
            # The outcome goes first: a failure past this point leaves a run
            # that reads ``error`` (no outcome, no live LOCK), never a PENDING
            # marker over an old outcome that no recovery would settle.
            for name in CLEARED:
                attrlib.remove(os.path.join(run.attrs_dir, name))
            clear_lock(run)
            if stage:
                give_back_gpus(run)  # a queue chooses again, as for a run returned to staged
                run.write_attr("started", now_us())
                if priority is not None:
                    run.write_attr(PRIORITY, priority)
                if after is not None:
                    run.write_attr(AFTER, after)
                    attrlib.write_atomic(run.path(PENDING_MARKER), "")  # held: ownerless, as at staging
                else:
                    attrlib.write_atomic(run.path(STAGED_MARKER), "")
            else:
                attrlib.write_atomic(run.path(PENDING_MARKER), owner.encode())
        except OSError as e:
            raise store_error(e, f"restart run {run.id[:8]}") from e
        finally:
            run.refresh()
    note(run, "restarted" + (" (staged)" if stage and after is None else
                             " (staged after its dependencies)" if stage else ""))
    store.notify_change(run.id)


def _after_pairs(after: list):
    return [(item["run"], item.get("any") is True) for item in after]


def cycle_text(cycle: list[str]) -> str:
    """One line for a dependency cycle ``[a, b, ..., a]``: what waits for what."""
    if len(cycle) == 2:
        return f"run {cycle[0][:8]} cannot wait for itself"
    chain = " -> ".join(r[:8] for r in cycle)
    return f"--after would close a cycle: {chain} (each waits for the next)"
