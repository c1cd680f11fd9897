"""Staging and starting runs: ``run`` and the warnings it gives."""

from __future__ import annotations

import sys

from .. import validate
from ..errors import BadInput, GuildJupyterWarning
from ..gpus.spec import is_auto, parse_run_gpus, unknown_gpus
from ..execution import batch, launch
from ..opdef import ScriptOp
from ..display import RunList, Trials
from ..store import transitions
from ..store.new_run import new_sweep_id
from ..store.records import PRIORITY
from .conflicts import refuse_conflicts
from .pipelines import after_refs, check_staging_options, resolve_after
from .planning import operation, plan_trials
from .selection import with_listing_indices, resolve_store


#: The sweep of the newest ``run`` call of this process, per Guild home
#: (what ``sweep_view()`` shows by default).
LAST_SWEEP: dict[str, str] = {}


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
    retries: int | None = None,
    priority: int | None = None,
    after=None,
    after_any=None,
):
    """Stages or starts runs of ``script`` (a Python script or a notebook).

    ``run("train.py", "lr=[0.1,0.01]", stage=True)`` stages a two-trial sweep.
    Without ``stage`` the trials run one after another, as Guild runs them:
    in the background (a batch host process starts each in turn; this returns
    once the first one runs), or with ``foreground`` here, each trial's
    output streaming to ``stream`` (default ``sys.stdout``; with ``echo``
    the runs write straight to this process's stdout, as a terminal wants).
    Interrupting a foreground sweep stops the current trial and records the
    rest as never started. The runs of one call share a ``sweep`` attr (a
    new sweep id: ``s`` + 8 hex), which retries and restages keep. Returns a ``RunList`` (staged or started runs), or
    for ``dry_run`` the ``Trials`` (a list of each trial's flag dict). ``retries`` (with ``stage``):
    how often a queue stages a failed run again (recorded in the run).
    ``priority`` (with ``stage``; -1000 to 1000, default 0): our queues
    start the highest priority first, then the oldest. ``after`` and
    ``after_any`` (with ``stage``): run references, listing ranges or sweep
    ids the staged runs wait for (``api.pipelines``): held until those
    have completed (``after_any``: ended, whatever the outcome), and
    recorded ``error`` if one of ``after`` fails or is deleted.
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
    validate.count("retries", retries, 0)
    after, after_any = after_refs(after), after_refs(after_any)
    refuse_conflicts("run", foreground=foreground, stage=stage, dry_run=dry_run, after=after, after_any=after_any,
                     priority=priority)
    if retries is not None and not (stage or dry_run):
        raise BadInput("retries apply to runs a queue starts: stage the runs (--stage) to give them retries")
    check_staging_options("run", stage or dry_run, priority, after, after_any)
    validate.store(store)
    validate.path("cwd", cwd)
    validate.stream(stream)
    gpus = parse_run_gpus(gpus if gpus is None or isinstance(gpus, str) else ",".join(str(g) for g in gpus))
    if is_auto(gpus) and not stage and not dry_run:
        raise BadInput(f"--gpus {gpus} needs --stage: a queue with gpus=auto chooses the GPUs when it starts the run")
    op = op or operation(script, cwd)
    trials = plan_trials(op, assignments, flags, max_trials, random_seed)
    waits = resolve_after(resolve_store(store), after, after_any) if after or after_any else None
    if dry_run:
        return Trials(dict(op.defaults, **t) for t in trials)
    _warn_flags_shadowing_scalars(op)
    warn_unknown_gpus(gpus)
    st = resolve_store(store)
    st.ensure_writable()
    # One sweep id for the runs of this call (a single run is a sweep of one).
    extra = {"sweep": new_sweep_id()}
    if retries is not None:
        extra["retries"] = retries
    if priority is not None:
        extra[PRIORITY] = priority
    specs = [op.spec(t, gpus=gpus, label=label, extra_attrs=dict(extra)) for t in trials]
    if stage:
        created = transitions.create(st, specs, staged=True, after=waits)
        LAST_SWEEP[st.home] = extra["sweep"]
        return with_listing_indices(st, created)
    # Claimed by this process until started, so no queue takes them.
    created = transitions.create(st, specs, staged=False)
    LAST_SWEEP[st.home] = extra["sweep"]
    if foreground:
        runner = batch.TrialRunner(st, created, stream=None if echo else (stream or sys.stdout), echo=echo)
        return RunList(runner.run(), store=st)
    if len(created) == 1:
        launch.start(created[0])
    else:
        batch.start_in_background(st, created)
    return RunList([r.refresh() for r in created], store=st)


def warn_unknown_gpus(spec: str | None) -> None:
    """A GPU that NVML does not report is most likely a typo: warn (not an
    error: the run may be meant for another machine). Silent without NVML."""
    if not spec or is_auto(spec):  # auto: chosen by a queue from the GPUs NVML reports
        return
    import warnings

    from ..gpus.nvml import default_probe  # lazy: NVML's probe loads only when a run names GPUs

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
    try:
        source = op.code_text()
    except UnicodeDecodeError:
        return
    # Cheap first: tokenizing (and importing tokenize) costs milliseconds on
    # every run's path; only a flag name followed by ':' somewhere can matter.
    if not any(f"{name}:" in source for name in op.defaults if name != "step"):
        return
    import warnings

    from ..execution.source_checks import printed_scalar_names  # lazy: see above

    printed = printed_scalar_names(source)
    shadowed = sorted((set(op.defaults) & printed) - {"step"})
    if shadowed:
        names = ", ".join(shadowed)
        warnings.warn(f"{op.name}: flag{'s' if len(shadowed) > 1 else ''} {names} also name{'' if len(shadowed) > 1 else 's'} "
                      f"scalar output ({shadowed[0]}: ...); like Guild, such lines are not recorded as scalars: "
                      f"rename the variable to keep them", GuildJupyterWarning, stacklevel=3)
