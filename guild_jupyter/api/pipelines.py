"""Priorities and dependencies (SPEC 12): what ``--after``, ``--after-any``
and ``--priority`` name, checked before anything is written, and
``prioritize``.

``--after REF`` (repeatable) makes the runs staged wait, held, until the
runs REF names have completed; ``--after-any REF`` until they have ended,
whatever the outcome. REF is read, in this order, as:

1. a listing index or range (``3``, ``1:6``: all the trials listed), in
   the latest listing (a notebook's) or the store's full listing;
2. a run id or unique id prefix;
3. a sweep id or unique prefix (``s3f9a2c1d``: the ``sweep`` attr every
   ``run`` call gives its runs, issue 22): every run of that sweep, its
   retries and restages included (``selection.sweep_runs``, the one lookup
   of sweeps). A sweep id starts with ``s``, a run id never does: the two
   cannot be confused.

A ref that names nothing (or several runs) is refused, as is a queue, the
same run by ``--after`` and ``--after-any``, and a run waiting for itself
(directly or through runs waiting for it: ``restart --stage --after``,
checked under the run-status lock by ``transitions.restart``).

The options need a staging: ``run --stage`` (or ``--dry-run``, which
checks them and writes nothing), ``restage`` (which always stages) and
``restart --stage``; ``--foreground`` runs the trials here, which no queue
could order or hold (``api.conflicts``).
"""

from __future__ import annotations

from .. import validate
from ..display import RunList
from ..errors import AmbiguousRun, BadInput, RunNotFound
from ..store import transitions
from ..store.records import after_record
from ..store.run import Run
from ..store.store import parse_index_range
from .selection import is_sweep_ref, resolve_all, resolve_store, sweep_runs

__all__ = ["after_refs", "resolve_after", "check_staging_options", "prioritize"]


def after_refs(value) -> list:
    """``--after``'s value as a list of references: one reference (a
    string, a ``Run``) or several (a list, a ``RunList``)."""
    if value is None:
        return []
    if isinstance(value, (str, Run, int)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise BadInput(f"after must be a run reference or a list of them, not {type(value).__name__} {value!r:.40}")


def check_staging_options(verb: str, staged: bool, priority=None, after=(), after_any=()) -> None:
    """Refuses ``--priority``, ``--after`` and ``--after-any`` where no queue
    would start the run (one line: which option, and why)."""
    validate.priority(priority)
    validate.run_refs(after)
    validate.run_refs(after_any)
    if staged:
        return
    given = [name for name, v in (("--after", after), ("--after-any", after_any), ("--priority", priority))
             if v not in (None, [], ())]
    if given:
        what = " and ".join(given)
        raise BadInput(f"{verb}: {what} need{'s' if len(given) == 1 else ''} --stage: a run that waits for others "
                       f"or goes first is started by a queue")


def resolve_after(st, after=(), after_any=(), listing=None) -> list | None:
    """The dependency record (``records.after_record``) of ``--after`` and
    ``--after-any`` references, or None when none is given. Reads only:
    a ``BadInput`` names the first reference that is wrong."""
    if not after and not after_any:
        return None
    chosen: dict[str, bool] = {}
    full: list = []  # the store's listing, read once, when a range needs it
    for refs, any_outcome, option in ((after, False, "--after"), (after_any, True, "--after-any")):
        for ref in refs:
            for run in _named(st, ref, option, listing, full):
                if run.is_queue:
                    raise BadInput(f"{option} {_shown(ref)}: run {run.id[:8]} is a queue; a run cannot wait for a queue")
                if run.id in chosen and chosen[run.id] != any_outcome:
                    raise BadInput(f"run {run.id[:8]} is named by --after and --after-any: name it once")
                chosen.setdefault(run.id, any_outcome)
    return after_record(chosen.items())


def _shown(ref) -> str:
    return ref.id[:8] if isinstance(ref, Run) else str(ref)


def _named(st, ref, option: str, listing, full: list) -> list[Run]:
    """The runs one ``--after`` reference names (see the module's doc)."""
    if isinstance(ref, Run):
        if ref.deleted:
            raise BadInput(f"{option}: run {ref.id[:8]} no longer exists")
        return [ref]
    ref = str(ref).strip()
    if not ref:
        raise BadInput(f"{option} needs a run id, id prefix, listing index or sweep id")
    span = parse_index_range(ref)
    if span is not None:
        runs = listing
        if runs is None:
            if not full:
                full.extend(st.runs())
            runs = full
        start, end = span
        if start >= 0 and (end is None or end <= len(runs)):
            named = [r for r in runs[start:end] if not r.is_queue]
            if not named:
                raise BadInput(f"{option} {ref}: no run there but queues")
            return named
    if is_sweep_ref(ref):  # s and hex digits: never a run id or prefix (hex only)
        try:
            trials = sweep_runs(st, ref)
        except BadInput as e:
            raise BadInput(f"{option}: {e}") from None
        return sorted(trials, key=lambda r: (r.timestamp or 0, r.id))  # oldest first, as they were staged
    try:
        (run,) = st.select([ref], indices=False)
    except AmbiguousRun as e:
        raise BadInput(f"{option}: {e}") from None
    except RunNotFound:
        raise BadInput(f"{option} {ref}: no run {ref!r} (a run id or prefix, a listing index or range, "
                       f"or a sweep id like s3f9a2c1d)") from None
    return [run]


def prioritize(*refs, priority: int, store=None, listing=None) -> RunList:
    """Sets the priority of staged runs, or of runs waiting for their
    dependencies: our queues start the highest priority first, then the
    oldest (Guild's own queue ignores priorities). All or nothing: a run
    that is neither is a ``WrongState`` and nothing changes. Returns the
    runs."""
    validate.run_refs(refs, "prioritize")
    validate.priority(priority, optional=False)
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    targets = resolve_all(st, refs, listing)
    transitions.set_priority(st, targets, priority)
    return RunList([r.refresh() for r in targets], store=st)
