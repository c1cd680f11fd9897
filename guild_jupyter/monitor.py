"""What a store is doing now, as plain data: the panel's, the ``/guild``
page's, the sidebar's and the REST API's one source (``api.monitor()``).

``StoreMonitor.snapshot(pages=...)`` answers counts per status, the queues,
the runs grouped as every viewer shows them (``views.GROUPS``: running by
start; pending and staged in the order queues start them -- highest
priority, then oldest -- each staged run with its place in line and why it
still waits, each run held for its dependencies with what it waits for; failed and finished most
recently ended first) with a bounded page of each group, the GPUs with the
runs on them, the store's summary and warnings. Only dicts, lists, strings
and numbers (rows are ``views.run_row`` / ``views.queue_row`` /
``views.gpu_row``): it goes to ``json.dumps`` as is. It reads the store
through the one listing index (``store.index``), so a refresh of a big
store costs a few stats, and what the real ``guild`` CLI changes (a label, a
removed or restored run) shows on the next refresh. The groups, counts and
sweeps are kept between snapshots and only the runs the index says changed
are moved (``_Arrangement``): a snapshot after one change of a store of
100,000 runs does not sort them all again, and keeps decoded only the
values of the rows it shows.

``version`` moves whenever a run, a queue or the newest event changes; not
with running clocks, scalars or GPU readings, which are current in every
snapshot. A viewer that long-polls (``GET /guild/api/state?after_version=``)
is answered when it moves.
"""

from __future__ import annotations

import bisect
import heapq
import math
import threading
import time

from . import views
from .queueing import policy
from .queueing.dask.config import note_gpu_shortage, policy_gpus
from .queueing.status import list_queues
from .store.entry import derive_all
from .store.index import RunIndex
from .store.run import ERROR, PENDING, RUNNING, TERMINATED
from .store.scalars.reader import direct_reads

__all__ = ["StoreMonitor", "GROUPS", "DEFAULT_PAGE_SIZE"]

GROUPS = views.GROUP_NAMES
GPU_RETRY_INTERVAL = 30.0  # how often to look again for NVML when it was absent
MAX_WARNINGS = 20
DEFAULT_PAGE_SIZE = 10
RECENT_SWEEPS = 10  # sweeps a snapshot lists (the sidebar's sweep rows)


