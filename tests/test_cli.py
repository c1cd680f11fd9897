"""The CLI end to end, in real subprocesses, and its bad-input contract."""

from __future__ import annotations

import os

import pytest

from conftest import TRAIN_PY, cli, run_dirs, shown_ids, wait_for
from guild_jupyter import api

# train.py, kept running at its end while the file $TRAIN_HOLD exists (bounded): a run as quick as
# train.py can end before the CLI shows it, and the test must see it running however loaded the machine.
HELD_TRAIN_PY = TRAIN_PY + (
    "for _ in range(3000):\n"
    "    if not os.path.exists(os.environ.get('TRAIN_HOLD', '')):\n"
    "        break\n"
    "    time.sleep(0.02)\n"
)


def test_run_background_then_list_and_output(project, guild_home, tmp_path, monkeypatch):
    (project / "train.py").write_text(HELD_TRAIN_PY)
    hold = tmp_path / "hold"
    hold.write_text("")
    monkeypatch.setenv("TRAIN_HOLD", str(hold))
    try:
        p = cli("run", "train.py", "lr=0.5", "name=hello world", cwd=project, check=0)
    finally:
        hold.unlink()
    (short,) = shown_ids(p.stdout)
    r = api.runs()[0]
    run_id = r.id
    assert short == run_id[:8] and p.stdout.startswith(f"[1:{short}]  train.py  ") and "running" in p.stdout
    wait_for(lambda: r.refresh().status == "completed", message="run completes")
    assert r.flags == {"lr": 0.5, "epochs": 2, "name": "hello world", "verbose": False, "sleep": 0.0}
    assert r.get("user_flags") == {"lr": 0.5, "name": "hello world"}
    out = cli("output", run_id[:8], check=0).stdout
    assert "loss: 0.500000" in out and "done hello world False" in out
    assert cli("output", run_id, "--tail", "1", check=0).stdout == "done hello world False\n"
    listing = cli("runs", check=0).stdout
    assert f"[1:{run_id[:8]}]" in listing and "completed" in listing and "train.py" in listing
    assert cli("runs", "--staged", check=0).stdout.strip() == "no runs"


def test_foreground_streams_and_returns_exit_status(project):
    (project / "fail.py").write_text("import sys\ncode = 3\nprint('about to fail')\nsys.exit(code)\n")
    p = cli("run", "fail.py", "--foreground", cwd=project)
    assert p.returncode == 3
    assert "about to fail" in p.stdout
    assert api.runs()[0].status == "error"
    p = cli("run", "train.py", "epochs=3", "--foreground", cwd=project, check=0)
    assert p.stdout.count("loss:") == 3
    assert api.runs()[0].status == "completed"


