"""What the dependencies of a held run are doing now (SPEC 12), read from
their run directories.

A held run (``records.is_held``) waits for the runs its ``after`` record
names. Each is read as ``(id, state, any outcome)``, ``state`` one of the
queue policy's ``DEPENDENCY_STATES``: its status, ``held`` for a run itself
waiting for its dependencies, ``unstaged`` for one taken off the queue
before it started, ``deleted`` for one gone from ``runs/`` (to Guild's
trash, or removed). The policy (``queueing.policy.after_verdict``) decides
from these; ``queueing.dependencies`` carries the verdict out.

Two readings keep a pipeline from failing early, when the reader is a
settler (a queue) that passes its hooks:

- a dependency whose supervisor died without recording an outcome is
  settled first (``settle``: it records the outcome and stages the retry
  its failure is due), rather than read as a failure with no retry;
- a dependency that failed and is retried (its ``retried_as``: a queue's
  ``retries``, or ``retry`` by hand; or a retry due under its recorded
  policy, staged here with ``retry`` if nobody has) is followed to the
  retry: the waiting run waits for the retry's outcome.

A viewer passes no hooks: it only reads.

One reading keeps a pipeline from failing on a run that is only starting:
Guild's queue (and ``guild run``) removes a staged run's PENDING before it
writes LOCK, and for that moment the run reads ``error`` (no marker, no
outcome, no holder), in ``guild runs`` too. Such a run -- no outcome, no
LOCK, its ``.guild`` changed within ``STARTING_GRACE`` seconds -- counts
as ``pending``; past the grace it is what it reads, a failure (a process
that died before writing anything), so nothing waits on it for ever.
"""

from __future__ import annotations

import os
import time

from .markers import LOCK
from .records import is_held, read_after
from .run import COMPLETED, ERROR, PENDING, RUNNING, STAGED, TERMINATED, Run
from .transitions_end import RETRIED_AS, retry_due, stage_retry

__all__ = ["dependency_states", "dependency_state", "MAX_RETRIES_FOLLOWED", "STARTING_GRACE"]

#: How far a chain of retries is followed (a bound, not a policy: every
#: retry chain is bounded by its ``retries``).
MAX_RETRIES_FOLLOWED = 100
#: Seconds a run with no outcome and no LOCK may be starting (see the module's doc).
STARTING_GRACE = 30.0


def dependency_state(store, run_id: str, retry=None, settle=None, known=None) -> tuple[str, str]:
    """``(id, state)`` of the run ``run_id`` as a dependency, following a
    failed one to its retry (the id is then the retry's). ``retry`` and
    ``settle``: a settler's hooks (see the module's doc): ``retry(run,
    attempt, allowed)`` makes a retry's spec (``transitions.stage_retry``'s),
    ``settle(store, run)`` settles a run whose supervisor died (True if it
    did: ``execution.control.settle_if_dead``). ``known``: a viewer's
    lookup, run id -> its state as a listing already read it, or None when
    the run's files must be read (a held, failed or unknown run)."""
    for _ in range(MAX_RETRIES_FOLLOWED):
        state = known(run_id) if known is not None else None
        if state is not None:
            return run_id, state
        path = os.path.join(store.runs_dir, run_id)
        if not os.path.isdir(path):
            return run_id, "deleted"
        run = Run(path)
        status = run.status
        if status == ERROR and run.get("exit_status") is None and settle is not None:
            if settle(store, run):  # its supervisor died: recorded now, its retry staged when one is due
                status = run.refresh().status
        if status == ERROR and _starting(run):
            return run_id, "pending"
        if status == PENDING:
            return run_id, "held" if is_held(run) else "pending"
        if status in (STAGED, RUNNING, COMPLETED):
            return run_id, status
        if status == TERMINATED:
            return run_id, "unstaged" if run.get("unstaged") is True else "terminated"
        # error: followed to its retry, if it has one or one is due
        copy = run.get(RETRIED_AS)
        if not _is_run_id(copy) and retry is not None and retry_due(run, run.get("exit_status")):
            copy, _what = stage_retry(store, run, retry)
        if not _is_run_id(copy):
            return run_id, ERROR
        run_id = copy
    return run_id, ERROR


def dependency_states(store, run: Run, retry=None, settle=None, seen: dict | None = None, known=None):
    """The dependencies of ``run``, ``[(id, state, any outcome), ...]`` in the
    order they were named; None when it has no dependency record;
    ``"damaged"`` when its record cannot be read. ``seen``: states already
    read in this pass (id -> (id, state)), shared by the runs of one pass;
    ``known``: see ``dependency_state``."""
    deps = read_after(run)
    if not isinstance(deps, list):
        return deps
    seen = {} if seen is None else seen
    out = []
    for rid, any_outcome in deps:
        if rid not in seen:
            seen[rid] = dependency_state(store, rid, retry, settle, known)
        followed, state = seen[rid]
        out.append((followed, state, any_outcome))
    return out


def _starting(run: Run) -> bool:
    """The run reads ``error`` only because a starter is between removing
    its PENDING and writing LOCK (see the module's doc)."""
    if run.refresh().get("exit_status") is not None or os.path.exists(run.path(LOCK)):
        return False
    try:
        changed = os.stat(run.guild_dir).st_mtime
    except OSError:
        return False
    return time.time() - changed < STARTING_GRACE


def _is_run_id(value) -> bool:
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)
