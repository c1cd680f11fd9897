"""The plain Python API: the one façade every front end (magics, panel, CLI,
server) calls. Nothing here imports IPython, ipywidgets or tornado."""

from __future__ import annotations

import sys

from . import sweeps as sweeplib
from . import validate
from .engine.gpuspec import parse_gpu_spec
from .engine.queue_status import QueueRegistry
from .errors import BadInput, FlagError, SweepError, WrongState
from .execution import batch, control, launch
from .execution.batch import SweepInterrupted
from .opdef import ScriptOp
from .display import RunList
from .store import transitions
from .store.run import ERROR, FINISHED, PENDING, RUNNING, STAGED, Run
from .store.store import Store

__all__ = ["Store", "run", "runs", "stop", "unstage", "delete", "output", "resolve_store", "plan_trials"]


def resolve_store(store=None) -> Store:
    """An explicit Guild home (a path or Store), else the one Guild 0.9 would
    use (``$GUILD_HOME``, an activated env's ``.guild``, the nearest
    ``.guild`` up from the working directory, ``~/.guild``). A path that is a
    ``runs/`` directory, a run, or a file is an error."""
    if isinstance(store, Store):
        return store
    if store is not None:
        from .store.store import check_home

        st = Store(store)
        check_home(st.home)
        return st
    return Store()


# -- flags and trials -----------------------------------------------------------


def plan_trials(op: ScriptOp, assignments=(), flags=None, max_trials=None, random_seed=None) -> list[dict]:
    """The user flag dicts of every trial, validated against the script.

    ``assignments`` are ``name=value`` strings as typed in a cell or shell
    (brackets make a sweep); ``flags`` maps names to Python values (a list is
    a sweep unless the script's default for that flag is itself a list).
    Raises a ``BadInput`` before anything is written.
    """
    if max_trials is not None and (not isinstance(max_trials, int) or max_trials < 1):
        raise SweepError("--max-trials must be at least 1")
    specs = sweeplib.parse_assignments(list(assignments))
    defaults = op.defaults
    for name in list(specs):
        if isinstance(defaults.get(name), list):
            specs[name] = _list_flag_spec(name, _raw_value(assignments, name))
    for name, value in (flags or {}).items():
        if name in specs:
            raise FlagError(f"flag {name!r} given twice")
        if isinstance(value, (list, tuple)) and not isinstance(defaults.get(name), list):
            if not value:
                raise SweepError(f"empty sweep for {name}")
            specs[name] = sweeplib.Choices(tuple(value))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
            specs[name] = sweeplib.Choices(tuple(list(v) for v in value))
        else:
            specs[name] = sweeplib.Value(list(value) if isinstance(value, tuple) else value)
    op.check_flags({k: None for k in specs})
    trials = sweeplib.expand(specs, max_trials=max_trials, random_seed=random_seed)
    return op.coerce_flags(trials)  # every trial type-checked, as Guild checks them


def _raw_value(assignments, name):
    for a in assignments:
        k, _, v = a.partition("=")
        if k.strip() == name:
            return v
    return ""


def _list_flag_spec(name, text):
    """A flag whose default is a list takes a list value: ``[1,2]`` is one
    value, ``[[1,2],[3]]`` a sweep over two lists."""
    import re

    import yaml

    fn = re.match(r"\s*(range|linspace|logspace|uniform|loguniform)\s*\[", text)
    if fn:
        raise SweepError(f"{name} takes a list: a sweep function ({fn.group(1)}[...]) cannot make its values; "
                         f"sweep over lists instead ({name}=[[1,2],[3]])")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise FlagError(f"malformed list value for {name}: {text!r}") from None
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return sweeplib.Choices(tuple(value))
    if not isinstance(value, list):
        value = [value]
    return sweeplib.Value(value)


# -- runs -----------------------------------------------------------------------


