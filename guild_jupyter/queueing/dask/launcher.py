"""One launcher per Dask worker: a warm, single-threaded process that forks
a run's runner (:mod:`.runner`) for each task, instead of the task starting
a fresh interpreter (and our imports) for every run.

The first task on a worker (or, as the worker joins, the worker plugin the
queue registers: :mod:`.plugin`) starts it: ``python -m guild_jupyter.queueing.dask.launcher
NAME`` in its own session, with the worker's environment. It listens on an
abstract Unix socket named after the worker process (``socket_name``), so
each worker has its own and nothing is left on disk. A task connects,
sends the runner's arguments (one JSON line) and reads the runner's report
lines until the connection closes, exactly as it read a spawned runner's
stdout: the launcher forks a runner whose stdin and stdout *are* that
connection. So the runner sees the worker die as it always did (its stdin
reaches EOF: the worker's end of the connection closed), and takes the run
over exactly once (``dask_records.take_dispatch``) whoever started it.
The runner is forked ahead (``_fork_spare``): a spare child waits in
``accept`` and becomes the next task's runner, so a run's way to its start
does not wait for a fork; the launcher forks the next spare meanwhile.

The launcher holds nothing of a run: killed (even ``kill -9``), the runners
it forked go on (their own sessions, their own connections), and the next
task starts a new launcher (its spare, which has no task yet, leaves with
it, freeing the socket's name). A task whose launcher died before forking its
runner (the connection closed with no report) starts the runner as a fresh
interpreter instead; a second runner of the same task refuses a run the
first one took. The launcher ends when its worker does (its parent
changes).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

from ...execution import forking, launch
from ...procs import prepare_subreaper, start_time
from . import runner

READY_TIMEOUT = 20.0  # seconds a task waits for a launcher it started to listen
MAX_REQUEST = 1 << 16


def socket_name(worker_pid: int | None = None) -> str:
    """The abstract socket of the launcher of the worker process ``worker_pid``
    (default: this process, the worker a task runs in). The worker's start
    time goes in too: a later worker with a reused pid has its own."""
    pid = os.getpid() if worker_pid is None else worker_pid
    started = start_time(pid) or 0
    return f"guild_jupyter-launcher-{os.getuid()}-{pid}-{int(started * 1000)}"


def connect(name: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0" + name)  # Linux's abstract namespace: no file, gone with the launcher
    except OSError:
        s.close()
        return None
    return s


def ensure(name: str) -> socket.socket | None:
    """A connection to this worker's launcher, started if it is not running
    (None when it cannot be: the caller starts the runner itself)."""
    s = connect(name)
    if s is not None:
        return s
    import subprocess

    r, w = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "guild_jupyter.queueing.dask.launcher", name, str(w)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True, pass_fds=(w,))
    except OSError:
        os.close(r)
        os.close(w)
        return None
    os.close(w)
    try:  # "ready" (listening), or EOF: it exited (another launcher of this worker won the name)
        ready, _, _ = select.select([r], [], [], READY_TIMEOUT)
        if ready:
            os.read(r, 64)
    finally:
        os.close(r)
    _reap_later[:] = [p for p in _reap_later if p.poll() is None] + [proc]
    return connect(name)


_reap_later: list = []  # launchers this worker started (their exit status is collected by Popen)


def request(conn: socket.socket, argv: list) -> list[str]:
    """Sends the runner's arguments and returns its report lines (read until
    the runner closes the connection)."""
    with conn:
        conn.sendall(json.dumps(argv).encode() + b"\n")
        f = conn.makefile("rb")
        return [raw.decode(errors="replace").strip() for raw in f]


# -- the launcher process ------------------------------------------------------------------


def _read_request(conn: socket.socket) -> list | None:
    conn.settimeout(5.0)
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
            chunk = conn.recv(4096)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    conn.settimeout(None)
    try:
        argv = json.loads(data)
    except ValueError:
        return None
    return argv if isinstance(argv, list) and len(argv) == 6 and all(isinstance(a, str) for a in argv) else None


def _fork_runner(conn: socket.socket, listener: socket.socket, argv: list) -> None:
    """Forks a runner for a connection the launcher accepted itself (no spare
    runner was waiting: see ``_fork_spare``)."""
    forking.flush_std()
    pid = os.fork()
    if pid:
        return
    try:  # the runner: never returns into the launcher's loop
        listener.close()
        os.setsid()
        _default_signals()
        _be_runner(conn, argv)
    finally:
        os._exit(1)


def _default_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        forking.set_handler(sig, signal.SIG_DFL)


def _be_runner(conn: socket.socket, argv: list) -> None:
    """In a forked child: the connection becomes the runner's stdin and
    stdout, every other descriptor goes, and the runner runs. Never returns."""
    code = 1
    try:
        fd = conn.fileno()
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        conn.close()
        forking.close_fds_except()
        sys.stdin = open(0, "rb", buffering=0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        code = runner.main(argv)
    except BaseException:  # noqa: BLE001 - the task reads no report and starts a runner itself
        code = 1
    finally:
        os._exit(code)


def _fork_spare(listener: socket.socket, alive_r: int, taken_w: int) -> int | None:
    """Forks the next run's runner ahead of its task: a child that waits in
    ``accept`` on the launcher's socket, so that a task's connection is
    taken by a process already forked and set up (its own session, default
    signals) instead of waiting for the launcher to fork one -- the fork is
    paid between runs, off the run's way to its start. Once it accepted, it
    writes a byte on ``taken_w`` (the launcher forks the next spare) and
    becomes that task's runner, exactly as a runner the launcher forks
    after accepting. It holds nothing of a run before that: it leaves as
    soon as the launcher is gone (``alive_r`` reads EOF), so that a killed
    launcher's socket name is freed and the next task starts a new one.
    None when the fork fails (the launcher accepts itself then)."""
    forking.flush_std()
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid:
        return pid
    try:  # the spare: never returns into the launcher's loop
        os.setsid()
        _default_signals()
        # alive_w above all: held here, the launcher's end would never read as EOF
        forking.close_fds_except(keep={listener.fileno(), alive_r, taken_w})
        while True:
            ready, _, _ = select.select([listener, alive_r], [], [])
            if listener not in ready:
                os._exit(0)  # the launcher is gone (EOF): no task is ours yet
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            break
        try:
            os.write(taken_w, b"t")
        except OSError:  # the launcher is gone: this run still has its runner
            pass
        listener.close()
        args = _read_request(conn)
        if args is None:
            os._exit(0)
        _be_runner(conn, args)
    finally:
        os._exit(1)


def _reap() -> set:
    """Collects the launcher's ended children; returns their pids."""
    gone = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return gone
        if pid == 0:
            return gone
        gone.add(pid)


