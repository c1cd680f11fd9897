"""A queue host's ``RunStarter`` that runs claimed runs on a Dask cluster.

The queue's loop (``loop.QueueLoop``) claims a run under the run-status
lock as for a local start; ``DaskStarter.start`` then submits one task for
it (key: the run id, no retries, not pure) that runs :mod:`.runner` on a
worker. Placement: a run pinned to GPUs or asking for ``auto`` GPUs needs
Dask resources ``{"GPU": n}`` (``dask worker --resources GPU=1``, one worker
per GPU with its own ``CUDA_VISIBLE_DEVICES``); unpinned runs go anywhere.
Policy sees every run as unpinned (``places_gpus``): the cluster, not the
queue's GPU list, decides where GPU runs go.

When a task ends without a normal report (its worker died, the client lost
the scheduler), ``DaskHandle.settle`` settles the run through
``transitions``: still pending under the queue's claim and not taken by a
runner -> back to staged; taken by a runner that is alive -> left to it
(it starts it, or returns it to staged if its worker went first); taken and
never started within ``RUNNER_GRACE`` -> ``error``; running with no live
holder -> ``error`` "worker lost".

Dask is imported here only, when a Dask queue starts."""

from __future__ import annotations

import os
import threading
import time

from ...errors import BadInput, GuildJupyterError
from ...execution.control import retry_copy_spec
from ...procs import Identity
from ...store import dask_records, transitions
from ...store.markers import LOCK_REMOTE
from ...store.run import LOCK, PENDING_MARKER, RUNNING, Run
from ..flags import BY_NAME
from ..starters import RunStarter
from .config import gpu_count, gpu_shortage, local_workers, require_dask
from .task import run_on_worker

CONNECT_TIMEOUT = 5.0  # seconds: an unreachable scheduler is reported within this
INFO_TTL = 1.0  # seconds between reads of the cluster's workers
RUNNER_GRACE = 60.0  # seconds a runner that took a run may take to start it (launch waits up to 30)
PLACE_BOUND = 10.0  # seconds a claimed run may wait for a worker before its claim is given back
RECONNECT_EVERY = 2.0  # seconds between tries to reach a scheduler that went away
NO_WORKER = "the Dask cluster has no worker"
#: An embedded cluster's workers each run one task at a time, a run's
#: runner that only waits (the run is a process of its own): what Dask does
#: for tasks that compute in the worker costs CPU every run, which on a small
#: machine its runs lack. No statistical profiler sampling each worker every
#: 10 ms, event-loop and system checks every second or two instead of every
#: 20 ms and 0.5 s; no memory monitor either (``memory_limit=0``: a worker
#: holds no data, its run's memory is the run's own process's). An idle
#: 4-worker cluster then uses ~3-6 % of a core instead of ~19 %, and a task
#: ~5-6 ms of the workers' CPU instead of ~11 (measured on 2 cores). No work
#: stealing either: a run is submitted only when a worker thread is free for
#: it, so there is never a task to move, only the bookkeeping of every one.
EMBEDDED_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.scheduler.work-stealing": False,
}
ALL_BUSY = "every Dask worker is busy"


