"""Starting Python code in a forked child instead of a fresh interpreter.

A fresh interpreter plus our imports costs tens of milliseconds; ``fork()``
costs about one. Only single-threaded processes fork (the CLI, a detached
queue, the supervisor): forking a process with other threads running (a
kernel) could copy a lock some thread holds, so those spawn instead.

A forked child never returns into its parent's code: it ends with
``os._exit`` so that nothing the parent buffered or registered runs twice.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import _signal  # the C half of ``signal``: see ``set_handler``


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def flush_std() -> None:
    """Flush our stdio before forking, so a child never repeats its bytes."""
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (AttributeError, OSError, ValueError):
            pass


class ForkedProcess:
    """The parts of ``subprocess.Popen`` our callers use, for a forked child."""

    def __init__(self, pid: int, stdout_fd: int | None = None):
        self.pid = pid
        self.returncode: int | None = None
        self.stdout = os.fdopen(stdout_fd, "rb", buffering=0) if stdout_fd is not None else None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = 1
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                    self.returncode = os.waitstatus_to_exitcode(status)
                except InterruptedError:
                    continue
                except ChildProcessError:
                    self.returncode = 1
            return self.returncode
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                import subprocess

                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.005)
        return self.returncode


def close_fds_except(keep=()) -> None:
    """Close every descriptor above 2 except ``keep`` (like Popen's close_fds)."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def redirect_std(stdin=os.devnull, out_fd: int | None = None) -> None:
    """Point fds 0-2 where a child should have them (``out_fd`` None: /dev/null)."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    target = null if out_fd is None else out_fd
    os.dup2(target, 1)
    os.dup2(target, 2)
    if null > 2:
        os.close(null)


def set_handler(sig: int, handler) -> None:
    """``signal.signal`` without its answer: that function turns the
    handler it replaces into an enum member when it can, and, when it
    cannot, formats the ``repr()`` of that handler into the error it
    catches -- in a forked child the parent's handler, e.g. a bound method
    of a queue handle whose repr reads the queue's state from the store:
    milliseconds a run for nothing."""
    _signal.signal(int(sig), int(handler) if isinstance(handler, int) else handler)


def default_signals() -> None:
    """Signal dispositions of a fresh Python process (no wake-up fd: the
    parent's would be a descriptor the child closes or reuses)."""
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread
        pass
    set_handler(signal.SIGCHLD, signal.SIG_DFL)
    set_handler(signal.SIGTERM, signal.SIG_DFL)
    set_handler(signal.SIGHUP, signal.SIG_DFL)
    set_handler(signal.SIGINT, signal.default_int_handler)
    set_handler(signal.SIGPIPE, signal.SIG_IGN)
