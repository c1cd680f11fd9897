"""A run as every front end shows it: ``run_row`` (the panel, the page, the
sidebar, REST) and ``listing_row`` (a line of a run list).

Times follow the order a list is in: runs listed by start (Guild's order,
the running group) show when they started; finished runs, listed most
recently ended first, show when they ended; staged runs show when they were
staged. A run taken off the queue before it started reads ``unstaged`` and
has no elapsed time.

The words of a run's end: a run the user stopped (``api.stop``, from any
front end: the stop records ``stopped_by``) reads ``stopped by you``; a
run ended by a signal from anything else (``guild stop``, a ``kill``)
reads ``terminated``; a failed one ``error (exit 1)``. Never a bare exit
status.
"""

from __future__ import annotations

import math
import os
import time

from ..store.scalars import reader as scalarlib
from ..store.notebooks import executed_notebook
from ..store.records import AFTER, AFTER_FAILURE, PRIORITY, is_held, priority_of, read_after
from ..store.run import COMPLETED, ERROR, FINISHED, PENDING, RUNNING, STAGED, STATUSES, TERMINATED
from ..store.store import Store
from .actions import run_actions
from .words import (elapsed_text, flags_text, format_time, gpus_text, jsonable, label_text, position_text,
                    priority_text, scalar_text)

__all__ = ["UNSTAGED", "DISPLAY_STATUSES", "TIME_KINDS", "STOPPED_BY_YOU", "SPARK_WIDTH", "SPARK_HEIGHT",
           "SPARK_POINTS", "status_of", "status_text", "outcome_text", "retry_text", "stopped_by_user", "main_scalar",
           "spark_points", "run_row", "listing_row", "place_in_line", "run_words", "notebook_tree_path",
           "held_words", "priority_of_run", "after_ids", "staged_places"]

#: How a run removed from the queue before it ever started is shown (Guild
#: lists it ``terminated``; it has no start time and no elapsed time).
UNSTAGED = "unstaged"
#: Every status a person may read, in the order lists and counts show them.
DISPLAY_STATUSES = STATUSES + (UNSTAGED,)
#: What the time of a row means: ``started``, ``ended`` or ``staged``.
TIME_KINDS = ("started", "ended", "staged")
#: A run ended by the user's own stop (any front end).
STOPPED_BY_YOU = "stopped by you"

#: Values of the main scalar a row carries for its sparkline, oldest first.
SPARK_POINTS = scalarlib.RECENT
#: The box ``spark_points`` draws in (an SVG viewBox ``0 0 64 16``).
SPARK_WIDTH = 64
SPARK_HEIGHT = 16


def status_of(run) -> str:
    """The status a person reads: Guild's, except that a run taken off the
    queue before it started (unstaged, or a sweep's trial never reached)
    reads ``unstaged``: Guild and the attrs say terminated, and its
    ``started`` is only the staging time Guild orders staged runs by."""
    st = run.status
    if st == TERMINATED and run.get("unstaged") is True:
        return UNSTAGED
    return st


def stopped_by_user(run) -> bool:
    """Whether the run's stop came from the user (``api.stop`` records it)."""
    return run.get("stopped_by") == "user"


def _exit_of(run):
    es = run.exit_status
    return es if isinstance(es, int) and not isinstance(es, bool) else None


def status_text(run, status: str | None = None) -> str:
    """``running``, ``completed``, ``error (exit 1)``, ``stopped by you``,
    ``terminated``, ``unstaged``, ..."""
    status = status or status_of(run)
    if status == ERROR:
        es = _exit_of(run)
        return f"error (exit {es})" if es not in (None, 0) else "error"
    if status == TERMINATED and stopped_by_user(run):
        return STOPPED_BY_YOU
    return status


def outcome_text(run, status: str | None = None, elapsed: float | None = None) -> str:
    """How a finished run ended, in one phrase: ``completed in 3m07s``,
    ``failed after 12s (exit 1)``, ``stopped by you after 40s``,
    ``terminated after 5s``, ``unstaged: it never started``; empty for a
    run that has not ended."""
    status = status or status_of(run)
    took = f" after {elapsed_text(elapsed)}" if elapsed is not None else ""
    if status == COMPLETED:
        return f"completed in {elapsed_text(elapsed)}" if elapsed is not None else "completed"
    if status == ERROR:
        es = _exit_of(run)
        why = f" (exit {es})" if es not in (None, 0) else ""
        failed_after = run.get(AFTER_FAILURE)
        if isinstance(failed_after, str) and failed_after:  # held, and a dependency failed: it never started
            return f"not started: {failed_after}"
        if run.started is None:
            return f"failed before it started{why}"
        return f"failed{took}{why}"
    if status == TERMINATED:
        return (STOPPED_BY_YOU if stopped_by_user(run) else "terminated") + took
    if status == UNSTAGED:
        return "unstaged: it never started"
    return ""


