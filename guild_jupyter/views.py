"""The one view model: how runs and queues read, for every front end.

The panel, the ``/guild`` page, the REST API, the CLI and the magics all
show runs through these: one status list, one flag formatter, one time
formatter, one wording for "any GPU" and for a run removed from the queue
before it started, and one serialiser per kind of row. Rows are plain data
(dicts of JSON values), so the page and the REST API send them as they are
and the panel renders the same.

Times follow the order a list is in: runs listed by start (Guild's order,
the running group) show when they started; finished runs, listed most
recently ended first, show when they ended; staged runs show when they were
staged. A run taken off the queue before it started reads ``unstaged`` and
has no elapsed time.
"""

from __future__ import annotations

import math
import time

from .gpus.spec import ANY_GPU, gpus_phrase
from .store.notebooks import executed_notebook
from .store.scalars import reader as scalarlib
from .store.run import COMPLETED, ERROR, FINISHED, PENDING, RUNNING, STAGED, STATUSES, TERMINATED
from .store.flag_labels import flags_label, format_flag_value
from .store.dask_records import read_cluster

__all__ = [
    "STATUSES", "STAGED", "PENDING", "RUNNING", "COMPLETED", "ERROR", "TERMINATED", "FINISHED", "DISPLAY_STATUSES",
    "UNSTAGED", "ANY_GPU", "TIME_KINDS", "format_flag", "flags_text", "varying_flags", "format_time", "elapsed_text",
    "gpus_text", "gpus_phrase", "status_of", "jsonable", "run_row", "listing_row", "queue_row", "label_text", "describe_queue",
    "main_scalar", "scalar_text", "format_value", "SPARK_POINTS",
]

#: Values of the main scalar a row carries for its sparkline, oldest first.
SPARK_POINTS = scalarlib.RECENT

#: How a run removed from the queue before it ever started is shown (Guild
#: lists it ``terminated``; it has no start time and no elapsed time).
UNSTAGED = "unstaged"

#: Every status a person may read, in the order lists and counts show them.
DISPLAY_STATUSES = STATUSES + (UNSTAGED,)

#: What the time of a row means: ``started``, ``ended`` or ``staged``.
TIME_KINDS = ("started", "ended", "staged")

format_flag = format_flag_value


def flags_text(flags: dict, first=()) -> str:
    """``k=v`` pairs; the names in ``first`` (e.g. the flags that vary in a
    listing) come first, in that order, then the rest in the run's order."""
    keys = [k for k in first if k in flags] + [k for k in flags if k not in first]
    return " ".join(f"{k}={format_flag(flags[k])}" for k in keys)


def varying_flags(flag_dicts) -> list[str]:
    """The flag names whose values differ among ``flag_dicts`` (a name some
    runs lack counts as varying), in the order they first appear. One run:
    nothing varies."""
    dicts = [d for d in flag_dicts if isinstance(d, dict)]
    if len(dicts) < 2:
        return []
    names: list[str] = []
    for d in dicts:
        for k in d:
            if k not in names:
                names.append(k)
    out = []
    for k in names:
        first = dicts[0].get(k, _MISSING)
        if any(d.get(k, _MISSING) != first or type(d.get(k, _MISSING)) is not type(first) for d in dicts[1:]):
            out.append(k)
    return out


_MISSING = object()


def format_time(us, now: float | None = None, short: bool = False) -> str:
    """A timestamp in µs since the epoch, local time; ``short`` drops the
    date for today's times (panel rows)."""
    if not isinstance(us, int) or isinstance(us, bool):
        return ""
    t = time.localtime(us / 1e6)
    if short:
        today = time.localtime(now if now is not None else time.time())
        if (t.tm_year, t.tm_yday) == (today.tm_year, today.tm_yday):
            return time.strftime("%H:%M:%S", t)
        return time.strftime("%m-%d %H:%M", t)
    return time.strftime("%Y-%m-%d %H:%M:%S", t)


def elapsed_text(seconds) -> str:
    """``42s``, ``3m07s``, ``2h05m``, ``1d03h``; empty for None."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def gpus_text(gpus: str | None) -> str:
    """A GPU column's value: the GPUs, or ``any GPU``."""
    return gpus if gpus else ANY_GPU


def status_of(run) -> str:
    """The status a person reads: Guild's, except that a run taken off the
    queue before it started (unstaged, or a sweep's trial never reached)
    reads ``unstaged``: Guild and the attrs say terminated, and its
    ``started`` is only the staging time Guild orders staged runs by."""
    st = run.status
    if st == TERMINATED and run.get("unstaged") is True:
        return UNSTAGED
    return st


def label_text(label: str, flags: dict) -> str:
    """The label worth showing next to the flags: empty when it only repeats
    flag values (Guild's default label is ``k=v`` of the flags)."""
    if not label:
        return ""
    shown = {f"{k}={format_flag(v)}" for k, v in flags.items()}
    if all(word in shown for word in label.split()):
        return ""
    if label == flags_label(flags):  # values with spaces in them
        return ""
    return label