def run(
    script: str,
    *assignments: str,
    flags: dict | None = None,
    gpus=None,
    label: str | None = None,
    stage: bool = False,
    foreground: bool = False,
    max_trials: int | None = None,
    random_seed: int | None = None,
    dry_run: bool = False,
    store=None,
    cwd: str | None = None,
    stream=None,
    op: ScriptOp | None = None,
    echo: bool = False,
):
    """Stages or starts runs of ``script``.

    ``run("train.py", "lr=[0.1,0.01]", stage=True)`` stages a two-trial sweep.
    Without ``stage`` the trials run one after another, as Guild runs them:
    in the background (a batch host process starts each in turn; this returns
    once the first one runs), or with ``foreground`` here, each trial's
    output streaming to ``stream`` (default ``sys.stdout``; with ``echo``
    the runs write straight to this process's stdout, as a terminal wants).
    Interrupting a foreground sweep stops the current trial and records the
    rest as never started. Returns a ``RunList`` (staged or started runs, or
    for ``dry_run`` the trials' flag dicts).
    """
    validate.script(script, op)
    validate.assignments(assignments)
    validate.flags(flags)
    validate.gpus(gpus)
    validate.text("label", label)
    for _name, _value in (("stage", stage), ("foreground", foreground), ("dry_run", dry_run), ("echo", echo)):
        validate.boolean(_name, _value)
    validate.count("max_trials", max_trials)
    validate.count("random_seed", random_seed)
    validate.store(store)
    validate.path("cwd", cwd)
    validate.stream(stream)
    gpus = parse_gpu_spec(gpus if gpus is None or isinstance(gpus, str) else ",".join(str(g) for g in gpus))
    op = op or ScriptOp.from_path(script, cwd)
    trials = plan_trials(op, assignments, flags, max_trials, random_seed)
    if dry_run:
        return [dict(op.defaults, **t) for t in trials]
    _warn_flags_shadowing_scalars(op)
    warn_unknown_gpus(gpus)
    st = resolve_store(store)
    st.ensure_writable()
    specs = [op.spec(t, gpus=gpus, label=label) for t in trials]
    if stage:
        return _with_listing_indices(st, transitions.create(st, specs, staged=True))
    # Claimed by this process until started, so no queue takes them.
    created = transitions.create(st, specs, staged=False)
    if foreground:
        runner = batch.TrialRunner(st, created, stream=None if echo else (stream or sys.stdout), echo=echo)
        return RunList(runner.run())
    if len(created) == 1:
        launch.start(created[0])
    else:
        batch.start_in_background(st, created)
    return RunList(r.refresh() for r in created)


def _with_listing_indices(st: Store, runs: list[Run]) -> RunList:
    """The runs newest first, numbered as ``runs`` (the full listing) numbers
    them, so an index means the same run in every listing."""
    wanted = {r.id for r in runs}
    places = [(i, r) for i, r in enumerate(st.runs(), 1) if r.id in wanted]
    return RunList([r for _, r in places], indices=[i for i, _ in places])


def warn_unknown_gpus(spec: str | None) -> None:
    """A GPU that NVML does not report is most likely a typo: warn (not an
    error: the run may be meant for another machine). Silent without NVML."""
    if not spec:
        return
    import warnings

    from .engine.gpus import default_probe
    from .engine.gpuspec import unknown_gpus
    from .errors import GuildJupyterWarning

    report = default_probe().read()
    if not report.gpus:
        return  # no NVIDIA GPU here (or NVML absent): nothing to check against
    missing = unknown_gpus(spec, report.gpus)
    if missing:
        known = ", ".join(str(g.index) for g in report.gpus)
        warnings.warn(f"GPU {', '.join(missing)} is not among the GPUs NVML reports on this machine ({known})",
                      GuildJupyterWarning, stacklevel=3)