class DaskStarter(RunStarter):
    """Connects to (or, for ``local:N``, starts) a cluster; ``bind`` ties it
    to the queue loop that uses it; ``close`` lets go of it."""

    places_gpus = True  # policy sees every run as unpinned: resources place GPU runs

    @property
    def runs_end_with_queue(self) -> bool:
        """An embedded cluster closes with the queue, and its runs end ("worker lost")."""
        return self.cluster is not None

    def __init__(self, store, address: str):
        require_dask()
        import dask
        from distributed import Client

        self.store = store
        self.address = address
        self.cluster = None
        self.loop = None  # the QueueLoop, once bound
        self._keys: set = set()
        self._handles: list = []
        self._info: dict | None = None
        self._info_at = 0.0
        self._written = None
        self._lock = threading.Lock()
        self.max_running = None  # given: the queue's slots are fixed; else one per worker thread
        self.waiting: str | None = None  # why no run can be placed now (logged, shown in the queue's row)
        self._lost_at: float | None = None  # when the scheduler went away (None: connected)
        self._tried_at = 0.0
        self._processing: set = set()  # task keys the workers hold, as last read
        n = local_workers(address)
        try:
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                if n is not None:
                    from distributed import LocalCluster

                    with dask.config.set(EMBEDDED_CONFIG):  # the nannies hand it to their workers
                        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                    host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                                    memory_limit=0)
                    self.client = Client(self.cluster, set_as_default=False)
                else:
                    self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as e:
            if self.cluster is not None:
                self.cluster.close()
            raise BadInput(f"cannot reach the Dask scheduler at {address}: {e}") from None
        self._register_plugin()

    def _register_plugin(self) -> None:
        """Each worker (those joining later too) starts its launcher as it
        joins: its runs fork from a warm process from the first one on."""
        try:
            from .plugin import LauncherPlugin  # lazy: imports distributed, as this module's users do

            self.client.register_plugin(LauncherPlugin(), name=LauncherPlugin.name)
        except Exception:  # noqa: BLE001 - each worker's first task starts its launcher then
            pass

    # -- the queue loop's side -------------------------------------------------------------

    @property
    def slot_count(self) -> int:
        """Runs the queue keeps going at once: the cluster's worker threads."""
        info = self.cluster_info(force=True)
        return max(1, sum(w["nthreads"] for w in info["workers"]))

    def bind(self, loop) -> None:
        self.loop = loop
        self.claim_owner = loop.claim_owner  # the claims the queue makes are this identity's
        self._write_info(force=True)

    def log(self, msg: str) -> None:
        if self.loop is not None:
            self.loop.log(msg)

    def cannot_start(self, run: Run) -> str | None:
        need = gpu_count(run.gpus)
        if not need:
            return None  # unpinned: any worker
        try:
            workers = self.cluster_info()["workers"]
        except Exception as e:  # noqa: BLE001 - the scheduler is away: the run waits, with the reason
            return f"cannot read the Dask cluster's workers ({type(e).__name__}: {e})"
        short = gpu_shortage(run.gpus, workers)
        if short:
            return short
        # A GPU worker with a free thread now, or the claim would only wait in the scheduler.
        if not any(float((w.get("resources") or {}).get("GPU", 0) or 0) >= need
                   and w["nthreads"] > len(w["runs"]) for w in workers):
            return "every Dask worker with GPU resources is busy"
        return None

    def capacity(self) -> int | None:
        """Runs a worker can take now: free worker threads (as the scheduler
        last said, and again after each of our runs ends) less our runs
        submitted and not yet on a worker. 0 while the scheduler is away.
        Logs each change of why nothing can be placed."""
        why = None
        n = 0
        if not self._connected():
            why = f"the Dask scheduler at {self.address} is not reachable; reconnecting"
        else:
            try:
                workers = self.cluster_info()["workers"]
            except Exception as e:  # noqa: BLE001 - the scheduler went away meanwhile
                workers, why = [], f"cannot read the Dask cluster's workers ({type(e).__name__}: {e})"
            if not workers:
                why = why or NO_WORKER
            else:
                free = sum(max(0, w["nthreads"] - len(w["runs"])) for w in workers)
                unplaced = sum(1 for h in self._handles if not h._settled and h.key not in self._processing
                               and not h.future.done())
                n = max(0, free - unplaced)
                if n == 0:
                    why = ALL_BUSY
        self._set_waiting(why)
        return n

    def wanted_slots(self) -> int | None:
        """Without ``max-running``: one slot per worker thread of the cluster
        as it is now (workers come and go), at least one."""
        if self.max_running is not None:
            return None
        try:
            return max(1, sum(w["nthreads"] for w in self.cluster_info()["workers"]))
        except Exception:  # noqa: BLE001 - away: keep the slots as they are
            return None

    def forget_task(self, key: str) -> None:
        """A task of ours ended: its worker thread is free in the picture
        ``capacity`` reads until the scheduler is read again."""
        with self._lock:
            self._processing.discard(key)
            if self._info is not None:
                run_id = key.split("-")[0]
                for w in self._info["workers"]:
                    if run_id in w["runs"]:
                        w["runs"] = [r for r in w["runs"] if r != run_id]

    def _set_waiting(self, why: str | None) -> None:
        if why == self.waiting:
            return
        busy_only = why in (None, ALL_BUSY) and self.waiting in (None, ALL_BUSY)
        if why is not None and why != ALL_BUSY:
            self.log(f"Waiting: {why}")
        elif why is None and self.waiting not in (None, ALL_BUSY):
            self.log("Dask workers can take runs again")
        self.waiting = why
        try:  # busy <-> free, as runs come and go: in the row at the next read (no scheduler call now)
            self._write_info(force=not busy_only)
        except Exception:  # noqa: BLE001 - a picture of the cluster never stops the queue
            pass

    def _connected(self) -> bool:
        """Whether the client is connected; after a scheduler restart, tries
        again every ``RECONNECT_EVERY`` seconds (the client's own reconnect
        gives up after ``CONNECT_TIMEOUT``), logs both ends of the outage,
        and gives back the claims of runs no runner took."""
        status = getattr(self.client, "status", "closed")
        now = time.monotonic()
        if status == "running":
            if self._lost_at is not None:
                self.log(f"Reconnected to the Dask scheduler at {self.address} "
                         f"after {now - self._lost_at:.0f}s")
                self._lost_at = None
                self._register_plugin()
                self._info = None
            return True
        if self._lost_at is None:
            self._lost_at = now
            self.log(f"Lost the Dask scheduler at {self.address} ({status}); runs it had not started go back "
                     "to staged; reconnecting")
            self._give_back_all("the Dask scheduler went away")
        if self.cluster is None and status in ("closed", "closing", "failed", "newly-created") \
                and now - self._tried_at >= RECONNECT_EVERY:
            self._tried_at = now
            self._reconnect()
            return getattr(self.client, "status", "closed") == "running" and self._connected()
        return False

    def _reconnect(self) -> None:
        from distributed import Client  # lazy: loaded with this module's first client anyway

        try:
            client = Client(self.address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except Exception:  # noqa: BLE001 - still away: tried again later
            return
        old, self.client = self.client, client
        try:
            old.close(timeout=1)
        except Exception:  # noqa: BLE001
            pass

    def _give_back_all(self, why: str) -> None:
        for h in self._handles:
            if not h._settled:
                try:
                    h.settle(force=True, why=why)
                except Exception as e:  # noqa: BLE001 - the next pass's recovery settles it
                    self.log(f"Run {h.run.id}: cannot settle it yet ({e})")

    def start(self, run: Run) -> "DaskHandle":
        need = gpu_count(run.gpus)
        key = run.id
        n = 1
        while key in self._keys:  # a run returned to staged and claimed again: a new task
            n += 1
            key = f"{run.id}-{n}"
        self._keys.add(key)
        try:
            fut = self.client.submit(run_on_worker, run.dir, self.claim_owner.as_record(), need, key,
                                     key=key, pure=False, retries=0,
                                     resources={"GPU": need} if need else None)
        except Exception as e:  # noqa: BLE001 - the loop returns the run to staged and retries
            raise GuildJupyterError(f"cannot submit to the Dask scheduler: {e}") from None
        if self.loop is not None:  # the queue's loop wakes as the task ends, not at its next look
            fut.add_done_callback(lambda _f: self.loop.wake.set())
        handle = DaskHandle(self, run, fut, key)
        self._handles = [h for h in self._handles if not h._settled] + [handle]
        return handle

    def close(self) -> None:
        """Runs submitted but not started go back to staged (the cluster
        would otherwise keep them pending for a queue that is gone); runs
        going keep running on their workers (an embedded cluster ends with
        this process, and with it its runs: "worker lost")."""
        for h in self._handles:
            if h.future.done():
                continue
            h.future.cancel()
            h.settle(force=True)
        try:
            self._write_info(force=True, closed=True)
        except Exception:  # noqa: BLE001 - the queue's end matters more than its last picture
            pass
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001
            pass
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=10)
            except Exception:  # noqa: BLE001
                pass

    # -- the cluster, as panels show it -------------------------------------------------------

    def cluster_info(self, force: bool = False) -> dict:
        now = time.monotonic()
        with self._lock:
            if force or self._info is None or now - self._info_at > INFO_TTL:
                self._info = self._read_info()
                self._info_at = now
            return self._info

    def _read_info(self) -> dict:
        status = getattr(self.client, "status", "closed")
        if status != "running":  # a call would wait for a scheduler that is away
            raise GuildJupyterError(f"the Dask client is {status}")
        info = self.client.scheduler_info()
        try:
            processing = self.client.processing()
        except Exception:  # noqa: BLE001
            processing = {}
        self._processing = {str(k) for keys in processing.values() for k in keys}
        workers = []
        for addr, w in sorted(info.get("workers", {}).items()):
            keys = [str(k) for k in processing.get(addr, ())]
            workers.append({
                "name": str(w.get("name", addr)),
                "address": addr,
                "host": w.get("host") or addr.split("://")[-1].rsplit(":", 1)[0],
                "nthreads": int(w.get("nthreads", 1) or 1),
                "resources": dict(w.get("resources") or {}),
                "runs": [k.split("-")[0] for k in keys],
            })
        return {"address": self.client.scheduler.address if self.cluster is not None else self.address,
                "requested": self.address,
                "dashboard": self._dashboard(),
                "workers": workers}

    def _dashboard(self) -> str | None:
        try:
            link = self.client.dashboard_link
        except Exception:  # noqa: BLE001
            return None
        return link or None

    def _write_info(self, force: bool = False, closed: bool = False) -> None:
        """Records the cluster in the queue run when it changed; between two
        reads of the scheduler (``INFO_TTL``) nothing can have changed."""
        if self.loop is None:
            return
        if not force and self._written is not None and time.monotonic() - self._info_at <= INFO_TTL:
            return
        try:
            info = dict(self.cluster_info(force=force))
        except Exception:  # noqa: BLE001 - the scheduler is away: the row says so
            info = {"address": self.address, "requested": self.address, "dashboard": None, "workers": []}
        info.update(closed=closed, host=dask_records.this_host(), waiting=self.waiting,
                    connected=self._lost_at is None)
        if info != self._written:
            dask_records.write_cluster(self.loop.run, info)
            self._written = info


