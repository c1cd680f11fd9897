"""The queue's decisions, as pure functions of the store's state.

Nothing here touches files or processes, so every rule of the seed (oldest
staged first, GPU affinity, wait-for-running, one run at a time) is tested
directly with plain values.
"""

from __future__ import annotations

import dataclasses

from .gpuspec import ANY_GPU, gpus_phrase  # noqa: F401 - the wording, kept import-light there


@dataclasses.dataclass(frozen=True)
class QueueConfig:
    gpus: str | None = None  # None: serves only runs without GPU affinity
    wait_for_running: bool = False
    run_once: bool = False
    poll_interval: float = 10.0

    def describe(self) -> str:
        return gpus_phrase(self.gpus)


@dataclasses.dataclass(frozen=True)
class StagedRun:
    id: str
    gpus: str | None
    timestamp: int = 0


@dataclasses.dataclass(frozen=True)
class Decision:
    start: StagedRun | None = None
    assign_gpus: str | None = None  # GPUs given to an unpinned run
    skipped: tuple = ()  # (run id, reason) for runs this queue will not start
    blocked_by: tuple = ()  # running run ids that block (wait-for-running)


def gpu_mismatch(run_gpus: str | None, queue_gpus: str | None) -> str | None:
    """Why a queue with ``queue_gpus`` cannot start a run pinned to
    ``run_gpus``, or None when it can."""
    if queue_gpus is None:
        if run_gpus is not None:
            return f"run is pinned to GPUs {run_gpus}; a queue without gpus starts only unpinned runs"
        return None
    if run_gpus is not None and run_gpus != queue_gpus:
        return f"run is pinned to GPUs {run_gpus}, queue serves {queue_gpus}"
    return None


def next_run(
    staged: list[StagedRun],
    config: QueueConfig,
    busy: bool,
    running_others: list[str] = (),
) -> Decision:
    """The run this queue starts now, if any.

    ``staged`` must be oldest first. ``busy``: the queue is waiting for a run
    it started. ``running_others``: ids of running runs that are not queues.
    """
    if busy:
        return Decision()
    if config.wait_for_running and running_others:
        return Decision(blocked_by=tuple(running_others))
    skipped = []
    for run in staged:
        why = gpu_mismatch(run.gpus, config.gpus)
        if why:
            skipped.append((run.id, why))
            continue
        assign = config.gpus if run.gpus is None else None
        return Decision(start=run, assign_gpus=assign, skipped=tuple(skipped))
    return Decision(skipped=tuple(skipped))


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
        names = ", ".join(f"{q.id[:8]} ({gpus_phrase(q.gpus)})" for q in serving)
        if len(serving) == 1:
            return f"waiting for queue {names} to finish its run"
        return f"waiting for queues {names} to finish their runs"
    if all(q.wait_for_running for q in free) and running_others:
        return "waiting for running runs to end (wait-for-running)"
    if ahead:
        return f"{ahead} staged run{'s' if ahead > 1 else ''} ahead of it"
    return "next to start"