def _warn_flags_shadowing_scalars(op: ScriptOp) -> None:
    """A flag named like a scalar the script prints (``loss = 2.0`` and
    ``print(f"loss: ...")``) hides that scalar, as in Guild: say so."""
    import warnings

    from .errors import GuildJupyterWarning
    from .execution.source_checks import printed_scalar_names

    try:
        printed = printed_scalar_names(op.source.decode("utf-8"))
    except UnicodeDecodeError:
        return
    shadowed = sorted((set(op.defaults) & printed) - {"step"})
    if shadowed:
        names = ", ".join(shadowed)
        warnings.warn(f"{op.name}: flag{'s' if len(shadowed) > 1 else ''} {names} also name{'' if len(shadowed) > 1 else 's'} "
                      f"scalar output ({shadowed[0]}: ...); like Guild, such lines are not recorded as scalars: "
                      f"rename the variable to keep them", GuildJupyterWarning, stacklevel=3)


def follow_output(run: Run, stream, done, interval: float = 0.02) -> None:
    """Copies a run's output to ``stream`` as it grows, until ``done()``."""
    batch.follow_output(run, stream, done, interval)


def runs(
    status=None,
    *,
    op: str | None = None,
    label: str | None = None,
    limit: int | None = None,
    store=None,
) -> RunList:
    """Runs newest first, filtered by status (one or several), op and label."""
    validate.statuses(status)
    validate.text("op", op)
    validate.text("label", label)
    validate.count("limit", limit)
    validate.store(store)
    if limit is not None and limit < 1:
        raise BadInput("-n must be at least 1")
    st = resolve_store(store)
    listing = st.runs(status=status, op=op, label=label, limit=limit)
    for r in listing:  # a run whose supervisor was killed: end what it left, record it
        if r.status == ERROR and control.settle_if_dead(st, r):
            r.refresh()
    return RunList(listing)


def _resolve_all(st: Store, refs, listing=None) -> list[Run]:
    """Runs by id, id prefix, listing index or index range (Guild's rules),
    each once, in the order named."""
    if isinstance(refs, (str, Run)):
        refs = [refs]
    out, seen = [], set()
    for ref in refs:
        for r in ([ref] if isinstance(ref, Run) else st.select([ref], listing)):
            if r.id not in seen:
                seen.add(r.id)
                out.append(r)
    return out


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
    run is killed and the outcome recorded. ``all``: every running or
    pending run and queue; ``queues``: every queue."""
    validate.run_refs(refs)
    for _name, _value in (("all", all), ("queues", queues), ("wait", wait)):
        validate.boolean(_name, _value)
    validate.seconds("timeout", timeout)
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    if all or queues:
        # A pending run without a claim of ours is Guild's (it is resolving
        # the run's dependencies): never ours to touch.
        targets = [r for r in st.runs(status=(RUNNING, PENDING)) if (all or r.is_queue)
                   and not (r.status == PENDING and transitions.read_claim(r) is None)]
    else:
        if not refs:
            raise BadInput("stop needs a run (id, id prefix or index), --all or --queues")
        targets = _resolve_all(st, refs, listing)
        for r in targets:
            if r.status in FINISHED and not control.is_dead_run(r):
                raise WrongState(f"run {r.id[:8]} is already {r.status}: nothing to stop")
            if r.status == PENDING and transitions.read_claim(r) is None:
                raise WrongState(f"run {r.id[:8]} is pending in Guild (being prepared, no claim of ours): "
                                 f"stop it with guild once it runs")
    stopped = RunList()
    for r in targets:
        control.begin_stop(st, r)
        stopped.append(r)
    if wait:
        control.finish_stop(st, stopped, timeout)
    st.notify_change()
    return RunList(r.refresh() for r in stopped)


def unstage(*refs, store=None, listing=None) -> RunList:
    validate.run_refs(refs, "unstage")
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    targets = _resolve_all(st, refs, listing)
    for r in targets:
        if r.status != STAGED:
            raise WrongState(f"run {r.id[:8]} is {r.status}, not staged")
    for r in targets:
        transitions.unstage(st, r)
    return RunList(targets)


def delete(*refs, store=None, listing=None) -> RunList:
    """Moves runs to Guild's trash; a staged run is unstaged first."""
    validate.run_refs(refs, "delete")
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    targets = _resolve_all(st, refs, listing)
    for r in targets:
        if r.status in (RUNNING, PENDING):
            raise WrongState(f"run {r.id[:8]} is {r.status}: stop it before deleting it")
    for r in targets:
        transitions.delete(st, r)
    import os

    trashed = [Run(os.path.join(st.home, "trash", "runs", r.id)) for r in targets]  # read where they are now
    return RunList(trashed, note=f"moved to Guild's trash ({os.path.join(st.home, 'trash', 'runs')}; "
                                 "`guild runs restore ID` brings a run back):")


