"""Where a queue lives: the hosts of a ``QueueLoop``, and what they share.

Every host holds its queue run's LOCK (so ``guild stop`` and ours stop the
queue), runs one ``QueueLoop`` and records the queue run's outcome when the
loop ends. What a front end may do with any of them is the ``QueueHost``
protocol; a new host (a Dask cluster, parallel GPU slots) implements it and
passes the loop what differs (a ``RunStarter``, ``slots``), never patches
the loop.

- ``ThreadQueue``: a daemon thread in this process (a kernel); a sentinel
  process holds LOCK, so ``guild stop`` on the queue stops the queue, never
  the kernel. The Jupyter server's queues are ThreadQueues recorded as
  hosted by ``server`` (``api.host_queue``).
- ``DetachedQueue``: a handle on a queue process in its own session
  (:mod:`.main`); it survives the kernel.
- ``ForegroundQueue``: the loop in the calling (main) thread, whose process
  holds LOCK itself; signals stop it (the CLI's ``guild-jupyter queue``, and
  the detached process behind a ``DetachedQueue``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Protocol, runtime_checkable

from ..errors import RunStartError
from ..execution import launch
from ..execution.control import signal_run
from ..procs import Identity
from ..store import transitions
from ..store.queue_state import read_control
from ..store.run import PENDING, RUNNING, Run
from .config import config_of, create_queue_run
from .loop import QueueLoop
from .policy import QueueConfig
from .status import QueueInfo, describe_queue

STATES = ("starting", "waiting", "running", "stopped")


@runtime_checkable
class QueueHost(Protocol):
    """A running (or ended) queue, wherever it is hosted.

    ``status`` is one of ``STATES``: starting (not yet looking for runs),
    waiting (for a staged run it may start), running (a run it started is
    going), stopped (the loop has ended and the queue run's outcome is
    recorded)."""

    host: str  # thread | detached | server | cli ...: recorded in the queue run
    run: Run  # the queue run (op ``queue``)
    config: QueueConfig

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def current_run(self) -> Run | None:
        """The run the queue started and waits for, if any."""

    def stop(self, wait: bool = True, timeout: float = 10.0) -> None:
        """Asks the queue to stop (runs it started keep running); with
        ``wait``, waits up to ``timeout`` for it to end."""

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the queue to end; True if it has."""


def host_info(q: QueueHost) -> QueueInfo:
    """What a queue handle of this process says of its queue, as a listing
    says it (no slots: those come from the store's scan)."""
    state = q.status
    control = read_control(q.run) if state in ("starting", "waiting", "running") else "running"
    config = q.config
    return QueueInfo(id=q.id, host=q.host, pid=None, gpus=config.gpus, wait_for_running=config.wait_for_running,
                     run_once=config.run_once, state=state,
                     current=None if q.current_run is None else q.current_run.id,
                     this_process=q.host in ("thread", "server", "cli"),  # detached: a process of its own
                     run=q.run, control=control)


def _loop_status(loop: QueueLoop) -> str:
    """The status of a host whose loop has not ended yet (a loop that has
    ended but whose host is still recording counts as waiting)."""
    if loop.state == "starting":
        return "starting"
    return "running" if loop.current is not None else "waiting"


CURRENT_RUN_AGE = 10.0  # s: a queue's own runs are ours (journaled): an exact look that often is enough


def current_run_in_store(store, queue_id: str) -> Run | None:
    """The active run a queue (any host, any process) claimed or started."""
    _staged, pending, locked = store.scan_waiting(CURRENT_RUN_AGE)
    for r in pending + locked:
        if r.get("queue_id") == queue_id and r.status in (RUNNING, PENDING):
            return r
    return None


# -- a thread in this process ------------------------------------------------------------


