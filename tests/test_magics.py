"""%guild and %%guild, driven through a real IPython shell exactly as a notebook
cell would drive them, against a real temporary store and real runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import pytest
from IPython.core.error import UsageError

from conftest import run_dirs, wait_for
from guild_jupyter import api
from guild_jupyter.frontends.magics import GuildMagics, Trials, cell_op_name, split_line
from guild_jupyter.display import RunList

CELL = textwrap.dedent(
    """\
    # tiny cell model
    lr = 0.1
    steps = 2
    for step in range(steps):
        print(f"step: {step}")
        print(f"loss: {lr / (step + 1):.4f}")
    """
)


@pytest.fixture
def shell(ipython, project, monkeypatch):
    """The shell with the extension loaded, fresh magic state, cwd = the project."""
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))  # a fresh latest-listing per test
    return ipython


def guild(sh, line, cell=None):
    if cell is None:
        return sh.run_line_magic("guild", line)
    return sh.run_cell_magic("guild", line, cell)


def state(home):
    """What bad input must leave alone: run dirs, their statuses, the trash."""
    runs = {r.id: r.status for r in api.runs(store=str(home))}
    trash = os.path.join(str(home), "trash", "runs")
    return run_dirs(home), runs, sorted(os.listdir(trash)) if os.path.isdir(trash) else []


def assert_usage_error(sh, source, capsys, contains=None):
    """Runs ``source`` as a cell: a UsageError, one line on stderr, no traceback."""
    capsys.readouterr()
    result = sh.run_cell(source)
    err = capsys.readouterr().err
    assert isinstance(result.error_in_exec, UsageError), (source, result.error_in_exec, err)
    assert type(result.error_in_exec) is UsageError  # IPython shows exactly this type without a traceback
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("UsageError: "), err
    assert "Traceback" not in err
    if contains:
        assert contains in lines[0], lines[0]
    return lines[0]


# -- loading --------------------------------------------------------------------------------------


def test_load_ext_registers_line_and_cell_magic(shell):
    magics = shell.magics_manager.magics
    assert "guild" in magics["line"] and "guild" in magics["cell"]


def test_help_prints_the_subcommands_and_argparse_help_is_no_error(shell, capsys):
    assert guild(shell, "") is None
    out = capsys.readouterr().out
    for sub in ("run", "queue", "queues", "runs", "stop", "unstage", "delete", "output", "compare", "panel"):
        assert f"%guild {sub}" in out
    result = shell.run_cell("%guild run -h")
    assert result.success
    assert "--max-trials" in capsys.readouterr().out


# -- run --------------------------------------------------------------------------------------------


def test_run_stages_a_grid_sweep(shell, guild_home):
    staged = guild(shell, "run train.py lr=[0.1,0.01] epochs=[1,2] --stage --label grid")
    assert isinstance(staged, RunList) and len(staged) == 4
    on_disk = api.runs("staged", store=str(guild_home))
    assert {r.id for r in on_disk} == {r.id for r in staged}
    combos = {(r.flags["lr"], r.flags["epochs"]) for r in on_disk}
    assert combos == {(0.1, 1), (0.1, 2), (0.01, 1), (0.01, 2)}
    assert all(r.label == "grid" and r.op_name == "train.py" for r in on_disk)


def test_a_sweep_may_have_spaces_inside_its_brackets(shell, guild_home):
    assert split_line("run train.py lr=[0.1, 0.01] --stage") == ["run", "train.py", "lr=[0.1, 0.01]", "--stage"]
    guild(shell, "run train.py lr=[0.1, 0.01] --stage")
    assert sorted(r.flags["lr"] for r in api.runs(store=str(guild_home))) == [0.01, 0.1]


def test_options_and_flags_may_be_intermixed_and_store_given_either_way(shell, tmp_path, guild_home):
    other = tmp_path / "other-home"
    guild(shell, f"--store {other} run train.py --stage lr=0.5 --gpus 1")
    guild(shell, f"run train.py --stage epochs=3 --store {other}")
    assert run_dirs(guild_home) == set()
    runs = api.runs(store=str(other))
    assert sorted((r.flags["lr"], r.flags["epochs"], r.gpus) for r in runs) == [(0.1, 3, None), (0.5, 2, "1")]


def test_run_starts_in_the_background_by_default(shell, guild_home):
    started = guild(shell, "run train.py epochs=1")
    assert len(started) == 1
    run = started[0]
    assert run.status in ("running", "completed")  # never missing, never error
    wait_for(lambda: run.refresh().status == "completed", message="run to complete")
    assert "loss: 0.100000" in api.output(run.id, store=str(guild_home))


def test_foreground_streams_output_into_the_cell(shell, capsys):
    done = guild(shell, "run train.py lr=0.5 epochs=2 --foreground")
    out = capsys.readouterr().out
    assert "loss: 0.500000" in out and "loss: 0.250000" in out and "done base False" in out
    assert [r.status for r in done] == ["completed"]


def test_interrupting_a_foreground_sweep_stops_it_all(shell, guild_home, capsys):
    def interrupt_once_running():
        def first_output():
            runs = api.runs("running", store=str(guild_home))
            return runs and "step: 0" in api.output(runs[0].id, store=str(guild_home))

        wait_for(first_output, message="the first trial's output")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # what Jupyter's interrupt does

    t = threading.Thread(target=interrupt_once_running, daemon=True)
    t.start()
    runs = guild(shell, "run train.py sleep=0.5 epochs=100 lr=[1,2] --foreground")
    t.join(5)
    assert [r.status for r in runs] == ["terminated", "terminated"]  # the second never started
    assert runs[1].started is None or "step" not in api.output(runs[1].id, store=str(guild_home))
    assert runs.note == "interrupted: stopped 2 run(s)" and str(runs).startswith(runs.note)  # said in its text
    assert api.runs(["running", "pending"], store=str(guild_home)) == []


def test_relative_script_resolves_against_the_kernels_cwd(shell, project, monkeypatch, capsys, guild_home):
    sub = project / "models"
    sub.mkdir()
    (sub / "mlp.py").write_text("width = 8\nprint('width', width)\n")
    guild(shell, "run models/mlp.py width=16 --stage")
    assert [r.flags for r in api.runs(store=str(guild_home))] == [{"width": 16}]
    monkeypatch.chdir(sub)
    guild(shell, "run mlp.py --stage")
    assert len(run_dirs(guild_home)) == 2
    assert_usage_error(shell, "%guild run models/mlp.py", capsys, "script not found: models/mlp.py")


def test_dry_run_shows_trials_and_writes_nothing(shell, guild_home):
    trials = guild(shell, "run train.py lr=[0.1,0.2] --dry-run")
    assert isinstance(trials, Trials) and [t["lr"] for t in trials] == [0.1, 0.2]
    assert "trial 2: " in str(trials) and "lr=0.2" in str(trials)
    assert run_dirs(guild_home) == set()


def test_magic_values_are_the_api_objects(shell, guild_home):
    result = shell.run_cell("staged = %guild run train.py lr=[1,2] --stage\nlisting = %guild runs")
    assert result.success
    listing = shell.user_ns["listing"]
    assert isinstance(listing, RunList) and len(listing) == 2
    assert "<table" in listing._repr_html_() and "train.py" in str(listing)
    pytest.importorskip("pandas")
    df = listing.to_dataframe()
    assert sorted(df["flag:lr"]) == [1, 2]


# -- %%guild run ----------------------------------------------------------------------------------


def test_cell_run_stages_a_sweep_of_the_cells_flags(shell, guild_home):
    staged = guild(shell, "run lr=[0.2,0.02] --stage", CELL)
    assert len(staged) == 2
    runs = api.runs(store=str(guild_home))
    assert {r.op_name for r in runs} == {"tiny-cell-model.py"}
    assert sorted(r.flags["lr"] for r in runs) == [0.02, 0.2]
    assert all(r.flags["steps"] == 2 for r in runs)
    for r in runs:  # the cell body is the run's source snapshot
        with open(os.path.join(r.dir, "tiny-cell-model.py")) as f:
            assert f.read() == CELL


def test_cell_run_foreground_runs_the_body(shell, capsys):
    done = guild(shell, "run steps=1 --foreground --name my_model", CELL)
    assert [r.status for r in done] == ["completed"] and done[0].op_name == "my_model.py"
    assert "loss: 0.1000" in capsys.readouterr().out


def test_cell_with_imports_functions_and_globals_is_accepted(shell, guild_home):
    body = ("import math\nfrom os import path\nlr = 0.1\ndef loss(x):\n    global seen\n    seen = True\n"
            "    return math.sqrt(x) * lr\nclass M: pass\nprint(loss(4), M, path.sep, seen, __name__, len([1]))\n")
    (run,) = guild(shell, "run --foreground", body)
    assert run.status == "completed"


def test_cell_op_names_are_stable_and_readable():
    body = "lr = 0.1\nprint(lr)\n"
    assert cell_op_name(body) == cell_op_name(body) == cell_op_name(body + "\n")
    assert cell_op_name(body).startswith("cell-") and len(cell_op_name(body)) == len("cell-12345678.py")
    assert cell_op_name(body) != cell_op_name("lr = 0.2\nprint(lr)\n")
    assert cell_op_name("# Train a tiny MLP!\n" + body) == "train-a-tiny-mlp.py"
    assert cell_op_name("# -*- coding: utf-8 -*-\n" + body).startswith("cell-")
    assert cell_op_name(body, "My Model.py") == "my-model.py"


# -- queues ------------------------------------------------------------------------------------------


def test_thread_queue_run_once_starts_staged_runs(shell, guild_home):
    staged = guild(shell, "run train.py lr=[0.3,0.2] epochs=1 --stage")
    q = guild(shell, "queue run-once=yes")
    assert q.join(60), "the run-once queue did not finish"
    assert all(r.refresh().status == "completed" for r in staged)
    assert q.run.refresh().status == "completed" and q.run.op_name == "queue"


def test_queues_lists_this_kernels_queue_and_stop_queues_ends_it(shell, guild_home):
    q = guild(shell, "queue poll-interval=1")
    wait_for(lambda: q.status == "waiting", message="queue to wait")
    listed = guild(shell, "queues")
    assert [info.id for info in listed] == [q.id]
    assert "this kernel" in str(listed)
    stopped = guild(shell, "stop --queues")
    assert [r.id for r in stopped] == [q.id]
    assert q.join(15)
    assert len(guild(shell, "queues")) == 0
    assert [info.id for info in guild(shell, "queues --all")] == [q.id]


# -- listing, addressing, stop / unstage / delete / output / compare -------------------------------------


def test_runs_filters_and_indices_follow_the_latest_listing(shell, guild_home):
    guild(shell, "run train.py lr=[1,2,3] --stage")
    done = guild(shell, "run train.py lr=9 epochs=1 --foreground")
    assert len(guild(shell, "runs")) == 4
    staged = guild(shell, "runs --staged -n 2")
    assert len(staged) == 2 and all(r.status == "staged" for r in staged)
    assert len(guild(shell, "runs --completed --op train")) == 1
    assert len(guild(shell, "runs --label lr=2")) == 1
    # Index 1 is the first run of the latest listing (the --staged one), not the newest run.
    guild(shell, "runs --staged")
    (unstaged,) = guild(shell, "unstage 1")
    assert unstaged.status == "terminated" and unstaged.id != done[0].id
    assert len(api.runs("staged", store=str(guild_home))) == 2


def test_a_long_listing_shows_20_rows_and_indexes_every_run(shell, guild_home):
    staged = guild(shell, "run train.py lr=range[1:25] --stage")
    assert len(staged) == 25 and str(staged).count("train.py") == 20
    listing = guild(shell, "runs")
    assert isinstance(listing, RunList) and len(listing) == 25
    html, text = listing._repr_html_(), str(listing)
    assert html.count("<tr>") == 21 and "5 more" in html and "5 more" in text
    everything = guild(shell, "runs --all")
    assert everything._repr_html_().count("<tr>") == 26 and "more" not in str(everything)
    (last,) = guild(shell, "unstage 25")
    assert last.id == listing[24].id == staged[-1].id  # the oldest
    # Staged trials are shown newest first, numbered as the listing numbers them.
    assert [r.id for r in staged] == [r.id for r in listing]
    assert [row[0] for row in staged.rows()][:3] == ["1", "2", "3"]
    more = guild(shell, "run train.py lr=[7,8] --stage")
    assert [row[0] for row in more.rows()] == ["1", "2"]
    (unstaged,) = guild(shell, "unstage 2")  # "2" is what the cell above showed as 2
    assert unstaged.id == more[1].id and unstaged.flags["lr"] == 7
    assert [r.id for r in guild(shell, "stop 3:4")] == [listing[0].id, listing[1].id]


def test_stop_a_running_run(shell, guild_home):
    (run,) = guild(shell, "run train.py sleep=0.5 epochs=100")
    assert run.status == "running"
    (stopped,) = guild(shell, f"stop {run.id[:8]}")
    assert stopped.status == "terminated"
    assert api.runs(store=str(guild_home))[0].status == "terminated"


def test_output_tail_compare_and_delete(shell, guild_home):
    (a,) = guild(shell, "run train.py lr=0.4 epochs=3 --foreground")
    (b,) = guild(shell, "run train.py lr=0.8 epochs=1 --foreground")
    out = guild(shell, f"output {a.id}")
    assert isinstance(out, str) and "loss: 0.400000" in out
    assert guild(shell, f"output {a.id} --tail 1") == "done base False\n"
    table = guild(shell, "compare")
    assert {row["id"] for row in table.rows} == {a.id, b.id}
    losses = {row["id"]: row["scalars"]["loss"] for row in table.rows}
    assert losses[a.id] == pytest.approx(0.4 / 3, abs=1e-6) and losses[b.id] == pytest.approx(0.8)
    assert [row["id"] for row in guild(shell, f"compare {b.id[:10]}").rows] == [b.id]
    guild(shell, "runs")
    deleted = guild(shell, "delete 2")  # index 2 of the listing: the older run, a
    assert [r.id for r in deleted] == [a.id]
    assert run_dirs(guild_home) == {b.id}
    assert os.path.isdir(os.path.join(guild_home, "trash", "runs", a.id))


def test_panel_shows_a_panel(shell, guild_home):
    p = guild(shell, "panel --refresh 0")
    try:
        from guild_jupyter.frontends.panel import Panel

        assert isinstance(p, Panel)
    finally:
        p.close()


# -- bad input: a UsageError, one line, nothing written -------------------------------------------------

BAD_LINES = [
    ("%guild bogus", "unknown subcommand 'bogus'"),
    ("%guild run", "the following arguments are required: script"),
    ("%guild run missing.py", "script not found: missing.py"),
    ("%guild run README.txt", "not a Python script"),
    ("%guild run train.py nope=1", "'nope' is not defined by train.py"),
    ("%guild run train.py lr", None),
    ("%guild run train.py lr=[0.1,", None),
    ("%guild run train.py lr=[]", None),
    ("%guild run train.py lr=linspace[0:1] --stage", None),
    ("%guild run train.py lr=uniform[0.1:0.2] --max-trials 0 --stage", "--max-trials"),
    ("%guild run train.py --max-trials many", "invalid int value"),
    ("%guild run train.py --gpus x --stage", None),
    ("%guild run train.py --gpus 0,,1 --stage", None),
    ("%guild run train.py --stage --foreground", "run: give --foreground or --stage, not both"),
    ("%guild run train.py --bogus", "unrecognized arguments: --bogus"),
    ('%guild run "train.py', "cannot parse the line"),
    ("%guild --store", "--store needs a PATH"),
    ("%guild runs -n 0", "-n"),
    ("%guild runs -n x", "invalid int value"),
    ("%guild queue gpus=x", None),
    ("%guild queue speed=9", "unknown queue flag 'speed'"),
    ("%guild queue poll-interval=0", "poll-interval"),
    ("%guild queue run-once=maybe", "run-once"),
    ("%guild stop", "stop needs a run"),
    ("%guild stop 1 --all", "stop: give RUN, --all or --queues, not two of them"),
    ("%guild stop deadbeef", "no run with id 'deadbeef'"),
    ("%guild stop zz-top", "no run with id"),
    ("%guild unstage", "required"),
    ("%guild delete 99", "no run at index 99"),
    ("%guild output 99", "no run at index 99"),
    ("%guild output", "required"),
    ("%guild compare nothere", "no run with id"),
    ("%guild panel --refresh -1", "--refresh"),
]


@pytest.mark.parametrize("source,message", BAD_LINES, ids=[s for s, _ in BAD_LINES])
def test_bad_input_is_a_one_line_usage_error_and_changes_nothing(shell, project, guild_home, capsys, source, message):
    (project / "README.txt").write_text("not a script\n")
    guild(shell, "run train.py lr=[0.1,0.2] --stage")
    before = state(guild_home)
    assert_usage_error(shell, source, capsys, message)
    assert state(guild_home) == before


BAD_CELLS = [
    ("run --stage", "lr = (\n", "syntax error at line 1"),
    ("run --stage", "   \n\n", "the cell is empty"),
    ("run nope=1 --stage", CELL, "'nope' is not defined by tiny-cell-model.py"),
    ("run lr=[0.1, --stage", CELL, None),
    ("run --stage --name !!!", CELL, "bad --name"),
    ("runs", CELL, "only '%%guild run' takes a cell"),
    ("run train.py --stage", CELL, "train.py"),  # a cell takes no script: train.py is no NAME=VALUE flag
    ("run --stage", "%time x = 1\n", "syntax error"),  # IPython syntax is not a script
    # A name made in an earlier cell: refused before anything is written.
    ("run --stage", "print(len(data))\n", "uses data, defined outside it: a run starts in a fresh process"),
    ("run --dry-run", "lr = 0.1\ndef f():\n    return model(lr)\nf()\n", "uses model, defined outside it"),
]


@pytest.mark.parametrize("line,body,message", BAD_CELLS, ids=[f"{l}|{b[:12]!r}" for l, b, _ in BAD_CELLS])
def test_bad_cells_are_usage_errors_and_change_nothing(shell, guild_home, capsys, line, body, message):
    guild(shell, "run train.py --stage")
    before = state(guild_home)
    assert_usage_error(shell, f"%%guild {line}\n{body}", capsys, message)
    assert state(guild_home) == before


def test_wrong_state_errors_change_nothing(shell, guild_home, capsys):
    (staged,) = guild(shell, "run train.py --stage")
    (done,) = guild(shell, "run train.py epochs=1 --foreground")
    before = state(guild_home)
    assert_usage_error(shell, f"%guild stop {done.id}", capsys, "already completed")
    assert_usage_error(shell, f"%guild unstage {done.id}", capsys, "not staged")
    assert_usage_error(shell, f"%guild output {staged.id}", capsys, "is staged: it has no output")
    assert state(guild_home) == before


def test_ambiguous_id_prefix(shell, guild_home, capsys):
    (run,) = guild(shell, "run train.py --stage")
    for twin in ("abcd" + "1" * 28, "abcd" + "2" * 28):  # two runs whose ids share a prefix
        shutil.copytree(run.dir, os.path.join(guild_home, "runs", twin))
    before = state(guild_home)
    assert_usage_error(shell, "%guild unstage abcd", capsys, "is ambiguous")
    assert state(guild_home) == before


def test_an_index_of_a_run_deleted_since_the_listing(shell, guild_home, capsys):
    guild(shell, "run train.py lr=[1,2] --stage")
    listing = guild(shell, "runs")
    api.delete(listing[0].id)
    before = state(guild_home)
    assert_usage_error(shell, "%guild unstage 1", capsys, "no longer exists")
    assert state(guild_home) == before


def test_store_not_writable(shell, tmp_path, guild_home, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_usage_error(shell, f"%guild --store {blocker}/home run train.py --stage", capsys, "store not writable")
    assert_usage_error(shell, f"%guild queue --store {blocker}/home", capsys, "store not writable")
    assert not os.path.exists(f"{blocker}/home")


def test_lock_timeout_is_a_usage_error(shell, guild_home, capsys, monkeypatch):
    from guild_jupyter.store import locking

    monkeypatch.setattr(locking, "DEFAULT_TIMEOUT", 0.3)
    os.makedirs(os.path.join(guild_home, "locks"), exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import filelock, os, sys; l = filelock.FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); "
         "sys.stdin.read()",
         os.path.join(guild_home, "locks", "run-status")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_usage_error(shell, "%guild run train.py lr=[1,2] --stage", capsys, "timed out")
        assert run_dirs(guild_home) == set()
    finally:
        holder.stdin.close()
        holder.wait(10)
