"""What every queue in a store is doing: for ``queues()``, the panel and the
page. Queue runs and the runs they claimed or started come from the store;
this process's own queue handles know the run they wait for first-hand."""

from __future__ import annotations

import dataclasses
import threading

from ..gpus.spec import auto_list, queue_gpus_phrase
from ..store.queue_state import read_control
from ..store.records import gpu_occupancy
from ..store.run import PENDING, RUNNING, Run
from .config import config_of
from .gpu_slots import resolve_gpus

__all__ = ["QueueInfo", "QueueRegistry", "list_queues", "describe_queue", "slots_phrase"]


@dataclasses.dataclass
class QueueInfo:
    id: str
    host: str  # thread | detached | server | cli (ours, see queueing.hosts) | guild
    pid: int | None
    gpus: str | None
    wait_for_running: bool
    run_once: bool
    state: str  # starting | waiting | running | or a finished queue run's status
    current: str | None  # id of the run it started and waits for
    this_process: bool = False
    run: Run | None = None
    #: ``{"used", "total", "per_gpu"}``: runs of this queue going (claimed or
    #: started by it) of those it may have at once; for a ``gpus=auto`` queue,
    #: ``per_gpu`` maps each GPU it serves to our runs on it (any queue's:
    #: the slots of a GPU are shared), else None.
    slots: dict | None = None
    #: What a person asked of it (``store.queue_state``): running, paused or draining.
    control: str = "running"

    @property
    def busy(self) -> bool:
        return self.current is not None


def _host_of(run: Run) -> str:
    info = run.get("guild_jupyter")
    if isinstance(info, dict) and info.get("host"):
        return str(info["host"])
    return "guild"


def list_queues(runs, handles=(), include_finished: bool = False) -> list[QueueInfo]:
    """The queues among ``runs`` (every queue run and the active runs, e.g.
    ``Store.runs()``); ``handles``: this process's ``QueueHost`` objects."""
    mine = {q.id: q for q in handles}
    runs = list(runs)
    current_of: dict = {}
    used_of: dict = {}
    active = []
    for r in runs:
        if not r.is_queue and r.status in (RUNNING, PENDING):
            active.append(r)
            qid = r.get("queue_id")
            if qid:
                current_of.setdefault(qid, r.id)
                used_of[qid] = used_of.get(qid, 0) + 1
    held = None
    out = []
    for q in runs:
        if not q.is_queue:
            continue
        status = q.status
        if status != RUNNING and not include_finished:
            continue
        flags = q.flags
        gpus = flags.get("gpus")
        handle = mine.get(q.id)
        current = current_of.get(q.id)
        if handle is not None and handle.current_run is not None:
            current = handle.current_run.id
        if status == RUNNING:
            state = "running" if current else "waiting"
            control = read_control(q)
            if control != "running":
                state = control  # paused / draining: what a person reads first
            if held is None:
                held = gpu_occupancy(active, [])
            slots = _slots(q, used_of.get(q.id, 0), held)
        else:
            state = status
            slots = {"used": 0, "total": 0, "per_gpu": None}
        out.append(QueueInfo(
            id=q.id,
            host=_host_of(q),
            pid=q.lock_pid() if status == RUNNING else None,
            gpus=None if gpus in (None, "") else str(gpus),
            wait_for_running=bool(flags.get("wait-for-running")),
            run_once=bool(flags.get("run-once")),
            state=state,
            current=current,
            this_process=handle is not None,
            run=q,
            slots=slots,
            control=control if status == RUNNING else "running",
        ))
    return out


#: Queue run id -> the GPUs a running ``gpus=auto`` queue serves. Its loop
#: resolves them once, at start; so do listings (a panel refreshes every
#: second: each NVML read would sweep every device again).
_SERVED: dict = {}
SERVED_KEPT = 256


def _slots(q: Run, used: int, held: dict) -> dict:
    """A running queue's slots (``QueueInfo.slots``), from its recorded flags."""
    try:
        config = config_of(q)
    except Exception:  # noqa: BLE001 - a queue run with flags we do not know (Guild's): one run at a time
        return {"used": used, "total": 1, "per_gpu": None}
    if not config.auto:
        return {"used": used, "total": config.slot_count(), "per_gpu": None}
    gpus = _SERVED.get(q.id)
    if gpus is None:
        try:
            gpus, _uuids = resolve_gpus(config.gpus)
        except Exception:  # noqa: BLE001 - NVML gone since the queue started: its listed GPUs, if any
            gpus = auto_list(config.gpus) or ()
        else:
            if len(_SERVED) >= SERVED_KEPT:
                _SERVED.clear()
            _SERVED[q.id] = gpus
    return {"used": used, "total": config.slot_count(len(gpus)), "per_gpu": {g: held.get(g, 0) for g in gpus}}


def describe_queue(q: QueueInfo) -> str:
    """One line a person reads, for a ``QueueInfo`` (of a handle: ``hosts.host_info``):
    ``queue 1a2b3c4d · thread (this kernel) · any GPU · waiting for staged runs``."""
    state = q.state
    if q.control in ("paused", "draining"):
        state = q.control
    text = {"waiting": "waiting for staged runs", "stopped": "stopped"}.get(state, state)
    if state in ("running", "paused", "draining") and q.current:
        text = f"running {q.current[:8]}" if state == "running" else f"{state}, running {q.current[:8]}"
    host = q.host + (" (this kernel)" if q.this_process and q.host == "thread" else "")
    options = [name for name, on in (("wait-for-running", q.wait_for_running), ("run-once", q.run_once)) if on]
    slots = q.slots
    if slots and (slots.get("total", 1) > 1 or slots.get("per_gpu")):
        options.append(slots_phrase(slots.get("used", 0), slots.get("total", 1)))
    return " · ".join([f"queue {q.id[:8]}", host, queue_gpus_phrase(q.gpus), text] + options)


def slots_phrase(used: int, total: int) -> str:
    """``2 of 4 slots busy``: runs of a queue going, of those it may have at once."""
    return f"{used} of {total} slot{'' if total == 1 else 's'} busy"


class QueueRegistry:
    """The queue handles (``QueueHost``) of this process, for whoever lists
    queues here: ``api.queue_registry``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._handles: dict = {}

    def register(self, handle) -> None:
        with self._lock:
            self._handles[handle.id] = handle

    def get(self, queue_id: str):
        with self._lock:
            return self._handles.get(queue_id)

    def list(self) -> list:
        """Every handle registered in this process, ended queues' too (a
        listing of finished queues still says which ran here)."""
        with self._lock:
            return list(self._handles.values())

    def __iter__(self):
        return iter(self.list())

    def __len__(self):
        return len(self.list())