class StoreMonitor:
    """Snapshots of one store for one viewer (a panel, the server).

    ``probe``: the GPU probe (default: NVML, or the fake GPUs of
    ``$GUILD_JUPYTER_FAKE_GPUS``); ``handles``: a callable giving this
    process's queue handles (``api.queue_registry.list``); ``scalar``: the
    scalar run rows show (None: ``loss``, else each run's first);
    ``queue_hosts``: where its viewer may start a queue (the queue form).
    ``events``: the ``events.EventWatcher`` of this viewer, whose newest
    sequence number snapshots carry as ``last_event``."""

    def __init__(self, store, probe=None, page_size: int = DEFAULT_PAGE_SIZE, handles=None, scalar=None,
                 queue_hosts=("thread", "detached")):
        self.store = store
        self.scalar = scalar  # the scalar run rows show (views.main_scalar)
        self.index = RunIndex.for_store(store)
        self.page_size = max(1, int(page_size))
        self.queue_hosts = tuple(queue_hosts)
        self.events = None
        # The Jupyter server's root directory, when a server owns this
        # monitor: a notebook run under it gets an "Open notebook" action.
        self.notebook_root: str | None = None
        self.version = 0
        self._content = None  # what version was last counted for
        self._handles = handles or (lambda: [])
        self._probe = probe
        self._probe_made = probe is not None
        self._gpu_report = None
        self._gpu_read_at = None
        self._groups_version = -1
        self._groups: dict = {}
        self._counts: dict = {}
        self._sweeps_version = -1
        self._sweeps: list = []
        self._arranged = None  # _Arrangement: every run's place, kept as runs change
        self.lock = threading.Lock()

    # -- runs ----------------------------------------------------------------------------------

    def update(self, full: bool | None = None) -> bool:
        """Brings the index up to date; returns whether anything changed."""
        return self.index.update(full)

    def status(self, run_id: str) -> str | None:
        """A run's status as last read (None: no such run)."""
        with self.index.lock:
            e = self.index.entries.get(run_id)
            return None if e is None else views.status_of(e.run())

    def status_text(self, run_id: str) -> str | None:
        """How a run's status reads as last read (``stopped by you``...;
        None: no such run)."""
        with self.index.lock:
            e = self.index.entries.get(run_id)
            return None if e is None else views.status_text(e.run())

    def grouped(self) -> tuple[dict, dict]:
        """(index entries per group of ``views.GROUPS``, in display order;
        counts per display status), rebuilt only when the index changed.
        Queue runs are in no group. Call it holding ``index.lock`` to keep
        both consistent with the entries."""
        index = self.index
        with index.lock:
            if self._groups_version != index.version:
                a = self._arrangement()
                self._groups = a.groups()
                self._counts = dict(a.counts)
                self._groups_version = index.version
            return self._groups, self._counts

    def _arrangement(self) -> "_Arrangement":
        """The arrangement of every run brought up to the index's version:
        only the runs changed since are moved (``RunIndex.changed_since``),
        so a snapshot after one change of a store of 100,000 runs costs
        about as much as one of 100 (call holding ``index.lock``)."""
        a = self._arranged
        changed = None if a is None else self.index.changed_since(a.version)
        if changed is None:
            a = self._arranged = _Arrangement(self.index)
        else:
            a.move(changed)
        return a

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
        rows = [views.run_row(r, now_us=now_us, varying=varying, scalar=self.scalar) for r in runs]
        self._add_open_notebook(rows)
        return {"total": len(entries), "offset": offset, "limit": limit, "varying": varying, "runs": rows}

    def _add_open_notebook(self, rows: list[dict]) -> None:
        """An "Open notebook" action on each notebook run whose executed
        notebook lies under the server's root (JupyterLab opens only those)."""
        if not self.notebook_root:
            return
        for row in rows:
            path = views.notebook_tree_path(row.get("notebook"), self.notebook_root)
            if path:
                row["actions"].append(views.open_notebook_action(row["id"], path))

    def recent_sweeps(self, limit: int = RECENT_SWEEPS) -> list[dict]:
        """The newest sweeps of two trials or more (``views.sweep_entry``:
        what the sidebar lists), rebuilt only when the index changed."""
        index = self.index
        with index.lock:
            if self._sweeps_version != (index.version, limit):
                a = self._arrangement()
                self._sweeps = [row for _t, row in heapq.nlargest(limit, a.sweep_rows(), key=lambda tr: tr[0])]
                self._sweeps_version = (index.version, limit)
            return list(self._sweeps)

    # -- snapshot --------------------------------------------------------------------------------

    def snapshot(self, pages: dict | None = None, page_size: int | None = None, refresh: bool = True) -> dict:
        """The JSON-able state of the store. ``pages``: 0-based page per group
        (clamped); ``refresh``: bring the index up to date first."""
        with self.lock:
            if refresh:
                self.index.update()
            return self._build(pages or {}, page_size or self.page_size)

    def _build(self, pages: dict, page_size: int) -> dict:
        # The rows' scalars from their runs' own event files: a few rows of a big store cost less
        # than its whole scalars file (100,000 runs: ~70 MB once decoded, kept by the process).
        with direct_reads():
            return self._build_rows(pages, page_size)

    def _build_rows(self, pages: dict, page_size: int) -> dict:
        now_us = time.time_ns() // 1000
        with self.index.lock:
            groups, counts = self.grouped()
            index_version = self.index.version
        warnings: list[str] = []
        queues = self._queues(warnings)
        # busy: every slot of the queue holds a run (a max-running=N queue has N)
        queue_views = [policy.QueueView(q["id"], policy_gpus(q), q["wait_for_running"],
                                        q["slots"]["used"] >= max(1, q["slots"]["total"])) for q in queues]
        # A paused or draining queue starts nothing: it serves no staged run now.
        held = [v for v, q in zip(queue_views, queues) if q["control"] != "running"]
        queue_views = [v for v in queue_views if v not in held]
        running_others = [e.id for e in groups["running"]]
        out_groups = []
        for g in views.GROUPS:
            entries = groups[g.name]
            total = len(entries)
            npages = max(1, math.ceil(total / page_size))
            page = min(max(0, int(pages.get(g.name, 0) or 0)), npages - 1)
            start = page * page_size
            runs = [e.run() for e in entries[start: start + page_size]]
            varying = views.varying_flags([r.flags for r in runs])
            rows = [views.run_row(r, now_us=now_us, varying=varying, order=g.order, short_time=True,
                                  scalar=self.scalar, known=self._known_state) for r in runs]
            self._add_open_notebook(rows)
            if g.name == "staged":
                _add_waiting_reasons(rows, entries, start, queue_views, running_others, held)
                note_gpu_shortage(rows, queues)  # Dask queues: no worker with GPU resources
                for row in rows:
                    row["waiting_text"] = row["waiting"] or ""
            out_groups.append(dict(g.view(), total=total, page=page, pages=npages, page_size=page_size,
                                   first=start + 1 if rows else 0, rows=rows, varying=varying))
        gpus = self._gpus(groups["running"], warnings)
        warnings.extend(self.index.warnings())
        if len(warnings) > MAX_WARNINGS:
            more = len(warnings) - MAX_WARNINGS
            warnings = warnings[:MAX_WARNINGS] + [f"... and {more} more warning(s)"]
        counts = {s: counts.get(s, 0) for s in views.DISPLAY_STATUSES}
        counts["total"] = sum(counts.values())
        counts["queues"] = len(queues)
        attention = _recent_failures(groups["failed"], now_us)
        events = self.events
        last_event = events.last if events is not None else 0
        content = (index_version, last_event, tuple((q["id"], q["state"], q["control"], q["current"],
                                                      repr(q["slots"])) for q in queues))
        if content != self._content:
            self._content = content
            self.version += 1
        return {"store": self.store.home, "time": now_us, "version": self.version, "counts": counts,
                "summary_text": views.summary_text(counts, attention),
                "status_bar_text": views.status_bar_text(counts, attention), "attention": attention,
                "queues": queues, "groups": out_groups, "sweeps": self.recent_sweeps(), "gpus": gpus,
                "warnings": warnings,
                "queue_form": views.queue_form(self.queue_hosts), "last_event": last_event}

    def _known_state(self, run_id: str):
        """A dependency's state as the index last read it (what a held run's
        row says it waits for: no file read per dependency), or None where
        its files must be read: a pending run (held?), a failed one (a
        retry to follow?), one the index does not hold."""
        e = self.index.entries.get(run_id)
        if e is None or e.status in (PENDING, ERROR):
            return None
        if e.status == TERMINATED and e.values.get("unstaged") is True:
            return views.UNSTAGED
        return e.status

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
            devices.append(views.gpu_row(index, getattr(g, "name", None), uuid, getattr(g, "memory_used", None),
                                         getattr(g, "memory_total", None), getattr(g, "utilization", None), pids,
                                         on_gpu))
        if error and gpus:
            warnings.append(f"GPUs: {error}")
        why = None if devices else (error or NO_GPU)
        return {"available": bool(devices), "error": why, "text": "" if devices else _no_gpu_text(why),
                "devices": devices}


