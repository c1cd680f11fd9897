"""Runs once they exist: listing, stopping, unstaging, deleting, reading
their output, and waiting on them."""

from __future__ import annotations

from .. import validate
from ..errors import BadInput, WrongState
from ..execution import control
from ..display import RunList
from ..store import transitions
from ..store.markers import LOCK_REMOTE
from ..store.run import ERROR, FINISHED, PENDING, RUNNING, STAGED, Run
from .. import views
from ..views import STATUSES as SHOWN, UNSTAGED, status_of
from .conflicts import refuse_conflicts
from .selection import check_not_deleted, is_sweep_ref, resolve_all, resolve_store, sweep_runs


def runs(
    status=None,
    *,
    op: str | None = None,
    label: str | None = None,
    limit: int | None = None,
    scalar: str | None = None,
    sweep: str | None = None,
    store=None,
) -> RunList:
    """Runs newest first, filtered by status (one or several), op and label
    (text contained, as Guild filters) and ``sweep`` (a sweep id: its runs;
    an unknown one is a ``BadInput``); ``scalar``: the scalar each row shows
    (default ``loss``, else a run's first; a name no run logged is a
    ``BadInput``)."""
    validate.statuses(status)
    validate.text("op", op)
    validate.text("label", label)
    validate.text("scalar", scalar)
    validate.count("limit", limit)
    validate.text("sweep", sweep)
    validate.store(store)
    if limit is not None and limit < 1:
        raise BadInput("-n must be at least 1")
    st = resolve_store(store)
    if sweep is not None:  # an unknown sweep is one line, not an empty list; a prefix means its sweep
        sweep = sweep_runs(st, sweep)[0].sweep
    listing = st.runs(status=status, op=op, label=label, limit=limit, sweep=sweep)
    for r in listing:  # a run whose supervisor was killed: end what it left, record it
        if (r.status == ERROR or r.status == RUNNING and r.has_marker(LOCK_REMOTE)) and control.settle_if_dead(st, r):
            r.refresh()
    for r in st.left_locked():  # finished, its supervisor killed before it let go: LOCK cleared
        control.settle_if_dead(st, r)
    held = [r for r in listing if r.status == PENDING and (transitions.is_held(r) or transitions.ended_while_held(r))]
    if held:  # runs waiting for their dependencies: staged, or ended, when those let them (as a queue would)
        from ..queueing.dependencies import settle_held  # lazy: only a listing that shows held runs settles them

        settle_held(st, held, retry=control.retry_copy_spec, settle=control.settle_if_dead)
        for r in held:
            r.refresh()
        if status is not None:  # a run settled into another status leaves a filtered listing
            wanted = {status} if isinstance(status, str) else set(status)
            listing = [r for r in listing if r.status in wanted]
    return RunList(listing, places=_places(st, listing, status is None and op is None and label is None
                                           and limit is None)).choose_scalar(scalar)


def _places(st, listing, complete: bool) -> dict:
    """Where the staged runs listed stand in our queues' order, counted over
    every staged run of the store (read again when ``listing`` is not the
    whole store: filtered or cut); none when none is listed."""
    if not any(r.status == STAGED for r in listing):
        return {}
    every = listing if complete else st.runs(status=STAGED, include_queues=False)
    return views.staged_places([r for r in every if r.status == STAGED and not r.is_queue])


