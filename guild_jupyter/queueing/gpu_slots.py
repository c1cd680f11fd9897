"""GPU slots of a ``gpus=auto`` queue: which GPUs it serves, and each one's
state now (``policy.GpuState``) for the pure decision in :mod:`.policy`.

The GPUs come from NVML (``gpus.default_probe``: the real one, or the fake
of ``$GUILD_JUPYTER_FAKE_GPUS`` in every process). How many of our runs
hold each GPU comes from the store (``records.gpu_occupancy``), counted by
the caller under the run-status lock; NVML's free memory and utilisation
are read only when the queue has a rule on them, so a queue without one
costs no NVML call per claim.
"""

from __future__ import annotations

from ..errors import BadInput
from ..gpus.spec import auto_list, is_auto
from .policy import GpuState, QueueConfig

__all__ = ["resolve_gpus", "gpu_states", "check_queue_gpus"]


def _probe(probe=None):
    if probe is not None:
        return probe
    # lazy: only a gpus=auto queue reads NVML, and every queue's loop imports this module
    from ..gpus.nvml import default_probe

    return default_probe()


def resolve_gpus(spec: str | None, probe=None) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the NVML indices a ``gpus=auto[:LIST]`` queue serves, {uuid: index}).
    Raises BadInput naming the GPUs NVML reports when a listed one is not
    among them, or when there is no GPU at all."""
    report = _probe(probe).read()
    known = [str(g.index) for g in report.gpus]
    uuids = {str(g.uuid): str(g.index) for g in report.gpus}
    if not report.gpus:
        raise BadInput(f"gpus={spec}: {report.error or 'no NVIDIA GPU found'}")
    listed = auto_list(spec)
    if listed is None:
        return tuple(known), uuids
    out = []
    for gpu in listed:
        index = gpu if gpu in known else _by_uuid(gpu, uuids)
        if index is None:
            raise BadInput(f"gpus={spec}: GPU {gpu} is not among the GPUs NVML reports on this machine "
                           f"({', '.join(known)})")
        out.append(index)
    return tuple(out), uuids


def _by_uuid(prefix: str, uuids: dict[str, str]) -> str | None:
    found = [i for u, i in uuids.items() if u.startswith(prefix)]
    return found[0] if len(found) == 1 else None


def check_queue_gpus(config: QueueConfig, probe=None) -> None:
    """Bad input for a queue about to start: ``gpus=auto:9`` on a 2-GPU box,
    ``gpus=auto`` with no GPU (one line, BadInput)."""
    if is_auto(config.gpus):
        resolve_gpus(config.gpus, probe)


def gpu_states(gpus: tuple[str, ...], held: dict[str, int], config: QueueConfig,
               uuids: dict[str, str] | None = None, probe=None) -> list[GpuState]:
    """The state of each of ``gpus`` now: ``held`` (GPU name -> our runs on
    it, from ``records.gpu_occupancy``; a GPU named by UUID counts for its
    index) and, if the queue has a memory or utilisation rule, NVML's
    reading. A GPU NVML cannot read has unknown memory: a memory rule then
    holds runs back from it."""
    used = dict.fromkeys(gpus, 0)
    for name, n in held.items():
        index = name if name in used else _by_uuid(name, uuids or {})
        if index in used:
            used[index] += n
    readings = {}
    if config.min_free_memory is not None or config.max_util is not None:
        for g in _probe(probe).read().gpus:
            readings[str(g.index)] = (g.memory_total - g.memory_used, g.utilization)
    return [GpuState(g, used[g], *readings.get(g, (None, None))) for g in gpus]
