"""The complete view model (issue 21 item 1) on a real store: every field of
a run row for each status, the actions each status allows, queue rows and
the snapshot's own words, as ``coord/VIEWMODEL.md`` promises them to every
front end; and the fixture files the browser's tests render still have the
shape the code produces."""

from __future__ import annotations

import io
import json
import os
import re
import textwrap

import pytest

from conftest import cli, guild, wait_for
from guild_jupyter import api, views
from guild_jupyter.errors import WrongState
from guild_jupyter.store import transitions
from support.snapshots import group
from support.viewmodel_store import build, key_paths

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

SLEEP_PY = textwrap.dedent(
    """\
    import time
    secs = 60.0
    lr = 0.1
    for step in range(3):
        print(f"loss: {lr / (step + 1):.4f}", flush=True)
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        time.sleep(0.05)
    """
)
FAIL_PY = "import sys\ncode = 3\nprint('about to fail')\nsys.exit(code)\n"

#: What every run row carries (the contract's RunRow).
RUN_FIELDS = {"id", "short_id", "op", "status", "guild_status", "flags", "flags_text", "varying", "varying_text",
              "gpus", "gpus_text", "label", "label_text", "started", "stopped", "time", "time_kind", "time_text",
              "elapsed", "elapsed_text", "exit_status", "queue", "waiting", "position", "scalar", "scalar_text", "spark",
              "status_text", "outcome_text", "title", "subtitle", "position_text", "waiting_text", "retry_text",
              "spark_points", "actions"}
ACTION_FIELDS = {"verb", "label", "confirm", "method", "path", "form"}


@pytest.fixture
def scripts(project):
    (project / "sleep.py").write_text(SLEEP_PY)
    (project / "fail.py").write_text(FAIL_PY)
    return project


def _rows_by_id(snap: dict) -> dict:
    return {r["id"]: (g["name"], r) for g in snap["groups"] for r in g["rows"]}


def _no_none_in_words(row: dict) -> None:
    for k, v in row.items():
        if k.endswith("_text") or k in ("title", "subtitle"):
            assert isinstance(v, str) and "None" not in v and "null" not in v, (k, v)


def _verbs(row: dict) -> list[str]:
    return [a["verb"] for a in row["actions"]]


