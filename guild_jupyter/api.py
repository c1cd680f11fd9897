"""The plain Python API: the one façade every front end (magics, panel, CLI,
server) calls. Nothing here imports IPython, ipywidgets or tornado."""

from __future__ import annotations

import os
import signal
import sys
import time

from . import sweeps as sweeplib
from .engine.gpuspec import parse_gpu_spec
from .errors import BadInput, FlagError, SweepError, WrongState
from .execution import launch
from .opdef import ScriptOp
from .runlist import RunList
from .store import attrs as attrlib
from .store.run import FINISHED, PENDING, PENDING_MARKER, RUNNING, STAGED, STAGED_MARKER, Run, now_us
from .store.store import Store

__all__ = ["Store", "run", "runs", "stop", "unstage", "delete", "output", "resolve_store", "plan_trials"]


def resolve_store(store=None) -> Store:
    """Store location: explicit path (or Store) > $GUILD_HOME > ~/.guild."""
    if isinstance(store, Store):
        return store
    return Store(store)


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
    return sweeplib.expand(specs, max_trials=max_trials, random_seed=random_seed)


def _raw_value(assignments, name):
    for a in assignments:
        k, _, v = a.partition("=")
        if k.strip() == name:
            return v
    return ""


def _list_flag_spec(name, text):
    """A flag whose default is a list takes a list value: ``[1,2]`` is one
    value, ``[[1,2],[3]]`` a sweep over two lists."""
    import yaml

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
    _pending: bool = False,
):
    """Stages or starts runs of ``script``.

    ``run("train.py", "lr=[0.1,0.01]", stage=True)`` stages a two-trial sweep.
    Returns a ``RunList`` (staged or started runs, or for ``dry_run`` the
    trials' flag dicts). ``foreground`` waits for each run, streaming its
    output to ``stream`` (default: ``sys.stdout``).
    """
    gpus = parse_gpu_spec(gpus if gpus is None or isinstance(gpus, str) else ",".join(str(g) for g in gpus))
    op = op or ScriptOp.from_path(script, cwd)
    trials = plan_trials(op, assignments, flags, max_trials, random_seed)
    if dry_run:
        return [dict(op.defaults, **t) for t in trials]
    st = resolve_store(store)
    st.ensure_writable()
    specs = [op.spec(t, gpus=gpus, label=label) for t in trials]
    created = st.create_runs(specs, staged=stage)
    if stage or _pending:  # _pending: the caller starts them itself
        return RunList(created)
    started = RunList()
    for r in created:
        if foreground:
            started.append(_run_foreground(r, stream))
        else:
            launch.start(r)
            started.append(r.refresh())
    return started


def _run_foreground(run: Run, stream=None) -> Run:
    """Starts the run and follows its output until it ends."""
    stream = stream or sys.stdout
    proc = launch.start(run)
    follow_output(run, stream, lambda: proc.poll() is not None)
    proc.wait()
    return run.refresh()


def follow_output(run: Run, stream, done, interval: float = 0.02) -> None:
    path = run.path("output")
    pos = 0
    finished_seen = False
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data:
            pos += len(data)
            stream.write(data.decode("utf-8", errors="replace"))
            if hasattr(stream, "flush"):
                stream.flush()
            continue
        if finished_seen:
            return
        if done():
            finished_seen = True  # one more read picks up the last bytes
            continue
        time.sleep(interval)


def runs(
    status=None,
    *,
    op: str | None = None,
    label: str | None = None,
    limit: int | None = None,
    store=None,
) -> RunList:
    """Runs newest first, filtered by status (one or several), op and label."""
    if limit is not None and limit < 1:
        raise BadInput("-n must be at least 1")
    return RunList(resolve_store(store).runs(status=status, op=op, label=label, limit=limit))