class ThreadQueue:
    """A queue hosted by a daemon thread in this process (a kernel).

    The queue run's LOCK holds the pid of a tiny sentinel process rather than
    the kernel's, so ``guild stop`` on the queue stops the queue, never the
    kernel; the sentinel exits (and records the queue's end) when this
    process dies.
    """

    host = "thread"

    def __init__(self, store, config: QueueConfig, host: str | None = None, **loop_options):
        if host is not None:
            self.host = host  # recorded in the queue run (``server``: the Jupyter server's)
        self.store = store
        self.config = config
        self.run = create_queue_run(store, config, self.host)
        self._stop = threading.Event()
        self.sentinel = subprocess.Popen(
            [sys.executable, "-m", "guild_jupyter.queueing.sentinel", self.run.dir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        line = self.sentinel.stdout.readline().decode().strip()
        if line != "ok":
            self.sentinel.kill()
            self.sentinel.wait()
            transitions.record_start_failure(store, self.run, f"cannot start the queue: {line or 'sentinel failed'}")
            raise RunStartError(f"cannot start the queue: {line or 'sentinel failed'}")
        self.loop = QueueLoop(store, config, self.run, _SentinelStop(self._stop, self.sentinel), **loop_options)
        self.exit_status = None
        self._ended = threading.Event()  # the loop is over and the outcome recorded
        self.thread = threading.Thread(target=self._main, name=f"guild-queue-{self.run.id[:8]}", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self.exit_status = self.loop.run_loop()
        finally:
            try:
                transitions.record_outcome(self.store, self.run, self.exit_status if self.exit_status is not None else 1)
            finally:
                self._ended.set()
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
        if self._ended.is_set() or not self.thread.is_alive():
            return "stopped"
        return _loop_status(self.loop)

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
        return describe_queue(host_info(self))

    def _repr_pretty_(self, p, cycle):
        p.text(describe_queue(host_info(self)))


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


# -- a detached process --------------------------------------------------------------------


class DetachedQueue:
    """A handle on a queue hosted by a detached process (own session)."""

    host = "detached"

    def __init__(self, store, run: Run, proc: subprocess.Popen | None = None, config: QueueConfig | None = None):
        self.store = store
        self.run = run
        self.proc = proc
        self._config = config

    @classmethod
    def start(cls, store, config: QueueConfig) -> "DetachedQueue":
        run = create_queue_run(store, config, cls.host)
        proc = launch.start_process(run, [sys.executable, "-m", "guild_jupyter.queueing.main", run.dir])
        return cls(store, run, proc, config)

    @property
    def config(self) -> QueueConfig:
        if self._config is None:
            self._config = config_of(self.run)
        return self._config

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def status(self) -> str:
        s = self.run.refresh().status
        if s == PENDING:
            return "starting"
        if s != RUNNING:
            return "stopped"
        return "running" if self.current_run is not None else "waiting"

    @property
    def current_run(self) -> Run | None:
        return current_run_in_store(self.store, self.id)

    def stop(self, wait: bool = True, timeout: float = 10.0) -> None:
        signal_run(self.run.refresh(), signal.SIGTERM)  # only a holder shown to be the queue's
        if wait:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.run.refresh().status in (RUNNING, PENDING):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        if self.proc is not None:
            self.proc.poll()
        return True

    def __repr__(self):
        return describe_queue(host_info(self))

    def _repr_pretty_(self, p, cycle):
        p.text(describe_queue(host_info(self)))


# -- the calling thread ---------------------------------------------------------------------


class ForegroundQueue:
    """A queue whose loop runs in the calling thread, as ``guild run queue``
    does: this process holds the queue run's LOCK (``transitions.acquire``
    with its own identity), the log also goes to ``echo`` (the terminal),
    and SIGINT, SIGHUP or SIGTERM stop it; the queue run then records
    ``terminated`` (exit status -signal). The runs it started keep running
    under their supervisors (own sessions: the terminal's signals miss them).
    """

    host = "cli"
    STOP_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)

    def __init__(self, store, config: QueueConfig, *, run: Run | None = None, echo=None, **loop_options):
        """Creates the queue run, or takes ``run`` (created by whoever started
        this process: :mod:`.main`), and holds it."""
        self.store = store
        self.config = config
        self.run = run if run is not None else create_queue_run(store, config, self.host)
        self.holder = Identity.current()
        try:
            transitions.acquire(store, self.run, self.holder)
        except Exception as e:
            try:
                transitions.record_start_failure(store, self.run, f"cannot start the queue: {e}")
            except Exception:  # noqa: BLE001 - the error that matters is the one raised
                pass
            raise
        self._stop = threading.Event()
        self._done = threading.Event()
        self.signum: int | None = None
        self.exit_status: int | None = None
        self._serving: threading.Thread | None = None
        self.loop = QueueLoop(store, config, self.run, self._stop, echo=echo, **loop_options)

    def serve(self, ready=None) -> int:
        """Runs the loop until it ends or a stop signal comes; records the
        queue run's outcome and returns its exit status. ``ready`` is called
        once the stop signals are handled (a detached process tells its
        starter it is up)."""
        previous = {}
        self._serving = threading.current_thread()
        if self._serving is threading.main_thread():
            for sig in self.STOP_SIGNALS:
                previous[sig] = signal.signal(sig, self._on_signal)
        status = 1
        try:
            if ready is not None:
                ready()
            status = self.loop.run_loop()
            if self.signum is not None:
                status = -self.signum
        finally:
            self.exit_status = status
            transitions.record_outcome(self.store, self.run, status, self.holder)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._done.set()
        return status

    def _on_signal(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum
        self._stop.set()

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def status(self) -> str:
        if self._done.is_set():
            return "stopped"
        return _loop_status(self.loop)

    @property
    def current_run(self) -> Run | None:
        return self.loop.current

    def stop(self, wait: bool = True, timeout: float = 10.0) -> None:
        self._stop.set()
        if wait and self._serving is not None and threading.current_thread() is not self._serving:
            self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def __repr__(self):
        return describe_queue(host_info(self))


__all__ = ["QueueHost", "STATES", "ThreadQueue", "DetachedQueue", "ForegroundQueue", "current_run_in_store"]