def test_every_status_reads_and_acts_as_the_view_model_says(scripts, guild_home):
    sleep, fail = str(scripts / "sleep.py"), str(scripts / "fail.py")
    staged = api.run(sleep, "secs=1", stage=True)[0]
    pinned = api.run(sleep, "secs=1", gpus="2", stage=True)[0]
    auto = api.run(sleep, "secs=1", gpus="auto:2", stage=True)[0]
    pending = api.run(sleep, "secs=1", stage=True)[0]
    transitions.claim(api.resolve_store(None), pending, transitions.Claim.by_this_process())
    running = api.run(sleep, "secs=60")[0]
    completed = api.run(sleep, "secs=0", foreground=True, stream=io.StringIO())[0]
    failed = api.run(fail, foreground=True, stream=io.StringIO())[0]
    failed_again = api.run(fail, "code=4", foreground=True, stream=io.StringIO())[0]  # not retried
    by_you = api.run(sleep, "secs=60")[0]
    # Started by another process, as in the oracle test: ``guild stop`` waits for the
    # supervisor to go, and a supervisor that is this test's child lingers as a zombie.
    by_guild = started_by_cli(cli("run", "sleep.py", "secs=60", cwd=scripts, check=0).stdout)
    unstaged = api.run(sleep, "secs=1", stage=True)[0]
    try:
        api.stop(by_you.id, timeout=30)
        guild("stop", "-y", by_guild.id)  # the real CLI: SIGTERM to the same supervisor
        wait_for(lambda: by_guild.refresh().status == "terminated", timeout=30, message="guild stop takes effect")
        api.unstage(unstaged.id)
        (retry,) = api.retry(failed.id)

        snap = api.monitor(page_size=50).snapshot()
        json.dumps(snap)
        rows = _rows_by_id(snap)
        for _g, row in rows.values():
            assert RUN_FIELDS <= set(row), RUN_FIELDS - set(row)
            _no_none_in_words(row)
            assert row["subtitle"] == f"{row['op']} · {row['id'][:8]}"
            assert row["title"] == (row["varying_text"] or row["flags_text"] or row["op"])
            for a in row["actions"]:
                assert ACTION_FIELDS <= set(a) and a["path"].startswith("runs/" + row["id"])

        def at(run):
            return rows[run.id]

        # staged: in the queues' order, each with its place in line and why it waits
        staged_rows = group(snap, "staged")["rows"]
        assert [r["id"] for r in staged_rows] == [staged.id, pinned.id, auto.id, retry.id]
        assert [r["position"] for r in staged_rows] == [1, 2, 3, 4]
        assert [r["position_text"] for r in staged_rows] == ["next to start", "2nd in line", "3rd in line",
                                                             "4th in line"]
        assert {r["waiting_text"] for r in staged_rows} == {"no queue is running"}
        assert [r["gpus_text"] for r in staged_rows] == ["any GPU", "GPU 2", "2 GPUs, chosen by a gpus=auto queue",
                                                         "any GPU"]
        assert at(staged)[1]["status_text"] == "staged" and at(staged)[1]["outcome_text"] == ""
        assert _verbs(at(staged)[1]) == ["prioritize", "unstage"]
        (prioritize, unstage) = at(staged)[1]["actions"]
        assert (unstage["method"], unstage["path"], unstage["confirm"]) == ("DELETE", f"runs/{staged.id}", None)
        assert (prioritize["method"], prioritize["path"], prioritize["confirm"]) == (
            "POST", f"runs/{staged.id}/prioritize", None)
        # a retry says what it retries
        assert at(retry)[1]["retry_text"] == f"retry 1 of {failed.id[:8]}"
        assert all(r["retry_text"] == "" for r in staged_rows if r["id"] != retry.id)

        group_name, row = at(pending)
        assert (group_name, row["status_text"], _verbs(row)) == ("pending", "pending", ["stop", "output"])
        assert row["position"] is None and row["position_text"] == ""

        group_name, row = at(running)
        assert (group_name, row["status_text"], row["outcome_text"]) == ("running", "running", "")
        assert _verbs(row) == ["stop", "output"]
        stop, output = row["actions"]
        assert (stop["method"], stop["path"], stop["confirm"]) == ("POST", f"runs/{running.id}/stop",
                                                                    f"Stop run {running.id[:8]}?")
        assert (output["method"], output["path"], output["confirm"]) == ("GET", f"runs/{running.id}/output", None)

        group_name, row = at(completed)
        assert (group_name, row["status_text"]) == ("finished", "completed")
        assert re.fullmatch(r"completed in \d+s", row["outcome_text"])
        assert _verbs(row) == ["output", "restart", "restage", "delete"]
        assert row["spark"] and row["spark_points"] == views.spark_points(row["spark"]) != ""
        delete = row["actions"][-1]
        assert delete["method"] == "DELETE" and "trash" in delete["confirm"]
        form = next(a for a in row["actions"] if a["verb"] == "restage")["form"]
        assert [(f["name"], f["value"], f["type"]) for f in form["flags"]] == [
            (k, views.format_flag(v), {"float": "float", "int": "int"}[type(v).__name__])
            for k, v in completed.refresh().flags.items()]

        group_name, row = at(failed_again)
        assert (group_name, row["status_text"]) == ("failed", "error (exit 4)")
        assert re.fullmatch(r"failed after \d+s \(exit 4\)", row["outcome_text"])
        assert _verbs(row) == ["output", "retry", "restart", "restage", "delete"]
        retry_action = row["actions"][1]
        assert (retry_action["method"], retry_action["path"]) == ("POST", f"runs/{failed_again.id}/retry")
        group_name, row = at(failed)  # retried already: no second retry
        assert (group_name, row["status_text"]) == ("failed", "error (exit 3)")
        assert _verbs(row) == ["output", "restart", "restage", "delete"]
        assert group(snap, "failed")["open"] and not group(snap, "finished")["open"]

        group_name, row = at(by_you)
        assert (group_name, row["status_text"], row["guild_status"]) == ("finished", "stopped by you", "terminated")
        assert re.fullmatch(r"stopped by you after \d+s", row["outcome_text"])
        assert "-15" not in row["status_text"] + row["outcome_text"]
        group_name, row = at(by_guild)
        assert (group_name, row["status_text"]) == ("finished", "terminated")
        assert re.fullmatch(r"terminated after \d+s", row["outcome_text"])
        assert _verbs(row) == ["output", "restart", "restage", "delete"]

        group_name, row = at(unstaged)
        assert (group_name, row["status_text"], row["outcome_text"]) == ("finished", "unstaged",
                                                                         "unstaged: it never started")
        assert _verbs(row) == ["restart", "restage", "delete"]  # it has no output

        # the snapshot's own words
        assert snap["summary_text"] == "1 running · 1 pending · 4 staged · 2 failed"
        assert snap["status_bar_text"] == "Guild: " + snap["summary_text"] and snap["attention"] == 2
        assert [g["name"] for g in snap["groups"]] == list(views.GROUP_NAMES)
        assert all(g["title"] and g["empty_text"] and isinstance(g["open"], bool) for g in snap["groups"])
        assert group(snap, "pending")["empty_text"] and group(snap, "failed")["total"] == 2
        assert snap["gpus"]["text"].startswith("no NVIDIA GPU found") and snap["gpus"]["devices"] == []
        form = snap["queue_form"]
        assert [f["name"] for f in form["fields"]][:2] == ["gpus", "wait-for-running"]
        assert (form["path"], form["method"], form["hosts"]) == ("queues", "POST", ["thread", "detached"])
        assert {f["field"] for f in form["fields"]} >= {"gpus", "max_running", "retries", "per_gpu"}
        assert form["fields"] == api.queue_flag_table()  # the one queue-flag table
    finally:
        api.stop(all=True, timeout=15)