def _count(v):
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def retry_text(run) -> str:
    """``retry 2/3 of ab12cd34``: the run is the 2nd retry of ab12cd34, which
    may be retried 3 times (``retry 2 of ab12cd34`` when no bound was
    set); empty for a run that is no retry."""
    attempt = _count(run.get("retry_attempt"))
    origin = run.get("retry_origin") or run.get("retry_of")
    if attempt is None or not isinstance(origin, str) or not origin:
        return ""
    allowed = _count(run.get("retries"))
    of = f"{attempt}/{allowed}" if allowed is not None and allowed >= attempt else str(attempt)
    return f"retry {of} of {origin[:8]}"


# -- scalars ------------------------------------------------------------------------------


def main_scalar(run, scalar: str | None = None, spark: bool = True) -> tuple[dict | None, list]:
    """(``{"tag", "value", "step"}`` or None, recent values) of the scalar a
    row shows: ``scalar`` when given, else ``loss``, else the first scalar
    the run logged. Read through the shared incremental cache, so a row
    costs a few stats once its files were read. ``spark=False``: no recent
    values (a line of text shows none)."""
    run_dir = getattr(run, "dir", None)
    if not run_dir:
        return None, []
    rs = scalarlib.read(run_dir)
    tag = scalarlib.main_tag(rs, scalar)
    if tag is None:
        return None, []
    step, value = rs.last[tag]
    return ({"tag": tag, "value": jsonable(value), "step": step},
            [jsonable(v) for v in rs.recent(tag)] if spark else [])


