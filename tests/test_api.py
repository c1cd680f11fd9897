"""The Python twins of the magics, called directly: the objects they return
and the errors they raise (before anything is written)."""

from __future__ import annotations

import io
import os

import pytest

import guild_jupyter
from conftest import run_dirs, wait_for
from guild_jupyter import api, errors
from guild_jupyter.display import CompareTable
from guild_jupyter.opdef import ScriptOp
from guild_jupyter.display import RunList

TWINS = ("run", "queue", "queues", "runs", "stop", "unstage", "delete", "output", "compare")


def snapshot(home):
    runs = {r.id: r.status for r in api.runs(store=str(home))}
    return run_dirs(home), runs, os.path.isdir(os.path.join(str(home), "trash"))


@pytest.mark.parametrize("name", TWINS)
def test_every_twin_is_a_function_of_the_package(name):
    import guild_jupyter.display  # noqa: F401 - imported by any %guild compare in a kernel

    assert getattr(guild_jupyter, name) is getattr(api, name)


def test_run_stages_a_sweep_given_as_python_values(project, guild_home):
    staged = api.run("train.py", flags={"lr": [0.1, 0.2], "epochs": 3}, stage=True, label="py", cwd=str(project))
    assert isinstance(staged, RunList) and [r.status for r in staged] == ["staged", "staged"]
    assert sorted((r.flags["lr"], r.flags["epochs"]) for r in api.runs(store=str(guild_home))) == [(0.1, 3), (0.2, 3)]
    assert {r.label for r in staged} == {"py"}


def test_run_dry_run_returns_the_trials(project, guild_home):
    trials = api.run(str(project / "train.py"), "lr=[1,2]", "epochs=4", dry_run=True)
    assert [(t["lr"], t["epochs"], t["name"]) for t in trials] == [(1, 4, "base"), (2, 4, "base")]
    assert run_dirs(guild_home) == set()


def test_run_in_the_foreground_streams_to_the_given_stream(project, guild_home):
    stream = io.StringIO()
    (run,) = api.run("train.py", "lr=0.6", "epochs=1", foreground=True, stream=stream, cwd=str(project))
    assert run.status == "completed"
    assert "loss: 0.600000" in stream.getvalue()
    assert api.output(run.id) == stream.getvalue()


def test_run_a_cell_body_as_an_operation(project, guild_home):
    op = ScriptOp(str(project), "cell-test.py", b"lr = 1\nprint('loss:', lr / 2)\n", kind="cell")
    (run,) = api.run(op.name, "lr=4", op=op, foreground=True, stream=io.StringIO())
    assert run.op_name == "cell-test.py" and run.flags == {"lr": 4} and run.status == "completed"
    assert "loss: 2.0" in api.output(run.id)
    with open(os.path.join(run.dir, "cell-test.py"), "rb") as f:
        assert f.read() == op.source
    assert os.path.isfile(os.path.join(run.dir, "train.py"))  # the project's modules come along


def test_runs_filters_limit_and_renderings(project, guild_home):
    api.run(str(project / "train.py"), "lr=[1,2,3]", stage=True)
    api.run(str(project / "train.py"), "lr=9", "epochs=1", foreground=True, stream=io.StringIO())
    everything = api.runs()
    assert len(everything) == 4 and everything[0].flags["lr"] == 9  # newest first
    assert len(api.runs("staged")) == 3 and len(api.runs(["staged", "completed"], limit=2)) == 2
    assert len(api.runs(op="train")) == 4 and len(api.runs(op="nope")) == 0
    assert [r.flags["lr"] for r in api.runs(label="lr=2")] == [2]
    text, html = str(everything), everything._repr_html_()
    assert text.count("train.py") == 4 and "[1:" in text and "completed" in text
    assert html.startswith("<table") and html.count("<tr>") == 5
    pd = pytest.importorskip("pandas")
    df = everything.to_dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == 4 and sorted(df["flag:lr"]) == [1, 2, 3, 9]


def test_stop_unstage_delete_output_by_id_prefix_and_listing_index(project, guild_home):
    staged = api.run(str(project / "train.py"), "lr=[1,2,3]", stage=True)
    listing = api.runs("staged")
    (unstaged,) = api.unstage("2", listing=listing)
    assert unstaged.id == listing[1].id and unstaged.status == "terminated"
    (stopped,) = api.stop(staged[0].id[:10])  # stopping a staged run removes it from the queue
    assert stopped.status == "terminated"
    (running,) = api.run(str(project / "train.py"), "sleep=0.5", "epochs=100")
    wait_for(lambda: "step: 0" in api.output(running.id), message="first output line")
    assert api.output(running.id, tail=1).startswith("loss:")
    (done,) = api.stop(running)
    assert done.status == "terminated" and done.exit_status < 0
    deleted = api.delete(unstaged.id, stopped.id)
    assert {r.id for r in deleted} == {unstaged.id, stopped.id}
    assert run_dirs(guild_home) == {staged[2].id, running.id}
    assert set(os.listdir(guild_home / "trash" / "runs")) == {unstaged.id, stopped.id}


