"""The queue's decisions, as pure functions of the store's state.

Nothing here touches files or processes, so every rule of the seed (oldest
staged first, GPU affinity, wait-for-running, one run at a time) and of
GPU slots (``gpus=auto``, ``per-gpu``, ``min-free-memory``, ``max-util``) is
tested directly with plain values.

GPU slots (a ``gpus=auto`` queue). Each GPU the queue serves has ``per-gpu``
slots, shared by every queue: a GPU is free for one more run while fewer
than ``per-gpu`` of our pending or running runs use it (counted from the
store by the caller, under the run-status lock), and, when the queue sets
them, NVML reports at least ``min-free-memory`` free (other users' processes
count: NVML's free memory is the device's) and at most ``max-util`` percent
utilisation (unknown utilisation, e.g. a MIG device, does not hold a run
back). Such a queue starts:

- unpinned runs and runs asking ``auto`` on the free GPU with the fewest of
  our runs (then the most free memory, then the lowest index);
- runs asking ``auto:N`` on N free GPUs at once;
- pinned runs whose GPUs are all among the queue's and all free (a pinned
  run's GPUs get no other say than the same slots).

A run that fits no GPU now is *held*, not skipped: younger runs that fit
may start before it (no head-of-line blocking), and a run-once queue waits
for it. A run asking for more GPUs than the queue serves is skipped.

Priorities (SPEC 12). Staged runs are started highest ``priority`` first,
then oldest first (``start_order``); a queue's GPU rules then apply in that
order, so an urgent run that fits no GPU now does not keep lower ones from
a free GPU. Guild's own queue ignores priorities (it orders by ``started``).

Dependencies (SPEC 12). A run staged ``--after`` others waits, held, until
``after_verdict`` of its dependencies' states says ``ready`` (each has
completed; one asked ``--after-any`` only has to have ended) or ``failed``
(one ended ``error`` or ``terminated`` or was deleted: the run is recorded
``error``, naming it). The states are read by the store
(``store.dependencies``); the verdict is decided here, from plain values.
"""

from __future__ import annotations

import dataclasses

from ..gpus.spec import ANY_GPU, auto_count, auto_list, gpus_phrase, is_auto, queue_gpus_phrase  # noqa: F401 - kept import-light there


@dataclasses.dataclass(frozen=True)
class QueueConfig:
    gpus: str | None = None  # None: only unpinned runs; "0,1": that set; "auto", "auto:0,2": chosen per run
    wait_for_running: bool = False
    run_once: bool = False
    poll_interval: float = 10.0
    retries: int = 0  # re-stagings of a run this queue started that failed (queueing.control)
    max_running: int | None = None  # runs going at once; None: 1, or per-gpu x GPUs for gpus=auto
    per_gpu: int = 1  # slots of each GPU (gpus=auto)
    min_free_memory: int | None = None  # bytes NVML must report free (gpus=auto)
    max_util: int | None = None  # percent of utilisation NVML may report at most (gpus=auto)
    dask: str | None = None  # a Dask queue: "local:N" or a scheduler address (queueing.dask.config)

    @property
    def auto(self) -> bool:
        return is_auto(self.gpus)

    def slot_count(self, n_gpus: int = 1) -> int:
        """How many runs this queue keeps going at once, serving ``n_gpus`` GPUs."""
        if self.max_running is not None:
            return self.max_running
        return self.per_gpu * max(n_gpus, 1) if self.auto else 1

    def describe(self) -> str:
        text = queue_gpus_phrase(self.gpus)
        if self.auto:
            text += f", {self.per_gpu} per GPU"
        if self.max_running not in (None, 1):
            text += f", up to {self.max_running} at once"
        return text


@dataclasses.dataclass(frozen=True)
class StagedRun:
    id: str
    gpus: str | None
    timestamp: int = 0
    priority: int = 0


def start_key(priority: int, timestamp: int, run_id: str) -> tuple:
    """The order our queues start staged runs in: highest priority first,
    then oldest (Guild's order), then by id (two runs staged in the same
    microsecond)."""
    return (-priority, timestamp, run_id)


def start_order(staged) -> list:
    """``staged`` (``StagedRun``s, or anything with ``priority`` and
    ``timestamp``) in the order a queue starts them: highest priority,
    then oldest; runs equal in both keep the order given (a scan gives them
    by staging time, then id: ``start_key``'s last key)."""
    return sorted(staged, key=lambda r: (-r.priority, r.timestamp))


@dataclasses.dataclass(frozen=True)
class Decision:
    start: StagedRun | None = None
    assign_gpus: str | None = None  # GPUs given to an unpinned run
    skipped: tuple = ()  # (run id, reason) for runs this queue will not start
    blocked_by: tuple = ()  # running run ids that block (wait-for-running)
    held: tuple = ()  # (run id, reason) for runs it serves that fit no free GPU now


