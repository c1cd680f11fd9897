"""What the panel (and the web page) shows: a JSON-able snapshot of a store.

``PanelState(store, probe).snapshot(pages=...)`` answers counts per status,
the queues, runs grouped by status (staged in the order queues start them,
each with why it is still waiting; pending; running; finished, newest
first), a bounded page of each group, the GPUs with the runs on them, and
warnings. Only plain dicts, lists, strings and numbers: it goes to
``json.dumps`` as is.

The panel builds a snapshot every second, so with 10,000 runs it has to be
cheap. Reading one run's attrs costs ~100 µs (1 s for 10,000 runs); a
``stat`` costs ~2 µs. So each run's summary is cached (``RunIndex``, shared
by every panel on a store in this process), keyed on the mtime of its
``.guild`` directory: every status change adds or removes a marker there
(STAGED, PENDING, LOCK) and every write is an atomic rename into it or into
``attrs/`` right before such a marker change, so a changed run has a
changed key. Only changed runs are read again.

Even the stats are skipped most of the time: the store's change token
(which moves when runs are created, stopped, unstaged or deleted) decides
whether every run is stat'ed; otherwise only the runs that can change on
their own are (staged, pending, running, recently written), and a full
pass still happens every ``FULL_SCAN_INTERVAL`` to catch what the token
does not show (e.g. the real ``guild`` CLI editing a finished run).

Mtimes are coarse (a clock tick of a few ms), so a run written within the
last ``SETTLE_NS`` is re-read on every pass until its key has settled.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time

from .engine import policy
from .errors import GuildJupyterError
from .store.run import COMPLETED, ERROR, FINISHED, PENDING, RUNNING, STAGED, STATUSES, TERMINATED, Run
from .store.store import Store, format_flag_value

GROUPS = ("running", "pending", "staged", "finished")
GROUP_STATUSES = {"running": (RUNNING,), "pending": (PENDING,), "staged": (STAGED,), "finished": FINISHED}
ACTIVE = (STAGED, PENDING, RUNNING)

FULL_SCAN_INTERVAL = 10.0  # seconds between passes that stat every run even if the token did not move
SETTLE_NS = 2_000_000_000  # a run written this recently is read again on every pass
GPU_RETRY_INTERVAL = 30.0  # how often to look again for NVML when it was absent
MAX_WARNINGS = 20
DEFAULT_PAGE_SIZE = 10


@dataclasses.dataclass
class RunSummary:
    """What the panel needs of one run, read again only when its key changes.

    ``details`` (flags, gpus, label) is read at once for staged, pending and
    running runs (waiting reasons and GPU use need their GPUs) and, for a
    finished run, only when a page shows it: a big store is mostly finished
    runs, and that saves their first reading almost half its file reads.
    """

    id: str
    dir: str
    key: int | None  # mtime_ns of .guild when read
    status: str
    op: str
    is_queue: bool
    started: int | None
    stopped: int | None
    timestamp: int
    exit_status: object
    queue_id: str | None
    lock_pid: int | None  # pid `guild stop` signals, for running runs
    lock_remote: bool
    warnings: list
    details: dict | None = None

    def index_fields(self) -> tuple:
        return (self.status, self.op, self.is_queue, self.started, self.stopped, self.timestamp,
                self.exit_status, self.queue_id, self.lock_pid, self.lock_remote)

    @property
    def gpus(self) -> str | None:
        """GPU affinity (known for active runs, whose details are always read)."""
        return self.details["gpus"] if self.details else None

    def settling(self, now_ns: int) -> bool:
        return self.key is None or now_ns - self.key < SETTLE_NS


_op_memo: dict = {}  # opref text -> (op name, is queue): most runs of a store share a few


def _op_of(run: Run) -> tuple[str, bool]:
    try:
        with open(run.path("opref"), encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        text = None
    hit = _op_memo.get(text) if text is not None else None
    if hit is not None:
        return hit
    warned = len(run.warnings)
    op = (run.op_name, run.is_queue)
    if text is not None and len(run.warnings) == warned:
        if len(_op_memo) > 1000:
            _op_memo.clear()
        _op_memo[text] = op
    return op


def _details(run: Run) -> dict:
    return {"flags": run.flags, "gpus": run.gpus, "label": run.label}


def read_summary(run_dir: str, key: int | None) -> RunSummary:
    run = Run(run_dir)
    status = run.status
    running = status == RUNNING
    active = status in ACTIVE
    queue_id = run.get("queue_id") if active else None
    op, is_queue = _op_of(run)
    summary = RunSummary(
        id=run.id,
        dir=run_dir,
        key=key,
        status=status,
        op=op,
        is_queue=is_queue,
        started=run.started,
        stopped=run.stopped,
        timestamp=run.timestamp,
        exit_status=run.exit_status,
        queue_id=queue_id if isinstance(queue_id, str) else None,
        lock_pid=run.lock_pid() if running else None,
        lock_remote=running and run.has_marker("LOCK.remote"),
        warnings=[],
        details=_details(run) if active else None,
    )
    summary.warnings = list(run.warnings)
    return summary


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class RunIndex:
    """Cached summaries of every run in a store, brought up to date by
    ``update()``. Thread-safe; one per store per process (``for_store``)."""

    _shared: dict = {}
    _shared_lock = threading.Lock()

    def __init__(self, store: Store):
        self.store = store
        self.entries: dict[str, RunSummary] = {}
        self.version = 0  # moves whenever a run is added, removed or changes status/times
        self.lock = threading.RLock()
        self._token = None
        self._last_full = None
        self._watch: set = set()  # ids to look at on every pass: active or settling runs
        self._warned: dict = {}  # id -> warnings
        self._groups_version = -1
        self._groups: dict = {}
        self._counts: dict = {}
        self.errors: list[str] = []

    @classmethod
    def for_store(cls, store: Store) -> "RunIndex":
        with cls._shared_lock:
            index = cls._shared.get(store.home)
            if index is None:
                index = cls._shared[store.home] = cls(store)
            return index

    # -- bringing the cache up to date ------------------------------------------------

    def update(self, force_full: bool = False) -> bool:
        """Re-reads what changed; returns whether anything did."""
        with self.lock:
            before = self.version
            self.errors = []
            token = self.store.change_token()
            now = time.monotonic()
            full = (
                force_full
                or token != self._token
                or self._last_full is None
                or now - self._last_full >= FULL_SCAN_INTERVAL
            )
            if full:
                self._full_pass(token, now)
            else:
                self._watch_pass()
            self._check_running()
            return self.version != before

    def _full_pass(self, token, now: float) -> None:
        try:
            ids = self.store.run_ids()
        except GuildJupyterError as e:
            self.errors.append(str(e))
            return
        now_ns = time.time_ns()
        # A token written within the settle window may move again without its
        # mtime changing: keep doing full passes until it is older.
        recent = any(isinstance(t, int) and now_ns - t < SETTLE_NS for t in token)
        self._token = None if recent else token
        self._last_full = now
        entries = self.entries
        prefix = self.store.runs_dir + os.sep
        stat = os.stat
        for run_id in ids:  # the hot loop of a 10,000-run store: keep it lean
            try:
                key = stat(prefix + run_id + "/.guild").st_mtime_ns
            except OSError:
                key = None
            old = entries.get(run_id)
            if old is not None and key is not None and old.key == key and now_ns - key >= SETTLE_NS:
                continue
            self._refresh_entry(run_id, old, key, now_ns)
        present = set(ids)
        for run_id in [i for i in entries if i not in present]:
            self._drop(run_id)

    def _watch_pass(self) -> None:
        now_ns = time.time_ns()
        prefix = self.store.runs_dir + os.sep
        for run_id in list(self._watch):
            key = _mtime_ns(prefix + run_id + "/.guild")
            old = self.entries.get(run_id)
            if old is not None and key is not None and old.key == key and now_ns - key >= SETTLE_NS:
                if old.status not in ACTIVE:
                    self._watch.discard(run_id)
                continue
            self._refresh_entry(run_id, old, key, now_ns)

    def _refresh_entry(self, run_id: str, old: RunSummary | None, key: int | None, now_ns: int) -> None:
        if key is None:  # not a run (yet), or gone
            if old is not None:
                self._drop(run_id)
            return
        new = read_summary(self.store.runs_dir + os.sep + run_id, key)
        self.entries[run_id] = new
        if old is None or old.index_fields() != new.index_fields():
            self.version += 1
        if new.status in ACTIVE or new.settling(now_ns):
            self._watch.add(run_id)
        else:
            self._watch.discard(run_id)
        if new.warnings:
            self._warned[run_id] = new.warnings
        else:
            self._warned.pop(run_id, None)

    def _drop(self, run_id: str) -> None:
        self.entries.pop(run_id, None)
        self._watch.discard(run_id)
        self._warned.pop(run_id, None)
        self.version += 1

    def _check_running(self) -> None:
        """A run whose process died without recording an outcome turns to
        ``error`` with no file changing: check the pids of running runs."""
        now_ns = time.time_ns()
        for run_id in list(self._watch):
            e = self.entries.get(run_id)
            if e is None or e.status != RUNNING or e.lock_remote:
                continue
            if not Run(e.dir).lock_pid_alive():
                self._refresh_entry(run_id, e, _mtime_ns(os.path.join(e.dir, ".guild")), now_ns)

    # -- derived views (rebuilt only when something changed) ------------------------------

    def groups(self) -> tuple[dict, dict]:
        """(runs per group in display order, counts per status) for non-queue runs."""
        with self.lock:
            if self._groups_version != self.version:
                by_status = {s: [] for s in STATUSES}
                for e in self.entries.values():
                    if not e.is_queue:
                        by_status.setdefault(e.status, []).append(e)
                staged = sorted(by_status[STAGED], key=lambda e: (e.timestamp, e.id))
                pending = sorted(by_status[PENDING], key=lambda e: (e.timestamp, e.id))
                running = sorted(by_status[RUNNING], key=lambda e: (e.started or e.timestamp, e.id))
                finished = by_status[COMPLETED] + by_status[ERROR] + by_status[TERMINATED]
                finished.sort(key=lambda e: (e.stopped or e.timestamp, e.id), reverse=True)
                self._groups = {"running": running, "pending": pending, "staged": staged, "finished": finished}
                self._counts = {s: len(v) for s, v in by_status.items()}
                self._groups_version = self.version
            return self._groups, self._counts

    def details(self, e: RunSummary) -> dict:
        """Flags, gpus and label of a run (read on first use for finished runs)."""
        if e.details is None:
            run = Run(e.dir)
            e.details = _details(run)
            if run.warnings:
                with self.lock:
                    e.warnings = e.warnings + run.warnings
                    self._warned[e.id] = e.warnings
        return e.details

    def queue_sources(self) -> list[Run]:
        """Fresh views of the runs a queue listing depends on: running queues
        and the runs queues have claimed or started."""
        with self.lock:
            out = []
            for run_id in self._watch:
                e = self.entries.get(run_id)
                if e is not None and (e.status == RUNNING or (e.status == PENDING and not e.is_queue)):
                    out.append(Run(e.dir))
            return out

    def warnings(self) -> list[str]:
        with self.lock:
            out = list(self.errors)
            for w in self._warned.values():
                out.extend(w)
            return out


class _QueueSources:
    """Answers ``runs()`` the way ``queues_view.list_queues`` uses it (every
    queue run and active run), from the index instead of a full listing,
    which would read every run of a 10,000-run store."""

    def __init__(self, runs):
        self._runs = runs

    def runs(self, *args, **kwargs):
        return list(self._runs)


# -- the snapshot ----------------------------------------------------------------------------


class PanelState:
    """Builds snapshots of one store for one viewer (panel or page).

    ``probe``: the GPU probe (``engine.gpus``); default: NVML, or the fake
    GPUs of ``$GUILD_JUPYTER_FAKE_GPUS``. ``page_size`` rows per group.
    """

    def __init__(self, store=None, probe=None, page_size: int = DEFAULT_PAGE_SIZE):
        from .api import resolve_store

        self.store = resolve_store(store)
        self.index = RunIndex.for_store(self.store)
        self.page_size = max(1, int(page_size))
        self._probe = probe
        self._probe_made = probe is not None
        self._gpu_report = None
        self._gpu_read_at = None
        self.lock = threading.Lock()

    # -- GPUs ---------------------------------------------------------------------------------

    def _probe_obj(self):
        if not self._probe_made:
            self._probe_made = True
            try:
                from .engine.gpus import default_probe

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

    # -- snapshot -------------------------------------------------------------------------------

    def snapshot(self, pages: dict | None = None, page_size: int | None = None, refresh: bool = True) -> dict:
        """The JSON-able state of the store. ``pages``: 0-based page per group
        (clamped); ``refresh``: bring the index up to date first."""
        with self.lock:
            if refresh:
                self.index.update()
            return self._build(pages or {}, page_size or self.page_size)

    def _build(self, pages: dict, page_size: int) -> dict:
        now_us = time.time_ns() // 1000
        groups, counts = self.index.groups()
        warnings: list[str] = []
        queues = self._queues(warnings)
        queue_views = [
            policy.QueueView(q["id"], q["gpus"], q["wait_for_running"], q["current"] is not None)
            for q in queues
        ]
        running_others = [e.id for e in groups["running"]]
        out_groups = {}
        for name in GROUPS:
            runs = groups[name]
            total = len(runs)
            npages = max(1, math.ceil(total / page_size))
            page = min(max(0, int(pages.get(name, 0) or 0)), npages - 1)
            start = page * page_size
            rows = [_row(e, self.index.details(e), now_us) for e in runs[start : start + page_size]]
            if name == "staged":
                _add_waiting_reasons(rows, runs, start, queue_views, running_others)
            out_groups[name] = {
                "total": total,
                "page": page,
                "pages": npages,
                "page_size": page_size,
                "first": start + 1 if rows else 0,
                "rows": rows,
            }
        gpus = self._gpus(groups["running"], warnings)
        warnings.extend(self.index.warnings())
        if len(warnings) > MAX_WARNINGS:
            more = len(warnings) - MAX_WARNINGS
            warnings = warnings[:MAX_WARNINGS] + [f"... and {more} more warning(s)"]
        counts = {s: counts.get(s, 0) for s in STATUSES}
        counts["total"] = sum(counts.values())
        counts["queues"] = len(queues)
        return {
            "store": self.store.home,
            "time": now_us,
            "counts": counts,
            "queues": queues,
            "groups": out_groups,
            "gpus": gpus,
            "warnings": warnings,
        }

    def _queues(self, warnings: list) -> list[dict]:
        from . import api
        from .queues_view import list_queues

        try:
            # api keeps this process's queue threads; their handles know the run
            # they wait for before the store shows it.
            infos = list_queues(_QueueSources(self.index.queue_sources()), api._thread_queues)
        except Exception as e:  # noqa: BLE001 - one broken queue run never hides the panel
            warnings.append(f"cannot list queues: {type(e).__name__}: {e}")
            return []
        out = []
        for q in sorted(infos, key=lambda q: (q.gpus or "", q.id)):
            out.append(
                {
                    "id": q.id,
                    "short_id": q.id[:8],
                    "host": q.host,
                    "this_process": bool(q.this_process),
                    "pid": q.pid,
                    "gpus": q.gpus,
                    "wait_for_running": bool(q.wait_for_running),
                    "run_once": bool(q.run_once),
                    "state": q.state,
                    "current": q.current,
                    "current_short": q.current[:8] if q.current else None,
                }
            )
        return out

    def _gpus(self, running: list[RunSummary], warnings: list) -> dict:
        gpus, error = self._read_gpus()
        devices = []
        by_pid = None
        for g in gpus:
            index = getattr(g, "index", None)
            uuid = getattr(g, "uuid", None)
            on_gpu = []
            for e in running:
                gpus_of = self.index.details(e)["gpus"]
                if gpus_of and _gpu_spec_has(gpus_of, index, uuid):
                    on_gpu.append({"id": e.id, "short_id": e.id[:8], "op": e.op, "via": "affinity"})
            pids = [int(p) for p in (getattr(g, "pids", None) or [])]
            if pids:
                if by_pid is None:
                    by_pid = {e.lock_pid: e for e in running if e.lock_pid}
                for pid in pids:
                    e = _run_of_pid(pid, by_pid)
                    if e is not None and all(r["id"] != e.id for r in on_gpu):
                        on_gpu.append({"id": e.id, "short_id": e.id[:8], "op": e.op, "via": "process"})
            devices.append(
                {
                    "index": index,
                    "name": _jsonable(getattr(g, "name", None)),
                    "uuid": _jsonable(uuid),
                    "memory_used": _jsonable(getattr(g, "memory_used", None)),
                    "memory_total": _jsonable(getattr(g, "memory_total", None)),
                    "utilization": _jsonable(getattr(g, "utilization", None)),
                    "pids": pids,
                    "runs": on_gpu,
                }
            )
        if error and gpus:
            warnings.append(f"GPUs: {error}")
        return {"available": bool(devices), "error": None if devices else (error or "no NVIDIA GPU found"), "devices": devices}


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


def _row(e: RunSummary, details: dict, now_us: int) -> dict:
    if e.status == RUNNING and e.started:
        elapsed = max(0.0, (now_us - e.started) / 1e6)
    elif e.status in FINISHED and e.started and e.stopped:
        elapsed = max(0.0, (e.stopped - e.started) / 1e6)
    else:
        elapsed = None
    return {
        "id": e.id,
        "short_id": e.id[:8],
        "op": e.op,
        "status": e.status,
        "flags": _jsonable(details["flags"]),
        "flags_text": " ".join(f"{k}={format_flag_value(v)}" for k, v in sorted(details["flags"].items())),
        "gpus": details["gpus"],
        "label": details["label"],
        "started": e.started,
        "stopped": e.stopped,
        "elapsed": elapsed,
        "exit_status": _jsonable(e.exit_status),
        "queue": e.queue_id,
        "waiting": None,
        "position": None,
    }


def _jsonable(v):
    """Plain JSON values: non-finite floats become strings, unknown objects their str."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


__all__ = ["PanelState", "RunIndex", "RunSummary", "GROUPS", "read_summary"]