def stop(
    *refs,
    all: bool = False,  # noqa: A002 - mirrors the CLI's --all
    queues: bool = False,
    wait: bool = True,
    timeout: float | None = None,
    store=None,
    listing=None,
) -> RunList:
    """Stops runs: a running run gets SIGTERM (its supervisor ends the run's
    whole process tree, SIGKILL after the grace period); a staged or pending
    one is taken off the queue, never started. ``wait``: returns once they
    have ended; past ``timeout`` (default grace + 10 s) every process of the
    run is killed and the outcome recorded. Which runs: those named, or
    ``all`` (every running or pending run and queue), or ``queues`` (every
    queue): one of the three; two are a ``BadInput`` (``api.conflicts``).
    Returns the runs stopped."""
    validate.run_refs(refs)
    for _name, _value in (("all", all), ("queues", queues), ("wait", wait)):
        validate.boolean(_name, _value)
    validate.seconds("timeout", timeout)
    validate.store(store)
    validate.listing(listing)
    refuse_conflicts("stop", runs=refs, all=all, queues=queues)
    st = resolve_store(store)
    if all or queues:
        # A pending run without a claim of ours is Guild's (it is resolving
        # the run's dependencies): never ours to touch.
        targets = [r for r in st.runs(status=(RUNNING, PENDING)) if (all or r.is_queue)
                   and not (r.status == PENDING and transitions.read_claim(r) is None and not transitions.is_held(r))]
    else:
        if not refs:
            raise BadInput("stop needs a run (id, id prefix or index), --all or --queues")
        targets = resolve_all(st, refs, listing)
        for r in targets:
            if r.status in FINISHED and not control.is_dead_run(r):
                raise WrongState(f"run {r.id[:8]} is already {r.status}: nothing to stop")
            if r.status == PENDING and transitions.read_claim(r) is None and not transitions.is_held(r):
                raise WrongState(f"run {r.id[:8]} is pending in Guild (being prepared, no claim of ours): "
                                 f"stop it with guild once it runs")
    stopped = RunList()
    for r in targets:
        control.begin_stop(st, r, by_user=True)
        stopped.append(r)
    if wait:
        control.finish_stop(st, stopped, timeout)
    st.notify_change(*(r.id for r in stopped))
    return RunList([r.refresh() for r in stopped], store=st, empty="nothing to stop")


def unstage(*refs, store=None, listing=None) -> RunList:
    """Takes staged runs (or runs waiting for their dependencies) off the
    queue: they will never start."""
    validate.run_refs(refs, "unstage")
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    targets = resolve_all(st, refs, listing)
    for r in targets:
        if r.status != STAGED and not (r.status == PENDING and transitions.is_held(r)):
            raise WrongState(f"run {r.id[:8]} is {r.status}, not staged")
    for r in targets:
        transitions.unstage(st, r)
    return RunList([r.refresh() for r in targets], store=st)


def delete(*refs, store=None, listing=None) -> RunList:
    """Moves runs to Guild's trash; a staged run (or one waiting for its
    dependencies) is unstaged first."""
    validate.run_refs(refs, "delete")
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    targets = resolve_all(st, refs, listing)
    for r in targets:
        if r.status == RUNNING or r.status == PENDING and not transitions.is_held(r):
            raise WrongState(f"run {r.id[:8]} is {r.status}: stop it before deleting it")
    for r in targets:
        control.wait_for_release(r)  # LOCK and its records go with the supervisor, not into the trash
        transitions.delete(st, r)
    import os

    trashed = [Run(os.path.join(st.home, "trash", "runs", r.id)) for r in targets]  # read where they are now
    return RunList(trashed, store=st, note=f"moved to Guild's trash ({os.path.join(st.home, 'trash', 'runs')}; "
                                 "`guild runs restore ID` brings a run back):")


def _run_with_output(store, ref, listing=None) -> Run:
    """The one run ``ref`` names, which must have started (a staged run has
    no output yet)."""
    r = resolve_all(resolve_store(store), [ref], listing)[0]
    if r.status == STAGED:
        raise WrongState(f"run {r.id[:8]} is staged: it has no output until a queue starts it")
    return r