def jsonable(v):
    """Plain JSON values: non-finite floats become strings, unknown objects their str."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


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


def format_value(value) -> str:
    """A scalar value as tables show it (6 significant digits)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def scalar_text(scalar: dict | None) -> str:
    """``loss 0.125`` (empty without a scalar)."""
    return f"{scalar['tag']} {format_value(scalar['value'])}" if scalar else ""


# -- rows ---------------------------------------------------------------------------------


def run_row(run, *, now_us: int | None = None, varying=(), order: str = "started", short_time: bool = False,
            scalar: str | None = None) -> dict:
    """One run as plain data, for every front end.

    ``run``: a ``Run`` (or anything with its attributes). ``varying``: the
    flags that vary in the list it is shown in (they come first in
    ``flags_text`` and are named in ``varying``). ``order``: what the list
    is ordered by, which decides the time shown: ``started`` (Guild's order)
    or ``ended`` (finished runs, most recently ended first; an unstaged
    run ended when it was taken off the queue). Otherwise staged, pending
    (claimed, not started yet) and unstaged runs show when they were staged.
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
    main, spark = main_scalar(run, scalar)
    op = run.op_name
    row = {
        "id": run.id,
        "short_id": run.id[:8],
        "op": op,
        "status": status,
        "guild_status": run.status,
        "status_text": status + (f" ({exit_status})" if status == ERROR and exit_status not in (None, 0) else ""),
        "flags": jsonable(flags),
        "flags_text": flags_text(flags, first=varying),
        "varying": varying,
        "varying_text": flags_text({k: flags[k] for k in varying}),
        "gpus": gpus,
        "gpus_text": gpus_text(gpus),
        "label": run.label,
        "label_text": label_text(run.label, flags),
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
        "position": None,
        "scalar": main,
        "scalar_text": scalar_text(main),
        "spark": spark,
        # A notebook run's executed notebook (absolute path; None before it ran
        # or for a script): what "open in JupyterLab" opens.
        "notebook": executed_notebook(run.dir, op) if op.endswith(".ipynb") else None,
    }
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
        "scalar": main,
        "scalar_text": scalar_text(main),
    }


#: Queue flags shown in a queue's options when set (max-running is its slots).
QUEUE_OPTION_FLAGS = ("per-gpu", "min-free-memory", "max-util", "retries")


def queue_row(q) -> dict:
    """One queue (an ``queueing.status.QueueInfo``) as plain data."""
    options = [name for name, on in (("wait-for-running", q.wait_for_running), ("run-once", q.run_once)) if on]
    flags = q.run.flags if getattr(q, "run", None) is not None else {}
    options += [f"{name}={flags[name]}" for name in QUEUE_OPTION_FLAGS if flags.get(name) not in (None, 0)]
    host = q.host + (" (this kernel)" if q.this_process and q.host == "thread" else "")
    return {
        "id": q.id,
        "short_id": q.id[:8],
        "host": q.host,
        "host_text": host,
        "this_process": bool(q.this_process),
        "pid": q.pid,
        "gpus": q.gpus,
        "gpus_text": gpus_text(q.gpus),
        "wait_for_running": bool(q.wait_for_running),
        "run_once": bool(q.run_once),
        "options_text": " ".join(options),
        "state": q.state,  # waiting | running | paused | draining, or a finished queue's status
        "control": getattr(q, "control", "running"),  # what was asked of it: running | paused | draining
        "current": q.current,
        "current_short": q.current[:8] if q.current else None,
        "slots": (slots := getattr(q, "slots", None) or {"used": 1 if q.current else 0, "total": 1, "per_gpu": None}),
        "slots_text": slots_text(slots),
        "description": describe_queue(q),
        "dask": _dask_cluster(q),
    }


def slots_text(slots: dict) -> str:
    """``2/4`` runs going of the queue's slots, and with GPU slots each GPU's
    count (every queue's runs on it: GPU slots are shared): ``2/4 · 0:2 1:0``."""
    text = f"{slots.get('used', 0)}/{slots.get('total', 1)}"
    per_gpu = slots.get("per_gpu")
    if per_gpu:
        text += " · " + " ".join(f"{gpu}:{n}" for gpu, n in per_gpu.items())
    return text


def _dask_cluster(q) -> dict | None:
    """A Dask queue's cluster as its queue last recorded it (address,
    dashboard link, workers with their resources and runs), else None."""
    run = getattr(q, "run", None)
    address = run.flags.get("dask") if run is not None else None
    if not address:
        return None
    info = read_cluster(run) or {}
    return {"address": info.get("address") or address, "dashboard": info.get("dashboard"),
            "workers": info.get("workers") or [],
            # why the queue places no run now (no worker, all busy, the scheduler away), else None
            "waiting": info.get("waiting") if not info.get("closed") else None,
            "connected": info.get("connected", True)}


def describe_queue(q) -> str:
    """A queue in one readable line (loaded on use: listings of runs alone,
    like every CLI command's start, need none of the queue machinery)."""
    from .queueing.status import describe_queue as describe  # lazy: run listings need no queue machinery

    return describe(q)