def output(ref, tail: int | None = None, store=None, listing=None) -> str:
    validate.run_ref(ref)
    validate.count("tail", tail)
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    r = _resolve_all(st, [ref], listing)[0]
    if r.status == STAGED:
        raise WrongState(f"run {r.id[:8]} is staged: it has no output until a queue starts it")
    if tail is not None and tail < 0:
        raise BadInput("--tail must be a positive number of lines")
    from .store import output as outputlib

    path = r.path("output")
    if tail is not None:  # read backwards from the end: bounded memory
        return outputlib.decode(outputlib.tail(path, tail))
    return outputlib.decode(outputlib.read_from(path, whole_chars=False)[0])


# -- queues -------------------------------------------------------------------------

#: This process's queue handles (threads, the Jupyter server's queues): they
#: know the run they wait for before the store shows it.
queue_registry = QueueRegistry()


def queue(
    *assignments: str,
    gpus=None,
    wait_for_running=None,
    run_once=None,
    poll_interval=None,
    background: bool = False,
    store=None,
):
    """Starts a queue: a daemon thread in this process, or with ``background``
    a detached process that outlives it. ``queue("gpus=0", run_once=True)``.
    Returns a handle with ``.id``, ``.status``, ``.stop()`` and ``.join()``."""
    validate.assignments(assignments)
    validate.gpus(gpus)
    validate.yes_no("wait_for_running", wait_for_running)
    validate.yes_no("run_once", run_once)
    validate.poll_interval(poll_interval)
    validate.boolean("background", background)
    validate.store(store)
    from .engine.config import parse_queue_flags
    from .engine.hosts import DetachedQueue, ThreadQueue

    config = parse_queue_flags(
        assignments, gpus=gpus, wait_for_running=wait_for_running, run_once=run_once, poll_interval=poll_interval
    )
    warn_unknown_gpus(config.gpus)
    st = resolve_store(store)
    st.ensure_writable()
    if background:
        return DetachedQueue.start(st, config)
    q = ThreadQueue(st, config)
    queue_registry.register(q)
    return q


def queues(store=None, include_finished: bool = False):
    """Queues in the store: this process's threads, detached processes, queues
    in other kernels and Guild's own; running ones unless ``include_finished``."""
    validate.store(store)
    validate.boolean("include_finished", include_finished)
    from .display import QueueList
    from .engine.queue_status import list_queues

    return QueueList(list_queues(resolve_store(store).runs(), queue_registry.list(), include_finished))


# -- compare ------------------------------------------------------------------------


def compare(*refs, store=None, listing=None, status=None):
    """Flags and last scalar values per run (default: every non-queue run)."""
    validate.run_refs(refs)
    validate.store(store)
    validate.listing(listing)
    validate.statuses(status)
    from .display import CompareTable

    st = resolve_store(store)
    targets = _resolve_all(st, refs, listing) if refs else [r for r in st.runs(status=status) if not r.is_queue]
    return CompareTable.build(targets)


# -- for the front ends (CLI, magics, completion) ----------------------------------------------


