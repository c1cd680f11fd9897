"""Queue control for real: pause, resume and drain a thread queue and a
detached one, through the API, ``%guild queue ...`` in a real IPython shell,
the CLI, the REST API of a real Jupyter server and the panel's buttons; bad
input refused in one line with nothing changed."""

from __future__ import annotations

import os

import pytest
from IPython.core.error import UsageError

from conftest import cli, run_dirs, shown_queue, wait_for
from guild_jupyter import api
from guild_jupyter.errors import BadInput, RunNotFound, WrongState
from guild_jupyter.frontends.magics import GuildMagics
from guild_jupyter.store import queue_state


def _stage(project, *flags):
    (r,) = api.run(str(project / "train.py"), *flags, stage=True)
    return r


def _log(q) -> str:
    return api.output(q.id)


def _queue_row(qid):
    rows = [q for q in api.queues().view_rows() if q["id"] == qid]
    assert rows, f"queue {qid[:8]} not listed"
    return rows[0]


@pytest.fixture(params=["thread", "detached"])
def queue(request):
    """A running queue of each host; a long poll interval, so every reaction
    below comes from the store's change marker, not from polling."""
    q = api.queue(poll_interval=60, background=request.param == "detached")
    wait_for(lambda: q.status in ("waiting", "running"), message="queue up")
    yield q
    if q.status != "stopped":
        q.stop(wait=True, timeout=20)
    api.stop(all=True, timeout=15)


def test_pause_resume_drain(queue, project):
    # Paused: a pass sees the staged run and starts nothing.
    done = api.pause_queue(queue)
    assert done == {"id": queue.id, "action": "pause", "state": "paused", "previous": "running"}
    held = _stage(project, "epochs=1")
    wait_for(lambda: f"Paused: staged run {held.id} waits" in _log(queue), message="a paused pass over the run")
    assert held.refresh().status == "staged"
    row = _queue_row(queue.id)
    assert (row["state"], row["control"]) == ("paused", "paused")
    assert "paused" in row["description"]

    # Resumed: it starts at once (no poll: the interval is 60 s).
    api.resume_queue(queue.id)
    wait_for(lambda: held.refresh().status == "completed", timeout=30, message="resumed queue starts the run")
    assert _queue_row(queue.id)["control"] == "running"

    # Drain with a run going: it ends, nothing new starts, the queue exits 0.
    going = _stage(project, "epochs=2", "sleep=1.0")
    wait_for(lambda: going.refresh().status == "running", timeout=30, message="run going")
    api.drain_queue(queue.id[:8])
    late = _stage(project, "epochs=1")
    assert queue.join(40), "drained queue did not stop"
    assert going.refresh().status == "completed"
    assert late.refresh().status == "staged"
    qrun = queue.run.refresh()
    assert qrun.status == "completed" and qrun.exit_status == 0
    log = _log(queue)
    for line in ("Paused: no staged run is started", "Resumed: starting staged runs again",
                 "Draining: no staged run is started", "Drained: processed 2 run(s); stopping the queue"):
        assert line in log, line
    assert f"Starting staged run {late.id}" not in log
    assert log.index("Draining") < log.index(f"Run {going.id} finished")


def test_run_once_queue_waits_while_paused(project):
    """A paused run-once queue neither starts a staged run nor exits once its
    run has ended; resumed, it starts it, then exits."""
    first = _stage(project, "epochs=2", "sleep=0.5")
    q = api.queue(run_once=True, poll_interval=60)
    wait_for(lambda: first.refresh().status == "running", timeout=30, message="first run going")
    api.pause_queue(q)
    held = _stage(project, "epochs=1")
    wait_for(lambda: f"Run {first.id} finished: completed" in _log(q), timeout=30, message="first run ended")
    wait_for(lambda: f"Paused: staged run {held.id} waits" in _log(q), message="a paused pass over the run")
    assert not q.join(0.5) and q.status != "stopped"
    assert held.refresh().status == "staged"
    api.resume_queue(q)
    assert q.join(30)
    assert held.refresh().status == "completed"
    assert "no staged runs left (run-once)" in _log(q)


