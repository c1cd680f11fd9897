"""Starting a run's supervisor, detached, and waiting until it holds the run."""

from __future__ import annotations

import os
import select
import sys
import time

from ..errors import RunStartError
from ..procs import prepare_subreaper
from ..store import transitions
from ..store.run import Run
from ..store.store import Store
from . import forking
from .ready import report_ready

TYPE_CHECKING = False  # (typing itself costs the CLI's start-up a few ms; checkers read this the same)
if TYPE_CHECKING:
    import subprocess

READY_TIMEOUT = 30.0


def start(run: Run, *, echo: bool = False, timeout: float = READY_TIMEOUT, retry_disk_faults: bool = False):
    """Starts the run's supervisor in its own session and returns once the run
    is running (its LOCK written). With ``echo`` the run's output also goes to
    this process's stdout; the caller may ``wait()`` for the exit status.

    A run that cannot start is recorded ``error`` with the reason, except,
    with ``retry_disk_faults`` (a queue), when the store's disk refused: the
    run stays pending under the caller's claim for it to return to staged.

    A single-threaded caller (the CLI, a detached queue) forks the supervisor,
    which saves a fresh interpreter; others spawn one."""
    if forking.can_fork():
        return _fork_supervisor(run, echo, timeout, retry_disk_faults)
    cmd = [sys.executable, "-m", "guild_jupyter.execution.supervisor", run.dir]
    if echo:
        cmd.append("--echo")
    return start_process(run, cmd, echo=echo, timeout=timeout, retry_disk_faults=retry_disk_faults)


_forked: list = []  # supervisors forked by this process, reaped as they end
_forked_before: list = []  # non-empty once this process loaded what forked runs inherit


def mark_preloaded() -> None:
    """This process (a Dask worker's launcher) loaded what forked runs
    inherit (``supervisor.preload``): the runners it forks, which fork the
    supervisors, need not load it each."""
    if not _forked_before:
        _forked_before.append(True)


def _fork_supervisor(run: Run, echo: bool, timeout: float, retry_disk_faults: bool = False):
    # lazy: the supervisor's modules are loaded only by a launcher that forks
    # one, once: every forked supervisor inherits them
    from .supervisor import Supervisor, preload

    if not _forked_before:
        preload()
        _forked_before.append(True)
    prepare_subreaper()  # likewise: ctypes and libc, loaded once by this launcher
    _forked[:] = [p for p in _forked if p.poll() is None]
    r, w = os.pipe()
    forking.flush_std()
    pid = os.fork()
    if pid == 0:  # the supervisor; never returns into the caller's code
        code = 1
        try:
            os.close(r)
            os.setsid()
            if echo:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.close(null)
            else:
                forking.redirect_std()
            forking.close_fds_except(keep={w})
            code = Supervisor(run.dir, echo=echo, ready_fd=w).main()
        except BaseException as e:  # noqa: BLE001 - report and leave
            report_ready(w, f"error: {type(e).__name__}: {e}")
        finally:
            os._exit(code)
    os.close(w)
    proc = forking.ForkedProcess(pid)
    _forked.append(proc)
    return _await_ready(run, proc, r, timeout, retry_disk_faults)


def start_process(run: Run, cmd: list, *, echo: bool = False, timeout: float = READY_TIMEOUT,
                  retry_disk_faults: bool = False) -> subprocess.Popen:
    """Starts ``cmd --ready-fd N`` detached (own session) and waits for it to
    write ``ok`` (it holds the run) or ``error: why`` on that descriptor."""
    import subprocess  # the spawn path only: forking launchers never need it

    r, w = os.pipe()
    try:
        proc = subprocess.Popen(
            cmd + ["--ready-fd", str(w)],
            stdin=subprocess.DEVNULL,
            stdout=None if echo else subprocess.DEVNULL,
            stderr=None if echo else subprocess.DEVNULL,
            pass_fds=(w,),
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        os.close(r)
        os.close(w)
        _record_failure(run, f"cannot start {cmd[2] if len(cmd) > 2 else cmd[0]}: {e}")
        raise RunStartError(f"cannot start run {run.id[:8]}: {e}") from e
    os.close(w)
    reap_when_done(proc)
    return _await_ready(run, proc, r, timeout, retry_disk_faults)


def reap_when_done(proc: subprocess.Popen) -> None:
    """A thread collects the process's exit as soon as it ends: a
    long-lived host (a kernel, a server) never keeps a dead supervisor as a
    zombie, which ``guild stop`` would take for a live process."""
    import threading

    threading.Thread(target=proc.wait, name=f"reap-{proc.pid}", daemon=True).start()


def _await_ready(run: Run, proc, r: int, timeout: float, retry_disk_faults: bool = False):
    try:
        msg = _read_line(r, timeout)
    finally:
        os.close(r)
    if msg != "ok":
        reason = msg[len("error: "):] if msg.startswith("error: ") else (msg or "the process exited")
        if proc.poll() is None and not msg:
            reason = f"no answer within {timeout:g}s"
        if not (retry_disk_faults and reason.startswith("store not writable")):
            _record_failure(run, reason)
        raise RunStartError(f"cannot start run {run.id[:8]}: {reason}")
    return proc


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace").strip()


def _record_failure(run: Run, reason: str) -> None:
    """A run that could not start ends ``error`` with the reason in its output."""
    try:
        transitions.record_start_failure(Store(os.path.dirname(os.path.dirname(run.dir))), run, reason)
    except Exception:  # noqa: BLE001 - the caller reports the start failure itself
        pass
