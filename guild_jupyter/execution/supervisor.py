"""The run supervisor: one small process per run, in its own session.

``python -m guild_jupyter.execution.supervisor RUN_DIR [--echo] [--ready-fd N]``

It holds the run's LOCK (the pid ``guild stop`` signals), runs the operation
in its own process group, tees its output into ``.guild/output`` as it comes,
records output scalars, and always records ``exit_status`` and ``stopped``.
Because it is detached from whoever launched it, killing a kernel, a queue or
the CLI never loses a run's outcome.

The run's processes. The supervisor is a child subreaper, so a process the
script starts in a session of its own (``setsid``, ``start_new_session``)
stays in its process tree when its parent exits. About once a second it
records the run's processes (pid + start time) when they changed, so that if
the supervisor itself is killed outright, whoever looks next can end them
(:func:`transitions.settle_dead`). However the run ends, no process of it
survives: on a stop (SIGTERM, SIGINT, SIGHUP) the script's process group and
every descendant get SIGTERM, and SIGKILL after the grace period
(``GUILD_JUPYTER_STOP_GRACE``, 10 s); when the script's main process exits,
what it left running gets SIGTERM and SIGKILL a second later. Orphans that
end up as its children are reaped as they exit.

One thread, one loop: ``poll`` on the output pipe and on a self-pipe that
signals (SIGCHLD, the stop signals) write to. Output is written to the
output file as it comes, whatever its shape, and scanned for scalars in
time linear in its size. Once the main process has exited and its tree is
gone, what is left in the pipe is drained with a bounded wait: a pipe kept
open by a process outside the tree never holds the run up. A write error on
the output file (a full disk) drops the output from then on, but the pipe
keeps being drained, and the outcome is still recorded (in space reserved at
start).

Modules: this one is the lifecycle (acquire the run, start the script, the
loop that waits on it, record the outcome); :mod:`.tee` the output,
:mod:`.proctree` the run's processes, :mod:`.forkscript` the forked child
that runs the script.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

from . import forking, forkscript
from .. import procs
from ..procs import Identity
from ..store import transitions
from ..store.markers import DASK_STOP
from ..store.notebooks import is_notebook
from ..store.run import Run
from ..store.store import Store
from .control import retry_copy_spec
from .proctree import ProcessTree
from .ready import ready_fd_from, report_ready
from .tee import OutputTee

STOP_GRACE = float(os.environ.get("GUILD_JUPYTER_STOP_GRACE", "10"))
WALK_INTERVAL = 1.0  # how often the run's processes are looked up and recorded
FIRST_WALK = 0.3
KILL_WAIT = 10.0  # processes that outlive SIGKILL this long (stuck in the kernel) no longer hold the run up
DRAIN_IDLE = 0.25  # the tree is gone: stop waiting for more output after this idle time ...
DRAIN_MAX = 2.0  # ... or this long in all
PIPE_SIZE = 1 << 20
BATCH_PAUSE = 0.002  # after a big read, let output gather in the pipe (fewer wake-ups of the script)
BATCH_AFTER = 16384  # bytes: a read this big means a flood of output; smaller ones are not delayed
F_SETPIPE_SZ = 1031


def _grace() -> float:
    try:
        return max(0.0, float(os.environ.get("GUILD_JUPYTER_STOP_GRACE", "10")))
    except ValueError:
        return STOP_GRACE


class Supervisor(OutputTee, ProcessTree):
    def __init__(self, run_dir: str, echo: bool = False, ready_fd: int | None = None):
        self.run = Run(run_dir)
        self.home = os.path.dirname(os.path.dirname(run_dir))
        self.echo = echo
        self.ready_fd = ready_fd
        self.grace = _grace()
        self.holder: Identity | None = None
        self.proc = None  # forking.ForkedProcess or subprocess.Popen
        self.main_ident: Identity | None = None
        self.main_status: int | None = None
        self.stop_requested = False
        self._stop_handled = False
        self._last_read = 0  # bytes of the last read of the output pipe
        self._stopped_running = True  # the stop came while the main process ran
        self._kill_at: float | None = None
        self._killed_at: float | None = None  # when SIGKILL was first sent
        self._known: dict[int, Identity] = {}  # every process of the run seen, by pid
        self._recorded: frozenset = frozenset()
        self._pipe: int | None = None
        self._out: int | None = None
        self.output_error: str | None = None
        self.scalars = None
        self._wake_r = self._wake_w = None

    # -- lifecycle ------------------------------------------------------------

    def main(self) -> int:
        self._install_signals()  # first: a stop while starting is not lost
        try:
            self._acquire()
        except Exception as e:  # nothing started: tell the launcher why
            self._ready(f"error: {e}")
            return 1
        exit_status = 1
        try:
            exit_status = self._run()
        except BaseException as e:  # noqa: BLE001 - our own failure: the run still ends cleanly
            self._append_output(f"guild_jupyter: supervisor error: {type(e).__name__}: {e}\n".encode())
            exit_status = self._abort()
        finally:
            code = self._finish(exit_status)
        return code

    def _acquire(self) -> None:
        self.holder = Identity.current()
        transitions.acquire(Store(self.home), self.run, self.holder)

    def _ready(self, msg: str) -> None:
        report_ready(self.ready_fd, msg)
        self.ready_fd = None

    def _run(self) -> int:
        # Stopped before the script existed: never start it. A stop asked on
        # another machine (a Dask run) is a file its runner carries out; it
        # is looked for after ``started`` was written, so a stopper that read
        # no ``started`` is sure the script never runs.
        if self.stop_requested or os.path.exists(self.run.path(DASK_STOP)):
            self._ready("ok")
            return -signal.SIGTERM
        procs.set_child_subreaper()
        try:
            cmd, env = self._command()
            self._start(cmd, env)
        except Exception as e:
            self._ready("ok")
            self._append_output(f"guild_jupyter: cannot start the run: {e}\n".encode())
            return 1
        self._ready("ok")  # first: the launcher waits for it; the script already runs
        self.main_ident = Identity.of(self.proc.pid)
        if self.main_ident is not None:
            self._known[self.main_ident.pid] = self.main_ident
            self._record_processes([self.main_ident])
        self._open_output()
        self._loop()
        return self.main_status if self.main_status is not None else -signal.SIGKILL

    def _command(self):
        run = self.run
        kind, _pkg, _ver, _model, op = run.opref
        if kind != "script":
            raise RuntimeError(f"operation {run.op_name!r} is not a script this supervisor can run")
        op_attr = run.get("op", {}) or {}
        op_cmd = op_attr.get("op-cmd", {}) if isinstance(op_attr, dict) else {}
        flags_dest = op_cmd.get("flags-dest") or "globals"
        script = os.path.join(run.dir, op)
        import json

        env = dict(os.environ)
        env.update(
            {
                "RUN_DIR": run.dir,
                "RUN_ID": run.id,
                "GUILD_HOME": self.home,
                "GUILD_JUPYTER_FLAGS": json.dumps(run.flags),
                "GUILD_JUPYTER_FLAGS_DEST": "args" if flags_dest.startswith("args") else "globals",
                "PYTHONUNBUFFERED": "1",
            }
        )
        gpus = run.gpus
        if gpus is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpus
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # CUDA's numbering = NVML's (the panel's)
        else:
            env.pop("CUDA_VISIBLE_DEVICES", None)
        # a notebook run (op ``nb.ipynb``) runs in a fresh kernel under nbclient
        runner = forkscript.NOTEBOOK_RUNNER if is_notebook(op) else forkscript.RUNSCRIPT
        cmd = [sys.executable, "-u", "-m", runner, script]
        return cmd, env

    def _start(self, cmd: list, env: dict) -> None:
        if forking.can_fork():
            self.proc = forkscript.fork_script(cmd[-1], env, self.run.dir, runner=cmd[-2])
        else:
            import subprocess  # spawning only: a forked script needs none of it

            self.proc = subprocess.Popen(
                cmd,
                cwd=self.run.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        self._pipe = self.proc.stdout.fileno()
        try:
            import fcntl

            fcntl.fcntl(self._pipe, F_SETPIPE_SZ, PIPE_SIZE)
        except (OSError, ImportError):
            pass

    # -- signals --------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            forking.set_handler(sig, self._on_stop_signal)
        forking.set_handler(signal.SIGCHLD, _on_child)
        forking.set_handler(signal.SIGPIPE, signal.SIG_IGN)

    def _on_stop_signal(self, signum, _frame) -> None:
        self.stop_requested = True

    # -- the loop -------------------------------------------------------------

    # -- what a host that is the supervisor watches besides the run ----------------
    # (a Dask worker's runner: its task's connection, the machine's heartbeat
    # and stop requests; see queueing/dask/runner.py). None here.

    TICK: float | None = None  # seconds between calls of ``_tick`` (None: never)

    def _watched_fds(self) -> list:
        return []

    def _on_watched(self, fd: int) -> bool:
        """``fd`` of ``_watched_fds`` is readable; True: stop watching it."""
        return True

    def _tick(self) -> None:
        pass

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        poller.register(self._pipe, select.POLLIN)
        watched = set(self._watched_fds())
        for fd in watched:
            poller.register(fd, select.POLLIN)
        wake_only = select.poll()
        wake_only.register(self._wake_r, select.POLLIN)
        # lazy: loaded once the script is started, while it starts up, not
        # before it (a run's start-up waits on every module loaded earlier)
        from ..store.scalars.writer import ScalarWriter

        self.scalars = ScalarWriter(self.run.guild_dir, ignore=set(self.run.flags))
        next_walk = time.monotonic() + FIRST_WALK
        tree_gone_at = last_data = None
        main_done = False
        while True:
            now = time.monotonic()
            wait = next_walk - now
            if self._kill_at is not None:
                wait = min(wait, self._kill_at - now)
            if main_done:
                wait = min(wait, 0.1)
            if self.TICK is not None:
                wait = min(wait, self.TICK)
            events = poller.poll(max(0, int(wait * 1000) + 1)) if not self.stop_requested or self._stop_handled else []
            got = False
            for fd, _ev in events:
                if fd == self._wake_r:
                    _drain_wakeups(fd)
                elif fd in watched:
                    if self._on_watched(fd):
                        poller.unregister(fd)
                        watched.discard(fd)
                elif fd == self._pipe:
                    if self._read_output():
                        got = True
                        last_data = time.monotonic()
                    else:
                        poller.unregister(fd)
                        self._close_pipe()
            children_left = self._reap()
            if self.TICK is not None:
                self._tick()
            if self.stop_requested and not self._stop_handled:
                self._begin_stop()
            if not main_done and self.main_status is not None:
                main_done = True
                self._main_exited(children_left)
            now = time.monotonic()
            if self._kill_at is not None and now >= self._kill_at:
                self._signal_all(signal.SIGKILL)
                self._kill_at = now + 0.1  # again, for any process started meanwhile
                if self._killed_at is None:
                    self._killed_at = now
                elif now - self._killed_at > KILL_WAIT:
                    self._append_output(b"guild_jupyter: processes of the run outlived SIGKILL for "
                                        b"%gs; not waiting for them\n" % KILL_WAIT)
                    return
            if now >= next_walk:
                self._walk_and_record()
                if self.scalars is not None:
                    self.scalars.flush()
                next_walk = now + WALK_INTERVAL
            if main_done:
                if children_left or self._known_alive():
                    tree_gone_at = None
                    continue
                if self._pipe is None:
                    return
                if tree_gone_at is None:
                    tree_gone_at = now
                idle_since = max(last_data or 0.0, tree_gone_at)
                if now - tree_gone_at >= DRAIN_MAX or now - idle_since >= DRAIN_IDLE:
                    return
            elif got and self._last_read >= BATCH_AFTER:
                wake_only.poll(int(BATCH_PAUSE * 1000))

    # -- the outcome ----------------------------------------------------------

    def _finish(self, exit_status: int) -> int:
        if self.scalars is not None:
            try:
                self.scalars.close()
            except Exception:  # noqa: BLE001
                pass
        if self._out is not None:
            try:
                os.close(self._out)
            except OSError:
                pass
            self._out = None
        note = f"\nguild_jupyter: output truncated: {self.output_error}\n".encode() if self.output_error else b""
        if note and self._append_output(note):
            note = b""
        if self.stop_requested and self._stopped_running and exit_status >= 0:
            exit_status = -signal.SIGTERM  # stopped on request: terminated
        # A failure with retries left under the policy its claim recorded gets its copy staged
        # here, whether or not the queue that claimed it is still there.
        transitions.record_outcome(Store(self.home), self.run, exit_status, self.holder, retry=retry_copy_spec)
        if note:  # a full disk: dropping LOCK and its records may have made room
            self._append_output(note, echo=False)
        return 128 - exit_status if exit_status < 0 else exit_status


def preload() -> None:
    """Loads what every supervisor and its script's child load on each
    run (the scalar writer, the script runner, the flag engine): called by
    a launcher that forks supervisors (a queue, a Dask worker's launcher),
    once, so that each forked run inherits them instead of importing (and
    compiling the writer's patterns) again."""
    # lazy: a spawned supervisor loads the writer once its script has started
    from ..store.scalars import writer  # noqa: F401

    forkscript.preload_runners()


def _on_child(_signum, _frame) -> None:
    """SIGCHLD: the wake-up byte is what matters (the loop reaps)."""


def _drain_wakeups(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    echo = "--echo" in argv
    ready_fd = ready_fd_from(argv)
    return Supervisor(os.path.abspath(argv[0]), echo=echo, ready_fd=ready_fd).main()


if __name__ == "__main__":
    sys.exit(main())