class DaskHandle:
    """A run submitted to the cluster (``RunHandle``)."""

    def __init__(self, starter: DaskStarter, run: Run, future, key: str):
        self.starter = starter
        self.key = key
        self.run = run
        self.future = future
        self._settled = False
        self._reported = False
        self.submitted = time.monotonic()
        self.placed = False  # a worker took the task (it runs the run's runner)

    def done(self) -> bool:
        try:
            self.starter._write_info()
        except Exception:  # noqa: BLE001 - a picture of the cluster never stops a run's end
            pass
        if self._settled:
            return True
        if not self.future.done():
            if self.key in self.starter._processing:
                self.placed = True
            elif not self.placed and time.monotonic() - self.submitted > PLACE_BOUND:
                # No worker took it: the claim goes back, so any queue (a local one too) may start it.
                self.future.cancel()
                return self.settle(force=True, why=f"no Dask worker took it within {PLACE_BOUND:g}s")
            return False
        return self.settle()

    def settle(self, force: bool = False, why: str | None = None) -> bool:
        """After the task ended (or, with ``force``, when the queue lets the
        task go: ``why``): makes sure the run is not left claimed or running
        with nothing behind it. True once the run needs nothing more from us."""
        # The task's result is asked of the client only where it decides
        # something (a call through the client's event loop: milliseconds
        # between a run's end and the next claim); a run that ended as it
        # should needs none of it.
        known = {} if why is None else {"r": {"result": "error", "why": why}}

        def result() -> dict:
            if "r" not in known:
                known["r"] = self._result()
            return known["r"]

        finished = getattr(self.future, "status", None) == "finished"
        if not finished:
            result()  # a failed or lost task: its error is here already; read before taking the lock
        store = self.starter.store
        run = self.run.refresh()
        if finished and why is None and _ended_and_let_go(run):
            # What the lock would find: nothing left to settle. Not taking it
            # spares the next claim (and the other runs' starts) a wait.
            return self._done()
        owner = self.starter.claim_owner
        with store.lock():
            run.refresh()
            status = run.status
            pending = os.path.exists(run.path(PENDING_MARKER))  # (LOCK.remote shows it running already)
            c = transitions.read_claim(run) if pending else None
            if isinstance(c, transitions.Claim) and c.owner == owner:
                d = dask_records.dispatch(run)
                taken = d is not None and d.get("key") == self.key and d.get("queue") == owner.as_record()
                if not taken:
                    why = result().get("why") if result().get("result") == "error" else None
                    if why and not force:  # e.g. the worker cannot see the run directory
                        transitions.record_start_failure(store, run, why)
                        self.starter.log(f"Run {run.id} could not start on the cluster: {why}")
                    else:
                        transitions.return_to_staged(store, run)
                        dask_records.clear_dispatch(run)
                        self.starter.log(f"Returned run {run.id} to staged ({result().get('why') or 'not started'})")
                elif force:
                    return True  # its runner starts it; the queue's claim holds while this process lives
                else:
                    runner = Identity.from_record(d)
                    if d.get("host") == dask_records.this_host() and runner is not None and runner.alive():
                        return False  # its runner is starting it: it reports, or ends it
                    if time.time() - float(d.get("at") or 0) < RUNNER_GRACE:
                        return False
                    transitions.record_start_failure(
                        store, run, "worker lost: its Dask runner took the run and never started it")
                    self.starter.log(f"Run {run.id}: its Dask runner never started it; recorded as error")
            elif not pending and (status == RUNNING or (run.get("exit_status") is None
                                                        and os.path.exists(run.path(LOCK)))):
                elsewhere = dask_records.remote_host(run)
                if not elsewhere and run.lock_holder() is not None:
                    return False  # its runner ends it when its worker goes
                if elsewhere and result().get("result") != "lost":
                    return False  # held on that machine by a live task's runner: it records the outcome
                transitions.settle_dead(store, run, 1, "worker lost: the run's Dask worker went away and "
                                                       "its supervisor is gone", retry=retry_copy_spec)
                self.starter.log(f"Run {run.id}: worker lost; recorded as error")
        return self._done()

    def _done(self) -> bool:
        self._settled = True
        # Its worker thread is free: counted so at once (the scheduler is read
        # again within INFO_TTL, and panels then stop showing the run there).
        self.starter.forget_task(self.key)
        return True

    def _result(self) -> dict:
        if not self.future.done():
            return {"result": "error", "why": "the queue stopped before the run started"}
        try:
            r = self.future.result(timeout=1)
            return r if isinstance(r, dict) else {"result": "error", "why": repr(r)}
        except Exception as e:  # noqa: BLE001 - KilledWorker, CancelledError, a lost scheduler
            if type(e).__name__ == "KilledWorker":
                return {"result": "lost", "why": "its Dask worker died before starting it"}
            return {"result": "lost", "why": f"{type(e).__name__}: {str(e).split('. ')[0]}"[:200]}


def _ended_and_let_go(run: Run) -> bool:
    """The run's outcome is recorded and nothing holds it (no claim, no
    LOCK here or elsewhere): final, whatever a task's end could say. Read
    without the lock: an outcome is written before LOCK goes, and a run
    taken up again (a restart) shows a marker or no outcome."""
    if run.get("exit_status") is None:
        return False
    return not any(os.path.exists(run.path(m)) for m in (PENDING_MARKER, LOCK, LOCK_REMOTE))


def loop_options(store, config) -> dict:
    """What a host passes its ``QueueLoop`` for ``config``: nothing for a
    local queue; for a Dask queue its starter (connected now: an unreachable
    scheduler is a BadInput before anything is claimed) and one slot per
    worker thread of the cluster (or ``max-running``)."""
    address = getattr(config, "dask", None)
    if not address:
        return {}
    starter = DaskStarter(store, address)
    starter.max_running = config.max_running
    try:
        # A huge cluster's threads count as max-running's bound: the queue run records n as max-running.
        n = config.max_running or min(starter.slot_count, BY_NAME["max-running"].maximum)
    except Exception:
        starter.close()
        raise
    return {"starter": starter, "slots": n}
