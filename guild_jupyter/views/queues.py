"""A queue as every front end shows it (``queue_row``), and a GPU
(``gpu_row``). No ``None`` ever reaches a ``*_text`` field: a value that is
not known reads as an empty string or as what it means (``any GPU``)."""

from __future__ import annotations

from .actions import queue_actions
from .words import jsonable, plural, queue_gpus_text, size_text

__all__ = ["QUEUE_OPTION_FLAGS", "queue_row", "slots_text", "queue_state_text", "describe_queue", "gpu_row",
           "queue_title"]

#: Queue flags shown in a queue's options when set (max-running is its slots).
QUEUE_OPTION_FLAGS = ("per-gpu", "min-free-memory", "max-util", "retries")
_ACTIVE_STATES = ("starting", "waiting", "running", "paused", "draining")


def queue_title(queue_id: str, gpus: str | None) -> str:
    """``queue ab12cd34 · GPU 0``."""
    return f"queue {queue_id[:8]} · {queue_gpus_text(gpus)}"


def slots_text(slots: dict) -> str:
    """``2 of 4 slots busy``, and with GPU slots each GPU's count (every
    queue's runs on it: GPU slots are shared): ``2 of 4 slots busy · GPU 0:
    1 run, GPU 1: 1 run``."""
    # lazy: the queue machinery loads on use: run listings (every CLI command's start) need none
    from ..queueing.status import slots_phrase

    text = slots_phrase(int(slots.get("used") or 0), int(slots.get("total") or 1))
    per_gpu = slots.get("per_gpu")
    if per_gpu:
        text += " · " + ", ".join(f"GPU {gpu}: {plural(int(n or 0), 'run')}" for gpu, n in per_gpu.items())
    return text


def queue_state_text(state: str, slots: dict, current: str | None, stopped_by_user: bool = False) -> str:
    """``waiting for staged runs``, ``running 2 of 4`` (``running ab12cd34``
    with one slot), ``paused``, ``draining``, or a finished queue's end."""
    used, total = int(slots.get("used") or 0), int(slots.get("total") or 1)
    if state in ("waiting", "starting"):
        return "waiting for staged runs"
    if state == "running":
        if total > 1:
            return f"running {used} of {total}"
        return f"running {current[:8]}" if current else "running"
    if state in ("paused", "draining"):
        going = f": {plural(used, 'run')} going" if used else ""
        return state + going
    if state == "terminated" and stopped_by_user:
        return "stopped by you"
    return str(state or "")


def queue_row(q) -> dict:
    """One queue (an ``queueing.status.QueueInfo``) as plain data."""
    options = [name for name, on in (("wait-for-running", q.wait_for_running), ("run-once", q.run_once)) if on]
    run = getattr(q, "run", None)
    flags = run.flags if run is not None else {}
    options += [f"{name}={flags[name]}" for name in QUEUE_OPTION_FLAGS if flags.get(name) not in (None, 0)]
    host = q.host + (" (this kernel)" if q.this_process and q.host == "thread" else "")
    slots = getattr(q, "slots", None) or {"used": 1 if q.current else 0, "total": 1, "per_gpu": None}
    control = getattr(q, "control", "running")
    by_user = run is not None and run.get("stopped_by") == "user"
    return {
        "id": q.id,
        "short_id": q.id[:8],
        "title": queue_title(q.id, q.gpus),
        "host": q.host,
        "host_text": host,
        "this_process": bool(q.this_process),
        "pid": q.pid,
        "gpus": q.gpus,
        "gpus_text": queue_gpus_text(q.gpus),
        "wait_for_running": bool(q.wait_for_running),
        "run_once": bool(q.run_once),
        "options_text": " ".join(options),
        "state": q.state,  # waiting | running | paused | draining, or a finished queue's status
        "state_text": queue_state_text(q.state, slots, q.current, by_user),
        "control": control,  # what was asked of it: running | paused | draining
        "current": q.current,
        "current_short": q.current[:8] if q.current else "",
        "slots": slots,
        "slots_text": slots_text(slots),
        "description": describe_queue(q),
        "dask": _dask_cluster(q),
        "actions": queue_actions(q.id, ours=q.host != "guild", running=q.state in _ACTIVE_STATES, control=control),
    }


def _dask_cluster(q) -> dict | None:
    """A Dask queue's cluster as its queue last recorded it (address,
    dashboard link, workers with their resources and runs), else None."""
    run = getattr(q, "run", None)
    address = run.flags.get("dask") if run is not None else None
    if not address:
        return None
    from ..store.dask_records import read_cluster  # lazy: only for a Dask queue's row

    info = read_cluster(run) or {}
    workers = info.get("workers") or []
    texts = [_worker_text(w) for w in workers]
    return {"address": info.get("address") or address, "dashboard": info.get("dashboard"),
            # the dashboard link's words, or why there is none
            "dashboard_text": "dashboard" if info.get("dashboard") else "no dashboard",
            "workers": workers,
            # each worker in words, "gpu0 [GPU=1]: 1a2b3c4d" / "cpu0: idle"; all of them in one line
            "worker_texts": texts,
            "workers_text": " · ".join(texts) or "no workers",
            # why the queue places no run now (no worker, all busy, the scheduler away), else None
            "waiting": info.get("waiting") if not info.get("closed") else None,
            "connected": info.get("connected", True)}


def _worker_text(w: dict) -> str:
    res = ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                   for k, v in sorted((w.get("resources") or {}).items()))
    runs = ", ".join(str(r)[:8] for r in w.get("runs") or []) or "idle"
    return f"{w.get('name')}{' [' + res + ']' if res else ''}: {runs}"


def describe_queue(q) -> str:
    """A queue in one readable line (loaded on use: listings of runs alone,
    like every CLI command's start, need none of the queue machinery)."""
    from ..queueing.status import describe_queue as describe  # lazy: as slots_text

    return describe(q)


def gpu_row(index, name, uuid, memory_used, memory_total, utilization, pids, runs) -> dict:
    """One GPU with the runs of ours on it, as plain data with its words:
    ``GPU 0 · NVIDIA H100``, ``3.0/80 GiB``, ``45 %``, ``ab12cd34 (train.py)``."""
    util = utilization if isinstance(utilization, (int, float)) and not isinstance(utilization, bool) else None
    label = f"GPU {index}" if index is not None else "GPU"
    return {
        "index": index,
        "name": jsonable(name),
        "uuid": jsonable(uuid),
        "memory_used": jsonable(memory_used),
        "memory_total": jsonable(memory_total),
        "utilization": jsonable(utilization),
        "pids": pids,
        "runs": runs,
        "text": f"{label} · {name}" if name else label,
        "memory_text": size_text(memory_used, memory_total),
        "utilization_text": f"{util:g} %" if util is not None else "",
        "runs_text": ", ".join(r["short_id"] + (f" ({r['op']})" if r.get("op") else "") for r in runs) or "no runs",
    }