def test_gpus_label_and_environment(project):
    (project / "env.py").write_text(
        "import os\nprint('CVD=' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'))\n"
        "print('RUN_DIR=' + os.environ['RUN_DIR'])\nprint('RUN_ID=' + os.environ['RUN_ID'])\n"
        "print('CWD=' + os.getcwd())\nimport helper\nprint(helper.VALUE)\n"
    )
    (project / "helper.py").write_text("VALUE = 'helper imported'\n")
    cli("run", "env.py", "--gpus", "1,0", "--label", "pinned", "--foreground", cwd=project, check=0)
    r = api.runs()[0]
    out = api.output(r.id)
    assert "CVD=1,0" in out and f"RUN_ID={r.id}" in out and f"RUN_DIR={r.dir}" in out
    assert f"CWD={r.dir}" in out and "helper imported" in out
    assert r.gpus == "1,0" and r.label == "pinned"
    assert os.path.exists(os.path.join(r.dir, "helper.py"))  # part of the source snapshot
    cli("run", "env.py", "--foreground", cwd=project, env={"CUDA_VISIBLE_DEVICES": "7"}, check=0)
    assert "CVD=<unset>" in api.output(api.runs()[0].id)


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "missing.py"], "script not found"),
        (["run", "train.py", "momentum=0.9"], "momentum"),
        (["run", "train.py", "lr"], "lr"),
        (["run", "train.py", "=3"], "="),
        (["run", "train.py", "--gpus", "a"], "GPU"),
        (["run", "train.py", "--gpus", "-1"], "GPU"),
        (["run", "train.py", "--gpus", "0,,1"], "GPU"),
        (["run", "train.py", "--store", "{blocker}/home"], "not writable"),
        (["output", "deadbeef"], "no run"),
        (["stop", "0123456789abcdef"], "no run"),
        (["delete", "zzz"], "no run"),
        (["run", "train.py", "--bogus-option"], "unrecognized"),
        (["run", "train.py", "lr=[", "--stage"], "malformed sweep"),
        (["run", "train.py", "epochs=range[1:0:1]", "--stage"], "no trials"),
        (["run", "train.py", "lr=[0.1,0.2]", "--stage", "--max-trials", "0"], "max-trials"),
        (["run", "train.py", "lr=uniform[0.1:0.01]", "--stage"], "low must be less"),
        (["run", "train.py", "lr=[0.1,0.2]", "momentum=[1,2]", "--stage"], "momentum"),
        (["queue", "bogus=1"], "unknown queue flag"),
        (["queue", "gpus=a"], "GPU"),
        (["queue", "--background", "gpus=a"], "GPU"),
        (["queue", "poll-interval=0"], "poll-interval"),
        (["queue", "poll-interval=-1"], "poll-interval"),
        (["queue", "run-once=maybe"], "run-once"),
        (["unstage", "abc"], "no run"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(project, guild_home, tmp_path, args, message):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    args = [a.format(blocker=blocker) for a in args]
    before = run_dirs(guild_home)
    p = cli(*args, cwd=project)
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("guild-jupyter: error: ")
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert run_dirs(guild_home) == before


def test_ambiguous_id_and_finished_stop(project, guild_home):
    # Two runs whose ids share a prefix with a letter in it (a number of up
    # to five digits would be a listing index).
    for run, new_id in zip(api.run(str(project / "train.py"), "lr=[1,2]", stage=True), ("abc0", "abc1")):
        os.rename(run.dir, os.path.join(os.path.dirname(run.dir), new_id + run.id[4:]))
    p = cli("stop", "abc")
    assert p.returncode == 2 and "ambiguous" in p.stderr
    done = cli("run", "train.py", "--foreground", cwd=project, check=0)
    del done
    finished = api.runs("completed")[0]
    p = cli("stop", finished.id)
    # Documented: stopping a finished run is an error (exit 2) and changes nothing.
    assert p.returncode == 2 and "already completed" in p.stderr
    assert finished.refresh().status == "completed"


def test_stop_delete_unstage(project, guild_home):
    p = cli("run", "train.py", "sleep=30", cwd=project, check=0)
    r = api.runs()[0]
    run_id = r.id
    assert shown_ids(p.stdout) == [run_id[:8]]
    assert r.status == "running"  # the CLI returns once the run holds its LOCK
    p = cli("stop", run_id[:8], check=0)
    assert p.stdout.startswith(f"[1:{run_id[:8]}]  train.py  ") and "terminated" in p.stdout
    assert r.refresh().status == "terminated" and r.exit_status < 0
    staged = api.run(str(project / "train.py"), stage=True)[0]
    cli("unstage", staged.id, check=0)
    assert staged.refresh().status == "terminated" and not os.path.exists(staged.path("output"))
    cli("delete", run_id, check=0)
    assert run_id not in run_dirs(guild_home)
    assert os.path.isdir(os.path.join(guild_home, "trash", "runs", run_id))


def test_dry_run_and_status_filters(project, guild_home):
    p = cli("run", "train.py", "lr=[0.1,0.2]", "epochs=range[1:3]", "--dry-run", cwd=project, check=0)
    assert p.stdout.splitlines()[0].startswith("trial 1: lr=0.1 epochs=1 ") and len(p.stdout.splitlines()) == 6
    assert run_dirs(guild_home) == set()
    out = cli("run", "train.py", "lr=[0.1,0.2]", "--stage", cwd=project, check=0).stdout.splitlines()
    staged = [ln.split()[0].strip("[]").split(":")[1] for ln in out]
    assert len(staged) == 2 and [ln[:3] for ln in out] == ["[1:", "[2:"]
    listing = cli("runs", "--staged", check=0).stdout
    assert all(i[:8] in listing for i in staged) and "staged" in listing
    assert cli("runs", "--running", check=0).stdout.strip() == "no runs"
    assert cli("runs", "--pending", check=0).stdout.strip() == "no runs"