class _Arrangement:
    """Every run of an index in its group, in display order, counted per
    display status, and grouped by sweep; ``move(ids)`` puts the runs that
    changed in their new places (bisect into the sorted groups) instead of
    sorting every run again. Used holding the index's lock."""

    def __init__(self, index):
        self.index = index
        self.version = index.version
        entries = index.entries
        derive_all(entries.values())  # (sweep and unstaged of 100,000 runs in one parse, none kept decoded)
        self.place: dict = {}  # run id -> its key in its group (``_place_of``)
        self.counts = {s: 0 for s in views.DISPLAY_STATUSES}
        self.keys = {g.name: [] for g in views.GROUPS}  # ascending keys; "ended" groups show them reversed
        self.ents = {g.name: [] for g in views.GROUPS}  # the entries, in the order of the keys
        self.members: dict = {}  # sweep id -> its one run id, or a list of them
        self.sweeps: dict = {}  # sweep id of two runs or more -> (time, views.sweep_summary), made when asked
        rows = {g.name: [] for g in views.GROUPS}
        for e in entries.values():
            p = _place_of(e)
            if p is None:
                continue
            self.place[e.id] = p
            self.counts[p[-2]] = self.counts.get(p[-2], 0) + 1
            name = views.GROUP_OF_STATUS.get(p[-2])
            if name is not None:  # (a status no group shows is only counted)
                rows[name].append((p, e))
            self._join(p[-1], e.id)
        for name, pairs in rows.items():
            pairs.sort(key=lambda ke: ke[0])
            self.keys[name] = [k for k, _e in pairs]
            self.ents[name] = [e for _k, e in pairs]

    def move(self, changed) -> None:
        entries = self.index.entries
        for run_id in changed:
            old = self.place.pop(run_id, None)
            if old is not None:
                name = views.GROUP_OF_STATUS.get(old[-2])
                if name is not None:
                    keys = self.keys[name]
                    i = bisect.bisect_left(keys, old)
                    del keys[i]
                    del self.ents[name][i]
                self.counts[old[-2]] -= 1
                self._leave(old[-1], run_id)
            e = entries.get(run_id)
            p = _place_of(e) if e is not None else None
            if p is not None:
                self.place[run_id] = p
                name = views.GROUP_OF_STATUS.get(p[-2])
                if name is not None:
                    keys = self.keys[name]
                    i = bisect.bisect_left(keys, p)
                    keys.insert(i, p)
                    self.ents[name].insert(i, e)
                self.counts[p[-2]] = self.counts.get(p[-2], 0) + 1
                self._join(p[-1], run_id)
        self.version = self.index.version

    def groups(self) -> dict:
        """Each group's entries in display order (new lists: a snapshot
        pages them after the lock is let go)."""
        return {g.name: self.ents[g.name][::-1] if g.order == "ended" else list(self.ents[g.name])
                for g in views.GROUPS}

    def _join(self, sweep, run_id) -> None:
        if sweep is None:
            return
        had = self.members.get(sweep)
        if had is None:
            self.members[sweep] = run_id
        else:
            if type(had) is str:
                had = self.members[sweep] = [had]
            had.append(run_id)
            self.sweeps.pop(sweep, None)

    def _leave(self, sweep, run_id) -> None:
        if sweep is None:
            return
        had = self.members.get(sweep)
        if had == run_id:
            del self.members[sweep]
        elif type(had) is list:
            had.remove(run_id)
            if len(had) == 1:
                self.members[sweep] = had[0]
            self.sweeps.pop(sweep, None)

    def sweep_rows(self):
        """``(time, views.sweep_summary)`` of every sweep of two runs or
        more; a sweep's is made again only after one of its runs changed."""
        entries = self.index.entries
        for sweep, ids in self.members.items():
            if type(ids) is str:
                continue
            row = self.sweeps.get(sweep)
            if row is None:
                counts: dict = {}
                first = None
                newest = 0
                for run_id in ids:
                    e = entries[run_id]
                    s = self.place[run_id][-2]
                    counts[s] = counts.get(s, 0) + 1
                    if first is None or (e.timestamp, e.id) < (first.timestamp, first.id):
                        first = e
                    if e.timestamp > newest:
                        newest = e.timestamp
                counts = {s: counts[s] for s in views.DISPLAY_STATUSES if s in counts} | counts
                row = self.sweeps[sweep] = (newest, views.sweep_summary(sweep, first.op, counts, newest))
            yield row