def serve_queue(*assignments: str, echo=None, on_start=None, store=None) -> int:
    """Runs a queue in the calling thread until it ends or a stop signal
    (SIGINT, SIGHUP, SIGTERM) comes, as ``guild run queue`` does: this
    process holds the queue run, its log also goes to ``echo``. Calls
    ``on_start(queue_id)`` once the signals are handled. Returns the queue
    run's exit status: 0 done, -N stopped by signal N, else failed."""
    validate.assignments(assignments)
    validate.stream(echo)
    validate.store(store)
    from .engine.config import parse_queue_flags
    from .engine.hosts import ForegroundQueue

    config = parse_queue_flags(assignments)
    warn_unknown_gpus(config.gpus)
    st = resolve_store(store)
    st.ensure_writable()
    q = ForegroundQueue(st, config, echo=echo)
    return q.serve(ready=None if on_start is None else (lambda: on_start(q.id)))


def cell_op(source: str, name: str, cwd: str | None = None) -> ScriptOp:
    """A notebook cell's body as an operation named ``name`` (a ``.py`` file
    name) in ``cwd``, for ``run(name, op=...)``. Refuses an empty cell and
    one that uses names defined outside it (a run starts in a fresh
    process), before anything is written."""
    import os

    from .execution.source_checks import free_names

    validate.text("source", source, optional=False)
    validate.text("name", name, optional=False)
    validate.path("cwd", cwd)
    if not source.strip():
        raise BadInput("the cell is empty: there is nothing to run")
    if not source.endswith("\n"):
        source += "\n"
    free = free_names(source)
    if free:
        shown = ", ".join(free[:8]) + (f" (and {len(free) - 8} more)" if len(free) > 8 else "")
        raise BadInput(f"the cell uses {shown}, defined outside it: a run starts in a fresh process, "
                       f"so define or import {'them' if len(free) > 1 else 'it'} in the cell")
    return ScriptOp(cwd or os.getcwd(), name, source.encode("utf-8"), kind="cell")


def listing_refs(refs, listing) -> list[str]:
    """Run references with indices and ranges (``3``, ``2:4``) into
    ``listing`` (a run list shown earlier) made full ids, each checked to
    still exist; ids, prefixes and numbers outside the listing are kept as
    they are (Guild reads those as id prefixes)."""
    import os

    from .store.store import parse_index_range

    if listing is None:
        return list(refs)
    out = []
    for ref in refs:
        span = parse_index_range(ref) if isinstance(ref, str) else None
        if span is not None and span[0] >= 0 and (span[1] is None or span[1] <= len(listing)):
            for i, r in enumerate(listing[span[0]:span[1]], span[0] + 1):
                if not os.path.isdir(r.dir):
                    raise BadInput(f"run {r.id[:8]} (index {i} of the latest listing) no longer exists")
                out.append(r.id)
        else:
            out.append(ref)
    return out


def store_home(store=None) -> str:
    """The Guild home ``store`` names (see ``resolve_store``)."""
    return resolve_store(store).home


def flag_names(script: str | None = None, cwd: str | None = None, source: str | None = None) -> list[str]:
    """The flags of a script (a path, relative to ``cwd``) or of ``source``
    (a cell body), in the script's order; raises ``ScriptError`` when it
    cannot be read or parsed."""
    if source is not None:
        from .execution import flags as flaglib

        return list(flaglib.inspect_script(source, "<cell>").defaults)
    validate.script(script, None)
    return list(ScriptOp.from_path(script, cwd).defaults)


# -- for the live viewers (panel, /guild page, REST) -------------------------------------------


def monitor(store=None, probe=None, page_size: int | None = None):
    """A ``StoreMonitor``: snapshots of what the store is doing (counts, queues,
    runs by group with waiting reasons, GPUs) as plain data, for the panel,
    the ``/guild`` page and the REST API. ``probe``: the GPU probe (default
    NVML, or the fake GPUs of ``$GUILD_JUPYTER_FAKE_GPUS``)."""
    validate.store(store)
    from .monitor import DEFAULT_PAGE_SIZE, StoreMonitor

    return StoreMonitor(resolve_store(store), probe=probe, page_size=page_size or DEFAULT_PAGE_SIZE,
                        handles=queue_registry.list)


