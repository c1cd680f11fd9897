"""What a store is doing now, as plain data: the panel's, the ``/guild``
page's and the REST API's one source (``api.monitor()``).

``StoreMonitor.snapshot(pages=...)`` answers counts per status, the queues,
the runs grouped as the viewers show them — running (by start), pending and
staged (in the order queues start them, each staged run with why it still
waits), finished (most recently ended first) — a bounded page of each group,
the GPUs with the runs on them, and warnings. Only dicts, lists, strings and
numbers (rows are ``views.run_row`` / ``views.queue_row``): it goes to
``json.dumps`` as is. It reads the store through the one listing index
(``store.index``), so a refresh of a big store costs a few stats, and what
the real ``guild`` CLI changes (a label, a removed or restored run) shows on
the next refresh.
"""

from __future__ import annotations

import math
import threading
import time

from . import views
from .queueing import policy
from .queueing.dask.config import note_gpu_shortage, policy_gpus
from .queueing.status import list_queues
from .store.index import RunIndex
from .store.run import COMPLETED, ERROR, PENDING, RUNNING, STAGED, TERMINATED

__all__ = ["StoreMonitor", "GROUPS", "GROUP_ORDER", "DEFAULT_PAGE_SIZE"]

GROUPS = ("running", "pending", "staged", "finished")
#: What each group is ordered by, hence which time its rows show (views.run_row).
GROUP_ORDER = {"running": "started", "pending": "started", "staged": "started", "finished": "ended"}
GPU_RETRY_INTERVAL = 30.0  # how often to look again for NVML when it was absent
MAX_WARNINGS = 20
DEFAULT_PAGE_SIZE = 10