@dataclasses.dataclass(frozen=True)
class GpuState:
    """One GPU a ``gpus=auto`` queue serves, as the store and NVML see it now."""

    id: str  # NVML's index, as CUDA_VISIBLE_DEVICES names it (PCI bus order)
    used: int = 0  # our pending and running runs on it, any queue's
    free_memory: int | None = None  # bytes; None: not read (no memory rule) or unreadable
    utilization: int | None = None  # percent; None: not read or unknown


def gpu_mismatch(run_gpus: str | None, queue_gpus: str | None) -> str | None:
    """Why a queue with ``queue_gpus`` cannot start a run pinned to
    ``run_gpus``, or None when it can."""
    wants = auto_count(run_gpus)
    if queue_gpus is None:
        if wants is not None:
            return f"run asks for GPUs {run_gpus}; only a gpus=auto queue chooses them"
        if run_gpus is not None:
            return f"run is pinned to GPUs {run_gpus}; a queue without gpus starts only unpinned runs"
        return None
    if is_auto(queue_gpus):
        listed = auto_list(queue_gpus)
        if wants is None and run_gpus is not None and listed is not None:
            outside = [g for g in run_gpus.split(",") if g not in listed]
            if outside:
                return f"run is pinned to GPUs {run_gpus}, queue serves {','.join(listed)}"
        if wants is not None and listed is not None and wants > len(listed):
            return f"run asks for {wants} GPUs, queue serves {len(listed)}"
        return None
    if wants is not None:
        return f"run asks for GPUs {run_gpus}; only a gpus=auto queue chooses them"
    if run_gpus is not None and run_gpus != queue_gpus:
        return f"run is pinned to GPUs {run_gpus}, queue serves {queue_gpus}"
    return None


def gpu_unfit(gpu: GpuState, config: QueueConfig) -> str | None:
    """Why ``gpu`` cannot take one more run of a ``gpus=auto`` queue now, or None."""
    if gpu.used >= config.per_gpu:
        return f"GPU {gpu.id} has {gpu.used} of {config.per_gpu} slot(s) in use"
    if config.min_free_memory is not None:
        if gpu.free_memory is None:
            return f"GPU {gpu.id}: free memory unknown"
        if gpu.free_memory < config.min_free_memory:
            return f"GPU {gpu.id} has {gpu.free_memory / 2**30:.1f} GiB free (min-free-memory)"
    if config.max_util is not None and gpu.utilization is not None and gpu.utilization > config.max_util:
        return f"GPU {gpu.id} is {gpu.utilization}% busy (max-util={config.max_util})"
    return None


def place(run_gpus: str | None, gpus, config: QueueConfig) -> tuple[str | None, str | None]:
    """(GPUs to give the run, None) or (None, why it fits no free GPU now), for
    a ``gpus=auto`` queue serving ``gpus`` (GpuStates, in the queue's order).
    A pinned run that fits gets its own GPUs back."""
    gpus = list(gpus)
    wants = auto_count(run_gpus)
    if wants is None and run_gpus is not None:  # pinned: all of its GPUs, each free
        by_id = {g.id: g for g in gpus}
        for gid in run_gpus.split(","):
            if gid not in by_id:
                return None, f"GPU {gid} is not among the queue's GPUs"
            why = gpu_unfit(by_id[gid], config)
            if why:
                return None, why
        return run_gpus, None
    wants = wants or 1
    free = [g for g in gpus if gpu_unfit(g, config) is None]
    if len(free) < wants:
        reasons = "; ".join(w for w in (gpu_unfit(g, config) for g in gpus) if w) or "no GPU"
        return None, f"needs {wants} free GPU{'s' if wants > 1 else ''}: {reasons}"
    order = {g.id: n for n, g in enumerate(gpus)}
    free.sort(key=lambda g: (g.used, -(g.free_memory or 0), order[g.id]))
    return ",".join(g.id for g in free[:wants]), None


def next_run(
    staged: list[StagedRun],
    config: QueueConfig,
    busy: bool,
    running_others: list[str] = (),
    gpus=(),
) -> Decision:
    """The run this queue starts now, if any.

    ``staged``: the staged runs, in any order: they are considered in
    ``start_order`` (highest priority, then oldest, first). ``busy``: the queue has no free slot
    (it waits for runs it started). ``running_others``: ids of running runs
    that are not queues (nor this queue's own). ``gpus``: for a ``gpus=auto``
    queue, the ``GpuState`` of each GPU it serves.
    """
    if busy:
        return Decision()
    if config.wait_for_running and running_others:
        return Decision(blocked_by=tuple(running_others))
    skipped, held = [], []
    auto = config.auto
    for run in start_order(staged):
        why = gpu_mismatch(run.gpus, config.gpus)
        if not why and auto:
            served = [g.id for g in gpus]
            if auto_count(run.gpus) is None and run.gpus is not None:
                if any(g not in served for g in run.gpus.split(",")):  # pinned elsewhere (or by UUID)
                    why = f"run is pinned to GPUs {run.gpus}, queue serves {','.join(served) or 'none'}"
            elif (auto_count(run.gpus) or 1) > len(served):
                why = f"run asks for {auto_count(run.gpus) or 1} GPUs, queue serves {len(served)}"
        if why:
            skipped.append((run.id, why))
            continue
        if not auto:
            assign = config.gpus if run.gpus is None else None
            return Decision(start=run, assign_gpus=assign, skipped=tuple(skipped))
        chosen, why = place(run.gpus, gpus, config)
        if chosen is None:
            held.append((run.id, why))
            continue
        return Decision(start=run, assign_gpus=None if chosen == run.gpus else chosen,
                        skipped=tuple(skipped), held=tuple(held))
    return Decision(skipped=tuple(skipped), held=tuple(held))


