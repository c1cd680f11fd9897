"""Restart (a finished run again, in place) and restage (a staged copy with
edited flags) for real, checked with the real ``guild`` CLI; through the
API, ``%guild`` in a real IPython shell, the CLI and the REST API."""

from __future__ import annotations

import os
import re

import pytest
from IPython.core.error import UsageError

from conftest import cli, guild, run_dirs, shown_ids, wait_for
from guild_jupyter import api
from guild_jupyter.errors import FlagError, WrongState
from guild_jupyter.frontends.magics import GuildMagics
from test_queue_control import server  # noqa: F401 - a real Jupyter server (module scope)

pytestmark = pytest.mark.guild


@pytest.fixture
def shell(ipython, project, monkeypatch):
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    return ipython


def _finished(project, *flags):
    (r,) = api.run(str(project / "train.py"), *flags, foreground=True, stream=open(os.devnull, "w"))
    assert r.status == "completed"
    return r


def _guild_info(run_id) -> dict:
    out = guild("runs", "info", run_id).stdout
    return dict(re.findall(r"^(id|status|started|exit_status): (.*)$", out, re.M))


def _state(home):
    """What a refused request must leave alone."""
    runs = {r.id: (r.status, r.get("started"), r.get("exit_status")) for r in api.runs()}
    return sorted(run_dirs(home)), runs


def test_restart_in_place_seen_by_guild(project, guild_home):
    r = _finished(project, "epochs=1", "name=first")
    before = _guild_info(r.id)
    assert before["status"] == "completed"
    started = r.started
    (again,) = api.restart(r.id)
    assert again.id == r.id and again.dir == r.dir
    api.wait(r.id, timeout=60)
    r.refresh()
    assert r.status == "completed" and r.started > started and r.stopped >= r.started
    assert run_dirs(guild_home) == {r.id}  # no new run
    after = _guild_info(r.id)
    assert after["id"] == r.id and after["status"] == "completed" and after["exit_status"] == "0"
    assert after["started"] >= before["started"]
    assert api.output(r.id).count("done first") == 2  # the new output follows the old


def test_restart_failed_run_and_stage_for_a_queue(project, guild_home, shell):
    # It fails until the marker exists; while MARKER.hold exists it stays running (bounded), so the
    # CLI's restart below can be seen running however fast the script is.
    (project / "flip.py").write_text("import os, sys, time\nmarker = ''\nok = os.path.exists(marker)\n"
                                     "print('ok' if ok else 'failing', flush=True)\n"
                                     "deadline = time.monotonic() + 60\n"
                                     "while os.path.exists(marker + '.hold') and time.monotonic() < deadline:\n"
                                     "    time.sleep(0.02)\n"
                                     "sys.exit(0 if ok else 4)\n")
    marker = project / "ok.flag"
    hold = project / "ok.flag.hold"
    (r,) = api.run(str(project / "flip.py"), f"marker={marker}", foreground=True, stream=open(os.devnull, "w"))
    assert r.refresh().status == "error"
    assert _guild_info(r.id)["status"] == "error"
    marker.write_text("")
    # %guild restart --stage: staged in place, started by a queue.
    out = shell.run_line_magic("guild", f"restart {r.id[:8]} --stage")
    assert [x.id for x in out] == [r.id] and r.refresh().status == "staged"
    assert r.exit_status is None
    assert guild("runs", "--staged").stdout.count(r.id[:8]) == 1
    q = api.queue(run_once=True)
    assert q.join(60)
    assert r.refresh().status == "completed" and r.get("queue_id") == q.id
    assert _guild_info(r.id)["status"] == "completed"
    # The CLI's restart: started now.
    hold.write_text("")
    try:
        p = cli("restart", r.id, check=0)
        assert shown_ids(p.stdout) == [r.id[:8]] and "running" in p.stdout  # as `runs` lists it
    finally:
        hold.unlink()
    api.wait(r.id, timeout=60)
    assert r.refresh().status == "completed" and api.output(r.id).count("ok") == 2


def test_restart_refused_unless_finished(project, guild_home, shell):
    (slow,) = api.run(str(project / "train.py"), "epochs=100", "sleep=0.2")
    (staged,) = api.run(str(project / "train.py"), stage=True)
    try:
        wait_for(lambda: slow.refresh().status == "running", message="run going")
        before = _state(guild_home)
        with pytest.raises(WrongState, match=f"run {slow.id[:8]} is running: only a finished run can be restarted"):
            api.restart(slow.id)
        with pytest.raises(WrongState, match="is staged"):
            api.restart(staged.id, stage=True)
        with pytest.raises(UsageError, match="is running"):
            shell.run_line_magic("guild", f"restart {slow.id[:8]}")
        p = cli("restart", slow.id, check=2)
        assert p.stdout == "" and p.stderr.count("\n") == 1 and "is running" in p.stderr
        assert _state(guild_home) == before
    finally:
        api.stop(slow.id)


