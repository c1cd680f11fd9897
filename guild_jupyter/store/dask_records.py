"""What a Dask queue records in the store besides run status (which only
``transitions`` writes): where a run was placed (``dask_worker``,
``dask_host``, and the worker's GPUs given to a GPU run), and the cluster a
queue dispatches to (``dask_cluster`` in the queue run's attrs), so that
every front end (panel, page, ``runs --json``, another kernel) can show
them from the store alone."""

from __future__ import annotations

import os

from . import attrs as attrlib
from .markers import DASK_STOP, LOCK_REMOTE
from .records import this_host  # noqa: F401 - where runs name their machine
from .regular_file import read_small
from .run import Run

CLUSTER_ATTR = "dask_cluster"


def record_placement(run: Run, worker: str, host: str, gpus: str | None = None) -> None:
    """Written by the run's runner on its worker before the run starts. A
    GPU run gets the worker's GPUs (``CUDA_VISIBLE_DEVICES``), what it asked
    for kept in ``gpus_requested`` (as a GPU claim does, so a return to
    staged gives it back)."""
    run.write_attr("dask_worker", worker)
    run.write_attr("dask_host", host)
    if gpus and run.gpus != gpus:
        # lazy: every listing (views) reads this module's records; the
        # lifecycle's modules load only where a record is written
        from .transitions import assign_gpus

        assign_gpus(run, gpus)
    run.refresh()


def placement(run) -> dict | None:
    """``{"worker": name, "host": host}`` for a run a Dask queue placed, else None."""
    worker = run.get("dask_worker")
    if not worker:
        return None
    return {"worker": str(worker), "host": str(run.get("dask_host") or "")}


def write_cluster(queue_run: Run, info: dict) -> None:
    """The cluster as the queue last saw it (address, dashboard, workers with
    their resources and running runs)."""
    queue_run.write_attr(CLUSTER_ATTR, info)


def read_cluster(queue_run) -> dict | None:
    try:
        v = queue_run.get(CLUSTER_ATTR)
    except Exception:  # noqa: BLE001 - a damaged attr shows no cluster, never breaks a listing
        return None
    return v if isinstance(v, dict) else None


DISPATCH_ATTR = "dask_dispatch"


def take_dispatch(store, run: Run, queue_owner, key: str, me: dict) -> str | None:
    """Under the run-status lock: marks the run as taken by the runner of
    task ``key`` (``me``: its host, pid, start). None when taken; else why
    not: the run is no longer pending under the queue's claim (stopped,
    returned to staged, started), or this task already took it (Dask ran it
    a second time). The queue's claim stays: the queue process, alive, keeps
    every other queue's recovery off the run."""
    from . import transitions  # lazy: as in record_placement

    with store.lock():
        run.refresh()
        c = transitions.read_claim(run)
        if run.status != "pending" or not isinstance(c, transitions.Claim) or c.owner != queue_owner:
            return f"run {run.id[:8]} is {run.status}, no longer waiting for this queue"
        d = dispatch(run)
        mine = dict(me, key=key, queue=queue_owner.as_record())
        if d is not None and d.get("key") == key and d.get("queue") == mine["queue"]:
            return f"run {run.id[:8]} was already taken by this task (Dask ran it again)"
        run.write_attr(DISPATCH_ATTR, mine)
    return None


def dispatch(run) -> dict | None:
    try:
        v = run.get(DISPATCH_ATTR)
    except Exception:  # noqa: BLE001 - unreadable: as if none
        return None
    return v if isinstance(v, dict) else None


def clear_dispatch(run: Run) -> None:
    """When the run goes back to staged: a later claim dispatches it afresh."""
    attrlib.remove(os.path.join(run.attrs_dir, DISPATCH_ATTR))
    run.refresh()


# -- the machine that holds a run ------------------------------------------------------------

STOP_REQUEST = DASK_STOP  # in .guild: a stop asked from another machine, carried out by the run's runner


def remote_host(run) -> str | None:
    """The other machine that holds ``run`` (its LOCK.remote names it), or
    None when it is held here or not remotely. A run held elsewhere is
    never judged by its pids here: they are that machine's."""
    try:
        host = read_small(run.path(LOCK_REMOTE), 4096)[:256].decode("utf-8", "replace").strip()
    except OSError:
        return None
    return host if host and host != this_host() else None


HEARTBEAT = 5.0  # seconds between touches of LOCK.remote by the run's runner
REMOTE_STALE = 120.0  # seconds without a touch after which the holding machine counts as gone


def heartbeat(run) -> None:
    """The runner's sign of life, seen by every machine through the shared store."""
    try:
        os.utime(run.path(LOCK_REMOTE))
    except OSError:
        pass


def remote_lost(run, now: float | None = None) -> str | None:
    """Why a run held by another machine counts as lost (its runner has not
    touched LOCK.remote for ``REMOTE_STALE`` seconds: the machine, or its
    runner, is gone), or None."""
    import time

    host = remote_host(run)
    if host is None:
        return None
    try:
        age = (time.time() if now is None else now) - os.stat(run.path(LOCK_REMOTE)).st_mtime
    except OSError:
        return None
    if age < REMOTE_STALE:
        return None
    return (f"worker lost: the machine that held the run ({host}) has not been heard from "
            f"for {age:.0f}s; recorded here")


def request_stop(run) -> None:
    """Asks the runner of a run held on another machine to stop it (SIGTERM,
    then SIGKILL past the grace, as a local stop): the store is shared."""
    with open(run.path(STOP_REQUEST), "w") as f:
        f.write(this_host() + "\n")


def stop_requested(run) -> bool:
    return os.path.exists(run.path(STOP_REQUEST))


def clear_stop_request(run) -> None:
    attrlib.remove(run.path(STOP_REQUEST))