@dataclasses.dataclass(frozen=True)
class QueueView:
    id: str
    gpus: str | None
    wait_for_running: bool
    busy: bool


def waiting_reason(run: StagedRun, queues: list[QueueView], running_others: list[str], ahead: int = 0) -> str:
    """Why a staged run is still waiting, in one plain wording per reason:

    - ``no queue is running``
    - ``no queue serves runs for GPU 2`` (or ``for any GPU``: every queue is pinned)
    - ``waiting for queue 1a2b3c4d (GPU 2) to finish its run`` (each queue
      that serves it is busy)
    - ``waiting for running runs to end (wait-for-running)``
    - ``3 staged runs ahead of it``
    - ``next to start``
    """
    if not queues:
        return "no queue is running"
    serving = [q for q in queues if gpu_mismatch(run.gpus, q.gpus) is None]
    if not serving:
        return f"no queue serves runs for {gpus_phrase(run.gpus)}"
    free = [q for q in serving if not q.busy]
    if not free:
        names = ", ".join(f"{q.id[:8]} ({queue_gpus_phrase(q.gpus)})" for q in serving)
        if len(serving) == 1:
            return f"waiting for queue {names} to finish its run"
        return f"waiting for queues {names} to finish their runs"
    if all(q.wait_for_running for q in free) and running_others:
        return "waiting for running runs to end (wait-for-running)"
    if ahead:
        return f"{ahead} staged run{'s' if ahead > 1 else ''} ahead of it"
    return "next to start"


# -- dependencies (--after) -------------------------------------------------------------------

#: The states a dependency is read in (``store.dependencies``): a run's status,
#: ``held`` (itself waiting for its own dependencies), ``unstaged`` (taken off
#: the queue before it started) and ``deleted`` (gone from ``runs/``).
DEPENDENCY_STATES = ("staged", "held", "pending", "running", "completed", "error", "terminated", "unstaged",
                     "deleted")
#: The states a dependency has ended in; ``completed`` is the one a plain
#: ``--after`` waits for.
ENDED_STATES = ("completed", "error", "terminated", "unstaged", "deleted")
#: The states of a dependency going now (started, or being started): a
#: run-once queue waits for what waits on them.
GOING_STATES = ("pending", "running")

_FAILED_WORDS = {"error": "failed", "terminated": "failed (terminated)", "unstaged": "failed (unstaged: it never started)",
                 "deleted": "was deleted"}
_STATE_WORDS = {"held": "waiting"}


@dataclasses.dataclass(frozen=True)
class Dependency:
    """A run another waits for, as read now. ``id``: the run waited for (a
    dependency that failed and was retried is followed to its retry);
    ``state``: one of ``DEPENDENCY_STATES``; ``any_outcome``: the waiting
    run asked to start whatever its outcome (``--after-any``)."""

    id: str
    state: str
    any_outcome: bool = False


@dataclasses.dataclass(frozen=True)
class AfterVerdict:
    """What becomes of a run held for its dependencies: ``wait``, ``ready``
    (every one has completed, or ended for ``--after-any``) or ``failed``
    (``reason``: one line naming the dependency). ``waiting``: the ones it
    still waits for."""

    kind: str
    reason: str = ""
    waiting: tuple = ()


def after_verdict(deps) -> AfterVerdict:
    """The verdict for a run held after ``deps`` (``Dependency``s, in the
    order they were named). A failure wins over waiting, so a failed
    dependency ends its dependents at once, whatever else is still going."""
    waiting = []
    for d in deps:
        ended = d.state in ENDED_STATES
        if ended and d.state != "completed" and not d.any_outcome:
            return AfterVerdict("failed", f"dependency {d.id[:8]} {_FAILED_WORDS[d.state]}")
        if not ended:
            waiting.append(d)
    return AfterVerdict("wait", waiting=tuple(waiting)) if waiting else AfterVerdict("ready")


def after_text(waiting, shown: int = 3) -> str:
    """Why a held run waits, one line: ``after 1a2b3c4d (running)``, ``after
    1a2b3c4d (running), 2b3c4d5e (staged) and 4 more``; ``waiting``: the
    ``Dependency``s not ended yet (``AfterVerdict.waiting``)."""
    waiting = list(waiting)
    if not waiting:
        return ""
    parts = [f"{d.id[:8]} ({_STATE_WORDS.get(d.state, d.state)})" for d in waiting[:shown]]
    more = len(waiting) - shown
    return "after " + ", ".join(parts) + (f" and {more} more" if more > 0 else "")