def test_a_restart_forgets_who_stopped_the_run(scripts, guild_home):
    (run,) = api.run(str(scripts / "sleep.py"), "secs=60")
    api.stop(run.id, timeout=30)
    assert views.status_text(run.refresh()) == "stopped by you"
    assert api.outcome_line(run) == f"run {run.id[:8]} stopped by you"  # what `output --follow` ends with

    def restarted():  # the supervisor lets go of the run just after its outcome is recorded
        try:
            return api.restart(run.id, stage=True)
        except WrongState:
            return None

    wait_for(restarted, timeout=30, message="the stopped run restartable")
    assert run.refresh().get("stopped_by") is None and views.status_text(run) == "staged"


def test_actions_per_status_and_for_guild_operations():
    rid = "ab12cd34" + "0" * 24
    expected = {"staged": ["prioritize", "unstage"], "pending": ["stop", "output"], "running": ["stop", "output"],
                "completed": ["output", "restart", "restage", "delete"],
                "error": ["output", "retry", "restart", "restage", "delete"],
                "terminated": ["output", "restart", "restage", "delete"], "unstaged": ["restart", "restage", "delete"]}
    for status, verbs in expected.items():
        actions = views.run_actions(rid, status, flags={"lr": 0.1})
        assert [a["verb"] for a in actions] == verbs, status
        assert all(a["label"] == a["verb"].capitalize() and a["target"] == rid for a in actions)
        assert {a["verb"] for a in actions if a["confirm"]} == {"stop", "delete", "restart"} & set(verbs)
        # a Guild operation (not a script's run) cannot be copied or re-run here
        assert [a["verb"] for a in views.run_actions(rid, status, script=False)] == [
            v for v in verbs if v not in ("retry", "restart", "restage")]
    # a pending run held for its dependencies (SPEC 12) is not started: it is staged in all but name
    held = views.run_actions(rid, "pending", held=True, priority=-3)
    assert [a["verb"] for a in held] == ["prioritize", "unstage"]
    assert held[0]["form"] == {"flags": [{"name": "priority", "value": "-3", "type": "int"}]}
    restage = views.run_actions(rid, "completed", flags={"lr": 0.1, "n": 3, "ok": True, "name": "x",
                                                          "layers": [64, 32]})[2]
    assert restage["form"] == {"flags": [{"name": "lr", "value": "0.1", "type": "float"},
                                         {"name": "n", "value": "3", "type": "int"},
                                         {"name": "ok", "value": views.format_flag(True), "type": "bool"},
                                         {"name": "name", "value": "x", "type": "str"},
                                         {"name": "layers", "value": views.format_flag([64, 32]), "type": "list"}]}
    qid = "fe" * 16
    verbs = lambda **kw: [a["verb"] for a in views.queue_actions(qid, **kw)]  # noqa: E731
    assert verbs(ours=True, running=True, control="running") == ["pause", "drain", "stop"]
    assert verbs(ours=True, running=True, control="paused") == ["resume", "drain", "stop"]
    assert verbs(ours=True, running=True, control="draining") == ["resume", "stop"]
    assert verbs(ours=False, running=True, control="running") == ["stop"]  # Guild's own queue
    assert verbs(ours=True, running=False, control="running") == []
    stop = views.queue_actions(qid, ours=True, running=True, control="running")[-1]
    assert (stop["method"], stop["path"]) == ("DELETE", f"queues/{qid}") and "keep running" in stop["confirm"]