def test_magics_and_cli(ipython, project, monkeypatch):
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    q = api.queue(poll_interval=60)
    try:
        out = ipython.run_line_magic("guild", f"queue pause {q.id[:8]}")
        assert out["state"] == "paused" and str(out).startswith(f"queue {q.id[:8]} paused")
        assert queue_state.read_control(q.run) == "paused"
        p = cli("queue", "resume", q.id, check=0)
        assert p.stdout.strip() == f"queue {q.id[:8]} resumed"
        assert queue_state.read_control(q.run) == "running"
        p = cli("queue", "drain", q.id[:8], check=0)
        assert p.stdout.startswith(f"queue {q.id[:8]} draining")
        assert q.join(30) and q.run.refresh().status == "completed"
        # `queue FLAG=VALUE` still starts a queue: the action words only lead.
        p = cli("queue", "--background", "run-once=yes", "retries=1", check=0)
        qid = api.resolve_store().resolve(shown_queue(p.stdout)).id
        wait_for(lambda: api.resolve_store().run(qid).status == "completed", timeout=30, message="run-once queue")
        assert api.resolve_store().run(qid).flags["retries"] == 1
    finally:
        q.stop(timeout=20)


def _state(home):
    return sorted(run_dirs(home)), {r.id: (r.status, queue_state.has_control(r)) for r in api.runs()}


def test_bad_input_changes_nothing(project, guild_home, ipython, monkeypatch):
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    q = api.queue(run_once=True)
    assert q.join(30)
    (plain,) = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=open(os.devnull, "w"))
    before = _state(guild_home)
    with pytest.raises(WrongState, match=f"queue {q.id[:8]} is completed: only a running queue"):
        api.pause_queue(q)
    with pytest.raises(BadInput, match="is not a queue"):
        api.drain_queue(plain.id)
    with pytest.raises(RunNotFound):
        api.resume_queue("fedcba98fedcba98")
    with pytest.raises(BadInput, match="unknown queue action 'halt'"):
        api.queue_control(q.id, "halt")
    with pytest.raises(BadInput, match="bad value for retries: -1"):
        api.queue(retries=-1)
    with pytest.raises(UsageError, match="is completed"):
        ipython.run_line_magic("guild", f"queue pause {q.id[:8]}")
    with pytest.raises(UsageError, match="pause takes one QUEUE"):
        ipython.run_line_magic("guild", "queue pause")
    for args, message in [(("queue", "pause", q.id), "is completed"),
                          (("queue", "drain", "fedcba98fedcba98"), "no run with id"),
                          (("queue", "retries=-1"), "bad value for retries: '-1'"),
                          (("queue", "pause", q.id, "--background"),
                           "queue: give pause|resume|drain or --background, not both")]:
        p = cli(*args, check=2)
        assert p.stdout == "" and p.stderr.count("\n") == 1 and message in p.stderr, p.stderr
    assert _state(guild_home) == before


@pytest.mark.guild
def test_guild_queue_refused(project, guild_home):
    """Guild's own queue does not read our state: asking it is refused."""
    from conftest import guild

    guild("run", "queue", "run-once=yes", "-y")
    (qrun,) = [r for r in api.runs() if r.is_queue]
    assert qrun.status == "completed"
    with pytest.raises(WrongState, match="Guild's own"):
        api.pause_queue(qrun.id)
    assert not queue_state.has_control(qrun)


