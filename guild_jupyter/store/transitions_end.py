"""The outcome side of a run's lifecycle: how a run ends, and the writes
every transition shares. Part of :mod:`.transitions`, which re-exports all
of it: callers only ever call ``transitions.X``.

It is a module of its own so the lifecycle stays readable in two halves of
a size one can hold: :mod:`.transitions` creates, claims and starts runs;
this one records how they end -- the outcome attrs (``stopped`` then
``exit_status``, which decides the status), the dropped LOCK and its
records, the reason in the run's output -- and the ``LOCK.remote`` marker
of a run held by another machine.
Only these two modules write a status; the ownership test allows exactly
them.

The transitions here::

    record_outcome        running    -> completed / error / terminated
    record_start_failure  pending/staged -> error, with the reason
    settle_dead           running, holder gone -> error (orphans ended)
    let_go_dead           finished, holder killed before letting go -> LOCK cleared
    end_tree_and_record   running, grace ran out -> processes ended, outcome
    mark_remote           pending    -> running on another host (LOCK.remote)
    stage_retry           failed     -> a staged copy (once per failure)

Retries (SPEC 11). A claim records the retry policy in force
(``retry_policy``: its own ``retries``, else the queue's), so the retry of a
failure does not depend on the queue that claimed the run still being
there. Whoever settles a failure (exit status > 0) -- the run's supervisor
(``record_outcome``), whoever finds its supervisor dead (``settle_dead``),
the queue that reaps it (``stage_retry``) -- passes how a copy is made
(``retry``: run, attempt, allowed -> RunSpec; the operation layer knows
it) and the copy is staged under the run-status lock *before* the outcome
is written, in the same hold. Exactly once: the copy's id is derived from
the failed run's id and start time, so a settler that finds it already in
``runs/`` (or the trash) only records it (``retried_as``); a settler killed
between the copy and its outcome leaves a run that the next settler judges
dead, finds the copy, and records the outcome only.

Disk faults. ``transitions.acquire`` reserves the space the outcome needs;
``write_outcome`` falls back to it when the disk is full, so a run always
gets its recorded outcome.
"""

from __future__ import annotations

import errno
import os

from ..errors import GuildJupyterError, StoreError, StoreNotWritable, WrongState
from ..procs import Identity, kill_identities, tree_identities
from . import attrs as attrlib
from . import reserve
from .records import AFTER, read_claim, recorded_processes
from .run import LOCK, LOCK_PROCS, LOCK_REMOTE, LOCK_START, PENDING, PENDING_MARKER, STAGED_MARKER, Run, now_us

OUTCOME_ATTRS = reserve.OUTCOME_ATTRS
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


def store_error(e: OSError, what: str) -> StoreError:
    """The package's error for an OSError while writing a run: one line,
    ``StoreNotWritable`` when the disk is full or the store read-only."""
    if e.errno in DISK_ERRNOS or e.errno in (errno.EACCES, errno.EPERM):
        return StoreNotWritable(f"store not writable: cannot {what}: {e.strerror}")
    return StoreError(f"cannot {what}: {e}")


def write_outcome(run: Run, exit_status: int, stopped: int | None = None) -> None:
    """Writes ``stopped`` then ``exit_status``, using the reserved space when
    the disk is full. The outcome appears whole: readers take no lock, and
    the status follows ``exit_status``, so it goes last -- whoever sees the
    run ended sees when it ended (a moment with ``stopped`` alone reads as
    before: running, or error for a holder that is gone)."""
    values = {"exit_status": exit_status, "stopped": now_us() if stopped is None else stopped}
    written = []
    for name in ("stopped", "exit_status"):
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


def record_outcome(store, run: Run, exit_status: int, holder: Identity | None = None, retry=None) -> None:
    """running -> finished: records ``exit_status`` and ``stopped`` (unless an
    outcome is already recorded) and drops LOCK. With ``holder``, LOCK is
    dropped only if it is still ``holder``'s (a later ``guild run --restart``
    may have taken the run). ``retry`` (see the module's doc): a failure
    whose recorded policy leaves a retry gets its copy staged first, under
    the run-status lock; if that lock cannot be had the outcome is recorded
    all the same (it comes first) and a later settler may stage the copy."""
    run.refresh()
    if holder is not None and os.path.exists(run.path(LOCK)):
        if run.lock_pid() != holder.pid:
            return  # someone else holds the run now: not ours to end
    if retry is not None and run.get("exit_status") is None and retry_due(run, exit_status):
        try:
            with store.lock():
                run.refresh()
                if holder is not None and os.path.exists(run.path(LOCK)) and run.lock_pid() != holder.pid:
                    return
                _stage_retry(store, run, exit_status, retry)
                _record_outcome(store, run, exit_status)
            return
        except StoreError as e:  # the lock (or the store) refuses: the outcome comes first
            note(run, f"no retry staged now: {e}")
    _record_outcome(store, run, exit_status)


