"""Queues for real: thread and detached hosts, ordering, GPU affinity,
wait-for-running, run-once, recovery after a crash, and Guild interop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import cli, guild, outcomes_recorded, run_dirs, shown_queue, stop_guild_queue, wait_for
from guild_jupyter import api
from guild_jupyter.procs import Identity
from guild_jupyter.store import transitions


def _stage(project, *assignments, gpus=None, n=1):
    out = []
    for _ in range(n):
        out += api.run(str(project / "train.py"), *assignments, gpus=gpus, stage=True)
    return out


def test_thread_queue_run_once_starts_in_staging_order(project):
    staged = _stage(project, "epochs=1", n=4)
    q = api.queue(run_once=True)
    assert q.join(60), "run-once queue did not finish"
    started = [r.refresh() for r in staged]
    assert all(r.status == "completed" for r in started)
    order = sorted(started, key=lambda r: r.started)
    assert [r.id for r in order] == [r.id for r in staged]
    # One at a time: each run started after the previous one stopped.
    for a, b in zip(order, order[1:]):
        assert b.started >= a.stopped
    qrun = q.run.refresh()
    assert qrun.status == "completed" and qrun.op_name == "queue"
    log = api.output(qrun.id)
    for r in staged:
        assert f"Starting staged run {r.id}" in log


def test_gpu_affinity_matrix(project):
    (project / "cvd.py").write_text("import os\nprint('CVD=' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'))\n")
    mk = lambda gpus: api.run(str(project / "cvd.py"), gpus=gpus, stage=True)[0]  # noqa: E731
    pinned0, pinned1, free = mk("0"), mk("1"), mk(None)
    q = api.queue(run_once=True)  # no gpus: only unpinned runs
    assert q.join(60)
    assert free.refresh().status == "completed" and "CVD=<unset>" in api.output(free.id)
    assert pinned0.refresh().status == "staged" and pinned1.refresh().status == "staged"
    assert "pinned to GPUs 0" in api.output(q.id)
    free2 = mk(None)
    q0 = api.queue("gpus=0", run_once=True)
    assert q0.join(60)
    assert pinned0.refresh().status == "completed" and "CVD=0" in api.output(pinned0.id)
    assert free2.refresh().status == "completed" and "CVD=0" in api.output(free2.id)
    assert free2.gpus == "0"  # an unpinned run records the GPUs it ran on
    assert pinned1.refresh().status == "staged"
    q1 = api.queue("gpus=1", run_once=True)
    assert q1.join(60)
    assert pinned1.refresh().status == "completed" and "CVD=1" in api.output(pinned1.id)


def test_wait_for_running(project):
    blocker = api.run(str(project / "train.py"), "sleep=0.5", "epochs=3")[0]
    assert blocker.status == "running"
    waiting = _stage(project, "epochs=1")[0]
    q = api.queue(wait_for_running=True, run_once=True)
    assert q.join(60)
    assert waiting.refresh().status == "completed"
    assert waiting.started >= blocker.refresh().stopped
    assert "wait-for-running" in api.output(q.id)


def test_run_once_picks_up_runs_staged_meanwhile(project):
    first = _stage(project, "sleep=0.4", "epochs=2")[0]
    q = api.queue(run_once=True)
    wait_for(lambda: first.refresh().status == "running", message="first run starts")
    later = _stage(project, "epochs=1")[0]
    assert q.join(60)
    assert first.refresh().status == "completed" and later.refresh().status == "completed"
    assert later.started > first.started


def test_prompt_pickup_without_poll(project):
    q = api.queue(poll_interval=60)  # would take a minute if it polled
    try:
        wait_for(lambda: q.status == "waiting", message="queue idle")
        r = _stage(project, "epochs=1")[0]
        wait_for(lambda: r.refresh().status == "completed", timeout=10, message="pickup")
    finally:
        q.stop()
    assert q.run.refresh().status == "terminated"


def test_detached_queue_cli_and_stop(project, guild_home):
    p = cli("queue", "run-once=no", "poll-interval=1", "--background", check=0)
    qrun = api.runs()[0]
    qid = qrun.id
    assert shown_queue(p.stdout) == qid[:8] and qrun.status == "running" and qrun.is_queue
    r = _stage(project, "sleep=0.5", "epochs=4")[0]
    wait_for(lambda: r.refresh().status == "running", message="detached queue starts the run")
    assert qid[:8] in cli("queues", check=0).stdout
    cli("stop", qid, check=0)
    assert qrun.refresh().status == "terminated"
    # The run the queue started keeps going and records its outcome.
    assert r.refresh().status == "running"
    wait_for(lambda: r.refresh().status == "completed", message="run finishes after its queue stopped")


def test_kill_9_queue_recovery(project, guild_home, tmp_path):
    log = tmp_path / "runs.log"
    os.environ["RUN_LOG"] = str(log)
    try:
        a = _stage(project, "sleep=0.5", "epochs=3")[0]
        b, c = _stage(project, "epochs=1", n=2)
        q1 = api.queue(background=True)
        wait_for(lambda: a.refresh().status == "running", message="queue 1 starts run a")
        q1_pid = q1.run.lock_pid()
        # Queue 1 dies right after claiming b (pending) and before starting it:
        # the claim it would have written, in its format.
        st = api.resolve_store(None)
        with st.lock():
            transitions.claim(st, b, transitions.Claim(Identity.of(q1_pid), q1.id))
        assert b.refresh().status == "pending"
        claim = transitions.read_claim(b)
        assert claim.owner.pid == q1_pid and claim.queue_id == q1.id
        os.kill(q1_pid, signal.SIGKILL)
        wait_for(lambda: q1.run.refresh().status != "running", message="dead queue noticed")
        assert q1.run.status == "error"
        q2 = api.queue(run_once=True)
        assert q2.join(60)
        wait_for(lambda: a.refresh().status != "running", message="run a finishes")
        assert [r.refresh().status for r in (a, b, c)] == ["completed"] * 3
        ids = log.read_text().split()
        assert sorted(ids) == sorted([a.id, b.id, c.id])  # each ran exactly once
        assert "Returned run" in api.output(q2.id)
    finally:
        del os.environ["RUN_LOG"]


@pytest.mark.guild
def test_guild_queue_starts_our_staged_run(project):
    r = _stage(project, "lr=0.7", "name=staged-by-us")[0]
    guild("run", "queue", "run-once=yes", "-y", cwd=project)
    assert r.refresh().status == "completed"
    out = api.output(r.id)
    assert "loss: 0.700000" in out and "done staged-by-us" in out


@pytest.mark.guild
def test_our_queue_starts_guild_staged_run(project):
    guild("run", "train.py", "lr=0.9", "name=staged-by-guild", "--stage", "-y", cwd=project)
    (r,) = api.runs("staged")
    q = api.queue(run_once=True)
    assert q.join(60)
    assert r.refresh().status == "completed"
    assert "loss: 0.900000" in api.output(r.id)
    info = guild("runs", "info", r.id).stdout
    assert "status: completed" in info


@pytest.mark.guild
def test_exactly_once_with_four_queues(project, guild_home, tmp_path):
    """200 staged runs, two detached queues, one thread queue and one real
    `guild run queue`: every run starts exactly once and completes."""
    log = tmp_path / "runs.log"
    (project / "tiny.py").write_text(
        "import os\nx = 0\nwith open(os.environ['RUN_LOG'], 'a') as f:\n    f.write(os.environ['RUN_ID'] + '\\n')\n"
    )
    os.environ["RUN_LOG"] = str(log)
    gq, queues = None, []
    try:
        staged = api.run(str(project / "tiny.py"), "x=range[1:200]", stage=True)
        assert len(staged) == 200
        env = dict(os.environ, NO_RESTARTING_MSG="1")
        gq = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "guild"), "run", "queue",
                               "poll-interval=1", "-y"], cwd=project, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        queues.append(api.queue(background=True, poll_interval=1))
        queues.append(api.queue(background=True, poll_interval=1))
        queues.append(api.queue(poll_interval=1))
        d1, d2, t = queues
        # Every outcome recorded, not every status finished: a run Guild's queue is starting reads
        # error for a moment, and Guild's queue, stopped then, would take that run down with it.
        wait_for(lambda: outcomes_recorded(staged), timeout=400, interval=0.5, message="all 200 runs finish")
        statuses = [r.refresh().status for r in staged]
        assert statuses.count("completed") == 200, {s: statuses.count(s) for s in set(statuses)}
        ids = log.read_text().split()
        assert len(ids) == 200 and set(ids) == {r.id for r in staged}
        starters = {r.get("queue_id") for r in staged}
        assert {d1.id, d2.id, t.id} & starters  # our queues took part
        assert len(run_dirs(guild_home)) >= 203
    finally:
        del os.environ["RUN_LOG"]
        for q in queues:
            q.stop()
        if gq is not None:
            stop_guild_queue(gq)
