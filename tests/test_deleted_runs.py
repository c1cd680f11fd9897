"""Following or waiting on a staged run that gets deleted says it was
deleted -- not "error", not "? error" -- in the Python API, the CLI (real
subprocesses) and ``%guild`` in a real IPython shell. Each waiter is seen
to be waiting (its thread or process asleep in the wait's loop, or its note
written) before the run is deleted; nothing is timed."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import pytest
from IPython.core.error import UsageError

from conftest import wait_for
from guild_jupyter import api
from guild_jupyter.errors import RunDeleted
from guild_jupyter.frontends.magics import GuildMagics


def asleep(wchan_path: str) -> bool:
    """The thread or process behind ``/proc/.../wchan`` sleeps in a timed
    wait (the wait loop's ``time.sleep``)."""
    try:
        with open(wchan_path) as f:
            return "nanosleep" in f.read()
    except OSError:
        return False


def deleted_message(run) -> str:
    return f"run {run.id[:8]} was deleted (guild runs restore {run.id[:8]} brings it back)"


@pytest.fixture
def staged(project):
    (run,) = api.run(str(project / "train.py"), "lr=0.3", stage=True)
    return run


@pytest.fixture
def shell(ipython, project, monkeypatch):
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    return ipython


def _in_thread(fn):
    """Runs ``fn`` in a thread; returns (thread, box) where box gets its result or error."""
    box = {}

    def body():
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    wait_for(lambda: t.native_id is not None, message="the thread starts")
    return t, box


def _delete_while_waiting(run, thread):
    wait_for(lambda: asleep(f"/proc/self/task/{thread.native_id}/wchan"), message="the waiter waits")
    assert run.refresh().status == "staged"
    api.delete(run.id)
    thread.join(30)
    assert not thread.is_alive(), "the waiter did not notice the deletion"


def test_api_follow_and_wait_say_the_run_was_deleted(staged, project):
    notes = io.StringIO()
    out = io.StringIO()
    t, box = _in_thread(lambda: api.output(staged.id, follow=True, stream=out, note=notes))
    wait_for(lambda: "waiting for run" in notes.getvalue(), message="follow's note")
    _delete_while_waiting(staged, t)
    assert isinstance(box.get("error"), RunDeleted), box
    assert str(box["error"]) == deleted_message(staged) and box["error"].run_id == staged.id
    assert out.getvalue() == "" and "error" not in notes.getvalue()

    (other,) = api.run(str(project / "train.py"), "lr=0.4", stage=True)
    t, box = _in_thread(lambda: api.wait(other.id, timeout=120))
    _delete_while_waiting(other, t)
    assert isinstance(box.get("error"), RunDeleted) and str(box["error"]) == deleted_message(other), box
    # Not in the trash (removed outright): deleted all the same, without the restore hint.
    (third,) = api.run(str(project / "train.py"), "lr=0.5", stage=True)
    t, box = _in_thread(lambda: api.wait(third, timeout=120))
    wait_for(lambda: asleep(f"/proc/self/task/{t.native_id}/wchan"), message="the waiter waits")
    import shutil

    shutil.rmtree(third.dir)
    t.join(30)
    assert str(box.get("error")) == f"run {third.id[:8]} was deleted", box


def test_cli_output_follow_and_wait_say_the_run_was_deleted(staged, project, guild_home):
    follow = subprocess.Popen([sys.executable, "-m", "guild_jupyter", "output", "-f", staged.id], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stderr.readline().startswith(f"waiting for run {staged.id[:8]} to start")
        api.delete(staged.id)
        out, err = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert follow.returncode == 2 and out == ""
    assert err.splitlines() == [f"guild-jupyter: error: {deleted_message(staged)}"], err

    (other,) = api.run(str(project / "train.py"), "lr=0.4", stage=True)
    waiter = subprocess.Popen([sys.executable, "-m", "guild_jupyter", "wait", other.id[:8]], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: asleep(f"/proc/{waiter.pid}/wchan"), message="guild-jupyter wait waits")
        assert waiter.poll() is None
        api.delete(other.id)
        out, err = waiter.communicate(timeout=60)
    finally:
        waiter.kill()
    assert waiter.returncode == 2 and out == "" and "?" not in err
    assert err.splitlines() == [f"guild-jupyter: error: {deleted_message(other)}"], err


def test_magics_say_the_run_was_deleted(staged, shell, project):
    for line in (f"output {staged.id[:8]} --follow", None):
        run = staged if line else api.run(str(project / "train.py"), "lr=0.4", stage=True)[0]
        line = line or f"wait {run.id[:8]}"
        t, box = _in_thread(lambda line=line: shell.run_line_magic("guild", line))
        _delete_while_waiting(run, t)
        assert isinstance(box.get("error"), UsageError), (line, box)
        assert str(box["error"]) == deleted_message(run)
    assert not os.path.exists(staged.dir)
