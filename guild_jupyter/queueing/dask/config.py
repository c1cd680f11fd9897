"""The ``dask=`` queue flag, read without importing Dask (importing a front
end must stay cheap; Dask is loaded only when a Dask queue starts).

``dask=local`` or ``dask=local:N``: an embedded ``LocalCluster`` of N worker
processes (N defaults to the CPU count) on 127.0.0.1. Anything else is the
address of an existing scheduler: ``tcp://host:8786``, ``tls://...``, or
``host:port`` (tcp)."""

from __future__ import annotations

import os
import re

from ...errors import BadInput
from ...gpus.spec import auto_count
from ..flags import DASK_LOCAL_MAX
from ..policy import gpu_mismatch

NO_GPU_WORKER = "no Dask worker has GPU resources"
INSTALL_HINT = "pip install 'guild_jupyter[dask]'"
_ADDRESS = re.compile(r"(?:(tcp|tls|ucx|inproc|ws|wss)://)?\[?[A-Za-z0-9_.:-]+\]?(?::\d+)?/?")


def parse_dask(value) -> str | None:
    """The normalised flag value (``local:N`` or a scheduler address), or None."""
    if value is None or value is False:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text:
        raise BadInput(f"bad value for dask: {value!r} (expected local, local:N or a scheduler address "
                       "like tcp://host:8786)")
    if text == "local" or text.startswith("local:"):
        n = text[len("local:"):] if ":" in text else str(min(os.cpu_count() or 1, DASK_LOCAL_MAX))
        if not n.isdigit() or not 1 <= int(n) <= DASK_LOCAL_MAX:
            raise BadInput(f"bad value for dask: {text!r} (local:N needs N from 1 to {DASK_LOCAL_MAX} "
                           "worker processes)")
        return f"local:{int(n)}"
    if not _ADDRESS.fullmatch(text) or " " in text:
        raise BadInput(f"bad value for dask: {text!r} (expected local, local:N or a scheduler address "
                       "like tcp://host:8786)")
    return text if "://" in text else f"tcp://{text}"


def local_workers(address: str) -> int | None:
    """N for ``local:N``, else None (an existing cluster)."""
    return int(address.split(":", 1)[1]) if address.startswith("local:") else None


def require_dask() -> None:
    """Raises BadInput naming the extra to install when Dask is missing."""
    import importlib.util

    missing = [m for m in ("dask", "distributed") if importlib.util.find_spec(m) is None]
    if missing:
        raise BadInput(f"a Dask queue needs {' and '.join(missing)}: {INSTALL_HINT}")


def with_slots(config, options: dict):
    """``config`` with ``max-running`` set to the Dask queue's slots (the
    cluster's worker threads when not given), so its queue run records how
    many runs it keeps going (listings show its slots from that)."""
    import dataclasses

    if "slots" not in options or config.max_running is not None:
        return config
    return dataclasses.replace(config, max_running=options["slots"])


def gpu_count(gpus: str | None) -> int:
    """Dask GPU resources a run needs: one per pinned GPU, N for an
    ``auto:N``-style request, 0 for an unpinned run."""
    if gpus is None:
        return 0
    n = auto_count(gpus)
    if n is not None:
        return max(n, 1)
    return len([g for g in gpus.split(",") if g.strip()])


def gpu_shortage(gpus: str | None, workers) -> str | None:
    """Why no worker of a cluster (``workers``: its recorded rows) can take a
    run asking for ``gpus``, or None."""
    need = gpu_count(gpus)
    if not need:
        return None
    have = max((float((w.get("resources") or {}).get("GPU", 0) or 0) for w in workers), default=0)
    if have <= 0:
        return NO_GPU_WORKER
    if have < need:
        return f"no Dask worker has {need} GPU resources"
    return None


def policy_gpus(queue_row: dict):
    """The GPUs a queue serves as waiting reasons see it: a Dask queue
    serves every run (its cluster's resources place GPU runs)."""
    return "auto" if queue_row.get("dask") else queue_row.get("gpus")


def note_gpu_shortage(rows, queue_rows) -> None:
    """A staged run that only Dask queues could start waits for their
    clusters: for a worker with the GPU resources it needs (a GPU run none
    of them has), or, when every one of them can place nothing now (no
    worker, all busy, the scheduler away), for that. Its row says so."""
    clusters = [q["dask"] for q in queue_rows if q.get("dask")]
    if not clusters:
        return
    others = [q for q in queue_rows if not q.get("dask")]
    for row in rows:
        gpus = row.get("gpus")
        if any(gpu_mismatch(gpus, q.get("gpus")) is None for q in others):
            continue
        reasons = [gpu_shortage(gpus, c.get("workers") or []) or c.get("waiting") for c in clusters]
        if all(reasons):
            row["waiting"] = reasons[0]


def known_slots(config):
    """For a detached Dask queue (its process connects later): ``local:N``
    has N slots, recorded as ``max-running`` as ``with_slots`` does."""
    import dataclasses

    n = local_workers(config.dask) if getattr(config, "dask", None) else None
    if n is None or config.max_running is not None:
        return config
    return dataclasses.replace(config, max_running=n)