def _num(x: float) -> str:
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def spark_points(values, width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """SVG polyline points of ``values`` (oldest first) in a ``width`` x
    ``height`` box, one pixel of margin: the highest value at the top, the
    lowest at the bottom, a flat series at mid-height. Empty with fewer
    than two finite values. Every front end draws exactly these."""
    pts = [float(v) for v in values or () if isinstance(v, (int, float)) and not isinstance(v, bool)
           and math.isfinite(v)]
    if len(pts) < 2:
        return ""
    lo, hi = min(pts), max(pts)
    step = (width - 2) / (len(pts) - 1)
    if hi == lo:
        ys = [height / 2] * len(pts)
    else:
        ys = [height - 1 - (v - lo) / (hi - lo) * (height - 2) for v in pts]
    return " ".join(f"{_num(1 + i * step)},{_num(y)}" for i, y in enumerate(ys))


# -- priorities and dependencies ----------------------------------------------------------


def priority_of_run(run) -> int:
    """The run's priority (0 unless it has one in range)."""
    return priority_of(run.get(PRIORITY))


def held_words(run, known=None) -> tuple[str, list]:
    """For a run held for its dependencies: why it waits, one line (``after
    1a2b3c4d (running)``; a dependency that failed: ``dependency 1a2b3c4d
    failed: it will not start``), and its dependencies as plain data
    (``{"id", "short_id", "state", "any"}``, each followed to its retry).
    Reads their run directories (but what ``known``, a listing's lookup,
    knows: ``store.dependencies.dependency_state``); settles nothing (a
    queue does)."""
    # lazy: the dependency rules load with the first held run a view words, not with every listing
    from ..queueing import policy
    from ..store.dependencies import dependency_states

    store = Store(os.path.dirname(os.path.dirname(run.dir)))
    states = dependency_states(store, run, known=known)
    if not isinstance(states, list):
        return "its dependency record cannot be read: it will not start", []
    deps = [{"id": i, "short_id": i[:8], "state": st, "any": a} for i, st, a in states]
    verdict = policy.after_verdict([policy.Dependency(i, st, a) for i, st, a in states])
    if verdict.kind == "failed":
        return f"{verdict.reason}: it will not start", deps
    if verdict.kind == "ready":
        return "its dependencies completed: staged by the next queue that looks", deps
    return policy.after_text(verdict.waiting), deps


def after_ids(run) -> list:
    """The runs ``run``'s dependency record names, ``{"id", "short_id", "any"}`` each."""
    if run.get(AFTER) is None and not run.warnings:  # no record (a listed run knows: no file looked for)
        return []
    deps = read_after(run)
    return [{"id": i, "short_id": i[:8], "any": a} for i, a in deps] if isinstance(deps, list) else []


# -- rows ---------------------------------------------------------------------------------


def _is_script(run) -> bool:
    try:
        return run.opref[0] == "script"
    except Exception:  # noqa: BLE001 - an unreadable opref: nothing to re-run
        return False


def _sweep(run):
    """The run's sweep id (None: none; anything with a Run's attributes)."""
    return getattr(run, "sweep", None)


def run_words(run, status: str, elapsed: float | None = None) -> dict:
    """The phrases of a run that do not depend on the list it is in."""
    return {"status_text": status_text(run, status), "outcome_text": outcome_text(run, status, elapsed),
            "retry_text": retry_text(run)}


def run_row(run, *, now_us: int | None = None, varying=(), order: str = "started", short_time: bool = False,
            scalar: str | None = None, scalar_values=None, known=None) -> dict:
    """One run as plain data, for every front end.

    ``run``: a ``Run`` (or anything with its attributes). ``varying``: the
    flags that vary in the list it is shown in (they come first in
    ``flags_text`` and are named in ``varying``; they lead the row's
    ``title``). ``order``: what the list is ordered by, which decides the
    time shown: ``started`` (Guild's order) or ``ended`` (finished runs,
    most recently ended first; an unstaged run ended when it was taken off
    the queue). Otherwise staged, pending (claimed, not started yet) and
    unstaged runs show when they were staged. ``position`` and ``waiting``
    are set by the list that knows them (``place_in_line``).
    ``scalar_values``: ``(scalar, recent values)`` as ``main_scalar`` gives
    them, when the caller read them already (a sweep's table, from the
    charts' summaries), so the row reads no event file. ``known``: for a
    run held for its dependencies, a listing's lookup of their states
    (``held_words``).
    """
    if now_us is None:
        now_us = time.time_ns() // 1000
    status = status_of(run)
    started, stopped = run.started, run.stopped
    never_started = status in (STAGED, PENDING, UNSTAGED)
    if status == RUNNING and started:
        elapsed = max(0.0, (now_us - started) / 1e6)
    elif status in FINISHED and started and stopped:
        elapsed = max(0.0, (stopped - started) / 1e6)
    else:
        elapsed = None
    if order == "ended" and status in FINISHED + (UNSTAGED,) and stopped:
        kind, when = "ended", stopped  # for an unstaged run: when it was taken off the queue
    elif never_started:
        kind, when = "staged", run.timestamp or None
    else:
        kind, when = "started", started
    flags = run.flags
    varying = [k for k in varying if k in flags]
    gpus = run.gpus
    exit_status = run.exit_status
    queue = run.get("queue_id")
    main, spark = scalar_values if scalar_values is not None else main_scalar(run, scalar)
    op = run.op_name
    held = status == PENDING and is_held(run)
    priority = priority_of_run(run)
    all_flags = flags_text(flags, first=varying)
    varying_text = flags_text({k: flags[k] for k in varying})
    row = {
        "id": run.id,
        "short_id": run.id[:8],
        "op": op,
        "status": status,
        "guild_status": run.status,
        **run_words(run, status, elapsed),
        "title": varying_text or all_flags or op,
        "subtitle": f"{op} · {run.id[:8]}",
        "flags": jsonable(flags),
        "flags_text": all_flags,
        "varying": varying,
        "varying_text": varying_text,
        "gpus": gpus,
        "gpus_text": gpus_text(gpus),
        "label": run.label,
        "label_text": label_text(run.label, flags),
        "sweep": _sweep(run),
        "started": started,
        "stopped": stopped,
        "time": when,
        "time_kind": kind,
        "time_text": format_time(when, short=short_time),
        "elapsed": elapsed,
        "elapsed_text": elapsed_text(elapsed),
        "exit_status": jsonable(exit_status),
        "queue": queue if isinstance(queue, str) else None,
        "waiting": None,
        "waiting_text": "",
        "position": None,
        "position_text": position_text(None, priority) if status == STAGED else "",  # a list with places sets them
        # Priorities and dependencies (SPEC 12): the priority of every run;
        # "held": waiting, pending, for the runs in "after".
        "priority": priority,
        "priority_text": priority_text(priority) if status == STAGED or held else "",
        "held": held,
        "after": after_ids(run),
        "scalar": main,
        "scalar_text": scalar_text(main),
        "spark": spark,
        "spark_points": spark_points(spark),
        "actions": run_actions(run.id, status, script=_is_script(run), flags=flags,
                               retried=status == ERROR and isinstance(run.get("retried_as"), str), held=held,
                               priority=priority),
        # A notebook run's executed notebook (absolute path; None before it ran
        # or for a script): what "open in JupyterLab" opens.
        "notebook": executed_notebook(run.dir, op) if op.endswith(".ipynb") else None,
    }
    if status == PENDING and row["queue"]:
        row["waiting_text"] = f"starting: claimed by queue {row['queue'][:8]}"
    if held:
        row["waiting_text"], row["after"] = held_words(run, known)
        row["waiting"] = row["waiting_text"]
        row["position_text"] = position_text(None, priority)
    worker = run.get("dask_worker")
    if worker:  # placed by a Dask queue: the worker's name and host
        row["worker"] = str(worker)
        row["worker_host"] = str(run.get("dask_host") or "")
    return row


def notebook_tree_path(notebook: str | None, root_dir: str) -> str | None:
    """A run row's ``notebook`` as a path relative to a Jupyter server's
    root directory (what ``/lab/tree/<path>`` and JupyterLab's document
    manager open), or None when there is none or it lies outside the root."""
    import os

    if not notebook:
        return None
    root = os.path.realpath(root_dir)
    path = os.path.realpath(notebook)
    if not path.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return os.path.relpath(path, root).replace(os.sep, "/")


def place_in_line(row: dict, position: int | None, waiting: str | None) -> None:
    """Where a staged run stands (1: the next to start, in the queues'
    order: highest priority, then oldest) and why it waits, on its row."""
    row["position"] = position
    row["position_text"] = position_text(position, row.get("priority", 0))
    row["waiting"] = waiting
    row["waiting_text"] = waiting or ""


def staged_places(staged) -> dict:
    """``{run id: place}`` of ``staged`` (every staged run of a store) in
    the order our queues start them, 1 the next to start
    (``policy.start_key``: highest priority, then oldest)."""
    from ..queueing import policy  # lazy: as in held_words

    ordered = sorted(staged, key=lambda r: policy.start_key(priority_of(r.get(PRIORITY)), r.timestamp or 0, r.id))
    return {r.id: i for i, r in enumerate(ordered, 1)}


def _listing_note(run, status: str, place: int | None = None) -> str:
    """What a line of a run list adds to the status (SPEC 12): a staged
    run's place in line and priority; why a held run waits (and its
    priority); why a run that never started failed (``not started:
    dependency 1a2b3c4d failed``)."""
    if status == STAGED:
        return position_text(place, priority_of_run(run))
    if status == PENDING and is_held(run):
        return " · ".join(t for t in (held_words(run)[0], priority_text(priority_of_run(run))) if t)
    if status == ERROR:
        failed_after = run.get(AFTER_FAILURE)
        return f"not started: {failed_after}" if isinstance(failed_after, str) and failed_after else ""
    return ""


def listing_row(run, varying=(), scalar: str | None = None, place: int | None = None) -> dict:
    """The part of ``run_row`` a run list line shows (Guild's order: by
    start; staged and unstaged runs show when they were staged), cheap
    enough for 10,000 lines: no elapsed time, no JSON copy of the flags.
    ``place``: a staged run's place in line (``staged_places``)."""
    status = status_of(run)
    main, _spark = main_scalar(run, scalar, spark=False)
    when = run.timestamp or None if status in (STAGED, PENDING, UNSTAGED) else run.started
    flags = run.flags
    return {
        "note_text": _listing_note(run, status, place),
        "id": run.id,
        "short_id": run.id[:8],
        "op": run.op_name,
        "status": status,
        "time_text": format_time(when),
        "gpus": run.gpus,
        "flags": flags,
        "varying": [k for k in varying if k in flags],
        "flags_text": flags_text(flags, first=varying),
        "label_text": label_text(run.label, flags),
        "sweep": _sweep(run),
        "scalar": main,
        "scalar_text": scalar_text(main),
    }