def test_panel_buttons(project, guild_home):
    from guild_jupyter.frontends.panel import panel
    from test_panel import fake_probe

    q = api.queue(poll_interval=60)
    p = panel(store=str(guild_home), refresh=0, probe=fake_probe(), display=False)
    try:
        p.refresh()
        row = p.queue_rows[0]
        assert row.run_id == q.id
        row.bound_at -= 10  # a person clicks a moment after the row appeared
        assert [a["verb"] for a in row.actions] == ["pause", "drain", "stop"]  # the row's actions, as REST gives them
        assert [b.description for b in row.buttons] == ["Pause", "Drain", "Stop"]
        row.button("pause").click()
        assert f"queue {q.id[:8]} paused" in p.feedback.value
        assert queue_state.read_control(q.run) == "paused"
        p.refresh()
        assert [a["verb"] for a in row.actions] == ["resume", "drain", "stop"] and row.button("pause") is None
        row.button("resume").click()
        assert queue_state.read_control(q.run) == "running" and f"queue {q.id[:8]} resumed" in p.feedback.value
        p.refresh()
        row.button("drain").click()
        assert q.join(30) and q.run.refresh().status == "completed"
        assert f"queue {q.id[:8]} draining" in p.feedback.value
        wait_for(lambda: p.refresh() and row.run_id is None, timeout=10, message="drained queue gone from the panel")
        assert row.box.layout.display == "none"
    finally:
        p.close()
        q.stop(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support.jupyter import module_server

    s = module_server(tmp_path_factory, "lr = 0.1\nprint('loss:', lr)\n")
    yield s
    s.stop()


def rest_run_finished(server) -> str:
    """A run started over REST, once it has completed."""
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py"})
    assert st == 201, body
    run_id = body["runs"][0]["id"]
    wait_for(lambda: server.request(f"/guild/api/runs/{run_id}")[1]["status"] == "completed", timeout=30,
             message="run over REST")
    return run_id


def test_rest(server):
    st, q = server.request("/guild/api/queues", "POST", {"host": "detached", "poll_interval": 60})
    assert st == 201
    qid = q["id"]
    for action, state in (("pause", "paused"), ("resume", "running"), ("pause", "paused")):
        st, body = server.request(f"/guild/api/queues/{qid}/{action}", "POST", {})
        assert st == 200 and body["state"] == state, body
    st, qs = server.request("/guild/api/queues")
    (row,) = [x for x in qs["queues"] if x["id"] == qid]
    assert row["control"] == "paused" and row["state"] == "paused"
    st, body = server.request(f"/guild/api/queues/{qid}/drain", "POST", {})
    assert st == 200 and body["state"] == "draining"
    wait_for(lambda: server.request(f"/guild/api/runs/{qid}")[1]["status"] == "completed", timeout=30,
             message="drained queue ends")
    st, err = server.request(f"/guild/api/queues/{qid}/pause", "POST", {})
    assert st == 409 and "is completed" in err["error"]
    st, err = server.request("/guild/api/queues/fedcba98fedcba98/pause", "POST", {})
    assert st == 404
    st, err = server.request(f"/guild/api/queues/{qid}/pause", "POST", {"now": True})
    assert st == 400 and "takes no fields" in err["error"]


def test_completion(project, guild_home):
    from guild_jupyter.frontends import commands as C
    from guild_jupyter.frontends.completion import complete

    assert complete("queue ")[1][-3:] == list(C.QUEUE_ACTIONS)
    assert complete("queue dr")[1] == ["drain"]
    (done,) = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=open(os.devnull, "w"))
    q = api.queue(poll_interval=60)
    try:
        assert complete("queue pause ")[1] == [q.id[:8]]  # running queues only: not the finished run
        assert complete(f"queue pause {q.id[:8]} ")[1] == []  # one QUEUE
        assert complete("queue gpus=0 ")[1] and "pause" not in complete("queue gpus=0 ")[1]
        assert complete(f"restage {done.id[:8]} ep")[1] == ["epochs="]  # the run's flags
        assert complete("restart ")[1] == [done.id[:8]]  # finished runs only
    finally:
        q.stop(timeout=20)
