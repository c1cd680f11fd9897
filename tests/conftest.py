"""Fixtures shared by the whole suite: a private Guild home per test, a small
project with a training script, and helpers to run our CLI and the real
``guild`` CLI as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

VENV_BIN = os.path.dirname(sys.executable)
GUILD = os.path.join(VENV_BIN, "guild")

TRAIN_PY = textwrap.dedent(
    """\
    import os, sys, time
    lr = 0.1
    epochs = 2
    name = "base"
    verbose = False
    sleep = 0.0
    for step in range(epochs):
        time.sleep(sleep)
        print(f"step: {step}")
        print(f"loss: {lr / (step + 1):.6f}")
    print("done", name, verbose)
    log = os.environ.get("RUN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(os.environ["RUN_ID"] + "\\n")
    """
)


@pytest.fixture(autouse=True)
def guild_home(tmp_path, monkeypatch):
    """Every test gets its own default store: never the user's ~/.guild.

    On teardown, whatever still goes in it (queues, Guild's own included,
    and runs with processes) is stopped, so a test that fails half-way
    leaves no queue behind: tests stop what they start, this only keeps a
    failure (or a forgotten stop, which ``pytest_sessionfinish`` reports)
    from leaking."""
    home = tmp_path / "guild-home"
    home.mkdir()
    monkeypatch.setenv("GUILD_HOME", str(home))
    monkeypatch.setenv("GUILD_JUPYTER_STOP_GRACE", "3")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    yield home
    _stop_what_goes(home)


def _stop_what_goes(home) -> None:
    if not os.path.isdir(os.path.join(str(home), "runs")):
        return
    from guild_jupyter import api
    from guild_jupyter.errors import GuildJupyterError
    from guild_jupyter.store.store import Store

    try:
        store = Store(str(home))
        for _ in range(3):  # a queue stopped in this pass may have started a run meanwhile
            going = _going(store)
            if not going:
                break
            _LEFT_GOING.append(str(home))
            for run in going:
                try:
                    api.stop(run.id, store=store, timeout=15)
                except GuildJupyterError:  # ended meanwhile
                    pass
    except Exception:  # noqa: BLE001 - cleanup only: a read-only or damaged store of the test's own
        pass


def _going(store) -> list:
    """The runs of a test's store that have processes going: running (a
    queue's included), or pending under a live claim (a launch, a batch host).
    Not the ones this process stands for: a test that records its own pid in a
    LOCK or a claim (the store's own tests) did not start a process, and must
    not be sent SIGTERM."""
    from guild_jupyter.store.records import Claim, read_claim
    from guild_jupyter.store.run import PENDING, RUNNING

    me = os.getpid()
    out = []
    for r in store.runs(status=(RUNNING, PENDING)):
        if r.status == RUNNING:
            holder = r.lock_holder()
            if holder is None or holder.pid != me:
                out.append(r)
        else:
            claim = read_claim(r)
            if isinstance(claim, Claim) and claim.owner.pid != me and claim.owner.alive():
                out.append(r)
    return out


_LEFT_GOING: list = []


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    (d / "train.py").write_text(TRAIN_PY)
    return d


@pytest.fixture(params=["fork", "spawn"])
def launcher(request):
    """Run a test both ways a supervisor starts: a single-threaded launcher
    forks it; one with other threads (a kernel) spawns ``python -m
    ...supervisor``."""
    import threading

    if request.param == "fork":
        yield request.param
        return
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    yield request.param
    stop.set()
    t.join()


@pytest.fixture(scope="session")
def ipython(tmp_path_factory):
    """One real IPython shell for the suite (magics and completion tests)."""
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        return InteractiveShell.instance(config=config)
    return InteractiveShell.instance()


def wait_for(predicate, timeout=30.0, interval=0.02, message="condition"):
    """Polls ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def outcomes_recorded(runs) -> bool:
    """Whether every run has its outcome recorded (``exit_status`` and
    ``stopped``): the end of a run that is never transient. Its status alone
    is not: a run that Guild's own queue starts reads ``error`` for a moment
    (``guild run --restart`` removes PENDING before it writes LOCK, and
    reaps the script before it writes ``exit_status``), as ``guild runs``
    shows it too."""
    return all(r.refresh().get("exit_status") is not None and r.get("stopped") is not None for r in runs)


def complete_lines(text: str) -> list[str]:
    """The complete lines of ``text`` (each ended by a newline). A run's
    output is read while it is written: ``print("child", pid)`` writes its
    parts one by one (stdout is unbuffered in a run), so the last line read
    may be half written."""
    return text[: text.rfind("\n") + 1].splitlines()


def output_line(run_id: str, prefix: str) -> str | None:
    """The first complete line of a run's output that starts with ``prefix``."""
    from guild_jupyter import api

    return next((ln for ln in complete_lines(api.output(run_id)) if ln.startswith(prefix)), None)


def stop_guild_queue(proc, timeout: float = 30.0) -> None:
    """Stops a ``guild run queue`` CLI started by a test (in its own session)
    as ``guild stop`` does: SIGTERM to the queue's process, the one its run's
    LOCK names; the CLI then records the queue's end and exits. Not SIGTERM
    to its process group: that ends the CLI before it records anything (the
    queue run is left without an outcome) and takes down a run the queue is
    starting. Past ``timeout`` (a queue that never got as far as its run),
    the group is killed."""
    from guild_jupyter import api

    deadline = time.monotonic() + timeout
    signalled = False
    while proc.poll() is None and time.monotonic() < deadline:
        if not signalled:  # no queue run yet while the CLI is making it: ask again
            signalled = bool(api.stop(queues=True, wait=False))
        try:
            proc.wait(0.5)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def gone(proc) -> bool:
    """Whether a process (a pid or a ``psutil.Process``) has exited: gone, or
    a zombie left for its parent to collect. Never raises for one that exits
    while it is looked at (between ``children()`` and ``status()``)."""
    import psutil

    try:
        if isinstance(proc, int):
            proc = psutil.Process(proc)
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def shown_ids(text: str) -> list[str]:
    """The short ids of the runs a verb's text names (``[3:ab12cd34]``, or
    ``[ab12cd34]`` for a run no listing holds), in order."""
    import re

    return re.findall(r"^\[(?:\d+:)?([0-9a-f]{8})\]", text, re.M)


def shown_queue(text: str) -> str:
    """The short id of the queue a verb's text names (``queue ab12cd34 ...``)."""
    import re

    m = re.match(r"queue ([0-9a-f]{8})\b", text)
    assert m, text
    return m.group(1)


def cli(*args, cwd=None, env=None, check=None, timeout=120, input=None):
    """Runs ``python -m guild_jupyter ARGS``."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(
        [sys.executable, "-m", "guild_jupyter", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=input,
    )
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def guild(*args, cwd=None, env=None, check=0, timeout=180):
    """Runs the real ``guild`` CLI (guildai 0.9), the compatibility oracle."""
    full_env = dict(os.environ)
    full_env.setdefault("NO_IMPORT_FLAGS_PROGRESS", "1")
    if env:
        full_env.update(env)
    p = subprocess.run([GUILD, *map(str, args)], cwd=cwd, env=full_env, capture_output=True,
                       text=True, timeout=timeout)
    if check is not None:
        assert p.returncode == check, f"guild {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def write_script(directory, text: str, name: str = "ticker.py") -> str:
    """Writes ``text`` as ``directory/name`` and returns its path (a str, as ``api.run`` takes)."""
    path = os.path.join(str(directory), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run_dirs(home) -> set:
    runs = os.path.join(str(home), "runs")
    if not os.path.isdir(runs):
        return set()
    return {n for n in os.listdir(runs) if not n.startswith(".")}


# -- no process outlives the suite -------------------------------------------------------

SESSION_MARK = "GUILD_JUPYTER_TEST_SESSION"
LEFT_GRACE = 20.0  # seconds a process the tests stopped gets to finish ending (a supervisor recording its outcome)
_SESSION: dict = {}


def pytest_configure(config):
    # Tests send SIGINT to the processes they start (a foreground sweep, a
    # followed run, Jupyter's interrupt in this process). A shell without job
    # control starts a background command with SIGINT ignored, and an
    # ignored signal stays ignored across exec: the suite run that way (a
    # loop under `&`, nohup) saw every such process ignore it. The tests'
    # processes start as they would from a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # Every process a test execs inherits the marker; forked ones (a
    # supervisor forked by this process, its script) are found as this
    # process's descendants or by their run directory (cwd, arguments).
    os.environ[SESSION_MARK] = uuid.uuid4().hex
    _SESSION["started"] = time.time()


@pytest.fixture(scope="session", autouse=True)
def _session_root(tmp_path_factory):
    _SESSION["root"] = str(tmp_path_factory.getbasetemp())
    yield


def session_processes() -> list:
    """Live processes started by this test session: this process's
    descendants, processes with this session's marker in their environment,
    and processes whose working directory or an argument is under the
    session's temporary directory."""
    import psutil

    root = _SESSION.get("root")
    mark = os.environ.get(SESSION_MARK)
    me = psutil.Process()
    out = {p.pid: p for p in me.children(recursive=True)}
    for p in psutil.process_iter(["pid"]):
        if p.pid == me.pid or p.pid in out:
            continue
        try:
            if p.create_time() < _SESSION.get("started", 0) - 1:
                continue
            if mark and p.environ().get(SESSION_MARK) == mark:
                out[p.pid] = p
            elif root and (p.cwd().startswith(root + os.sep) or any(root + os.sep in a for a in p.cmdline())):
                out[p.pid] = p
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    live = []
    for p in out.values():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and not _interpreter_helper(p, me):
                live.append(p)
        except psutil.Error:
            continue
    return live


def _interpreter_helper(p, me) -> bool:
    """multiprocessing's resource tracker (or forkserver) of this process:
    started by the first Dask cluster or pool a test makes, it is this
    interpreter's own and ends when it does, after the session."""
    return p.ppid() == me.pid and any(
        "multiprocessing.resource_tracker" in a or "multiprocessing.forkserver" in a for a in p.cmdline())


def pytest_sessionfinish(session, exitstatus):
    """Fails the session when processes it started are still alive at its
    end (after a bounded wait for those that are ending), and kills them.

    A failure, not a warning: the project promises that nothing it starts
    outlives its run, queue or server, and each test promises to stop what
    it starts; CI reads the outcome of one run of the suite, where a warning
    goes unread, and a process left behind (a queue orphaned for minutes)
    loads the machine and makes the next tests flaky."""
    import psutil

    if "root" not in _SESSION:  # nothing collected ran (--collect-only, a usage error)
        return
    deadline = time.monotonic() + LEFT_GRACE
    left = session_processes()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = session_processes()
    lines = []
    for p in left:
        try:
            lines.append(f"  pid {p.pid} (cwd {p.cwd()}): {' '.join(p.cmdline())[:300]}")
        except psutil.Error:
            continue
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    report = session.config.pluginmanager.get_plugin("terminalreporter")
    if _LEFT_GOING and report is not None:
        report.write_line(f"teardown stopped queues or runs still going in {len(set(_LEFT_GOING))} test store(s):",
                          yellow=True)
        for home in sorted(set(_LEFT_GOING)):
            report.write_line(f"  {home}")
    if not lines:
        return
    if report is not None:
        report.write_line(f"{len(lines)} process(es) started by the tests outlived them (killed now):", red=True)
        for line in lines:
            report.write_line(line, red=True)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
