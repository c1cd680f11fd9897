"""The scheduler loop of a queue, whatever hosts it.

``QueueLoop`` repeatedly, under Guild's run-status lock and in one scan of
the store: settles claims whose claimer died (``transitions.recover_pending``),
asks the pure ``policy.next_run`` which staged run to start, and claims it
(staged -> pending). Outside the lock it hands the claimed run to a
``RunStarter`` and waits, without polling the whole store, for the run to
end or the store to change.

What varies between hosts is injected, never patched in: the stop flag (an
Event, a sentinel's death, a signal), where the log goes besides the queue
run's output (a terminal; :mod:`.log`), how a claimed run is started
(``starters.RunStarter``: our supervisor, or a Dask cluster), and how many
runs it may have going at once (``slots``: a count, or a count per GPU
set; by default ``max-running``, each serving the queue's GPUs). The
``Slots`` (a record per run going, none per slot free: an idle queue costs
the same whatever its ``max-running``) and what a claim reads from the
store's scan (runs holding back a wait-for-running queue, GPU states,
unreadable start attrs) are in :mod:`.slots`.

Parallel runs. Each slot holds one run, started under its own supervisor;
a free slot claims the next run in its own pass under the lock, so N slots
are N claims, each seeing the ones before. ``wait-for-running`` keeps its
meaning with N slots: it waits for runs *other than this queue's own*
(another queue's, Guild's, a run started by hand), so the queue's own runs
fill its N slots side by side, and nothing of its starts while others run.

GPU slots (``gpus=auto``). The GPUs served are resolved once, when the loop
starts (NVML's, or the listed ones); each claim counts our runs on every
GPU from the same scan, under the lock, asks ``policy.next_run`` with the
GPUs' states (``gpu_slots.gpu_states``) and claims the run with the GPUs it
chose (``transitions.claim(..., per_gpu=K)`` counts again before writing).

Priorities and dependencies (SPEC 12). ``policy.next_run`` takes the
staged runs highest priority first, then oldest. Runs held for their
dependencies are settled in the same scan, under the same lock
(``dependencies.settle_held``): one whose dependencies all completed is
staged and may be claimed in that very pass; one whose dependency failed
ends ``error``, with the runs waiting on it. A run-once queue keeps going
while a held run it could serve waits for a dependency that is going now.
A dependency's end touches the store's change marker, which wakes a
waiting queue at once.

Faults of the disk (ENOSPC, EIO...) never end the loop: a failing pass is
logged once, the loop backs off (from ``min(poll-interval, 1 s)``, doubling
up to ``poll-interval``) and tries again; a run whose start failed without
its failure being recorded goes back to staged, to be retried later.
"""

from __future__ import annotations

import dataclasses
import os
import select
import threading
import time

from ..errors import GuildJupyterError
from ..execution.control import is_left_locked, retry_copy_spec, settle_if_dead
from ..procs import Identity
from ..store import transitions
from ..store.records import PRIORITY, priority_of
from ..store.run import LOCK, STAGED_MARKER, Run
from . import dependencies
from . import gpu_slots as gpuslots
from . import policy
from .config import yes_no
from .control import QueueControl
from .log import QueueLog
# Slots and the scan helpers live in .slots; Slot and START_ATTRS stay importable from here.
from .slots import START_ATTRS, Slot, Slots, busy_others, gpus_held, unreadable_start_attrs  # noqa: F401
from .starters import LocalStarter, RunHandle, RunStarter  # noqa: F401 - RunHandle: importable from here

WATCH_INTERVAL = 0.01  # how often an idle queue checks the store's change marker


def _claim_hold() -> float:
    """Seconds a queue waits between claiming a run and starting it: 0,
    but where the reliability tests set ``GUILD_JUPYTER_CLAIM_HOLD`` for the
    queues they kill, so that a kill between a claim and its start (a claim
    with no LOCK yet) is a certainty, not a race against a few milliseconds."""
    try:
        return min(5.0, max(0.0, float(os.environ.get("GUILD_JUPYTER_CLAIM_HOLD") or 0)))
    except ValueError:
        return 0.0


CLAIM_HOLD = _claim_hold()


# -- the loop ------------------------------------------------------------------------------