def output(ref, tail: int | None = None, store=None, listing=None, follow: bool = False, stream=None, note=None):
    """A run's output (``tail``: its last lines). ``follow``: write it to
    ``stream`` (default stdout) as the run writes it until the run ends,
    then its outcome (on ``note``, default ``stream``), and return the
    ended run (see ``follow``)."""
    validate.boolean("follow", follow)
    refuse_conflicts("output", tail=tail, follow=follow)
    if follow:
        from .watching import follow as follow_run  # lazy: as in wait

        return follow_run(ref, stream, note=note, store=store, listing=listing)
    validate.run_ref(ref)
    validate.count("tail", tail)
    validate.store(store)
    validate.listing(listing)
    r = _run_with_output(store, ref, listing)
    if tail is not None and tail < 0:
        raise BadInput("--tail must be a positive number of lines")
    from ..store import output as outputlib  # lazy: as in wait: output verbs only

    path = r.path("output")
    if tail is not None:  # read backwards from the end: bounded memory
        return outputlib.decode(outputlib.tail(path, tail))
    return outputlib.decode(outputlib.read_from(path, whole_chars=False)[0])


def output_from(ref, offset: int = 0, limit: int | None = None, store=None) -> tuple[str, int]:
    """A run's output from byte ``offset`` (at most ``limit`` bytes, a cut
    character kept for the next read) and the offset to read from next: how
    a viewer follows a live run."""
    validate.run_ref(ref)
    validate.count("offset", offset)
    validate.count("limit", limit)
    validate.store(store)
    r = _run_with_output(store, ref)
    from ..store import output as outputlib  # lazy: as in wait: output verbs only

    data, offset = outputlib.read_from(r.path("output"), offset, limit)
    return outputlib.decode(data), offset


def wait(*refs, status=None, timeout: float | None = None, interval: float = 0.1, store=None) -> RunList:
    """Blocks until every run named (ids, prefixes, ``Run`` objects, run
    lists such as the sweep ``run()`` returns, or a sweep id: its runs, and
    the retries staged while waiting) has one of ``status`` (a
    status or several, ``unstaged`` included; default: any finished status)
    and returns them, fresh. ``timeout``: seconds (None: no limit), past
    which ``WaitTimeout`` is raised. ``wait(run, status="running")`` returns
    once the run has started. A run deleted meanwhile (a staged one can be)
    raises ``RunDeleted``, which says so."""
    from .watching import wait_until  # lazy: watching's modules (~2 ms) are for output verbs, not listings

    named = []
    for ref in refs:
        named.extend(ref if isinstance(ref, (list, tuple)) else [ref])
    validate.run_refs(named, "wait")
    validate.statuses(status)
    validate.seconds("timeout", timeout)
    validate.seconds("interval", interval)
    validate.store(store)
    wanted = set(FINISHED) | {UNSTAGED} if status is None else ({status} if isinstance(status, str) else set(status))
    unknown = wanted - set(SHOWN) - {UNSTAGED}
    if unknown:
        raise BadInput(f"unknown status {sorted(unknown)[0]!r} (one of {', '.join(SHOWN)}, {UNSTAGED})")
    st = resolve_store(store)
    targets = resolve_all(st, named)
    left = list(targets)
    sweeps = [ref for ref in named if is_sweep_ref(ref)]

    def reached():
        # A sweep gains runs while it goes (a queue's retry of a failed trial): wait for those too.
        for sweep in sweeps:
            known = {r.id for r in targets}
            for r in sweep_runs(st, sweep, exact=False):
                if r.id not in known:
                    targets.append(r)
                    left.append(r)
        # Only the runs not there yet are read again; a deleted one never gets there.
        check_not_deleted(st, *left)
        left[:] = [r for r in left if not (status_of(r.refresh()) in wanted or r.status in wanted)]
        return not left

    shown = ", ".join(r.id[:8] for r in targets[:4]) + (" ..." if len(targets) > 4 else "")
    wait_until(reached, timeout, interval, what=f"run{'s' if len(targets) > 1 else ''} {shown} to be "
                                                 f"{' or '.join(sorted(wanted))}")
    check_not_deleted(st, *targets)
    return RunList([r.refresh() for r in targets], store=st)