class StoreMonitor:
    """Snapshots of one store for one viewer (a panel, the server).

    ``probe``: the GPU probe (default: NVML, or the fake GPUs of
    ``$GUILD_JUPYTER_FAKE_GPUS``); ``handles``: a callable giving this
    process's queue handles (``api.queue_registry.list``); ``scalar``: the
    scalar run rows show (None: ``loss``, else each run's first)."""

    def __init__(self, store, probe=None, page_size: int = DEFAULT_PAGE_SIZE, handles=None, scalar=None):
        self.store = store
        self.scalar = scalar  # the scalar run rows show (views.main_scalar)
        self.index = RunIndex.for_store(store)
        self.page_size = max(1, int(page_size))
        self._handles = handles or (lambda: [])
        self._probe = probe
        self._probe_made = probe is not None
        self._gpu_report = None
        self._gpu_read_at = None
        self._groups_version = -1
        self._groups: dict = {}
        self._counts: dict = {}
        self.lock = threading.Lock()

    # -- runs ----------------------------------------------------------------------------------

    def update(self) -> bool:
        """Brings the index up to date; returns whether anything changed."""
        return self.index.update()

    def status(self, run_id: str) -> str | None:
        """A run's status as last read (None: no such run)."""
        with self.index.lock:
            e = self.index.entries.get(run_id)
            return None if e is None else views.status_of(e.run())

    def grouped(self) -> tuple[dict, dict]:
        """(entries per group in display order, counts per status), rebuilt
        only when the index changed."""
        index = self.index
        with index.lock:
            if self._groups_version != index.version:
                by_status = {s: [] for s in views.DISPLAY_STATUSES}
                unstaged = 0
                for e in index.entries.values():
                    if not e.is_queue:
                        by_status.setdefault(e.status, []).append(e)
                        if e.status == TERMINATED and e.values.get("unstaged") is True:
                            unstaged += 1
                staged = sorted(by_status[STAGED], key=lambda e: (e.timestamp, e.id))
                pending = sorted(by_status[PENDING], key=lambda e: (e.timestamp, e.id))
                running = sorted(by_status[RUNNING], key=lambda e: (e.started or e.timestamp, e.id))
                finished = by_status[COMPLETED] + by_status[ERROR] + by_status[TERMINATED]
                finished.sort(key=lambda e: (e.stopped or e.timestamp, e.id), reverse=True)
                self._groups = {"running": running, "pending": pending, "staged": staged, "finished": finished}
                counts = {s: len(v) for s, v in by_status.items()}
                counts[TERMINATED] -= unstaged
                counts[views.UNSTAGED] = unstaged
                self._counts = counts
                self._groups_version = index.version
            return self._groups, self._counts

    def list_runs(self, statuses=(), op=None, label=None, limit: int = 100, offset: int = 0) -> dict:
        """One page of runs, newest first (Guild's order, so rows show when
        they started), filtered as ``api.runs`` filters."""
        index = self.index
        index.update()
        now_us = time.time_ns() // 1000
        with index.lock:
            entries = [e for e in index.entries.values() if not statuses or e.status in statuses]
        if op:
            entries = [e for e in entries if op in e.op]
        if label:
            entries = [e for e in entries if label in e.label]
        entries.sort(key=lambda e: (e.timestamp, e.id), reverse=True)
        runs = [e.run() for e in entries[offset: offset + limit]]
        varying = views.varying_flags([r.flags for r in runs])
        return {"total": len(entries), "offset": offset, "limit": limit, "varying": varying,
                "runs": [views.run_row(r, now_us=now_us, varying=varying, scalar=self.scalar) for r in runs]}

    # -- snapshot --------------------------------------------------------------------------------

    def snapshot(self, pages: dict | None = None, page_size: int | None = None, refresh: bool = True) -> dict:
        """The JSON-able state of the store. ``pages``: 0-based page per group
        (clamped); ``refresh``: bring the index up to date first."""
        with self.lock:
            if refresh:
                self.index.update()
            return self._build(pages or {}, page_size or self.page_size)

    def _build(self, pages: dict, page_size: int) -> dict:
        now_us = time.time_ns() // 1000
        groups, counts = self.grouped()
        warnings: list[str] = []
        queues = self._queues(warnings)
        # busy: every slot of the queue holds a run (a max-running=N queue has N)
        queue_views = [policy.QueueView(q["id"], policy_gpus(q), q["wait_for_running"],
                                        q["slots"]["used"] >= max(1, q["slots"]["total"])) for q in queues]
        running_others = [e.id for e in groups["running"]]
        out_groups = {}
        for name in GROUPS:
            entries = groups[name]
            total = len(entries)
            npages = max(1, math.ceil(total / page_size))
            page = min(max(0, int(pages.get(name, 0) or 0)), npages - 1)
            start = page * page_size
            runs = [e.run() for e in entries[start: start + page_size]]
            varying = views.varying_flags([r.flags for r in runs])
            rows = [views.run_row(r, now_us=now_us, varying=varying, order=GROUP_ORDER[name], short_time=True,
                                  scalar=self.scalar) for r in runs]
            if name == "staged":
                _add_waiting_reasons(rows, entries, start, queue_views, running_others)
                note_gpu_shortage(rows, queues)  # Dask queues: no worker with GPU resources
            out_groups[name] = {
                "total": total, "page": page, "pages": npages, "page_size": page_size,
                "first": start + 1 if rows else 0, "rows": rows, "varying": varying,
                "time_kind": "ended" if name == "finished" else ("staged" if name in ("staged", "pending") else "started"),
            }
        gpus = self._gpus(groups["running"], warnings)
        warnings.extend(self.index.warnings())
        if len(warnings) > MAX_WARNINGS:
            more = len(warnings) - MAX_WARNINGS
            warnings = warnings[:MAX_WARNINGS] + [f"... and {more} more warning(s)"]
        counts = {s: counts.get(s, 0) for s in views.DISPLAY_STATUSES}
        counts["total"] = sum(counts.values())
        counts["queues"] = len(queues)
        return {"store": self.store.home, "time": now_us, "counts": counts, "queues": queues,
                "groups": out_groups, "gpus": gpus, "warnings": warnings}

    def _queues(self, warnings: list) -> list[dict]:
        try:
            runs = [e.run() for e in self.index.active()]
            infos = list_queues(runs, self._handles())
        except Exception as e:  # noqa: BLE001 - one broken queue run never hides the panel
            warnings.append(f"cannot list queues: {type(e).__name__}: {e}")
            return []
        return [views.queue_row(q) for q in sorted(infos, key=lambda q: (q.gpus or "", q.id))]

    # -- GPUs ---------------------------------------------------------------------------------

    def _probe_obj(self):
        if not self._probe_made:
            self._probe_made = True
            try:
                # lazy: NVML's module loads with the panel's first GPU read
                from .gpus.nvml import default_probe

                self._probe = default_probe()
            except Exception as e:  # noqa: BLE001 - never let GPU probing break the panel
                self._probe = _BrokenProbe(f"GPU probing unavailable: {type(e).__name__}: {e}")
        return self._probe

    def _read_gpus(self):
        """(gpus, error); NVML's absence is a state, never an exception. A
        failed probe is retried every GPU_RETRY_INTERVAL, not every refresh."""
        now = time.monotonic()
        report = self._gpu_report
        if report is not None and report[1] and now - self._gpu_read_at < GPU_RETRY_INTERVAL:
            return report
        try:
            r = self._probe_obj().read()
            gpus, error = list(getattr(r, "gpus", None) or []), getattr(r, "error", None)
        except Exception as e:  # noqa: BLE001
            gpus, error = [], f"{type(e).__name__}: {e}"
        self._gpu_report = (gpus, None if error is None else str(error))
        self._gpu_read_at = now
        return self._gpu_report

    def _gpus(self, running: list, warnings: list) -> dict:
        gpus, error = self._read_gpus()
        devices = []
        by_pid = None
        for g in gpus:
            index = getattr(g, "index", None)
            uuid = getattr(g, "uuid", None)
            on_gpu = []
            for e in running:
                if e.gpus and _gpu_spec_has(e.gpus, index, uuid):
                    on_gpu.append({"id": e.id, "short_id": e.id[:8], "op": e.op, "via": "affinity"})
            pids = [int(p) for p in (getattr(g, "pids", None) or [])]
            if pids:
                if by_pid is None:
                    by_pid = {e.lock_pid: e for e in running if e.lock_pid}
                for pid in pids:
                    e = _run_of_pid(pid, by_pid)
                    if e is not None and all(r["id"] != e.id for r in on_gpu):
                        on_gpu.append({"id": e.id, "short_id": e.id[:8], "op": e.op, "via": "process"})
            devices.append({
                "index": index,
                "name": views.jsonable(getattr(g, "name", None)),
                "uuid": views.jsonable(uuid),
                "memory_used": views.jsonable(getattr(g, "memory_used", None)),
                "memory_total": views.jsonable(getattr(g, "memory_total", None)),
                "utilization": views.jsonable(getattr(g, "utilization", None)),
                "pids": pids,
                "runs": on_gpu,
            })
        if error and gpus:
            warnings.append(f"GPUs: {error}")
        return {"available": bool(devices), "error": None if devices else (error or "no NVIDIA GPU found"),
                "devices": devices}


