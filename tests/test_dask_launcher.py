"""A Dask worker's launcher on its own (no cluster needed: a test plays
the task's side of the socket): the spare runner it keeps forked ahead,
with its run's supervisor forked ahead too, takes a task's run and starts
it exactly once; ``kill -9`` of the launcher takes its spare (which holds
no run) with it, freeing the socket's name, and the next task starts a new
launcher. Each test stops the launchers it starts."""

from __future__ import annotations

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


def _pairs(launcher_pid: int) -> list:
    """(child, its only child) for each child of the launcher: its spare
    with the supervisor forked ahead, and any runner with its run's."""
    out = []
    try:
        kids = [k for k in psutil.Process(launcher_pid).children() if not _gone(k.pid)]
    except psutil.NoSuchProcess:
        return out
    for k in kids:
        try:
            grand = [g for g in k.children() if not _gone(g.pid)]
        except psutil.NoSuchProcess:
            continue
        if len(grand) == 1:
            out.append((k.pid, grand[0].pid))
    return out


def _started(name: str):
    """Starts the launcher ``name`` as a task would (``ensure``); returns its
    pid and (spare, supervisor forked ahead) once a spare waits. The
    connection ``ensure`` makes is taken by the first spare: kept open until
    the launcher forked the next one, then closed (that spare, given no
    request, leaves)."""
    conn = launcher.ensure(name)
    assert conn is not None
    pid = _launcher_pid(name)
    both = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(_pairs(pid)), 30,
                    message="the next spare forked")
    first = min(both, key=lambda p: psutil.Process(p[0]).create_time())
    conn.close()
    pair = wait_for(lambda: (lambda p: p[0] if len(p) == 1 and p[0] != first else None)(_pairs(pid)), 30,
                    message="the first spare gone")
    return pid, pair


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


def _task(name: str, run: Run, key: str, out: list) -> threading.Thread:
    """What a Dask task does: connects, sends the runner's arguments, reads
    its report lines until the runner closes the connection."""
    owner = transitions.Claim.by_this_process().owner.as_record()
    argv = [run.dir, json.dumps(owner), key, "w0", dask_records.this_host(), ""]

    def go():
        conn = launcher.connect(name)
        out.extend(launcher.request(conn, argv) if conn is not None else ["no launcher"])

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def test_the_spare_runner_and_its_supervisor_forked_ahead_start_the_run_once(tmp_path, launchers):
    name = f"guild_jupyter-test-{uuid.uuid4().hex}"
    launchers.append(name)
    pid, (spare, supervisor) = _started(name)
    run = _claimed_run(tmp_path, sleep=2.0)

    lines: list = []
    task = _task(name, run, run.id, lines)
    # The run is held by the supervisor that was forked before the task came.
    wait_for(lambda: Run(run.dir).lock_pid() is not None, 30, message="the run held")
    assert Run(run.dir).lock_pid() == supervisor
    assert psutil.Process(supervisor).ppid() == spare
    wait_for(lambda: any(p != (spare, supervisor) for p in _pairs(pid)), 30, message="the next spare forked")
    task.join(60)
    assert not task.is_alive()
    assert lines == ["ok", "exit 0"]
    wait_for(lambda: outcomes_recorded([Run(run.dir)]), 30, message="the outcome")
    r = Run(run.dir)
    assert r.status == "completed"
    assert len(open(os.path.join(r.dir, "ran.txt")).read().split()) == 1
    assert dask_records.dispatch(r)["key"] == run.id and r.get("dask_worker") == "w0"

    # The same task delivered again finds the run taken: nothing starts.
    again: list = []
    _task(name, run, run.id, again).join(60)
    assert len(again) == 1 and again[0].startswith("skip: ")
    assert len(open(os.path.join(r.dir, "ran.txt")).read().split()) == 1


def test_kill_9_of_the_launcher_takes_its_spare_and_frees_the_name(tmp_path, launchers):
    name = f"guild_jupyter-test-{uuid.uuid4().hex}"
    launchers.append(name)
    pid, (spare, supervisor) = _started(name)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _gone(spare) and _gone(supervisor), 30, message="the spare and its supervisor gone")
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
    assert len(open(os.path.join(run.dir, "ran.txt")).read().split()) == 1


def test_a_supervisor_forked_ahead_and_never_given_a_run_leaves_touching_nothing(tmp_path):
    """``launch.prepare_supervisor`` in a single-threaded process that exits
    without a run for it: the supervisor reads EOF and leaves."""
    import subprocess
    import sys

    code = ("import os, sys\n"
            "from guild_jupyter.execution import launch\n"
            "p = launch.prepare_supervisor()\n"
            "print(p.pid, flush=True)\n"
            "sys.stdin.read()\n")  # holds the pipe until the test closes stdin
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        pid = int(proc.stdout.readline())
        assert not _gone(pid)
        proc.stdin.close()
        proc.wait(30)
        wait_for(lambda: _gone(pid), 30, message="the supervisor forked ahead gone")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    runs = os.path.join(os.environ["GUILD_HOME"], "runs")
    assert not os.path.isdir(runs) or os.listdir(runs) == []