class QueueLoop:
    def __init__(self, store, config: policy.QueueConfig, queue_run: Run, stop_event=None, *,
                 echo=None, starter: RunStarter | None = None, slots=None):
        self.store = store
        self.config = config
        self.run = queue_run
        self.stop_event = stop_event or threading.Event()
        self.wake = threading.Event()  # set by a starter when a run it placed ends (looked at at once)
        self._log = QueueLog(queue_run, echo)  # echo: a text stream that also gets the log (a terminal)
        self.starter = starter or LocalStarter(store)
        self._gpus: tuple = ()  # the GPUs a gpus=auto queue serves, and their UUIDs -> index
        self._uuids: dict = {}
        self._gpu_error: str | None = None
        if config.auto:
            try:
                self._gpus, self._uuids = gpuslots.resolve_gpus(config.gpus)
            except GuildJupyterError as e:
                self._gpu_error = str(e)
        # Room for max-running runs, but memory and work only for those going (``Slots``).
        self.slots = Slots(config.slot_count(len(self._gpus)) if slots is None else slots, config.gpus)
        self.started_count = 0
        self.state = "starting"
        self._blocked = False  # the last claim found runs held back by wait-for-running
        self._awaited = False  # the last claim found a held run waiting for a dependency going now
        self._faults: set = set()  # faults logged since the last clean pass
        self._unsettled = False  # this pass left a run whose start failed unrecorded
        self._retry_at: dict[str, float] = {}  # run id -> when a failed start may be retried
        self._retry_delay: dict[str, float] = {}  # run id -> its next retry delay (doubling)
        self._claim = transitions.Claim.by_this_process(queue_run.id)
        # pause/resume/drain and retries (queueing.control)
        self.control = QueueControl(store, queue_run, self._log)
        self.starter.bind(self)

    @property
    def claim_owner(self) -> Identity:
        """Who the queue's claims name (this process, for the queue run): a
        starter that hands claimed runs to another process checks it."""
        return self._claim.owner

    # -- log ----------------------------------------------------------------------------

    def log(self, msg: str) -> None:
        """One line in the queue run's output (and on ``echo``). Never raises:
        a full disk loses the line, not the queue."""
        self._log.write(msg)

    def _log_once(self, key, msg) -> None:
        self._log.once(key, msg)

    # -- state seen by hosts --------------------------------------------------------------

    @property
    def current(self) -> Run | None:
        """The run this queue started and waits for (the first busy slot's)."""
        return self.slots.first_run()

    # -- main loop ------------------------------------------------------------------------

    def run_loop(self) -> int:
        """Runs until stopped (-15) or, with run-once, until no applicable
        staged run is left and the last one started has ended (0)."""
        cfg = self.config
        self.log(f"Starting queue ({cfg.describe()}, wait-for-running={yes_no(cfg.wait_for_running)}, "
                 f"run-once={yes_no(cfg.run_once)}, poll-interval={cfg.poll_interval:g})")
        if self._gpu_error:
            self.log(f"Cannot serve GPUs: {self._gpu_error}")
            self.state = "stopped"
            self._log.close()
            return 1
        if cfg.auto:
            self.log(f"Serving GPUs {','.join(self._gpus)}, {cfg.per_gpu} run(s) per GPU, "
                     f"up to {len(self.slots)} at once")
        exit_status = 0
        backoff = None
        while not self.stop_event.is_set():
            self._unsettled = False
            # Taken before the pass: a change made while it ran (a run staged just after its
            # scan) wakes the wait below at once instead of waiting out the poll interval.
            token = self.store.change_token()
            try:
                self._reap()
                mode = self.control.poll()
                started = self._fill_slots() if mode == "running" else False
                if mode == "paused":
                    self.control.note_held()
            except Exception as e:  # noqa: BLE001 - a disk fault, a damaged run: log, back off, go on
                backoff = min(cfg.poll_interval, 1.0) if backoff is None else min(backoff * 2, cfg.poll_interval)
                self._note_fault(e, backoff)
                self._sleep(backoff)
                continue
            backoff = None
            if not self._unsettled:
                self._clear_faults()
            if started:
                continue
            busy = bool(self.slots.busy)
            if mode == "draining" and not busy:
                self.log(f"Drained: processed {self.started_count} run(s); stopping the queue")
                break
            if cfg.run_once and mode == "running" and not busy and not self._blocked and not self._retry_at:
                self.log(f"Processed {self.started_count} run(s); no staged runs left (run-once)")
                break
            self.state = "running" if busy else "waiting"
            self._wait(min(cfg.poll_interval, self._next_retry()), token)
        else:
            exit_status = -15
        self.state = "stopped"
        going = [s.run.id for s in self.slots.busy if not s.done()]
        # Runs outlive the queue, but for those on a cluster the queue embeds (it ends with the queue).
        fate = "ends with its cluster" if self.starter.runs_end_with_queue else "keeps running"
        self.log("Stopping queue" + (f" (run {', '.join(going)} {fate})" if going else ""))
        try:
            self.starter.close()
        except Exception as e:  # noqa: BLE001 - the queue's outcome is still recorded
            self.log(f"Cannot close the run starter: {e}")
        self._log.close()
        return exit_status

    def _note_fault(self, e: Exception, backoff: float) -> None:
        """Logs a failed pass, once until a pass succeeds."""
        msg = str(e) if isinstance(e, GuildJupyterError) else f"{type(e).__name__}: {e}"
        if msg not in self._faults:
            self._faults.add(msg)
            self.log(f"Cannot go on for now ({msg}); retrying every {backoff:g}s up to {self.config.poll_interval:g}s")

    def _clear_faults(self) -> None:
        if self._faults:
            self.log("Store usable again; carrying on")
            self._faults.clear()

    def _reap(self) -> None:
        for s in [s for s in self.slots.busy if s.done()]:
            r = s.run.refresh()
            self.log(f"Run {r.id} finished: {r.status}" + (f" (exit status {r.exit_status})" if r.exit_status else ""))
            self.slots.release(s)
            self.control.after_run(r)  # a failed run may be retried

    def _fill_slots(self) -> bool:
        """Claims and starts a run for each free slot; True if the state
        changed (a run started, or a run could not start and was settled)."""
        changed = False
        room = None  # what the starter can place now: asked once a pass, when a slot is free
        if self.slots.any_free():
            self.slots.resize(self.config.gpus, self.starter.wanted_slots())
        for gpus in self.slots.gpu_sets:  # each GPU set until a pass finds nothing to start for it
            while self.slots.free_for(gpus) > 0 and not self.stop_event.is_set():
                if room is None:
                    room = self.starter.capacity()
                run = self._claim_next(gpus, can_claim=room is None or room > 0)
                if run is None:
                    break
                changed = True
                if room is not None:
                    room -= 1
                self._start(gpus, run)
        return changed

    def _next_retry(self) -> float:
        if not self._retry_at:
            return float("inf")
        return max(0.0, min(self._retry_at.values()) - time.monotonic())

    def _sleep(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.stop_event.wait(min(0.1, left))

    def _wait(self, timeout: float, token=None) -> None:
        """Sleeps until the store changes (from ``token``, taken before the
        pass that preceded), a run of ours ends, a stop is asked for, or
        ``timeout`` passes (the poll interval bounds how long a change the
        marker does not show, e.g. a run Guild staged, can go unseen)."""
        token = self.store.change_token() if token is None else token
        deadline = time.monotonic() + timeout
        free = self.slots.any_free()
        while not self.stop_event.is_set():
            if any(s.done() for s in self.slots.busy):
                return
            exits = self._exit_fds()
            changed = self.store.change_token()
            if changed != token:
                if free:
                    return
                token = changed
                self.control.poll()  # every slot busy: a pause or drain asked now is logged now
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if exits:  # the runs' ends wake this at once; a change of the store is looked for as before
                select.select(exits, [], [], min(WATCH_INTERVAL, left))
                if self.wake.is_set():
                    self.wake.clear()
            elif self.wake.wait(min(WATCH_INTERVAL, left)):
                self.wake.clear()

    def _exit_fds(self) -> list:
        """Descriptors that become readable as the runs going end, when every
        handle has one (else the wake event, which a starter sets)."""
        fds = []
        for s in self.slots.busy:
            fd = getattr(s.handle, "exit_fd", None)
            fd = fd() if fd is not None else None
            if fd is None:
                return []
            fds.append(fd)
        return fds

    # -- claiming ---------------------------------------------------------------------------

    def _claim_next(self, slot_gpus: str | None, can_claim: bool = True) -> Run | None:
        """For a free slot serving ``slot_gpus``, under the run-status lock, in
        one scan: settles dead claims, decides and claims. Returns the claimed
        run, or None. Without ``can_claim`` (the starter can place nothing
        now) it decides only: a run it would start keeps the queue waiting
        (run-once too), unclaimed, so that any other queue may start it
        meanwhile."""
        cfg = dataclasses.replace(self.config, gpus=slot_gpus)
        # Exact every poll interval (a GPU-slot queue: always, its slot counts depend on it); the
        # look at every run that takes is made before the lock, what changed since under it.
        max_age = 0.0 if cfg.auto else cfg.poll_interval
        if max_age:
            self.store.prepare_scan(max_age)
        with self.store.lock():
            staged, pending, locked = self.store.scan_waiting(max_age)
            staged = self._recover(pending, staged)
            for r in locked:  # finished, its supervisor killed before it let go: LOCK cleared
                if is_left_locked(r):
                    transitions.let_go_dead(self.store, r)
            staged = self._settle_held(pending, staged, slot_gpus)
            now = time.monotonic()
            for rid, t in list(self._retry_at.items()):
                if t <= now:
                    del self._retry_at[rid]
            candidates = []
            for r in staged:
                if r.id in self._retry_at:
                    continue
                try:
                    why = self.starter.cannot_start(r)
                    # A starter that places GPU runs itself (a Dask cluster's resources) serves them all.
                    c = policy.StagedRun(r.id, None if self.starter.places_gpus else r.gpus,
                                         r.timestamp, priority_of(r.get(PRIORITY)))
                except Exception as e:  # noqa: BLE001 - a run we cannot read is not ours to judge
                    why = f"cannot read it ({type(e).__name__}: {e})"
                if why:
                    self._log_once(("skip", r.id), f"Skipping staged run {r.id}: {why}")
                    continue
                candidates.append(c)
            others = busy_others(self.run.id, pending, locked) if cfg.wait_for_running else []
            held = gpus_held(pending, locked) if cfg.auto else None
            gpus = gpuslots.gpu_states(self._gpus, held, self.config, self._uuids) if cfg.auto else ()
            while True:
                decision = policy.next_run(candidates, cfg, busy=False, running_others=others, gpus=gpus)
                self._note_decision(decision, candidates)
                if decision.start is None:
                    return None
                if not can_claim:
                    self._blocked = True
                    return None
                run = next(r for r in staged if r.id == decision.start.id)
                unreadable = unreadable_start_attrs(run)
                if not unreadable:
                    break
                # Never start a run with made-up flags: it ends error, with the reason.
                transitions.record_start_failure(self.store, run, f"not started: {unreadable}")
                self.log(f"Run {run.id} cannot start: {unreadable}; recorded as error")
                candidates = [c for c in candidates if c.id != run.id]
            # A pause or drain asked before the run was staged is seen now: the scan saw the run.
            if self.control.poll() != "running":
                self._blocked = True  # (a run-once queue does not end for it: the next pass sees the pause)
                return None
            # The claim's slot check counts from this pass's scan: the lock held since keeps it true.
            transitions.claim(self.store, run, self._claim, gpus=decision.assign_gpus,
                              per_gpu=cfg.per_gpu if cfg.auto else None, held=held,
                              retries=getattr(self.config, "retries", 0))
        return run.refresh()

    def _note_decision(self, decision: policy.Decision, candidates: list) -> None:
        # A run held for want of a free GPU keeps a run-once queue waiting for it,
        # as does one held for a dependency going now.
        self._blocked = bool(decision.blocked_by or decision.held) or self._awaited
        for run_id, why in decision.held:
            self._log_once(("held", run_id), f"Run {run_id} waits for a free GPU ({why})")
        gpus_of = {c.id: c.gpus for c in candidates}
        for run_id, why in decision.skipped:
            # With several slots, a run another slot serves is not skipped.
            if all(policy.gpu_mismatch(gpus_of[run_id], g) for g in self.slots.gpu_sets):
                self._log_once(("skip", run_id), f"Skipping staged run {run_id}: {why}")
        if decision.blocked_by:
            self._log_once(("blocked", decision.blocked_by),
                           f"Waiting for running runs to finish (wait-for-running): {', '.join(decision.blocked_by)}")

    def _settle_held(self, pending: list[Run], staged: list[Run], slot_gpus: str | None) -> list[Run]:
        """Settles the runs held for their dependencies (the caller holds the
        run-status lock): those released join ``staged``. Notes whether a
        held run this queue could serve waits for a dependency going now
        (a run-once queue waits for it)."""
        self._awaited = False
        if not pending:
            return staged
        try:
            done = dependencies.settle_held(self.store, pending, self.log, retry=retry_copy_spec,
                                            settle=settle_if_dead)
        except Exception as e:  # noqa: BLE001 - e.g. the disk is full: tried again next pass
            self._log_once(("held", str(e)), f"Cannot settle runs waiting for their dependencies yet: {e}")
            return staged
        for run, verdict in done.waiting:
            self._log_once(("after", run.id), f"Run {run.id} waits: {policy.after_text(verdict.waiting)}")
            gpus = None if self.starter.places_gpus else run.gpus
            if (any(d.state in policy.GOING_STATES for d in verdict.waiting)
                    and any(policy.gpu_mismatch(gpus, g) is None for g in self.slots.gpu_sets)):
                self._awaited = True
        return staged + [r.refresh() for r in done.released] if done.released else staged

    def _recover(self, pending: list[Run], staged: list[Run]) -> list[Run]:
        """Settles claims of ours whose claimer died (``transitions.recover_pending``,
        one run at a time so one failure does not hold back the others); runs
        returned to staged join ``staged`` in staging order."""
        back = []
        for r in pending:
            try:
                back.extend(transitions.recover_pending(self.store, [r], self.log))
            except Exception as e:  # noqa: BLE001 - e.g. the disk is full: tried again next pass
                self._log_once(("recover", r.id, str(e)), f"Cannot settle pending run {r.id} yet: {e}")
        if not back:
            return staged
        out = staged + [r.refresh() for r in back]
        out.sort(key=lambda x: (x.timestamp, x.id))
        return out

    # -- starting ---------------------------------------------------------------------------

    def _start(self, slot_gpus: str | None, run: Run) -> None:
        if CLAIM_HOLD:
            self.stop_event.wait(CLAIM_HOLD)
        # Once per run: a run whose start failed for want of space is retried.
        self._log_once(("start", run.id),
                       f"Starting staged run {run.id} ({run.op_name}{', gpus=' + run.gpus if run.gpus else ''})")
        try:
            handle = self.starter.start(run)
        except (GuildJupyterError, OSError) as e:
            self._start_failed(run, e)
            return
        self.slots.take(slot_gpus, run, handle)
        self._retry_delay.pop(run.id, None)
        self.started_count += 1
        self.state = "running"

    def _start_failed(self, run: Run, e: Exception) -> None:
        """A start that failed: the starter normally recorded the run ``error``
        with the reason. If it could not (the disk is full), the run is still
        pending under our claim: it goes back to staged and is retried later
        (from ``min(poll-interval, 1 s)``, doubling up to ``poll-interval``),
        while other runs may start."""
        if run.refresh().status != "pending":
            self.log(f"Run {run.id} could not start: {e}")
            return
        with self.store.lock():
            c = transitions.read_claim(run)
            ours = isinstance(c, transitions.Claim) and c.owner == self._claim.owner
            if not ours or os.path.exists(run.path(LOCK)):
                self.log(f"Run {run.id} could not start: {e}")
                return
            if not os.path.exists(run.path(STAGED_MARKER)):
                transitions.record_start_failure(self.store, run, f"could not start: {e}")
                self.log(f"Run {run.id} could not start: {e}")
                return
            transitions.return_to_staged(self.store, run)
        cap = self.config.poll_interval
        delay = self._retry_delay.get(run.id, min(cap, 1.0))
        self._retry_delay[run.id] = min(delay * 2, cap)
        self._retry_at[run.id] = time.monotonic() + delay
        self._unsettled = True
        self._log_once(("start-failed", run.id, str(e)),
                       f"Run {run.id} could not start ({e}); back to staged, retried later")