def _record_outcome(store, run: Run, exit_status: int) -> None:
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


def settle_dead(store, run: Run, exit_status: int = 1, reason: str | None = None, retry=None) -> bool:
    """A run whose LOCK holder died without recording an outcome (a supervisor
    killed with SIGKILL): ends the processes it left (its script, their
    descendants) and records the outcome, its retry staged first when one is
    due (``retry``: see the module's doc). True if it settled the run."""
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
        _stage_retry(store, run, exit_status, retry)
        try:
            write_outcome(run, exit_status)
        except OSError as e:
            raise store_error(e, f"record the outcome of run {run.id[:8]}") from e
        clear_lock(run)
        run.refresh()
    store.notify_change(run.id)
    return True


def let_go_dead(store, run: Run) -> bool:
    """A finished run whose holder died between recording the outcome and
    letting go (LOCK and its records left behind): removes them, as the
    holder would have. The caller judged the holder gone (a run held on
    another machine by its heartbeat); here, under the run-status lock,
    the outcome and a dead LOCK are checked again. True if it cleared."""
    with store.lock():
        run.refresh()
        if run.get("exit_status") is None or run.lock_holder() is not None:
            return False
        names = run.marker_names()
        if not any(n in names for n in (LOCK, LOCK_START, LOCK_PROCS, LOCK_REMOTE)):
            return False
        clear_lock(run)
        run.refresh()
    store.notify_change(run.id)
    return True


def end_tree_and_record(store, run: Run, exit_status: int = -9, reason: str | None = None, retry=None) -> None:
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
    settle_dead(store, run, exit_status, reason, retry)


# -- retries ---------------------------------------------------------------------------

RETRY_POLICY = "retry_policy"  # {"retries": N, "from": "run" | "queue QUEUE_ID"}, written at the claim
RETRIED_AS = "retried_as"  # the id of the copy staged for this run's failure


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def record_retry_policy(run: Run, retries: int, queue_id: str | None = None) -> None:
    """At a claim: the retries a failure of ``run`` gets, its own
    ``retries`` when it has them, else ``retries`` (the claiming queue's).
    A policy left by an earlier claim is replaced (or dropped)."""
    own = run.get("retries")
    if _count(own) and own >= 0:
        policy = {"retries": own, "from": "run"}
    elif _count(retries) and retries > 0:
        policy = {"retries": retries, "from": f"queue {queue_id}" if queue_id else "queue"}
    else:
        policy = None
    if policy is None or policy["retries"] <= 0:
        attrlib.remove(os.path.join(run.attrs_dir, RETRY_POLICY))
        run.refresh()
    else:
        run.write_attr(RETRY_POLICY, policy)


def retry_due(run: Run, exit_status) -> tuple[int, int] | None:
    """``(attempt, allowed)`` of the copy a failure of ``run`` with
    ``exit_status`` gets under its recorded policy, or None: no failure (a
    stopped run is never retried), no policy, or no retry left."""
    if not _count(exit_status) or exit_status <= 0:
        return None
    policy = run.get(RETRY_POLICY)
    allowed = policy.get("retries") if isinstance(policy, dict) else None
    if not _count(allowed) or allowed <= 0:
        return None
    done = run.get("retry_attempt")
    done = done if _count(done) and done > 0 else 0
    return (done + 1, allowed) if done < allowed else None


