"""Running a finished run again: ``restart`` (in place, same id, like
``guild run --restart``), ``restage`` (a staged copy with edited flags)
and ``retry`` (a staged copy of a failed run, as a queue's retry makes)."""

from __future__ import annotations

from .. import rerun as reruns
from .. import validate
from ..display import RunList
from ..errors import BadInput
from ..execution import control, launch
from ..store import transitions
from ..store.new_run import new_sweep_id
from ..store.records import PRIORITY
from .pipelines import after_refs, check_staging_options, resolve_after
from .planning import plan_trials
from .selection import resolve_all, with_listing_indices, resolve_store


def restart(ref, *, stage: bool = False, store=None, listing=None, priority: int | None = None, after=None,
            after_any=None) -> RunList:
    """Runs a finished run again in place: same id, directory and flags, its
    output appended to, its ``started`` time new, as ``guild run --restart
    ID`` does. Started now in the background (returns once it runs), or
    with ``stage`` staged for a queue, with ``priority`` and waiting
    ``after`` (or ``after_any``) other runs as ``run --stage`` takes them
    (its old ones are cleared). A run that is not finished (staged,
    pending, running) is a ``WrongState``; a run made to wait for itself,
    directly or through runs waiting for it, a ``BadInput``; nothing
    changes then."""
    validate.run_ref(ref)
    validate.boolean("stage", stage)
    validate.store(store)
    validate.listing(listing)
    after, after_any = after_refs(after), after_refs(after_any)
    check_staging_options("restart", stage, priority, after, after_any)
    st = resolve_store(store)
    (run,) = _one(st, ref, listing)
    if run.is_queue:
        raise BadInput(f"run {run.id[:8]} is a queue: start a new queue instead")
    if run.opref[0] != "script":
        raise BadInput(f"run {run.id[:8]} is a Guild operation ({run.op_name}): restart it with guild run --restart")
    reruns.script_op_of(run)  # its script must still be in its directory
    waits = resolve_after(st, after, after_any)
    st.ensure_writable()
    control.wait_for_release(run)  # a holder that stays is refused by transitions.restart
    transitions.restart(st, run, stage=stage, after=waits, priority=priority)
    if not stage:
        launch.start(run)
    return RunList([run.refresh()], store=st)


def restage(ref, *assignments: str, flags: dict | None = None, store=None, listing=None, priority: int | None = None,
            after=None, after_any=None) -> RunList:
    """Stages a copy of a run (its source snapshot, flags, pinned GPUs,
    label and priority) with flags edited: ``restage(run, "lr=0.1")``
    (brackets make a sweep: one copy per trial). Flags are checked as
    ``run`` checks them: an unknown flag is a ``FlagError`` and nothing is
    written. ``priority``, ``after``, ``after_any``: as ``run --stage``
    takes them (the copy waits for nothing unless told). The copy names its
    origin (``restage_of``) and joins its sweep. Returns the staged runs."""
    validate.run_ref(ref)
    validate.assignments(assignments)
    validate.flags(flags)
    validate.store(store)
    validate.listing(listing)
    after, after_any = after_refs(after), after_refs(after_any)
    check_staging_options("restage", True, priority, after, after_any)
    st = resolve_store(store)
    (run,) = _one(st, ref, listing)
    op = reruns.script_op_of(run)
    edited = {a.partition("=")[0].strip() for a in assignments} | set(flags or {})
    base = {k: v for k, v in reruns.user_flags(run).items() if k not in edited and k in op.defaults}
    trials = plan_trials(op, assignments, {**base, **(flags or {})})
    waits = resolve_after(st, after, after_any)
    extra = {"restage_of": run.id} if priority is None else {"restage_of": run.id, PRIORITY: priority}
    if run.sweep is None:  # a run from before sweeps: its copies make a sweep of their own
        extra["sweep"] = new_sweep_id()
    specs = [reruns.copy_spec(run, op, t, dict(extra)) for t in trials]
    st.ensure_writable()
    return with_listing_indices(st, transitions.create(st, specs, staged=True, after=waits))


def retry(ref, *, store=None, listing=None) -> RunList:
    """Stages a retry of a failed run for a queue, as a queue with
    ``retries`` does: a copy of its source snapshot, user flags, pinned
    GPUs and label, naming what it retries (``retry_of``, ``retry_attempt``,
    ``retry_origin``), so it reads "retry 2 of ab12cd34"; it is recorded
    as the run's retry, so no queue stages another. Only a run that ended
    ``error`` and was not retried already can be (``WrongState``
    otherwise); nothing is written then. Returns the staged copy."""
    validate.run_ref(ref)
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    (run,) = _one(st, ref, listing)
    reruns.script_op_of(run)  # a Guild operation, or a run without its script: BadInput, before anything
    st.ensure_writable()
    copy_id = transitions.stage_requested_retry(st, run, lambda r: reruns.retry_spec(r, reruns.next_attempt(r)))
    return with_listing_indices(st, [st.run(copy_id)])


def _one(st, ref, listing):
    runs = resolve_all(st, [ref], listing)
    if len(runs) != 1:
        raise BadInput(f"{ref!r} names {len(runs)} runs; give one run")
    return runs

