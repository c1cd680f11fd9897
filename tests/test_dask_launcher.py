"""A Dask worker's launcher on its own (no cluster needed: a test plays
the task's side of the socket): the spare runner it keeps forked ahead
takes a task's run and is its supervisor, starting it exactly once; the
task's connection closing mid-run (its worker died) ends the run's
processes and records it ``error``, "worker lost"; ``kill -9`` of the
launcher takes its spare (which holds no run) with it, freeing the
socket's name, and the next task starts a new launcher. Each test stops
the launchers it starts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import uuid

import psutil
import pytest

from conftest import outcomes_recorded, wait_for
from guild_jupyter import api
from guild_jupyter.queueing.dask import launcher
from guild_jupyter.store import dask_records, transitions
from guild_jupyter.store.run import Run

SCRIPT = """\
import os, time
sleep = 0.0
with open(os.path.join(os.environ["RUN_DIR"], "ran.txt"), "a") as f:
    f.write(str(os.getpid()) + "\\n")
time.sleep(sleep)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _launcher_pid(name: str) -> int:
    """The live launcher listening on ``name``: its forked children (spare,
    runners, supervisors) show its command line too, but their parent does."""
    def named(p) -> bool:
        try:
            return name in (p.cmdline() or [])
        except psutil.Error:
            return False

    def parent_named(p) -> bool:
        try:
            return named(psutil.Process(p.ppid()))
        except psutil.Error:
            return False

    found = [p.pid for p in psutil.process_iter() if named(p) and not _gone(p.pid) and not parent_named(p)]
    assert len(found) == 1, f"launchers for {name}: {found}"
    return found[0]


def _children(launcher_pid: int) -> list:
    try:
        return [k.pid for k in psutil.Process(launcher_pid).children() if not _gone(k.pid)]
    except psutil.NoSuchProcess:
        return []


def _started(name: str):
    """Starts the launcher ``name`` as a task would (``ensure``); returns its
    pid and its spare once one waits. The connection ``ensure`` makes is
    taken by the first spare: kept open until the launcher forked the next
    one, then closed (that spare, given no request, leaves)."""
    conn = launcher.ensure(name)
    assert conn is not None
    pid = _launcher_pid(name)
    both = wait_for(lambda: (lambda k: k if len(k) == 2 else None)(_children(pid)), 30,
                    message="the next spare forked")
    first = min(both, key=lambda k: psutil.Process(k).create_time())
    conn.close()
    spare = wait_for(lambda: (lambda k: k[0] if len(k) == 1 and k[0] != first else None)(_children(pid)), 30,
                     message="the first spare gone")
    return pid, spare


@pytest.fixture
def launchers():
    """Names of the launchers a test starts; each is killed (with its spare,
    which leaves with it) at the end."""
    names: list = []
    yield names
    for name in names:
        for p in psutil.process_iter(["cmdline"]):
            if name in (p.info["cmdline"] or []):
                try:
                    p.kill()
                except psutil.Error:
                    pass


def _claimed_run(tmp_path, sleep: float) -> Run:
    script = tmp_path / "work.py"
    script.write_text(SCRIPT)
    run = api.run(str(script), f"sleep={sleep}", stage=True)[0]
    store = api.resolve_store(None)
    transitions.claim(store, run, transitions.Claim.by_this_process())
    return run.refresh()


def _request(name: str, run: Run, key: str):
    """What a Dask task does: connects and sends the runner's arguments;
    returns the connection and a file of its report lines."""
    owner = transitions.Claim.by_this_process().owner.as_record()
    argv = [run.dir, json.dumps(owner), key, "w0", dask_records.this_host(), ""]
    conn = launcher.connect(name)
    assert conn is not None
    conn.sendall(json.dumps(argv).encode() + b"\n")
    return conn, conn.makefile("rb")


def _task(name: str, run: Run, key: str, out: list) -> threading.Thread:
    """A task in a thread: its report lines, read until the runner closes the connection, go to ``out``."""
    def go():
        conn, f = _request(name, run, key)
        with conn:
            out.extend(raw.decode().strip() for raw in f)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def _ran(run) -> list:
    try:
        return open(os.path.join(run.dir, "ran.txt")).read().split()
    except FileNotFoundError:
        return []