def retry_copy_id(run: Run) -> str:
    """The id the retry of ``run``'s failure gets: derived from its id and
    start time (shaped like a uuid4 hex), so every settler names the same
    copy and a second one is never made."""
    import hashlib  # on use: every CLI command imports this module

    digest = bytearray(hashlib.sha256(f"{run.id} {run.get('started')} retry".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


def stage_retry(store, run: Run, retry) -> tuple[str | None, str]:
    """For a run that ended: stages the retry its failure is due, unless a
    settler already did. ``(copy id or None, what happened)``: ``staged``,
    ``already`` (staged before, by anyone), ``none`` (nothing due),
    ``failed: REASON``. Idempotent; under the run-status lock."""
    with store.lock():
        run.refresh()
        return _stage_retry(store, run, run.get("exit_status"), retry)


def _stage_retry(store, run: Run, exit_status, retry) -> tuple[str | None, str]:
    """The caller holds the run-status lock (and refreshed ``run``)."""
    if retry is None or retry_due(run, exit_status) is None:
        return None, "none"
    already = run.get(RETRIED_AS)
    if isinstance(already, str):
        return already, "already"
    copy_id = retry_copy_id(run)
    what = "already"
    if not (os.path.isdir(os.path.join(store.runs_dir, copy_id)) or store.in_trash(copy_id)):
        try:
            spec = retry(run, *retry_due(run, exit_status))
            build_and_move_runs(store, [spec], True, (STAGED_MARKER, b""), ids=[copy_id])
            what = "staged"
        except Exception as e:  # noqa: BLE001 - a damaged run, a full disk, a bug: the outcome is still recorded
            if isinstance(e, GuildJupyterError):
                why = str(e)
            elif isinstance(e, OSError):
                why = str(store_error(e, "stage a retry"))
            else:
                why = f"{type(e).__name__}: {e}"
            note(run, f"no retry staged: {why}")
            return None, f"failed: {why}"
    try:
        run.write_attr(RETRIED_AS, copy_id)
    except OSError:
        pass  # the copy's id says it anyway: the next settler finds the copy
    store.notify_change(run.id, copy_id)
    return copy_id, what


def stage_requested_retry(store, run: Run, retry) -> str:
    """A retry the user asked for (``api.retry``): stages ``retry(run)`` (a
    spec) for a run that failed, whatever its retry policy, and records it
    as the run's retry (``retried_as``), so that no settler stages another.
    Returns the copy's id. ``WrongState`` when the run did not fail or its
    retry is already staged (nothing is written then)."""
    with store.lock():
        run.refresh()
        exit_status = run.get("exit_status")
        if not _count(exit_status) or exit_status <= 0:
            raise WrongState(f"run {run.id[:8]} is {run.status}: only a failed run can be retried")
        already = run.get(RETRIED_AS)
        if isinstance(already, str) and os.path.isdir(os.path.join(store.runs_dir, already)):
            raise WrongState(f"run {run.id[:8]} was retried already: run {already[:8]}")
        copy_id = retry_copy_id(run)
        if os.path.isdir(os.path.join(store.runs_dir, copy_id)) or store.in_trash(copy_id):
            copy_id = None  # that retry was made and deleted since: a new id
        spec = retry(run)
        # A retry that waits for dependencies again (a run ended by a failed
        # dependency: rerun.retry_spec) is held, as a staging --after is.
        held = AFTER in spec.extra_attrs
        (copy,) = build_and_move_runs(store, [spec], True, (PENDING_MARKER if held else STAGED_MARKER, b""),
                                      ids=[copy_id] if copy_id else None)
        try:
            run.write_attr(RETRIED_AS, copy.id)
        except OSError:
            pass  # best effort, as for a settler's retry
    store.notify_change(run.id, copy.id, created=True)
    return copy.id


# -- creating run directories (``transitions.create``, a retry's copy) -------------------


def build_and_move_runs(store, specs: list, staged: bool, marker: tuple, ids: list | None = None) -> list[Run]:
    """Each run directory is completed in a private scratch area, then all are
    moved into ``runs/`` under the run-status lock; if any step fails the ones
    already moved are removed before the lock is released, so no queue ever
    sees a partial batch. ``ids``: the runs' ids (new random ones by default)."""
    # lazy: a run's supervisor imports this module and never creates a run
    from .new_run import build_run_dir, new_run_id

    store.ensure_writable()
    scratch = os.path.join(store.private_dir, "new", new_run_id())
    moved: list[str] = []
    try:
        os.makedirs(scratch)
        built = []
        t0 = now_us()
        for n, spec in enumerate(specs):
            run_id = ids[n] if ids else new_run_id()
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
                    remove_tree(dest)
                raise
    except OSError as e:
        raise store_error(e, f"initialize runs in {store.runs_dir}") from e
    finally:
        try:
            os.rmdir(scratch)  # empty once every run moved out: no shutil on the common path
        except OSError:
            remove_tree(scratch)
    return [Run(d) for d in moved]


def remove_tree(path: str, ignore_errors: bool = True) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=ignore_errors)


# -- runs held by another machine (a Dask worker) --------------------------------------

def mark_remote(store, run: Run, host: str, owner=None) -> bool:
    """A pending run a Dask worker's runner is about to start: LOCK.remote
    names the host that holds it, so guild and ours show it running on
    every machine, and only that host judges its processes (a pid means
    nothing elsewhere). Cleared with LOCK whenever its outcome is recorded
    (``clear_lock``). False, writing nothing, when the run is no longer
    pending under ``owner``'s claim (an Identity; None: any claim): a stop
    took it off meanwhile, and LOCK.remote would make it read running again."""
    with store.lock():
        run.refresh()
        if run.status != PENDING:
            return False
        if owner is not None:
            claim = read_claim(run)
            if getattr(claim, "owner", None) != owner:
                return False
        try:
            attrlib.write_atomic(run.path(LOCK_REMOTE), host)
        except OSError as e:
            raise store_error(e, f"mark run {run.id[:8]} as held by {host}") from e
        run.refresh()
    store.notify_change(run.id)
    return True
