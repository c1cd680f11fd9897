"""The run supervisor: one small process per run, in its own session.

``python -m guild_jupyter.execution.supervisor RUN_DIR [--echo] [--ready-fd N]``

It holds the run's LOCK (the pid ``guild stop`` signals), runs the operation
in its own process group, tees its output into ``.guild/output`` as it comes,
records output scalars, and always records ``exit_status`` and ``stopped``.
Because it is detached from whoever launched it, killing a kernel, a queue or
the CLI never loses a run's outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from . import forking
from ..procs import Identity
from ..store import transitions
from ..store.run import Run
from ..store.store import Store

STOP_GRACE = float(os.environ.get("GUILD_JUPYTER_STOP_GRACE", "10"))


def own_start_time() -> float:
    from ..procs import own_start_time as start

    return start()


class Supervisor:
    def __init__(self, run_dir: str, echo: bool = False, ready_fd: int | None = None):
        self.run = Run(run_dir)
        self.home = os.path.dirname(os.path.dirname(run_dir))
        self.echo = echo
        self.ready_fd = ready_fd
        self.proc: subprocess.Popen | None = None
        self.stop_requested = False
        self._kill_timer: threading.Timer | None = None

    # -- lifecycle ------------------------------------------------------------

    def main(self) -> int:
        try:
            self._acquire()
        except Exception as e:  # nothing started: tell the launcher why
            self._ready(f"error: {e}")
            return 1
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_stop_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        exit_status = 1
        try:
            try:
                cmd, env = self._command()
                if forking.can_fork():
                    self.proc = self._fork_script(cmd[-1], env)
                else:
                    self.proc = subprocess.Popen(
                        cmd,
                        cwd=self.run.dir,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        process_group=0,
                    )
            except Exception as e:
                self._ready("ok")
                self._write_output(f"guild_jupyter: cannot start the run: {e}\n".encode())
                return self._finish(1)
            self._ready("ok")
            if self.stop_requested:  # a stop that came in before the child existed
                self._signal_child(signal.SIGTERM)
            self._tee()
            exit_status = self.proc.wait()
        finally:
            code = self._finish(exit_status)
        return code

    def _acquire(self) -> None:
        self.holder = Identity.current()
        transitions.acquire(Store(self.home), self.run, self.holder)

    def _ready(self, msg: str) -> None:
        from .launch import report_ready

        report_ready(self.ready_fd, msg)
        self.ready_fd = None

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
        else:
            env.pop("CUDA_VISIBLE_DEVICES", None)
        cmd = [sys.executable, "-u", "-m", "guild_jupyter.execution.runscript", script]
        return cmd, env

    def _fork_script(self, script: str, env: dict) -> forking.ForkedProcess:
        """Runs the script in a forked child (own process group, output into
        a pipe), as ``python -u -m ...runscript SCRIPT`` would, minus the
        interpreter start."""
        r, w = os.pipe()
        forking.flush_std()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setpgid(0, 0)
                os.close(r)
                forking.redirect_std(out_fd=w)
                forking.close_fds_except()
                forking.default_signals()
                os.chdir(self.run.dir)
                os.environ.clear()
                os.environ.update(env)
                code = _run_script_here(script)
            finally:
                os._exit(code)
        try:
            os.setpgid(pid, pid)  # also here: a stop may signal the group at once
        except OSError:
            pass
        os.close(w)
        return forking.ForkedProcess(pid, r)

    # -- output ---------------------------------------------------------------

    def _tee(self) -> None:
        from .scalars import ScalarWriter

        scalars = ScalarWriter(self.run.guild_dir, ignore=set(self.run.flags))
        fd = self.proc.stdout.fileno()
        pending = b""
        with open(self.run.path("output"), "ab") as out:
            while True:
                try:
                    data = os.read(fd, 65536)
                except InterruptedError:
                    continue
                if not data:
                    break
                out.write(data)
                out.flush()
                if self.echo:
                    self._echo(data)
                pending += data
                if b"\n" in pending:
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        scalars.feed(line.rstrip(b"\r"))
            if pending:
                scalars.feed(pending)
        scalars.close()

    def _echo(self, data: bytes) -> None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except (OSError, ValueError):
            self.echo = False  # the launcher went away; keep recording

    def _write_output(self, data: bytes) -> None:
        with open(self.run.path("output"), "ab") as out:
            out.write(data)
        if self.echo:
            self._echo(data)

    # -- stopping -------------------------------------------------------------

    def _on_stop_signal(self, signum, _frame) -> None:
        if self.stop_requested:
            return
        self.stop_requested = True
        if self.proc is not None:
            self._signal_child(signal.SIGTERM)
        self._kill_timer = threading.Timer(STOP_GRACE, self._signal_child, args=(signal.SIGKILL,))
        self._kill_timer.daemon = True
        self._kill_timer.start()

    def _signal_child(self, sig) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _finish(self, exit_status: int) -> int:
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        if self.stop_requested and exit_status >= 0:
            exit_status = -signal.SIGTERM  # stopped on request: terminated
        transitions.record_outcome(Store(self.home), self.run, exit_status, self.holder)
        return 128 - exit_status if exit_status < 0 else exit_status


def _run_script_here(script: str) -> int:
    """In a forked child: run ``script`` like a fresh ``python -u`` would --
    unbuffered stdio, the script's directory first on ``sys.path``, then the
    interpreter's shutdown (non-daemon threads joined, atexit handlers run)."""
    import atexit
    import io

    getattr(atexit, "_clear", lambda: None)()  # the parent's handlers are not the script's
    enc = os.environ.get("PYTHONIOENCODING") or "utf-8"
    sys.stdin = sys.__stdin__ = open(os.devnull, encoding=enc)
    out = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=enc, write_through=True)
    err = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding=enc, errors="backslashreplace",
                           write_through=True)
    _keep.extend((sys.stdout, sys.stderr))  # dropping them could flush stale bytes
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = err
    script_dir = os.path.dirname(os.path.abspath(script))
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.insert(0, script_dir)
    from . import runscript

    interrupted = False
    try:
        code = runscript.main([script])
    except SystemExit as e:
        code = _exit_code(e.code)
    except KeyboardInterrupt:
        import traceback

        traceback.print_exc()
        code, interrupted = 130, True
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs:
        run_exitfuncs()
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (OSError, ValueError):
            pass
    if interrupted:  # like Python: die of the SIGINT
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


_keep: list = []


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    try:
        print(value, file=sys.stderr)
    except Exception:
        pass
    return 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .launch import ready_fd_from

    echo = "--echo" in argv
    ready_fd = ready_fd_from(argv)
    return Supervisor(os.path.abspath(argv[0]), echo=echo, ready_fd=ready_fd).main()


if __name__ == "__main__":
    sys.exit(main())
