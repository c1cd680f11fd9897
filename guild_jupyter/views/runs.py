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
import time

from ..store.scalars import reader as scalarlib
from ..store.notebooks import executed_notebook
from ..store.run import COMPLETED, ERROR, FINISHED, PENDING, RUNNING, STAGED, STATUSES, TERMINATED
from .actions import run_actions
from .words import (elapsed_text, flags_text, format_time, gpus_text, jsonable, label_text, position_text,
                    scalar_text)

__all__ = ["UNSTAGED", "DISPLAY_STATUSES", "TIME_KINDS", "STOPPED_BY_YOU", "SPARK_WIDTH", "SPARK_HEIGHT",
           "SPARK_POINTS", "status_of", "status_text", "outcome_text", "retry_text", "stopped_by_user", "main_scalar",
           "spark_points", "run_row", "listing_row", "place_in_line", "run_words", "notebook_tree_path"]

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
            scalar: str | None = None, scalar_values=None) -> dict:
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
    charts' summaries), so the row reads no event file.
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
        "position_text": "",
        "scalar": main,
        "scalar_text": scalar_text(main),
        "spark": spark,
        "spark_points": spark_points(spark),
        "actions": run_actions(run.id, status, script=_is_script(run), flags=flags,
                               retried=status == ERROR and isinstance(run.get("retried_as"), str)),
        # A notebook run's executed notebook (absolute path; None before it ran
        # or for a script): what "open in JupyterLab" opens.
        "notebook": executed_notebook(run.dir, op) if op.endswith(".ipynb") else None,
    }
    if status == PENDING and row["queue"]:
        row["waiting_text"] = f"starting: claimed by queue {row['queue'][:8]}"
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
    order) and why it waits, on its row."""
    row["position"] = position
    row["position_text"] = position_text(position)
    row["waiting"] = waiting
    row["waiting_text"] = waiting or ""


def listing_row(run, varying=(), scalar: str | None = None) -> dict:
    """The part of ``run_row`` a run list line shows (Guild's order: by
    start; staged and unstaged runs show when they were staged), cheap
    enough for 10,000 lines: no elapsed time, no JSON copy of the flags."""
    status = status_of(run)
    main, _spark = main_scalar(run, scalar, spark=False)
    when = run.timestamp or None if status in (STAGED, PENDING, UNSTAGED) else run.started
    flags = run.flags
    return {
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