def host_queue(host: str, *assignments: str, gpus=None, wait_for_running=None, run_once=None, poll_interval=None,
               store=None):
    """Starts a queue on a thread of this process recorded as hosted by
    ``host`` (the Jupyter server's queues: ``"server"``), registered in
    ``queue_registry``. Options as ``queue()``. Returns the ``QueueHost``."""
    validate.text("host", host, optional=False)
    validate.assignments(assignments)
    validate.gpus(gpus)
    validate.yes_no("wait_for_running", wait_for_running)
    validate.yes_no("run_once", run_once)
    validate.poll_interval(poll_interval)
    validate.store(store)
    from .engine.config import parse_queue_flags
    from .engine.hosts import ThreadQueue

    config = parse_queue_flags(
        assignments, gpus=gpus, wait_for_running=wait_for_running, run_once=run_once, poll_interval=poll_interval
    )
    warn_unknown_gpus(config.gpus)
    st = resolve_store(store)
    st.ensure_writable()
    q = ThreadQueue(st, config, host=host)
    queue_registry.register(q)
    return q


def output_from(ref, offset: int = 0, limit: int | None = None, store=None) -> tuple[str, int]:
    """A run's output from byte ``offset`` (at most ``limit`` bytes, a cut
    character kept for the next read) and the offset to read from next: how
    a viewer follows a live run."""
    validate.run_ref(ref)
    validate.count("offset", offset)
    validate.count("limit", limit)
    validate.store(store)
    st = resolve_store(store)
    r = _resolve_all(st, [ref])[0]
    if r.status == STAGED:
        raise WrongState(f"run {r.id[:8]} is staged: it has no output until a queue starts it")
    from .store import output as outputlib

    data, offset = outputlib.read_from(r.path("output"), offset, limit)
    return outputlib.decode(data), offset


# -- waiting on conditions (notebooks and tests: never sleep-and-hope) ---------------------------


def wait_until(condition, timeout: float = 60.0, interval: float = 0.1, what: str = "the condition"):
    """Calls ``condition()`` every ``interval`` seconds until it returns a
    truthy value, and returns that value; past ``timeout`` raises
    ``WaitTimeout`` (a ``TimeoutError``) naming ``what``."""
    import time

    if not callable(condition):
        raise BadInput(f"wait_until needs a callable, not {type(condition).__name__}")
    validate.seconds("timeout", timeout)
    validate.seconds("interval", interval)
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            from .errors import WaitTimeout

            raise WaitTimeout(what, timeout)
        time.sleep(interval)


def wait(*refs, status=None, timeout: float = 60.0, interval: float = 0.1, store=None) -> RunList:
    """Waits until every run named (ids, prefixes, ``Run`` objects or run
    lists) has one of ``status`` (a status or several, ``unstaged``
    included; default: any finished status) and returns them, fresh.
    ``wait(run, status="running")`` returns once the run has started."""
    from .views import UNSTAGED, status_of

    named = []
    for ref in refs:
        named.extend(ref if isinstance(ref, list) else [ref])
    validate.run_refs(named, "wait")
    wanted = set(FINISHED) | {UNSTAGED} if status is None else ({status} if isinstance(status, str) else set(status))
    st = resolve_store(store)
    targets = _resolve_all(st, named)

    def reached():
        return all(status_of(r.refresh()) in wanted or r.status in wanted for r in targets)

    shown = ", ".join(r.id[:8] for r in targets[:4]) + (" ..." if len(targets) > 4 else "")
    wait_until(reached, timeout, interval, what=f"run{'s' if len(targets) > 1 else ''} {shown} to be "
                                                 f"{' or '.join(sorted(wanted))}")
    return RunList(targets)
