"""Parallel queues: ``max-running=N`` keeps up to N runs going, each under
its own supervisor; ``wait-for-running`` still waits for runs that are not
the queue's own; the queue's slots are seen by every process."""

from __future__ import annotations

import pytest

from conftest import wait_for
from guild_jupyter import api
from test_gpu_auto import SLOT_PY, max_per_gpu, read_log


@pytest.fixture
def timed(tmp_path, monkeypatch):
    d = tmp_path / "par"
    d.mkdir()
    (d / "slot.py").write_text(SLOT_PY.replace("time.sleep(0.15)", "time.sleep(0.4)"))
    log = tmp_path / "runs.log"
    monkeypatch.setenv("RUN_LOG", str(log))
    return d / "slot.py", log


@pytest.mark.parametrize("n", [1, 3])
def test_max_running_runs_n_at_once(timed, n):
    script, log = timed
    runs = api.run(str(script), "x=range[1:7]", stage=True)
    q = api.queue(max_running=n, run_once=True, poll_interval=1)  # the keyword twin of max-running=N
    assert q.join(60)
    events = read_log(log)
    assert sorted(events) == sorted(r.id for r in runs)  # each started once
    assert all(r.refresh().status == "completed" and r.gpus is None for r in runs)
    assert max_per_gpu(events) == {"-": n}  # never more than n, and n reached
    assert {r.get("queue_id") for r in runs} == {q.id}


def test_detached_parallel_queue_and_its_slots(timed):
    script, _log = timed
    slow = script.parent / "slow.py"
    slow.write_text("import time\nx = 0\ntime.sleep(30)\n")
    runs = api.run(str(slow), "x=[1,2,3]", stage=True)
    q = api.queue("max-running=2", "poll-interval=1", background=True)
    try:
        wait_for(lambda: sum(r.refresh().status == "running" for r in runs) == 2, message="two runs going")
        (info,) = [i for i in api.queues() if i.id == q.id]
        assert info.slots == {"used": 2, "total": 2, "per_gpu": None}
        assert sorted(r.refresh().status for r in runs) == ["running", "running", "staged"]
    finally:
        q.stop(timeout=10)
        for r in runs:
            if r.refresh().status in ("running", "staged"):
                api.stop(r.id)
    assert q.run.refresh().flags["max-running"] == 2  # recorded: other processes see the queue's slots


def test_wait_for_running_counts_only_runs_not_of_this_queue(timed, project, monkeypatch):
    """A run started by hand holds a wait-for-running queue back; once it
    ends, the queue's own runs go side by side."""
    script, log = timed
    with monkeypatch.context() as m:
        m.delenv("RUN_LOG")  # its own log line would not be one of the slot script's
        (other,) = api.run(str(project / "train.py"), "sleep=1.0", "epochs=1")
    runs = api.run(str(script), "x=[1,2,3,4]", stage=True)
    q = api.queue("max-running=2", "wait-for-running=yes", "run-once=yes", "poll-interval=1")
    assert q.join(60)
    other.refresh()
    events = read_log(log)
    assert other.status == "completed"
    first = min(e[0][2] for e in events.values())
    assert first * 1e6 >= other.stopped - 50_000  # nothing of the queue's started before the other ended
    assert max_per_gpu(events) == {"-": 2}
    assert "wait-for-running" in open(q.run.path("output")).read()


@pytest.mark.parametrize("value", [0, -1, "two", True, 2.5])
def test_bad_max_running_is_one_line_and_writes_nothing(value, guild_home):
    from conftest import run_dirs
    from guild_jupyter.errors import BadInput

    with pytest.raises(BadInput, match="max-running"):
        api.queue(max_running=value)
    assert run_dirs(guild_home) == set()