def _place_of(e):
    """An entry's key in its group, ending with ``(run id, display status,
    sweep)`` (the id, unique, decides before those two are compared); None
    for a queue run (in no group). Keys sort ascending; the ``ended`` groups
    show them reversed (most recently ended first)."""
    if e.is_queue:
        return None
    status = e.status
    if status == TERMINATED and e.unstaged:
        status = views.UNSTAGED
    if status == RUNNING:
        return (e.started or e.timestamp, e.id, status, e.sweep)
    if status in (PENDING, views.STAGED):  # the order queues start them in (highest priority, then oldest)
        return policy.start_key(e.priority, e.timestamp, e.id) + (status, e.sweep)
    return (e.stopped or e.timestamp, e.id, status, e.sweep)


NO_GPU = "no NVIDIA GPU found"


def _no_gpu_text(why: str) -> str:
    """``no NVIDIA GPU found`` and, when NVML said more, why."""
    if NO_GPU.lower() in why.lower():
        return why
    return f"{NO_GPU} ({why})"


def _recent_failures(failed: list, now_us: int) -> int:
    """Runs of the failed group (most recent first) that ended within
    ``views.ATTENTION_SECONDS``."""
    since = now_us - views.ATTENTION_SECONDS * 1_000_000
    n = 0
    for e in failed:
        if (e.stopped or e.timestamp) < since:
            break
        n += 1
    return n


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


def _add_waiting_reasons(rows, staged, start, queues, running_others, held=()) -> None:
    """Why each staged run on the page waits. ``ahead``: the older staged
    runs that a queue serving this run would start first (the fewest over the
    queues that serve it). ``held``: paused or draining queues; a run only
    they would start waits for them (``waiting for paused queue ...``)."""
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
            if not serving:
                stopped = [q for q in held if policy.gpu_mismatch(e.gpus, q.gpus) is None]
                if stopped:
                    names = ", ".join(q.id[:8] for q in stopped)
                    reason = f"waiting for {'queue' if len(stopped) == 1 else 'queues'} {names} to resume " \
                             f"({'it is' if len(stopped) == 1 else 'they are'} paused or draining)"
                elif held and not queues:  # queues run, none of them would start it
                    reason = policy.waiting_reason(policy.StagedRun(e.id, e.gpus, e.timestamp), list(held),
                                                   running_others, ahead)
            views.place_in_line(rows[i - start], i + 1, reason)
        counts[e.gpus] = counts.get(e.gpus, 0) + 1


def _startable_count(counts: dict, queue_gpus) -> int:
    """Staged runs (by GPU affinity) a queue serving ``queue_gpus`` could start."""
    if queue_gpus is None:
        return counts.get(None, 0)
    return counts.get(None, 0) + counts.get(queue_gpus, 0)
