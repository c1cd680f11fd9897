"""Starting a run's supervisor, detached, and waiting until it holds the run."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

from ..errors import RunStartError
from ..store import attrs as attrlib
from ..store.run import Run, now_us

READY_TIMEOUT = 30.0


def start(run: Run, *, echo: bool = False, timeout: float = READY_TIMEOUT) -> subprocess.Popen:
    """Starts the run's supervisor in its own session and returns once the run
    is running (its LOCK written). With ``echo`` the run's output also goes to
    this process's stdout; the caller may ``wait()`` for the exit status."""
    cmd = [sys.executable, "-m", "guild_jupyter.execution.supervisor", run.dir]
    if echo:
        cmd.append("--echo")
    return start_process(run, cmd, echo=echo, timeout=timeout)


def start_process(run: Run, cmd: list, *, echo: bool = False, timeout: float = READY_TIMEOUT) -> subprocess.Popen:
    """Starts ``cmd --ready-fd N`` detached (own session) and waits for it to
    write ``ok`` (it holds the run) or ``error: why`` on that descriptor."""
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
    try:
        msg = _read_line(r, timeout)
    finally:
        os.close(r)
    if msg != "ok":
        reason = msg[len("error: "):] if msg.startswith("error: ") else (msg or "the process exited")
        if proc.poll() is None and not msg:
            reason = f"no answer within {timeout:g}s"
        _record_failure(run, reason)
        raise RunStartError(f"cannot start run {run.id[:8]}: {reason}")
    return proc


def ready_fd_from(argv: list) -> int | None:
    if "--ready-fd" in argv:
        return int(argv[argv.index("--ready-fd") + 1])
    return None


def report_ready(fd: int | None, msg: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, (msg.replace("\n", " ") + "\n").encode())
        os.close(fd)
    except OSError:
        pass


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
        if run.get("exit_status") is None and not run.lock_pid_alive():
            with open(run.path("output"), "ab") as f:
                f.write(f"guild_jupyter: {reason}\n".encode())
            run.write_attr("exit_status", 1)
            run.write_attr("stopped", now_us())
            attrlib.remove(run.path("PENDING"))
            attrlib.remove(run.path("STAGED"))
    except OSError:
        pass