def _drain(fd: int) -> None:
    try:
        os.read(fd, 4096)
    except OSError:
        pass


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    name, ready_fd = argv[0], int(argv[1])
    # lazy: only the launcher process loads the supervisor (the module that
    # forks it does so on first use): each forked runner then starts warm
    from ...execution import supervisor

    supervisor.preload()  # and what each supervisor and script would import again
    launch.mark_preloaded()
    prepare_subreaper()
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind("\0" + name)
    except OSError:  # another launcher of this worker won the name: tasks use that one
        os.close(ready_fd)
        return 0
    listener.listen(64)
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The launcher's end reaches its spare as EOF on alive_r (it keeps alive_w,
    # never writing to it); a spare that took a task says so on taken.
    alive_r, alive_w = os.pipe()
    taken_r, taken_w = os.pipe()
    spare = _fork_spare(listener, alive_r, taken_w)
    while os.getppid() == parent:  # the worker went away: so does its launcher (runners go on)
        # With a spare waiting, tasks' connections are its to accept; without
        # one (its fork failed), the launcher accepts and forks as before.
        watch = [taken_r] if spare is not None else [taken_r, listener]
        ready, _, _ = select.select(watch, [], [], 1.0)
        if taken_r in ready:
            _drain(taken_r)
            spare = None  # it became a runner
        if spare is not None and spare in _reap():
            spare = None  # it died without a task: another takes its place
        elif spare is None:
            _reap()
        if listener in ready:
            try:
                conn, _ = listener.accept()
            except OSError:
                conn = None
            if conn is not None:
                with conn:
                    args = _read_request(conn)
                    if args is not None:
                        _fork_runner(conn, listener, args)
        if spare is None:
            spare = _fork_spare(listener, alive_r, taken_w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