def test_restage_with_edited_flags(project, guild_home, shell):
    r = _finished(project, "epochs=1", "name=orig", "lr=0.3")
    out = shell.run_line_magic("guild", f"restage {r.id[:8]} lr=0.05")
    (copy,) = out
    copy = api.resolve_store().run(copy.id)
    assert copy.status == "staged" and copy.id != r.id and copy.get("restage_of") == r.id
    assert copy.get("user_flags") == {"epochs": 1, "name": "orig", "lr": 0.05}
    assert copy.flags["lr"] == 0.05 and copy.flags["name"] == "orig"
    info = guild("runs", "info", copy.id).stdout
    assert "status: staged" in info and "lr: 0.05" in info
    # A sweep makes one copy per value; the CLI numbers them as `runs` does.
    p = cli("restage", r.id, "epochs=[1,2]", check=0)
    assert p.stdout.count("staged") == 2
    q = api.queue(run_once=True)
    assert q.join(60)
    assert sorted(x.flags["epochs"] for x in api.runs() if x.get("restage_of") == r.id) == [1, 1, 2]
    assert all(x.status == "completed" for x in api.runs() if x.get("restage_of") == r.id)


def test_restage_bad_flags_write_nothing(project, guild_home, shell):
    r = _finished(project, "epochs=1")
    before = _state(guild_home)
    with pytest.raises(FlagError, match="'nope' is not defined by train.py"):
        api.restage(r.id, "nope=1")
    with pytest.raises(UsageError, match="'nope' is not defined"):
        shell.run_line_magic("guild", f"restage {r.id[:8]} nope=1")
    p = cli("restage", r.id, "epochs=x", check=2)
    assert p.stderr.count("\n") == 1
    p = cli("restage", "fedcba98fedcba98", check=2)
    assert "no run with id" in p.stderr
    assert _state(guild_home) == before


def test_rest_restart_and_restage(server):
    from test_queue_control import rest_run_finished

    run_id = rest_run_finished(server)
    st, body = server.request(f"/guild/api/runs/{run_id}/restage", "POST", {"flags": {"lr": 0.7}})
    assert st == 200 and [r["status"] for r in body["runs"]] == ["staged"]
    copy = body["runs"][0]
    assert copy["id"] != run_id and copy["flags"]["lr"] == 0.7
    st, body = server.request(f"/guild/api/runs/{run_id}/restart", "POST", {"stage": True})
    assert st == 200 and [(r["id"], r["status"]) for r in body["runs"]] == [(run_id, "staged")]
    st, err = server.request(f"/guild/api/runs/{run_id}/restart", "POST", {})
    assert st == 409 and "is staged" in err["error"]
    st, err = server.request(f"/guild/api/runs/{run_id}/restage", "POST", {"flags": {"nope": 1}})
    assert st == 400 and "nope" in err["error"]
    st, q = server.request("/guild/api/queues", "POST", {"run_once": True, "poll_interval": 1})
    wait_for(lambda: server.request(f"/guild/api/runs/{run_id}")[1]["status"] == "completed", timeout=30,
             message="restarted run completed again")
    st, body = server.request(f"/guild/api/runs/{run_id}/restart", "POST", {})
    assert st == 200 and body["runs"][0]["id"] == run_id
    wait_for(lambda: server.request(f"/guild/api/runs/{run_id}")[1]["status"] == "completed", timeout=30,
             message="restarted now")


class _Holder:
    """A process that holds a finished run's LOCK for a moment, then lets go
    as a supervisor does after recording the outcome (the LOCK names it,
    written after it started). ``ok``: it removed the LOCK where it wrote it."""

    def __init__(self, run):
        import subprocess
        import sys

        from guild_jupyter.store.markers import LOCK

        lock = os.path.join(run.dir, ".guild", LOCK)
        self.proc = subprocess.Popen([sys.executable, "-c", (
            "import os, sys, time\n"
            "lock = sys.argv[1]\n"
            "with open(lock + '.tmp', 'w') as f:\n"
            "    f.write(str(os.getpid()))\n"
            "os.replace(lock + '.tmp', lock)\n"
            "print('held', flush=True)\n"
            "time.sleep(0.5)\n"
            "os.remove(lock)\n"), lock], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "held"

    def ok(self) -> bool:
        return self.proc.wait(timeout=30) == 0

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_restart_waits_for_the_supervisor_to_let_go(project, guild_home):
    """A run reads completed as soon as its outcome is written; its
    supervisor removes LOCK right after. A restart in between waits for
    that instead of refusing the run as held (a restart clicked at once)."""
    r = _finished(project, "epochs=1")
    holder = _Holder(r)
    try:
        assert r.refresh().status == "completed" and r.lock_holder() is not None
        (again,) = api.restart(r.id, stage=True)
        assert again.id == r.id and again.status == "staged"
        assert holder.ok()
    finally:
        holder.close()


def test_delete_waits_for_the_supervisor_to_let_go(project, guild_home):
    """The same moment for a delete: the run goes to the trash once its
    supervisor has let go, so no LOCK is carried into the trash (a restored
    run would bring it back) and the supervisor's removal does not fail."""
    r = _finished(project, "epochs=1")
    holder = _Holder(r)
    try:
        assert r.refresh().status == "completed" and r.lock_holder() is not None
        (gone,) = api.delete(r.id)
        assert holder.ok()
        assert gone.status == "completed" and not os.path.exists(gone.path("LOCK"))
        assert os.path.isdir(os.path.join(guild_home, "trash", "runs", r.id))
    finally:
        holder.close()