def test_the_spare_runner_is_the_run_s_supervisor_and_starts_it_once(tmp_path, launchers):
    name = f"guild_jupyter-test-{uuid.uuid4().hex}"
    launchers.append(name)
    pid, spare = _started(name)
    run = _claimed_run(tmp_path, sleep=2.0)

    lines: list = []
    task = _task(name, run, run.id, lines)
    # The run is held by the process that was forked before the task came:
    # the spare took the task and supervises the run itself.
    wait_for(lambda: Run(run.dir).lock_pid() is not None, 30, message="the run held")
    assert Run(run.dir).lock_pid() == spare
    script = wait_for(lambda: _ran(run), 30, message="the script runs")
    assert psutil.Process(int(script[0])).ppid() == spare
    wait_for(lambda: any(k != spare for k in _children(pid)), 30, message="the next spare forked")
    task.join(60)
    assert not task.is_alive()
    assert lines == ["ok", "exit 0"]
    wait_for(lambda: outcomes_recorded([Run(run.dir)]), 30, message="the outcome")
    r = Run(run.dir)
    assert r.status == "completed" and r.exit_status == 0
    assert len(_ran(r)) == 1
    assert dask_records.dispatch(r)["key"] == run.id and r.get("dask_worker") == "w0"
    assert not os.path.exists(r.path("LOCK.remote"))

    # The same task delivered again finds the run taken: nothing starts.
    again: list = []
    _task(name, run, run.id, again).join(60)
    assert len(again) == 1 and again[0].startswith("skip: ")
    assert len(_ran(r)) == 1


@contextlib.contextmanager
def _mid_run(tmp_path, launchers):
    """A run of a minute taken by a new launcher's runner for a task this
    test plays, its script started: yields ``(run, script pid)``; the task's
    connection closes on leaving (as when the worker process dies)."""
    name = f"guild_jupyter-test-{uuid.uuid4().hex}"
    launchers.append(name)
    _started(name)
    run = _claimed_run(tmp_path, sleep=60.0)
    conn, f = _request(name, run, run.id)
    try:
        assert f.readline().decode().strip() == "ok"
        yield run, int(wait_for(lambda: _ran(run), 30, message="the script runs")[0])
    finally:
        f.close()
        conn.close()


def test_the_task_s_connection_closing_mid_run_ends_it_as_worker_lost(tmp_path, launchers):
    with _mid_run(tmp_path, launchers) as (run, script):
        assert Run(run.dir).status == "running"
    # (the connection closed, as when the worker process dies: the runner's stdin reads EOF)
    wait_for(lambda: outcomes_recorded([Run(run.dir)]), 30, message="the outcome")
    r = Run(run.dir)
    assert r.status == "error" and r.exit_status == 1
    wait_for(lambda: _gone(script), 30, message="the run's script ended")
    with open(r.path("output"), "rb") as out:
        assert b"worker lost: Dask worker w0" in out.read()
    assert not os.path.exists(r.path("LOCK.remote")) and not os.path.exists(r.path("LOCK"))
    assert len(_ran(r)) == 1


def test_kill_9_of_the_launcher_takes_its_spare_and_frees_the_name(tmp_path, launchers):
    name = f"guild_jupyter-test-{uuid.uuid4().hex}"
    launchers.append(name)
    pid, spare = _started(name)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _gone(spare), 30, message="the spare gone")
    wait_for(lambda: launcher.connect(name) is None, 30, message="the socket's name freed")

    # The next task starts a new launcher and its run starts once.
    run = _claimed_run(tmp_path, sleep=0.0)
    conn = launcher.ensure(name)
    assert conn is not None
    conn.close()
    assert _launcher_pid(name) != pid
    lines: list = []
    _task(name, run, run.id, lines).join(60)
    assert lines == ["ok", "exit 0"]
    wait_for(lambda: outcomes_recorded([Run(run.dir)]), 30, message="the outcome")
    assert Run(run.dir).status == "completed"
    assert len(_ran(run)) == 1


def test_kill_9_of_the_runner_is_its_supervisor_s_death_settled_by_the_next_look(tmp_path, launchers):
    """The runner is the run's supervisor: killed with ``kill -9`` while the
    run's script runs, the run is recorded ``error`` once by the next look
    (a listing), as a local run whose supervisor died, and its script is
    ended; the script ran once."""
    with _mid_run(tmp_path, launchers) as (run, script):
        runner = Run(run.dir).lock_pid()
        assert runner is not None and psutil.Process(script).ppid() == runner
        os.kill(runner, signal.SIGKILL)
        wait_for(lambda: _gone(runner), 30, message="the runner gone")
        assert not _gone(script)  # left behind until someone looks
    listed = {r.id: r.status for r in api.runs()}
    assert listed[run.id] == "error"
    wait_for(lambda: _gone(script), 30, message="the orphaned script ended")
    r = Run(run.dir)
    assert r.status == "error" and r.exit_status == 1
    assert not os.path.exists(r.path("LOCK")) and not os.path.exists(r.path("LOCK.remote"))
    assert len(_ran(r)) == 1