def _resolve_all(st: Store, refs, listing=None) -> list[Run]:
    if isinstance(refs, (str, Run)):
        refs = [refs]
    out = []
    for ref in refs:
        r = ref if isinstance(ref, Run) else st.resolve(ref, listing)
        if r.id not in {x.id for x in out}:
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
    """Stops running runs (SIGTERM to the supervisor, which kills the run's
    process group after its grace period), and removes staged ones from the
    queue. ``all``: every running run and queue; ``queues``: every queue."""
    st = resolve_store(store)
    if all or queues:
        targets = [r for r in st.runs(status=(RUNNING, PENDING)) if all or r.is_queue]
    else:
        if not refs:
            raise BadInput("stop needs a run (id, id prefix or index), --all or --queues")
        targets = _resolve_all(st, refs, listing)
        for r in targets:
            if r.status in FINISHED:
                raise WrongState(f"run {r.id[:8]} is already {r.status}: nothing to stop")
    stopped = RunList()
    for r in targets:
        status = r.refresh().status
        if status == STAGED:
            st.unstage(r)
        elif status == PENDING:
            _stop_pending(st, r)
        elif status == RUNNING:
            _signal_run(r, signal.SIGTERM)
        stopped.append(r)
    if wait:
        grace = float(os.environ.get("GUILD_JUPYTER_STOP_GRACE", "10"))
        deadline = time.monotonic() + (timeout if timeout is not None else grace + 10)
        for r in stopped:
            while r.refresh().status == RUNNING and time.monotonic() < deadline:
                time.sleep(0.02)
            if r.status == RUNNING:
                _signal_run(r, signal.SIGKILL)
    st.notify_change()
    return RunList(r.refresh() for r in stopped)


def _stop_pending(st: Store, r: Run) -> None:
    with st.lock():
        r.refresh()
        if r.status == PENDING:
            r.write_attr("exit_status", -15)
            r.write_attr("stopped", now_us())
            attrlib.remove(r.path(PENDING_MARKER))
            attrlib.remove(r.path(STAGED_MARKER))
            return
    if r.refresh().status == RUNNING:
        _signal_run(r, signal.SIGTERM)


def _signal_run(r: Run, sig) -> None:
    pid = r.lock_pid()
    if pid is None or not r.lock_pid_alive():
        return
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def unstage(*refs, store=None, listing=None) -> RunList:
    st = resolve_store(store)
    targets = _resolve_all(st, refs, listing)
    for r in targets:
        if r.status != STAGED:
            raise WrongState(f"run {r.id[:8]} is {r.status}, not staged")
    for r in targets:
        st.unstage(r)
    return RunList(targets)


def delete(*refs, store=None, listing=None) -> RunList:
    st = resolve_store(store)
    targets = _resolve_all(st, refs, listing)
    for r in targets:
        if r.status in (RUNNING, PENDING):
            raise WrongState(f"run {r.id[:8]} is {r.status}: stop it before deleting it")
    for r in targets:
        st.delete(r)
    return RunList(targets)


def output(ref, tail: int | None = None, store=None, listing=None) -> str:
    st = resolve_store(store)
    r = _resolve_all(st, [ref], listing)[0]
    if r.status == STAGED:
        raise WrongState(f"run {r.id[:8]} is staged: it has no output until a queue starts it")
    if tail is not None and tail < 0:
        raise BadInput("--tail must be a positive number of lines")
    try:
        with open(r.path("output"), "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        text = ""
    if tail is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail:]) if tail else ""
    return text


# -- queues -------------------------------------------------------------------------

_thread_queues: list = []


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
    from .engine.queue import DetachedQueue, ThreadQueue, parse_queue_flags

    config = parse_queue_flags(
        assignments, gpus=gpus, wait_for_running=wait_for_running, run_once=run_once, poll_interval=poll_interval
    )
    st = resolve_store(store)
    st.ensure_writable()
    if background:
        return DetachedQueue.start(st, config)
    q = ThreadQueue(st, config)
    _thread_queues.append(q)
    return q


def queues(store=None, include_finished: bool = False):
    """Queues in the store: this process's threads, detached processes, queues
    in other kernels and Guild's own; running ones unless ``include_finished``."""
    from .queues_view import list_queues

    return list_queues(resolve_store(store), _thread_queues, include_finished)


# -- compare ------------------------------------------------------------------------


def compare(*refs, store=None, listing=None, status=None):
    """Flags and last scalar values per run (default: every non-queue run)."""
    from .compare_table import CompareTable

    st = resolve_store(store)
    targets = _resolve_all(st, refs, listing) if refs else [r for r in st.runs(status=status) if not r.is_queue]
    return CompareTable.build(targets)