class _BrokenProbe:
    def __init__(self, error: str):
        self.error = error

    def read(self):
        return self

    gpus: list = []


def _gpu_spec_has(spec: str, index, uuid) -> bool:
    for part in str(spec).split(","):
        part = part.strip()
        if part and (part == str(index) or (uuid and part == uuid)):
            return True
    return False


def _run_of_pid(pid: int, by_pid: dict):
    """The running run whose supervisor is ``pid`` or one of its ancestors."""
    import psutil

    seen = 0
    while pid and seen < 32:
        e = by_pid.get(pid)
        if e is not None:
            return e
        try:
            pid = psutil.Process(pid).ppid()
        except (psutil.Error, ValueError):
            return None
        seen += 1
    return None


def _add_waiting_reasons(rows, staged, start, queues, running_others) -> None:
    """Why each staged run on the page waits. ``ahead``: the older staged
    runs that a queue serving this run would start first (the fewest over the
    queues that serve it)."""
    if not rows:
        return
    counts: dict = {}  # gpus -> staged runs before the current one
    end = start + len(rows)
    for i, e in enumerate(staged[:end]):
        if i >= start:
            serving = [q for q in queues if policy.gpu_mismatch(e.gpus, q.gpus) is None]
            free = [q for q in serving if not q.busy] or serving
            ahead = min((_startable_count(counts, q.gpus) for q in free), default=0)
            reason = policy.waiting_reason(policy.StagedRun(e.id, e.gpus, e.timestamp), queues, running_others, ahead)
            row = rows[i - start]
            row["waiting"] = reason
            row["position"] = i + 1
        counts[e.gpus] = counts.get(e.gpus, 0) + 1


def _startable_count(counts: dict, queue_gpus) -> int:
    """Staged runs (by GPU affinity) a queue serving ``queue_gpus`` could start."""
    if queue_gpus is None:
        return counts.get(None, 0)
    return counts.get(None, 0) + counts.get(queue_gpus, 0)