def test_queue_handle_thread_run_once(project, guild_home):
    staged = api.run(str(project / "train.py"), "epochs=1", "lr=[1,2]", stage=True)
    q = api.queue(run_once=True)
    assert len(q.id) == 32 and q.run.is_queue
    assert q.join(60)
    assert q.status == "stopped"
    assert [r.refresh().status for r in staged] == ["completed", "completed"]
    (info,) = api.queues(include_finished=True)
    assert info.id == q.id and info.host == "thread" and info.this_process and info.state == "completed"
    assert api.queues() == []


def test_queue_stop_and_a_detached_queue(project, guild_home):
    q = api.queue("poll-interval=1")
    wait_for(lambda: q.status == "waiting", message="the thread queue to wait")
    q.stop()
    assert q.status == "stopped" and q.run.refresh().status == "terminated"
    bg = api.queue(gpus="0", background=True)
    try:
        (info,) = api.queues()
        assert info.id == bg.id and info.host == "detached" and info.gpus == "0" and not info.this_process
    finally:
        bg.stop()
    assert bg.run.refresh().status == "terminated"


def test_compare_gives_flags_and_last_scalars(project, guild_home):
    a = api.run(str(project / "train.py"), "lr=0.5", "epochs=2", foreground=True, stream=io.StringIO())[0]
    b = api.run(str(project / "train.py"), "lr=1", "epochs=1", foreground=True, stream=io.StringIO())[0]
    api.run(str(project / "train.py"), stage=True)
    table = api.compare(a.id, b.id)
    assert isinstance(table, CompareTable) and len(table) == 2
    rows = {row["id"]: row for row in table.rows}
    assert rows[a.id]["flags"]["lr"] == 0.5 and rows[a.id]["scalars"]["loss"] == pytest.approx(0.25)
    assert rows[b.id]["scalars"]["loss"] == pytest.approx(1.0)
    assert "loss" in str(table) and "<table" in table._repr_html_()
    assert len(api.compare()) == 3  # default: every run but queues


BAD_CALLS = {
    "unknown script": (lambda p: api.run("missing.py", cwd=p, stage=True), errors.ScriptError),
    "flag not defined": (lambda p: api.run("train.py", "nope=1", cwd=p, stage=True), errors.FlagError),
    "flag not defined (dict)": (lambda p: api.run("train.py", flags={"nope": 1}, cwd=p, stage=True), errors.FlagError),
    "malformed sweep": (lambda p: api.run("train.py", "lr=[1,", cwd=p, stage=True), errors.BadInput),
    "max trials 0": (lambda p: api.run("train.py", "lr=uniform[0:1]", max_trials=0, cwd=p, stage=True),
                     errors.SweepError),
    "bad gpu spec": (lambda p: api.run("train.py", gpus="zero", cwd=p, stage=True), errors.BadInput),
    "unknown run": (lambda p: api.stop("deadbeef"), errors.RunNotFound),
    # A plain number outside the listing is also read as an id prefix (Guild's
    # rule), so a short one could name the staged run by chance: use a range.
    "bad index": (lambda p: api.output("40:42"), errors.RunNotFound),
    "stop nothing": (lambda p: api.stop(), errors.BadInput),
    "runs limit": (lambda p: api.runs(limit=0), errors.BadInput),
    "runs status": (lambda p: api.runs("sleeping"), errors.BadInput),
    "queue flag": (lambda p: api.queue("colour=red"), errors.BadInput),
    "queue interval": (lambda p: api.queue(poll_interval=-1), errors.BadInput),
}


@pytest.mark.parametrize("what", list(BAD_CALLS))
def test_bad_input_raises_before_writing(project, guild_home, what):
    call, error = BAD_CALLS[what]
    api.run(str(project / "train.py"), stage=True)
    before = snapshot(guild_home)
    with pytest.raises(error) as info:
        call(str(project))
    assert isinstance(info.value, errors.GuildJupyterError) and "\n" not in str(info.value)
    assert snapshot(guild_home) == before


def test_wrong_state(project, guild_home):
    (staged,) = api.run(str(project / "train.py"), stage=True)
    (done,) = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=io.StringIO())
    before = snapshot(guild_home)
    with pytest.raises(errors.WrongState, match="already completed"):
        api.stop(done.id)
    with pytest.raises(errors.WrongState, match="not staged"):
        api.unstage(done.id)
    with pytest.raises(errors.WrongState, match="is staged"):
        api.output(staged.id)
    assert snapshot(guild_home) == before


def test_store_not_writable(project, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(errors.StoreError, match="not writable"):
        api.run(str(project / "train.py"), stage=True, store=str(blocker / "home"))
    assert not os.path.exists(blocker / "home")