def test_words(guild_home):
    assert [views.position_text(n) for n in (None, 0, 1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "", "", "next to start", "2nd in line", "3rd in line", "4th in line", "11th in line", "12th in line",
        "13th in line", "21st in line", "22nd in line", "101st in line"]
    assert views.gpus_text("GPU-8f3c1a2b-1111-2222-3333-444444444444") == "GPU-8f3c1a2b…"
    assert views.gpus_text("auto") == "1 GPU, chosen by a gpus=auto queue"
    assert views.queue_gpus_text(None) == "any GPU" and views.queue_gpus_text("auto:0,2") == "GPUs 0,2, chosen per run"
    assert views.queue_gpus_text("auto") == "every GPU, one chosen per run" and views.queue_gpus_text("1") == "GPU 1"
    assert views.slots_text({"used": 2, "total": 4, "per_gpu": {"0": 1, "1": 1}}) == (
        "2 of 4 slots busy · GPU 0: 1 run, GPU 1: 1 run")
    assert views.slots_text({"used": 0, "total": 1, "per_gpu": None}) == "0 of 1 slot busy"
    assert views.queue_state_text("running", {"used": 2, "total": 4}, "ab" * 16) == "running 2 of 4"
    assert views.queue_state_text("running", {"used": 1, "total": 1}, "ab12cd34" * 4) == "running ab12cd34"
    assert views.queue_state_text("waiting", {"used": 0, "total": 1}, None) == "waiting for staged runs"
    assert views.queue_state_text("paused", {"used": 1, "total": 2}, None) == "paused: 1 run going"
    assert views.summary_text({"running": 2, "staged": 3}, 1) == "2 running · 3 staged · 1 failed"


def test_queue_rows_words_and_actions(scripts, guild_home):
    q = api.queue("gpus=7", poll_interval=60)  # serves GPU 7 (and unpinned runs)
    try:
        api.pause_queue(q)  # before anything is staged: every pass from now on reads it
        staged = api.run(str(scripts / "sleep.py"), "secs=0", stage=True)[0]
        other = api.run(str(scripts / "sleep.py"), "secs=0", gpus="3", stage=True)[0]
        monitor = api.monitor()
        wait_for(lambda: monitor.snapshot()["queues"], timeout=10, message="the queue listed")
        (row,) = monitor.snapshot()["queues"]
        assert row["title"] == f"queue {q.id[:8]} · GPU 7" and row["gpus_text"] == "GPU 7"
        assert (row["state"], row["state_text"], row["control"]) == ("paused", "paused", "paused")
        assert row["slots_text"] == "0 of 1 slot busy" and row["current_short"] == ""
        assert [a["verb"] for a in row["actions"]] == ["resume", "drain", "stop"]
        assert row["actions"][0]["path"] == f"queues/{q.id}/resume"
        assert all(isinstance(v, str) and "None" not in v for k, v in row.items() if k.endswith("_text"))
        waiting, pinned = group(monitor.snapshot(), "staged")["rows"]
        assert (waiting["id"], pinned["id"]) == (staged.id, other.id)
        assert waiting["waiting_text"] == f"waiting for queue {q.id[:8]} to resume (it is paused or draining)"
        assert pinned["waiting_text"] == "no queue serves runs for GPU 3"  # paused or not, it would not start it
        api.resume_queue(q)
        wait_for(lambda: staged.refresh().status == "completed", timeout=30, message="the resumed queue runs it")
        row = wait_for(lambda: next((x for x in monitor.snapshot()["queues"]
                                     if x["state_text"] == "waiting for staged runs"), None),
                       timeout=30, message="the queue waiting again")
        assert [a["verb"] for a in row["actions"]] == ["pause", "drain", "stop"]
    finally:
        q.stop(timeout=20)


def test_the_fixtures_have_the_shape_the_code_produces(tmp_path):
    """``tests/fixtures`` (what the browser's tests render) against a
    snapshot and events of the same kind of store made now: the same field
    names everywhere, every kind of event."""
    home, project = tmp_path / "fixture-home", tmp_path / "fixture-project"
    home.mkdir()
    project.mkdir()
    snapshot, events = build(str(home), str(project))
    with open(os.path.join(FIXTURES, "state_snapshot.json")) as f:
        saved_snapshot = json.load(f)
    with open(os.path.join(FIXTURES, "events.json")) as f:
        saved_events = json.load(f)
    missing = key_paths(snapshot) - key_paths(saved_snapshot)
    stale = key_paths(saved_snapshot) - key_paths(snapshot)
    assert not missing and not stale, f"regenerate: scripts/make-viewmodel-fixtures.py ({missing=}, {stale=})"
    assert key_paths(events) == key_paths(saved_events), "regenerate: scripts/make-viewmodel-fixtures.py"
    from guild_jupyter.events import KINDS

    assert {e["kind"] for e in saved_events["events"]} == set(KINDS) == {e["kind"] for e in events["events"]}
    assert [g["name"] for g in saved_snapshot["groups"]] == list(views.GROUP_NAMES)


def started_by_cli(stdout: str):
    """The run ``guild-jupyter run`` printed (``[1:ab12cd34]  op ...``)."""
    short = re.search(r"\[\d+:([0-9a-f]{8})\]", stdout).group(1)
    return api.resolve_store(None).resolve(short, indices=False)
