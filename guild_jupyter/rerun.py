"""A run as an operation again: what a copy of it (the retry of a failed
run, a restage with edited flags) is made of.

A copy runs the code the original ran, not the project's current files: its
operation is built from the original's source snapshot, with the original's
user flags (edited ones replaced), the GPUs it asked for (pinned ones, or
``auto:N``) and label. GPUs a queue gave an unpinned run are not pinned on
the copy.
"""

from __future__ import annotations

from .errors import BadInput
from .notebook_op import NotebookOp
from .opdef import ScriptOp, collect_sources
from .store.notebooks import is_notebook, notebook_snapshot
from .store.records import AFTER, AFTER_FAILURE, PRIORITY, after_record, priority_of, read_after, requested_gpus
from .store.run import Run
from .store.new_run import RunSpec


def script_op_of(run: Run) -> ScriptOp:
    """The operation ``run`` ran, from its source snapshot. Raises
    ``BadInput`` for a Guild operation or a run without its script."""
    kind, project_dir, _ver, _model, name = run.opref
    if run.is_queue:
        raise BadInput(f"run {run.id[:8]} is a queue: start a new queue instead")
    if kind != "script" or not name:
        raise BadInput(f"run {run.id[:8]} is a Guild operation ({run.op_name}): only runs of scripts and cells "
                       f"can be copied (use guild run --restart)")
    sources = collect_sources(run.dir)  # the snapshot, by the rule that copied it there
    if is_notebook(name):  # collect_sources gathers Python files only
        notebook = notebook_snapshot(run.dir, name)
        if notebook is not None:
            sources[name] = notebook
    if name not in sources:
        raise BadInput(f"run {run.id[:8]} lacks its script {name} in its directory: it cannot be copied")
    if is_notebook(name):
        op = NotebookOp(project_dir, name, sources[name])
    else:
        info = run.get("guild_jupyter")
        op_kind = info.get("kind") if isinstance(info, dict) and info.get("kind") in ("script", "cell") else "script"
        op = ScriptOp(project_dir, name, sources[name], kind=op_kind)
    op._sources = sources  # the snapshot, never the project's current files
    return op


def pinned_gpus(run: Run) -> str | None:
    """The GPUs the run asked for when staged (pinned ``0,1`` or ``auto:2``),
    not those a queue gave it."""
    return requested_gpus(run)


def user_flags(run: Run) -> dict:
    v = run.get("user_flags")
    return dict(v) if isinstance(v, dict) else {}


def user_label(run: Run) -> str | None:
    """The label the user gave (None: the flags make it, as for a new run)."""
    params = run.get("run_params")
    label = params.get("label") if isinstance(params, dict) else None
    return label if isinstance(label, str) and label else None


def copy_spec(run: Run, op: ScriptOp, flags: dict, extra_attrs: dict | None = None) -> RunSpec:
    """The spec of a copy of ``run`` with user flags ``flags``. The copy
    keeps the original's ``retries`` (how often a queue retries it) and
    priority (an urgent run's retry is as urgent) and its ``sweep`` (a
    retry or restage belongs to the sweep of what it copies); not what it
    waited for (a copy is staged anew: ``--after`` again), but see
    ``retry_spec``."""
    extra = {}
    retries = run.get("retries")
    if isinstance(retries, int) and not isinstance(retries, bool):
        extra["retries"] = retries
    priority = priority_of(run.get(PRIORITY))
    if priority:
        extra[PRIORITY] = priority
    if run.sweep is not None:
        extra["sweep"] = run.sweep
    extra.update(extra_attrs or {})
    return op.spec(flags, gpus=pinned_gpus(run), label=user_label(run), extra_attrs=extra)


def retry_spec(run: Run, attempt: int, allowed: int | None = None) -> RunSpec:
    """The spec of the copy that retries ``run``'s failure: attempt
    ``attempt`` of ``allowed`` (None: no bound set, as for a retry the user
    asked for, ``api.retry``), naming the run it retries and the chain's
    origin, with the same user flags, GPUs asked for and label. What
    ``transitions`` calls (as ``retry``) to stage it, whoever settles the
    failure.

    A run that never started because a dependency failed (``after_failure``)
    waits again for the same dependencies: its retry is held after them,
    each followed to its own retry (``store.dependencies``), so that
    retrying the failed dependency and then this run reruns the pipeline.
    """
    op = script_op_of(run)
    origin = run.get("retry_origin") if attempt > 1 else None
    extra = {"retry_of": run.id, "retry_attempt": attempt, "retry_origin": origin or run.id}
    if allowed is not None:
        extra["retries"] = allowed
    deps = read_after(run)
    if isinstance(run.get(AFTER_FAILURE), str) and isinstance(deps, list) and deps:
        extra[AFTER] = after_record(deps)
    return copy_spec(run, op, user_flags(run), extra)


def next_attempt(run: Run) -> int:
    """The attempt number a retry of ``run`` gets (1 for a first failure)."""
    attempt = run.get("retry_attempt")
    return (attempt if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt > 0 else 0) + 1
