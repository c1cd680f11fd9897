"""Retries for real: a script that fails twice then succeeds (its count kept
in a file outside the run directories) goes through a queue with retries;
the chain is checked on disk, in the queue's log and with the real
``guild`` CLI."""

from __future__ import annotations

import os
import textwrap

import pytest

from conftest import cli, guild, run_dirs, wait_for
from guild_jupyter import api
from guild_jupyter.errors import BadInput

FLAKY_PY = textwrap.dedent(
    """\
    import os, sys
    counter = ""
    fail_times = 2
    lr = 0.1
    n = int(open(counter).read()) if os.path.exists(counter) else 0
    with open(counter, "w") as f:
        f.write(str(n + 1))
    print(f"attempt {n} lr={lr} cvd={os.environ.get('CUDA_VISIBLE_DEVICES', '-')}")
    sys.exit(3 if n < fail_times else 0)
    """
)


@pytest.fixture
def flaky(project, tmp_path):
    (project / "flaky.py").write_text(FLAKY_PY)
    return project / "flaky.py", tmp_path / "count.txt"


def _chain(last):
    """The runs of a retry chain, oldest first, following ``retry_of``."""
    st = api.resolve_store()
    out = [st.run(last.id)]
    while out[0].get("retry_of"):
        out.insert(0, st.run(out[0].get("retry_of")))
    return out


def test_fail_twice_then_succeed(flaky, guild_home):
    script, counter = flaky
    (first,) = api.run(str(script), f"counter={counter}", "lr=0.5", stage=True)
    q = api.queue(retries=2, run_once=True)
    assert q.join(60), "run-once queue with retries did not end"
    runs = [r for r in api.runs() if not r.is_queue]
    assert len(runs) == 3
    last = runs[0]
    chain = _chain(last)
    assert [r.id for r in chain] == [first.id] + [r.id for r in reversed(runs[:2])]
    assert [r.status for r in chain] == ["error", "error", "completed"]
    assert [r.exit_status for r in chain] == [3, 3, 0]
    assert [r.get("retry_attempt") for r in chain] == [None, 1, 2]
    assert [r.get("retry_of") for r in chain] == [None, chain[0].id, chain[1].id]
    assert [r.get("retry_origin") for r in chain] == [None, first.id, first.id]
    assert [r.get("retries") for r in chain[1:]] == [2, 2]
    # The same op, flags and code; each copy ran on its own.
    assert {r.op_name for r in chain} == {"flaky.py"}
    assert all(r.flags == chain[0].flags and r.get("user_flags") == chain[0].get("user_flags") for r in chain)
    assert [api.output(r.id).splitlines()[0] for r in chain] == [f"attempt {i} lr=0.5 cvd=-" for i in range(3)]
    assert counter.read_text() == "3"
    log = api.output(q.id)
    assert (f"Run {chain[0].id} failed (exit status 3); staged retry {chain[1].id} (attempt 1 of 2)" in log)
    assert (f"Run {chain[1].id} failed (exit status 3); staged retry {chain[2].id} (attempt 2 of 2)" in log)
    assert f"Run {chain[2].id} finished: completed" in log

    # The real guild CLI sees the chain: listed, and each copy a valid run.
    listed = guild("runs", "-a").stdout
    for r in chain:
        assert r.id[:8] in listed
    info = guild("runs", "info", chain[2].id).stdout
    assert "status: completed" in info and f"retry_of: {chain[1].id}" in info and "retry_attempt: 2" in info
    assert "lr: 0.5" in info


def test_retries_run_out_and_stopped_runs_are_not_retried(flaky, guild_home, project):
    script, counter = flaky
    (always,) = api.run(str(script), f"counter={counter}", "fail_times=99", stage=True)
    q = api.queue("retries=1", run_once=True)
    assert q.join(60)
    runs = [r for r in api.runs() if not r.is_queue]
    assert [r.status for r in runs] == ["error", "error"]  # the run and its one retry
    assert f"Run {runs[0].id} failed (exit status 3); no retry left (1 retry done)" in api.output(q.id)

    # A run stopped while it runs is terminated: never retried.
    (slow,) = api.run(str(project / "train.py"), "epochs=50", "sleep=0.2", stage=True)
    q2 = api.queue(retries=3)
    try:
        wait_for(lambda: slow.refresh().status == "running", timeout=30, message="slow run going")
        api.stop(slow.id)
        assert slow.refresh().status == "terminated"
        wait_for(lambda: f"Run {slow.id} finished: terminated" in api.output(q2.id), message="queue saw it end")
        # A later run the queue starts proves the pass after that end is over.
        (later,) = api.run(str(project / "train.py"), "epochs=1", stage=True)
        wait_for(lambda: later.refresh().status == "completed", timeout=30, message="a later run")
        assert [r for r in api.runs() if r.get("retry_of") == slow.id] == []
        assert "staged retry" not in api.output(q2.id)
    finally:
        q2.stop(timeout=20)


