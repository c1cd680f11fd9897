"""The queue: a run (op ``queue``) that starts staged runs one at a time.

``QueueLoop`` is the scheduler; it is hosted either by a daemon thread in a
kernel (``ThreadQueue``) or by a detached process (``queue_main``). Claims
(staged -> pending) happen under Guild's run-status lock, so any number of
queues, ours or Guild's, start each staged run exactly once.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import threading
import time

from ..errors import BadInput, GuildJupyterError, RunStartError
from ..execution import launch
from ..store import transitions
from ..store.run import RUNNING, Run
from ..store.store import RunSpec, Store
from . import policy
from .gpuspec import parse_gpu_spec

QUEUE_OPREF = "builtin:guildai 0.9.0 '' queue"
WATCH_INTERVAL = 0.01  # how often an idle queue checks the store's change marker

_BOOL = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}
QUEUE_FLAGS = ("gpus", "wait-for-running", "run-once", "poll-interval")


def parse_queue_flags(assignments=(), **values) -> policy.QueueConfig:
    """``gpus=0 wait-for-running=yes run-once=no poll-interval=10`` (strings or
    keyword values) -> QueueConfig. Raises BadInput for anything else."""
    given: dict = {}
    for a in assignments:
        name, eq, value = a.partition("=")
        if not eq:
            raise BadInput(f"malformed queue flag {a!r}: expected NAME=VALUE")
        given[name.strip()] = value.strip()
    for k, v in values.items():
        if v is not None:
            given[k.replace("_", "-")] = v
    unknown = [k for k in given if k not in QUEUE_FLAGS]
    if unknown:
        raise BadInput(f"unknown queue flag {unknown[0]!r} (queue flags: {', '.join(QUEUE_FLAGS)})")

    def boolean(name):
        v = given.get(name, False)
        if isinstance(v, bool):
            return v
        b = _BOOL.get(str(v).lower())
        if b is None:
            raise BadInput(f"bad value for {name}: {v!r} (expected yes or no)")
        return b

    interval = given.get("poll-interval", 10)
    try:
        interval = float(interval)
    except (TypeError, ValueError):
        raise BadInput(f"bad value for poll-interval: {interval!r} (expected seconds > 0)") from None
    if not interval > 0 or interval != interval:
        raise BadInput(f"bad value for poll-interval: {given.get('poll-interval')!r} (expected seconds > 0)")
    gpus = given.get("gpus")
    if isinstance(gpus, (list, tuple)):
        gpus = ",".join(str(g) for g in gpus)
    return policy.QueueConfig(
        gpus=parse_gpu_spec(None if gpus is None else str(gpus)),
        wait_for_running=boolean("wait-for-running"),
        run_once=boolean("run-once"),
        poll_interval=interval,
    )


def queue_flags(config: policy.QueueConfig) -> dict:
    pi = config.poll_interval
    return {
        "gpus": config.gpus,
        "poll-interval": int(pi) if float(pi).is_integer() else pi,
        "run-once": config.run_once,
        "wait-for-running": config.wait_for_running,
    }


def create_queue_run(store: Store, config: policy.QueueConfig, host: str) -> Run:
    flags = queue_flags(config)
    op_attr = {
        "deps": [],
        "flag-null-labels": {"gpus": "unspecified"},
        "flags-extra": {},
        "label-template": None,
        "output-scalars": None,
        "python-requires": None,
        "op-cmd": {
            "cmd-args": ["${guild_python_exe}", "-um", "guild.plugins.queue_main", "__flag_args__"],
            "cmd-env": {},
            "cmd-flags": {"gpus": {}, "poll-interval": {}, "run-once": {"arg-switch": True},
                          "wait-for-running": {"arg-switch": True}},
            "flags-dest": "args",
        },
        "sourcecode": {"dest": "."},
    }
    spec = RunSpec(
        opref=QUEUE_OPREF,
        flags=flags,
        user_flags={k: v for k, v in flags.items() if v not in (None, False) and k != "poll-interval"},
        op_attr=op_attr,
        sources={},
        gpus=None,
        label=" ".join(f"{k}={_fmt(v)}" for k, v in flags.items() if v is not None),
        extra_attrs={"guild_jupyter": {"kind": "queue", "host": host, "queue_gpus": config.gpus}},
    )
    (run,) = transitions.create(store, [spec], staged=False)
    os.makedirs(run.path("proto"), exist_ok=True)  # Guild hides batch-like runs from compare
    return run


def _fmt(v):
    return "yes" if v is True else "no" if v is False else v


class QueueLoop:
    def __init__(self, store: Store, config: policy.QueueConfig, queue_run: Run, stop_event=None):
        self.store = store
        self.config = config
        self.run = queue_run
        self.stop_event = stop_event or threading.Event()
        self.current: Run | None = None
        self.current_proc: subprocess.Popen | None = None
        self.started_count = 0
        self._blocked = False  # the last claim found runs held back by wait-for-running
        self.state = "starting"
        self._logged: set = set()
        self._log_file = open(queue_run.path("output"), "a", encoding="utf-8", buffering=1)
        self._guild_exe = _find_guild()

    # -- log ------------------------------------------------------------------

    def log(self, msg: str) -> None:
        ts = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        try:
            self._log_file.write(f"INFO: [queue] {ts} {msg}\n")
        except (OSError, ValueError):
            pass

    def _log_once(self, key, msg) -> None:
        if key not in self._logged:
            self._logged.add(key)
            self.log(msg)

    # -- main loop --------------------------------------------------------------

    def run_loop(self) -> int:
        """Runs until stopped (or, with run-once, until no applicable staged run
        is left and the last one started has finished). Returns the queue's
        exit status."""
        cfg = self.config
        self.log(f"Starting queue ({cfg.describe()}, wait-for-running={_fmt(cfg.wait_for_running)}, "
                 f"run-once={_fmt(cfg.run_once)}, poll-interval={cfg.poll_interval:g})")
        exit_status = 0
        try:
            while not self.stop_event.is_set():
                if self.current is not None and self._current_done():
                    self._finish_current()
                started = False
                if self.current is None:
                    started = self._try_start_next()
                if started:
                    continue
                if cfg.run_once and self.current is None and not self._blocked:
                    self.log(f"Processed {self.started_count} run(s); no staged runs left (run-once)")
                    break
                self.state = "running" if self.current is not None else "waiting"
                self._wait(cfg.poll_interval)
            else:
                exit_status = -15
        except Exception as e:  # never die silently: the log says why
            self.log(f"Queue failed: {type(e).__name__}: {e}")
            exit_status = 1
        self.state = "stopped"
        self.log("Stopping queue" + (f" (run {self.current.id} keeps running)" if self.current and not self._current_done() else ""))
        self._log_file.close()
        return exit_status

    def _current_done(self) -> bool:
        if self.current_proc is not None:
            return self.current_proc.poll() is not None
        return self.current.refresh().status != RUNNING

    def _finish_current(self) -> None:
        r = self.current.refresh()
        self.log(f"Run {r.id} finished: {r.status}" + (f" (exit status {r.exit_status})" if r.exit_status else ""))
        self.current = None
        self.current_proc = None

    def _wait(self, timeout: float) -> None:
        """Sleeps until the store changes, the current run ends, a stop is
        asked for, or ``timeout`` passes (the poll interval bounds how long a
        change the marker does not show, e.g. a run Guild staged, can go unseen)."""
        token = self.store.change_token()
        deadline = time.monotonic() + timeout
        while not self.stop_event.is_set():
            if self.current is not None and self._current_done():
                return
            if self.current is None and self.store.change_token() != token:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.stop_event.wait(min(WATCH_INTERVAL, left))

    # -- claiming and starting ------------------------------------------------------

    def _try_start_next(self) -> bool:
        run, assign = self._claim_next()
        if run is None:
            return False
        self.log(f"Starting staged run {run.id} ({run.op_name}{', gpus=' + run.gpus if run.gpus else ''})")
        try:
            if run.opref[0] == "script":
                proc = launch.start(run)
            else:
                proc = self._start_with_guild(run)
        except GuildJupyterError as e:
            self.log(f"Run {run.id} could not start: {e}")
            return True
        self.current = run
        self.current_proc = proc
        self.started_count += 1
        self.state = "running"
        return True

    def _startable(self, run: Run) -> str | None:
        if run.opref[0] == "script":
            return None
        if self._guild_exe:
            return None
        return f"{run.op_name} is a Guild operation and the guild command is not installed"

    def _claim_next(self):
        cfg = self.config
        with self.store.lock():
            staged, pending, locked = self.store.scan_waiting()
            self._recover_pending(pending, staged)
            candidates = []
            for r in staged:
                why = self._startable(r)
                if why:
                    self._log_once(("skip", r.id), f"Skipping staged run {r.id}: {why}")
                    continue
                candidates.append(policy.StagedRun(r.id, r.gpus, r.timestamp))
            running_others = []
            if cfg.wait_for_running:
                running_others = [r.id for r in locked if not r.is_queue and r.id != self.run.id and r.status == RUNNING]
            decision = policy.next_run(candidates, cfg, busy=False, running_others=running_others)
            self._blocked = bool(decision.blocked_by)
            for run_id, why in decision.skipped:
                self._log_once(("skip", run_id), f"Skipping staged run {run_id}: {why}")
            if decision.blocked_by:
                self._log_once(("blocked", decision.blocked_by),
                               f"Waiting for running runs to finish (wait-for-running): {', '.join(decision.blocked_by)}")
            if decision.start is None:
                return None, None
            run = next(r for r in staged if r.id == decision.start.id)
            transitions.claim(self.store, run, transitions.Claim.by_this_process(self.run.id),
                              gpus=decision.assign_gpus)
        return run.refresh(), decision.assign_gpus

    def _recover_pending(self, pending: list[Run], staged: list[Run]) -> None:
        """Returns to staged a run left pending by a queue of ours that died
        before starting it (under the lock, so never while its claimer could
        start it)."""
        staged.extend(r.refresh() for r in transitions.recover_pending(self.store, pending, self.log))
        staged.sort(key=lambda x: (x.timestamp, x.id))

    def _start_with_guild(self, run: Run) -> subprocess.Popen:
        """Guild operations (not plain scripts) are started by Guild itself."""
        env = dict(os.environ, GUILD_HOME=self.store.home, NO_RESTARTING_MSG="1")
        cmd = [self._guild_exe, "run", "--restart", run.id, "--yes"]
        if run.gpus:
            cmd += ["--gpus", run.gpus]
        out = open(os.devnull, "wb")
        try:
            return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        except OSError as e:
            raise RunStartError(f"cannot run guild: {e}") from e
        finally:
            out.close()


def _find_guild() -> str | None:
    exe = os.path.join(os.path.dirname(sys.executable), "guild")
    if os.access(exe, os.X_OK):
        return exe
    return shutil.which("guild")


# -- hosts ------------------------------------------------------------------------


class ThreadQueue:
    """A queue hosted by a daemon thread in this process (a kernel).

    The queue run's LOCK holds the pid of a tiny sentinel process rather than
    the kernel's, so ``guild stop`` on the queue stops the queue, never the
    kernel; the sentinel exits (and records the queue's end) when this
    process dies.
    """

    host = "thread"

    def __init__(self, store: Store, config: policy.QueueConfig):
        self.store = store
        self.config = config
        self.run = create_queue_run(store, config, self.host)
        self._stop = threading.Event()
        self.sentinel = subprocess.Popen(
            [sys.executable, "-m", "guild_jupyter.engine.sentinel", self.run.dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        line = self.sentinel.stdout.readline().decode().strip()
        if line != "ok":
            self.sentinel.kill()
            transitions.record_start_failure(store, self.run, f"cannot start the queue: {line or 'sentinel failed'}")
            raise RunStartError(f"cannot start the queue: {line or 'sentinel failed'}")
        self.loop = QueueLoop(store, config, self.run, _SentinelStop(self._stop, self.sentinel))
        self.exit_status = None
        self.thread = threading.Thread(target=self._main, name=f"guild-queue-{self.run.id[:8]}", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.exit_status = self.loop.run_loop()
        finally:
            transitions.record_outcome(self.store, self.run, self.exit_status if self.exit_status is not None else 1)
            try:
                self.sentinel.stdin.close()  # the sentinel exits on EOF
            except OSError:
                pass
            try:
                self.sentinel.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.sentinel.kill()

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def status(self) -> str:
        if self.thread.is_alive():
            return self.loop.state
        return "stopped"

    @property
    def current_run(self) -> Run | None:
        return self.loop.current

    def stop(self, wait: bool = True, timeout: float = 10.0) -> None:
        self._stop.set()
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def __repr__(self):
        return f"<ThreadQueue {self.run.id[:8]} {self.config.describe()} {self.status}>"


class _SentinelStop:
    """An Event-like stop flag that is also set when the sentinel dies
    (``guild stop`` on the queue signals the sentinel)."""

    def __init__(self, event: threading.Event, sentinel: subprocess.Popen):
        self._event = event
        self._sentinel = sentinel

    def is_set(self) -> bool:
        if not self._event.is_set() and self._sentinel.poll() is not None:
            self._event.set()
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout) or self.is_set()


class DetachedQueue:
    """A handle on a queue hosted by a detached process (own session)."""

    host = "detached"

    def __init__(self, store: Store, run: Run, proc: subprocess.Popen | None = None):
        self.store = store
        self.run = run
        self.proc = proc

    @classmethod
    def start(cls, store: Store, config: policy.QueueConfig) -> "DetachedQueue":
        run = create_queue_run(store, config, cls.host)
        proc = launch.start_process(
            run, [sys.executable, "-m", "guild_jupyter.engine.queue_main", run.dir]
        )
        return cls(store, run, proc)

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def status(self) -> str:
        return self.run.refresh().status

    def stop(self, wait: bool = True, timeout: float = 10.0) -> None:
        pid = self.run.lock_pid()
        if pid and self.run.lock_pid_alive():
            os.kill(pid, 15)
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.run.refresh().status == RUNNING:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        if self.proc is not None:
            self.proc.poll()
        return True

    def __repr__(self):
        return f"<DetachedQueue {self.run.id[:8]} {self.status}>"
