"""The retry of a failure does not depend on the queue that claimed the run:
the policy is recorded with the run at its claim, and whoever settles the
failure stages the copy, exactly once.

For real: a detached queue is killed -9 while its run runs; the run then
fails; its supervisor stages the retry and another queue runs it. Several
processes settling one failure at once (a run whose supervisor was killed,
listed by each) stage one copy; a settler that finds the copy already made
(by one killed before it could note it) makes none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import wait_for
from guild_jupyter import api
from guild_jupyter.execution.control import retry_copy_spec
from guild_jupyter.store import transitions

GATED_PY = textwrap.dedent(
    """\
    import os, sys, time
    counter = ""
    gate = ""
    fail_times = 1
    n = int(open(counter).read()) if os.path.exists(counter) else 0
    with open(counter, "w") as f:
        f.write(str(n + 1))
    print(f"attempt {n}", flush=True)
    while gate and n == 0 and not os.path.exists(gate):  # the first attempt waits to be let go
        time.sleep(0.01)
    sys.exit(3 if n < fail_times else 0)
    """
)


@pytest.fixture
def gated(project, tmp_path):
    (project / "gated.py").write_text(GATED_PY)
    return str(project / "gated.py"), tmp_path / "count.txt", tmp_path / "go"


def _copies(run) -> list:
    return [r for r in api.runs() if r.get("retry_of") == run.id]


@pytest.mark.timeout(180)
def test_a_run_whose_queue_was_killed_is_retried_when_it_fails(gated, guild_home):
    script, counter, gate = gated
    (run,) = api.run(script, f"counter={counter}", f"gate={gate}", stage=True)
    q1 = api.queue(background=True, retries=2, poll_interval=1)
    killed = False
    try:
        wait_for(lambda: run.refresh().status == "running", timeout=60, message="the queue starts the run")
        assert run.get("retry_policy") == {"retries": 2, "from": f"queue {q1.id}"}  # recorded at the claim
        holder = q1.run.refresh().lock_holder()
        assert holder is not None and holder.alive()
        os.kill(holder.pid, signal.SIGKILL)
        killed = True
        wait_for(lambda: not holder.alive(), message="the queue process is gone")
        assert run.refresh().status == "running"  # its supervisor goes on without it
        gate.write_text("")
        wait_for(lambda: run.refresh().status == "error", timeout=60, message="the run fails")
        assert run.exit_status == 3
        (copy,) = _copies(run)  # staged by whoever settled the failure: its supervisor
        assert run.get("retried_as") == copy.id
        assert (copy.status, copy.get("retry_attempt"), copy.get("retry_origin"), copy.get("retries")) == \
            ("staged", 1, run.id, 2)
        # Another queue, with no retries of its own, runs it.
        q2 = api.queue(run_once=True)
        assert q2.join(60), "the second queue did not end"
        assert copy.refresh().status == "completed", api.output(copy.id)
        assert api.output(copy.id).splitlines()[0] == "attempt 1"
        assert f"Starting staged run {copy.id}" in api.output(q2.id)
        assert len(_copies(run)) == 1 and _copies(copy) == []
    finally:
        if not killed:
            q1.stop(timeout=20)
    api.runs()  # settles the killed queue's run
    assert q1.run.refresh().status == "error"


def _dead_supervisor_run(gated, guild_home, retries: int):
    """A run claimed by a queue with ``retries``, whose queue, supervisor and
    script were then killed -9: failed, not yet settled by anyone."""
    script, counter, gate = gated
    (run,) = api.run(script, f"counter={counter}", f"gate={gate}", stage=True)
    q = api.queue(background=True, retries=retries, poll_interval=1)
    wait_for(lambda: "attempt 0" in api.output(run.id) if run.refresh().status == "running" else False,
             timeout=60, message="the run is going")
    qholder = q.run.refresh().lock_holder()
    supervisor = run.lock_holder()
    script_pid = int(subprocess.run(["pgrep", "-P", str(supervisor.pid)], capture_output=True,
                                    text=True).stdout.split()[0])
    for pid in (qholder.pid, supervisor.pid, script_pid):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not (qholder.alive() or supervisor.alive()), message="queue and supervisor gone")
    assert run.refresh().get("exit_status") is None and run.status == "error"  # dead, not settled
    return run


SETTLER = textwrap.dedent(
    """\
    import os, sys, time
    go = sys.argv[1]
    while not os.path.exists(go):
        time.sleep(0.001)
    from guild_jupyter import api
    api.runs()  # settles a run whose supervisor died: its outcome, and the retry it is due
    """
)


@pytest.mark.timeout(180)
def test_settlers_at_once_stage_one_retry(gated, guild_home, tmp_path):
    run = _dead_supervisor_run(gated, guild_home, retries=3)
    go = tmp_path / "go-settle"
    settler = tmp_path / "settler.py"
    settler.write_text(SETTLER)
    procs = [subprocess.Popen([sys.executable, str(settler), str(go)]) for _ in range(6)]
    try:
        go.write_text("")
        for p in procs:
            assert p.wait(60) == 0
    finally:
        for p in procs:
            p.kill()
    assert run.refresh().exit_status == 1 and "supervisor" in api.output(run.id)
    copies = _copies(run)
    assert len(copies) == 1 and run.get("retried_as") == copies[0].id
    assert copies[0].status == "staged" and copies[0].get("retry_attempt") == 1
    # And once more from here: settled already, nothing new.
    assert transitions.stage_retry(api.resolve_store(), run, retry_copy_spec) == (copies[0].id, "already")
    assert len(_copies(run)) == 1


def test_a_copy_made_by_a_settler_killed_before_noting_it_is_not_made_twice(gated, guild_home):
    """The copy's id follows from the failure: a settler that finds it
    already in runs/ (or the trash) records it and makes no other."""
    run = _dead_supervisor_run(gated, guild_home, retries=1)
    st = api.resolve_store()
    assert transitions.settle_dead(st, run.refresh(), 1, retry=retry_copy_spec)
    (copy,) = _copies(run)
    assert copy.id == transitions.retry_copy_id(run)
    os.unlink(run.path("attrs", "retried_as"))  # as if its settler died before noting it
    assert transitions.stage_retry(st, run, retry_copy_spec) == (copy.id, "already")
    assert run.refresh().get("retried_as") == copy.id
    api.delete(copy.id)  # in the trash: still made, never again
    os.unlink(run.path("attrs", "retried_as"))
    assert transitions.stage_retry(st, run, retry_copy_spec) == (copy.id, "already")
    assert _copies(run) == [] and len([d for d in os.listdir(st.runs_dir) if d != run.id]) == 1  # the queue run
    # What is due follows the recorded policy and the outcome: a stopped run or a success gets nothing.
    assert [transitions.retry_due(run, s) for s in (3, 1, 0, -15)] == [(1, 1), (1, 1), None, None]