def test_run_retries_and_pinned_gpus_through_the_cli(flaky, guild_home, project):
    """``run --stage --retries N`` records N in the run; a queue without
    retries honours it; the copy keeps the run's pinned GPUs and its code
    (the snapshot, not the script as edited since)."""
    script, counter = flaky
    cli("run", script, f"counter={counter}", "--stage", "--retries", "1", "--gpus", "0", check=0, cwd=project)
    (staged,) = api.runs(["staged"])
    assert staged.get("retries") == 1 and staged.gpus == "0"
    script.write_text("raise SystemExit('edited since: never run by a retry')\n")
    cli("queue", "gpus=0", "run-once=yes", check=0, timeout=120)
    runs = [r for r in api.runs() if not r.is_queue]
    assert [r.status for r in runs] == ["error", "error"]
    copy = runs[0]
    assert copy.get("retry_of") == staged.id and copy.gpus == "0"
    assert api.output(copy.id).splitlines()[0] == "attempt 1 lr=0.1 cvd=0"


def test_bad_retries(flaky, guild_home, project, ipython, monkeypatch):
    from IPython.core.error import UsageError

    from guild_jupyter.frontends.magics import GuildMagics

    script, _counter = flaky
    before = run_dirs(guild_home)
    with pytest.raises(BadInput, match="retries must be at least 0"):
        api.run(str(script), stage=True, retries=-1)
    with pytest.raises(BadInput, match="stage the runs"):
        api.run(str(script), retries=2)
    with pytest.raises(BadInput, match="bad value for retries"):
        api.queue("retries=-1")
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    with pytest.raises(UsageError, match="bad value for retries"):
        ipython.run_line_magic("guild", "queue retries=-1")
    with pytest.raises(UsageError, match="retries must be at least 0"):
        ipython.run_line_magic("guild", "run flaky.py --stage --retries -1")
    p = cli("run", script, "--retries", "2", check=2)
    assert p.stderr.count("\n") == 1 and "stage the runs" in p.stderr
    p = cli("queue", "retries=-1", check=2)
    assert p.stderr.count("\n") == 1 and "bad value for retries" in p.stderr
    assert run_dirs(guild_home) == before
    assert not os.path.exists(str(_counter))


def test_an_unpinned_run_stays_unpinned(flaky, guild_home):
    """GPUs a queue gave a run are not pinned on its retry, nor on the run
    restarted for a queue: each asks again for any GPU."""
    from guild_jupyter import rerun as reruns

    script, counter = flaky
    (r,) = api.run(str(script), f"counter={counter}", "fail_times=1", stage=True)
    q = api.queue("gpus=0", retries=1, run_once=True)
    assert q.join(60)
    runs = [x for x in api.runs() if not x.is_queue]
    assert [x.status for x in runs] == ["completed", "error"]
    copy = runs[0]
    assert copy.get("retry_of") == r.id
    assert r.refresh().gpus == "0" and copy.gpus == "0"  # each given GPU 0 by the queue
    assert reruns.pinned_gpus(r) is None and reruns.pinned_gpus(copy) is None
    assert api.output(copy.id).splitlines()[0] == "attempt 1 lr=0.1 cvd=0"
    api.restart(r.id, stage=True)
    assert r.refresh().status == "staged" and r.gpus is None


def test_a_retry_asks_again_for_auto_gpus(flaky, guild_home, monkeypatch):
    """A run that asked for any two GPUs (``--gpus auto:2``) is retried asking
    for any two again: a gpus=auto queue chooses them anew (fake NVML)."""
    import json

    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", json.dumps([{}, {}, {}]))
    script, counter = flaky
    (r,) = api.run(str(script), f"counter={counter}", "fail_times=1", gpus="auto:2", stage=True, retries=1)
    q = api.queue("gpus=auto", run_once=True, poll_interval=1)
    assert q.join(60)
    runs = [x for x in api.runs() if not x.is_queue]
    assert [x.status for x in runs] == ["completed", "error"]
    copy = runs[0]
    assert copy.get("retry_of") == r.id and copy.get("gpus_requested") == "auto:2"
    for x in (r.refresh(), copy):
        assert len(x.gpus.split(",")) == 2 and not x.gpus.startswith("auto")
        assert api.output(x.id).splitlines()[0].endswith(f"cvd={x.gpus}")  # the GPUs it recorded, given
