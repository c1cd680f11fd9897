"""Priorities and dependencies (SPEC 12), end to end: real queues (threads
and detached processes), real supervisors and scripts, the real ``guild``
CLI beside ours.

Every run of these tests appends its ``RUN_ID`` to ``$RUN_LOG`` as its first
act (one ``O_APPEND`` write), so the log is the order runs really started
in, and a run in it twice started twice."""

from __future__ import annotations

import os
import random
import signal
import textwrap
import time

import pytest

from conftest import cli, guild, stop_guild_queue, wait_for
from guild_jupyter import api, views
from guild_jupyter.store import attrs as attrlib
from guild_jupyter.store.records import is_held, read_after
from guild_jupyter.store.run import Run
from support.store_state import diff, snapshot

STEP_PY = textwrap.dedent(
    """\
    import os, sys, time
    sleep = 0.05
    fail = 0
    fail_unless = ""
    hang_unless = ""
    fd = os.open(os.environ["RUN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (os.environ["RUN_ID"] + "\\n").encode())
    os.close(fd)
    time.sleep(sleep)
    if hang_unless and not os.path.exists(hang_unless):
        open(hang_unless, "w").close()
        time.sleep(120)
    print("loss: 0.5")
    if fail_unless and not os.path.exists(fail_unless):
        open(fail_unless, "w").close()
        sys.exit(4)
    sys.exit(fail)
    """
)


@pytest.fixture
def step(tmp_path, monkeypatch):
    """``step.py`` (flags: sleep, fail, fail_unless) and the starts log."""
    d = tmp_path / "pipeline"
    d.mkdir()
    (d / "step.py").write_text(STEP_PY)
    log = tmp_path / "starts.log"
    monkeypatch.setenv("RUN_LOG", str(log))
    return str(d / "step.py"), log


def started(log) -> list[str]:
    try:
        with open(log) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def stop_queues(queues) -> None:
    for q in queues:
        try:
            q.stop(timeout=15)
        except Exception:  # noqa: BLE001 - cleanup: the test's own assertions say what went wrong
            pass


def ended(*runs) -> bool:
    """Every run ended with its outcome recorded: an ``error`` without an
    exit status is no end yet (Guild shows a run its queue is starting so
    for a moment, between taking STAGED away and writing LOCK)."""
    return all(r.refresh().status in ("completed", "error", "terminated") and r.exit_status is not None for r in runs)


# -- priorities -----------------------------------------------------------------------------------


def test_priority_order_with_three_queues_in_two_processes(step):
    """Three queues (two threads here, one detached process) start staged
    runs highest priority first, then oldest; an urgent run staged while
    they work jumps the backlog. wait-for-running makes the three start
    one run at a time between them, so the starts log is the claim order."""
    script, log = step
    priorities = [0, 5, -1, 5, 2, 0, -3]
    runs = [api.run(script, "sleep=0.3", stage=True, priority=p)[0] for p in priorities]
    expected = [r.id for _p, _i, r in sorted(zip(priorities, range(len(runs)), runs), key=lambda t: (-t[0], t[1]))]
    assert expected != [r.id for r in runs]  # the order differs from the staging order
    queues = [api.queue(wait_for_running=True, poll_interval=1),
              api.queue(wait_for_running=True, poll_interval=1),
              api.queue(wait_for_running=True, poll_interval=1, background=True)]
    try:
        wait_for(lambda: len(started(log)) >= 2, timeout=60, message="two runs started")
        (urgent,) = api.run(script, "sleep=0.3", stage=True, priority=100)
        n = len(started(log))  # started when the urgent run was staged (at most one more was claimed then)
        assert n + 1 < len(runs)  # the test's premise: runs of the backlog were still staged
        wait_for(lambda: ended(urgent, *runs), timeout=90, message="every run to end")
    finally:
        stop_queues(queues)
    order = started(log)
    assert sorted(order) == sorted([r.id for r in runs] + [urgent.id])  # each started once
    assert order.index(urgent.id) <= n + 1  # the next claim after its staging took it
    assert [i for i in order if i != urgent.id] == expected
    assert all(r.refresh().status == "completed" for r in runs + [urgent])
    assert len({r.get("queue_id") for r in runs + [urgent]}) >= 2  # the queues shared the work


def test_prioritize_changes_the_order_and_the_views(step):
    script, log = step
    c, b, a = api.run(script, "sleep=[0.01,0.02,0.03]", stage=True)  # newest first: a is the oldest
    rows = _staged_rows()
    assert [r["id"] for r in rows] == [a.id, b.id, c.id]  # oldest first
    assert [r["position_text"] for r in rows] == ["next to start", "2nd in line", "3rd in line"]
    out = cli("prioritize", c.id[:8], b.id[:8], "7", check=0)
    assert "priority 7" in out.stdout
    api.prioritize(a.id, priority=-2)
    rows = _staged_rows()
    assert [r["id"] for r in rows] == [b.id, c.id, a.id]
    assert [r["position_text"] for r in rows] == ["next to start · priority 7", "2nd in line · priority 7",
                                                 "3rd in line · priority -2"]
    assert [v["verb"] for v in rows[0]["actions"]] == ["prioritize", "unstage"]
    form = rows[0]["actions"][0]["form"]
    assert form == {"flags": [{"name": "priority", "value": "7", "type": "int"}]}
    listed = cli("runs", "--staged", check=0).stdout  # the command line's listing says the same places
    notes = {ln.split("]")[0].split(":")[1]: ln.split("  ")[3] for ln in listed.splitlines()}
    assert notes == {b.id[:8]: "staged · next to start · priority 7", c.id[:8]: "staged · 2nd in line · priority 7",
                     a.id[:8]: "staged · 3rd in line · priority -2"}, listed
    assert cli("runs", "-n", "1", check=0).stdout.count("staged · 2nd in line · priority 7") == 1  # cut: same places
    q = api.queue(run_once=True, poll_interval=1)
    assert q.join(60)
    assert started(log) == [b.id, c.id, a.id]


def _staged_rows() -> list[dict]:
    snap = api.monitor().snapshot()
    (group,) = [g for g in snap["groups"] if g["name"] == "staged"]
    return group["rows"]


# -- dependencies ---------------------------------------------------------------------------------


def test_three_stage_pipeline_with_a_sweep_in_the_middle(step, tmp_path):
    """prep, then a sweep of trials after it, then eval after the sweep
    (``--after SWEEP``, its id), staged from the command line as a user
    would; one queue with two slots runs the trials side by side."""
    script, log = step
    cwd = os.path.dirname(script)
    cli("run", "step.py", "sleep=0.3", "--stage", cwd=cwd, check=0)
    (prep,) = api.runs()
    out = cli("run", "step.py", "sleep=[0.2,0.3,0.4]", "--after", prep.id[:8], "--stage", cwd=cwd, check=0)
    trials = api.runs()[:3]
    assert {r.id[:8] for r in trials} == set(_short_ids(out.stdout))
    (sweep,) = {t.sweep for t in trials}
    cli("run", "step.py", "--after", sweep, "--stage", "--priority", "3", cwd=cwd, check=0)
    evaluate = api.runs()[0]
    assert read_after(evaluate) == [(t.id, False) for t in sorted(trials, key=lambda t: (t.timestamp, t.id))]
    assert all(read_after(t) == [(prep.id, False)] for t in trials)
    listed = cli("runs", check=0).stdout
    assert f"pending · after {prep.id[:8]} (staged)" in listed
    assert "(waiting)" in listed and "priority 3" in listed
    for line in cli("runs", "--pending", check=0).stdout.splitlines():
        assert " pending " in line
    assert f"{prep.id[:8]}" in guild("runs").stdout  # Guild lists them all...
    assert sum(" pending" in line for line in guild("runs").stdout.splitlines()) == 4  # ... the held ones pending

    q = api.queue(max_running=2, run_once=True, poll_interval=1)
    assert q.join(90)
    order = started(log)
    assert order[0] == prep.id and order[-1] == evaluate.id and sorted(order[1:4]) == sorted(t.id for t in trials)
    for r in [prep, evaluate, *trials]:
        assert r.refresh().status == "completed"
    assert all(t.started >= prep.stopped for t in trials)
    assert evaluate.started >= max(t.stopped for t in trials)
    first, second, _third = sorted(trials, key=lambda t: t.started)
    assert second.started < first.stopped  # two slots: trials side by side
    assert "staged: its dependencies completed" in open(q.run.path("output")).read()


def _short_ids(text: str) -> list[str]:
    import re

    return re.findall(r"^\[\d+:([0-9a-f]{8})\]", text, re.M)


def test_after_a_sweep_id_names_its_trials(step):
    """A sweep id (the ``sweep`` attr each ``run`` call gives its runs,
    issue 22), or a unique prefix of it, names every trial of that sweep;
    an unknown one is refused in one line, nothing written."""
    from guild_jupyter.errors import BadInput

    script, _log = step
    trials = api.run(script, "sleep=[0.1,0.2,0.3]", stage=True)
    (other,) = api.run(script, stage=True)
    sweep = trials[0].sweep
    assert sweep and {t.sweep for t in trials} == {sweep} and other.sweep != sweep
    oldest_first = [(t.id, False) for t in sorted(trials, key=lambda t: (t.timestamp, t.id))]
    (evaluate,) = api.run(script, stage=True, after=sweep)
    assert read_after(evaluate) == oldest_first
    (report,) = api.run(script, stage=True, after_any=[sweep[:6], other.id])
    assert read_after(report) == [(i, True) for i, _any in oldest_first] + [(other.id, True)]
    out = cli("run", os.path.basename(script), "--stage", "--after", sweep, cwd=os.path.dirname(script), check=0)
    assert read_after(api.runs()[0]) == oldest_first, out.stdout
    unknown = next(s for s in ("sfffffff0", "sfffffff1") if s not in (sweep, other.sweep))
    before = len(api.runs())
    with pytest.raises(BadInput, match=f"--after: no sweep '{unknown}'"):
        api.run(script, stage=True, after=unknown)
    p = cli("run", os.path.basename(script), "--stage", "--after", unknown, cwd=os.path.dirname(script))
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "no sweep" in p.stderr, p.stderr
    assert len(api.runs()) == before


def test_failure_propagates_through_two_levels(step):
    """prep fails: the trials after it end error naming it, eval after the
    trials ends error naming one, and a run after eval with --after-any
    starts all the same. Nothing waits forever; only what could run ran."""
    script, log = step
    (prep,) = api.run(script, "fail=3", stage=True)
    trials = api.run(script, "sleep=[0.1,0.2]", stage=True, after=prep.id)
    (evaluate,) = api.run(script, stage=True, after=[t.id for t in trials])
    (report,) = api.run(script, stage=True, after_any=evaluate.id)
    watcher = api.EventWatcher(api.monitor())
    watcher.look()  # learns the store
    q = api.queue(run_once=True, poll_interval=1)
    assert q.join(60)
    assert started(log) == [prep.id, report.id]
    assert prep.refresh().status == "error" and report.refresh().status == "completed"
    for t in trials:
        assert t.refresh().status == "error" and t.started == t.get("initialized")  # never started
        assert t.get("after_failure") == f"dependency {prep.id[:8]} failed"
        assert f"not started: dependency {prep.id[:8]} failed" in open(t.path("output")).read()
    assert evaluate.refresh().status == "error"
    assert evaluate.get("after_failure") in {f"dependency {t.id[:8]} failed" for t in trials}
    row = views.run_row(evaluate)
    assert row["status_text"] == "error (exit 1)" and row["outcome_text"].startswith("not started: dependency ")
    assert row["held"] is False and [a["verb"] for a in row["actions"]][:2] == ["output", "retry"]
    events = [e for e in watcher.look() if e["kind"] == "run-ended"]
    texts = {e["run"]: e["text"] for e in events}
    assert texts[evaluate.id].endswith(f"({evaluate.id[:8]}) {row['outcome_text']}")
    assert {e["level"] for e in events if e["run"] in {t.id for t in trials}} == {"error"}


def test_a_failed_dependency_that_is_retried_is_followed(step, tmp_path):
    """prep fails once and is retried (--retries 1): the run after it waits
    for the retry, and starts once the retry completed."""
    script, log = step
    marker = tmp_path / "second-time"
    (prep,) = api.run(script, f"fail_unless={marker}", stage=True, retries=1)
    (train,) = api.run(script, stage=True, after=prep.id)
    q = api.queue(run_once=True, poll_interval=1)
    assert q.join(60)
    retry = prep.refresh().get("retried_as")
    assert prep.status == "error" and isinstance(retry, str)
    assert started(log) == [prep.id, retry, train.id]
    assert train.refresh().status == "completed"
    assert train.started >= api.Run(os.path.join(os.path.dirname(prep.dir), retry)).stopped


def test_a_dependency_whose_supervisor_was_killed_is_settled_and_its_retry_followed(step, tmp_path):
    """prep's supervisor is killed outright (SIGKILL) while prep runs: the
    queue that looks at the run waiting on it records prep's end (error)
    and stages the retry prep's policy is due, and the waiting run waits for
    that retry rather than failing."""
    script, log = step
    marker = tmp_path / "hung-once"
    (prep,) = api.run(script, f"hang_unless={marker}", stage=True, retries=1)
    (train,) = api.run(script, stage=True, after=prep.id)
    q = api.queue(poll_interval=0.5)
    try:
        wait_for(lambda: marker.exists() and prep.refresh().status == "running", message="prep hanging")
        holder = prep.lock_holder()
        os.kill(holder.pid, signal.SIGKILL)
        wait_for(lambda: train.refresh().status in ("completed", "error"), timeout=60, message="train to end")
    finally:
        stop_queues([q])
    retry = prep.refresh().get("retried_as")
    assert prep.status == "error" and isinstance(retry, str), prep.status
    assert train.status == "completed", train.get("after_failure")
    assert started(log) == [prep.id, retry, train.id]


def test_retry_of_a_run_ended_by_its_dependency_waits_again(step, tmp_path):
    """A run ended by a failed dependency, retried by hand, waits again for
    the same dependency -- followed to that dependency's own retry."""
    script, log = step
    marker = tmp_path / "fixed"
    (prep,) = api.run(script, f"fail_unless={marker}", stage=True)
    (train,) = api.run(script, stage=True, after=prep.id)
    assert api.queue(run_once=True, poll_interval=1).join(60)
    assert train.refresh().status == "error"
    (prep2,) = api.retry(prep.id)
    (train2,) = api.retry(train.id)
    assert is_held(train2) and read_after(train2) == [(prep.id, False)]
    assert views.run_row(train2)["waiting_text"] == f"after {prep2.id[:8]} (staged)"
    assert api.queue(run_once=True, poll_interval=1).join(60)
    assert started(log) == [prep.id, prep2.id, train2.id]
    assert train2.refresh().status == "completed"


def test_held_runs_can_be_unstaged_stopped_deleted_and_a_deletion_fails_dependents(step, guild_home):
    script, log = step
    (a,) = api.run(script, stage=True)
    b, c, d, e = (api.run(script, stage=True, after=a.id)[0] for _ in range(4))
    (f,) = api.run(script, stage=True, after=b.id)
    assert all(r.status == "pending" and is_held(r) for r in (b, c, d, e, f))

    api.unstage(c.id)
    assert c.refresh().status == "terminated" and views.status_of(c) == "unstaged"
    cli("stop", d.id[:8], check=0)
    assert d.refresh().status == "terminated" and not os.path.exists(d.path("PENDING"))
    api.delete(e.id)
    assert os.path.isdir(os.path.join(guild_home, "trash", "runs", e.id))
    assert Run(os.path.join(guild_home, "trash", "runs", e.id)).status == "terminated"

    api.delete(a.id)  # the dependency goes: b fails, and f after b
    listing = {r.id: r for r in api.runs()}  # whoever looks next settles what waits on it
    assert listing[b.id].status == "error" and b.refresh().get("after_failure") == f"dependency {a.id[:8]} was deleted"
    assert f.refresh().status == "error" and f.get("after_failure") == f"dependency {b.id[:8]} failed"
    assert started(log) == []
    for r in (b, c, d, f):
        names = set(os.listdir(r.guild_dir))
        assert not names & {"PENDING", "STAGED", "LOCK"}, (r.id, names)
        assert isinstance(r.get("exit_status"), int) and isinstance(r.get("stopped"), int)


def test_a_cycle_is_refused_and_nothing_is_written(step, guild_home):
    """X completed; Y waits for X (no queue has looked yet); restarting X to
    wait for Y would make each wait for the other: refused, one line."""
    script, _log = step
    cwd = os.path.dirname(script)
    cli("run", "step.py", "--foreground", cwd=cwd, check=0)
    (x,) = api.Store(str(guild_home)).runs()
    (y,) = api.run(script, stage=True, after=x.id)
    (z,) = api.run(script, stage=True, after=y.id)
    before = snapshot(str(guild_home / "runs"))  # the runs (the listing cache may be written)
    for args in (("restart", x.id[:8], "--stage", "--after", z.id[:8]),
                 ("restart", x.id[:8], "--stage", "--after", x.id[:8]),
                 ("restart", x.id[:8], "--stage", "--after-any", y.id[:8])):
        p = cli(*args)
        assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, p.stderr
        assert "cycle" in p.stderr or "itself" in p.stderr
    assert f"{x.id[:8]} -> {z.id[:8]} -> {y.id[:8]} -> {x.id[:8]}" in cli(*(("restart", x.id[:8], "--stage", "--after",
                                                                             z.id[:8]))).stderr
    assert diff(before, snapshot(str(guild_home / "runs"))) == []
    (w,) = api.run(script, stage=True)  # a run that waits for nothing of it may be waited for
    api.restart(x.id, stage=True, after=w.id, priority=4)
    assert is_held(x.refresh()) and read_after(x) == [(w.id, False)] and x.get("priority") == 4


def test_the_real_guild_queue_never_starts_a_held_run(step):
    """Guild's own queue starts our staged run and never the run held after
    it (an ownerless PENDING, which Guild's queues do not start); `guild
    runs` shows it pending. Ours starts it then."""
    script, log = step
    (prep,) = api.run(script, "sleep=0.1", stage=True)
    (held,) = api.run(script, stage=True, after=prep.id)
    (other,) = api.run(script, stage=True, after_any=prep.id, priority=9)
    guild("run", "queue", "run-once=yes", "poll-interval=1", "-y", timeout=240)
    assert started(log) == [prep.id]
    assert prep.refresh().status == "completed"
    lines = guild("runs").stdout.splitlines()
    for r in (held, other):
        (line,) = [ln for ln in lines if r.id[:8] in ln]
        assert "pending" in line, line
        assert r.refresh().status == "pending" and is_held(r)
    q = api.queue(run_once=True, poll_interval=1)
    assert q.join(60)
    assert started(log) == [prep.id, other.id, held.id]  # priority 9 first
    assert held.refresh().status == "completed" and other.refresh().status == "completed"


def test_the_real_guild_queue_beside_ours_never_starts_a_held_run(step):
    """Guild's own queue and ours polling the same store at once: whichever
    starts a staged run, no held run is started before what it waits for
    has ended (Guild's queue never takes one while it is held); each run
    starts once and nothing is left pending."""
    import subprocess
    import sys

    script, log = step
    (prep,) = api.run(script, "sleep=1.5", stage=True)
    (train,) = api.run(script, stage=True, after=prep.id)
    (report,) = api.run(script, stage=True, after_any=train.id, priority=9)
    plain = api.run(script, "sleep=[0.1,0.2,0.3]", stage=True)
    every = [prep, train, report, *plain]
    env = dict(os.environ, NO_RESTARTING_MSG="1", NO_IMPORT_FLAGS_PROGRESS="1")
    gq = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "guild"), "run", "queue",
                           "poll-interval=1", "-y"], cwd=os.path.dirname(script), env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    ours = None
    try:
        wait_for(lambda: prep.refresh().status != "staged", timeout=120, message="prep to start")
        ours = api.queue(poll_interval=1)
        wait_for(lambda: ended(*every), timeout=180, interval=0.2, message="every run to end")
    finally:
        if ours is not None:
            stop_queues([ours])
        stop_guild_queue(gq)
    counts = {i: started(log).count(i) for i in set(started(log))}
    assert counts == {r.id: 1 for r in every}, counts
    for r in every:
        assert r.refresh().status == "completed", (r.id, r.status)
        assert not set(os.listdir(r.guild_dir)) & {"PENDING", "STAGED"}
    assert train.started >= prep.stopped and report.started >= train.stopped


def test_kill_9_of_queues_while_dependencies_resolve(step, guild_home):
    """Chains of three (a <- b <- c) and a run after every chain's end, with
    detached queues killed outright (SIGKILL) at random moments and new ones
    started: every run starts exactly once, after its dependencies ended,
    and nothing is left pending."""
    script, log = step
    rng = random.Random(int(os.environ.get("GUILD_JUPYTER_KILL_SEED") or random.randrange(1 << 30)))
    chains = []
    for _ in range(4):
        (a,) = api.run(script, f"sleep={rng.choice([0.05, 0.2])}", stage=True)
        (b,) = api.run(script, f"sleep={rng.choice([0.05, 0.2])}", stage=True, after=a.id)
        (c,) = api.run(script, f"sleep={rng.choice([0.05, 0.2])}", stage=True, after=b.id)
        chains.append((a, b, c))
    (last,) = api.run(script, stage=True, after=[c.id for _a, _b, c in chains])
    every = [r for chain in chains for r in chain] + [last]
    queues, killed = [], 0
    try:
        for _ in range(3):
            queues.append(api.queue("max-running=2", "poll-interval=0.5", background=True))
        deadline = time.monotonic() + 90
        while not ended(*every) and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.05, 0.4))
            alive = [q for q in queues if q.run.refresh().status == "running"]
            if alive:
                victim = rng.choice(alive)
                holder = victim.run.lock_holder()
                if holder is not None:
                    os.kill(holder.pid, signal.SIGKILL)
                    killed += 1
                queues.append(api.queue("max-running=2", "poll-interval=0.5", background=True))
        api.stop(queues=True, timeout=15)
        drain = api.queue(run_once=True, poll_interval=0.5)  # what the kills left staged
        assert drain.join(60)
        wait_for(lambda: ended(*every), timeout=30, message="every run to end")
    finally:
        stop_queues(queues)
    assert killed >= 2
    counts = {i: started(log).count(i) for i in set(started(log))}
    assert all(n == 1 for n in counts.values()), counts
    assert set(counts) == {r.id for r in every}
    for r in every:
        r.refresh()
        assert r.status == "completed", (r.id, r.status)
        assert not set(os.listdir(r.guild_dir)) & {"PENDING", "STAGED", "LOCK", "LOCK.start"}
    by_id = {r.id: r for r in every}
    for r in every:
        for dep, _any in read_after(r) or []:
            assert r.started >= by_id[dep].stopped, (r.id, dep)


# -- the front ends ----------------------------------------------------------------------------------


def test_magics_take_after_and_prioritize_with_the_notebooks_indices(step, ipython):
    script, _log = step
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.run_line_magic("guild", f"run {script} sleep=[0.1,0.2] --stage")
    shown = ipython.run_line_magic("guild", "runs")
    first, second = shown[0], shown[1]  # the newest first: indices 1 and 2 of this listing
    out = ipython.run_line_magic("guild", f"run {script} --stage --after 1:2 --priority 2")
    (evaluate,) = out
    assert read_after(evaluate) == [(first.id, False), (second.id, False)]
    done = ipython.run_line_magic("guild", f"prioritize {evaluate.id[:8]} -4")
    assert done[0].get("priority") == -4
    assert "priority -4" in str(ipython.run_line_magic("guild", "runs --pending"))


def test_rest_stages_after_and_prioritizes(step, tmp_path, guild_home):
    from support.jupyter import start_jupyter

    script, _log = step
    (prep,) = api.run(script, stage=True)
    server = start_jupyter(tmp_path / "server", env={"GUILD_HOME": str(guild_home)},
                           root_dir=os.path.dirname(script),
                           extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    try:
        status, reply = server.request("/guild/api/runs", "POST", {"script": "step.py", "stage": True,
                                                                   "after": [prep.id[:8]], "priority": 2})
        assert status == 201, reply
        (row,) = reply["runs"]
        assert row["held"] is True and row["waiting_text"] == f"after {prep.id[:8]} (staged)"
        assert row["position_text"] == "priority 2" and row["priority"] == 2
        prioritize = next(a for a in row["actions"] if a["verb"] == "prioritize")
        status, reply = server.request(f"/guild/api/{prioritize['path']}", "POST", {"flags": {"priority": "-5"}})
        assert status == 200 and reply["runs"][0]["priority"] == -5, reply
        status, reply = server.request(f"/guild/api/runs/{prep.id}/prioritize", "POST", {"priority": 8})
        assert status == 200 and reply["runs"][0]["position_text"] == "priority 8"
        status, reply = server.request(f"/guild/api/runs/{row['id']}", "DELETE", None)
        assert status == 200 and reply["action"] == "unstaged", reply
        assert views.status_of(api.Run(os.path.join(str(guild_home), "runs", row["id"]))) == "unstaged"
    finally:
        server.stop()


def test_a_settler_killed_half_way_leaves_what_the_next_completes(step, guild_home):
    """The two writes of each settling step, stopped in between (as a kill
    -9 of the queue doing them would): released -- STAGED written, PENDING
    still there; ended -- the outcome written, the markers still there. The
    next pass completes each without a second outcome or start."""
    from guild_jupyter.queueing.dependencies import settle_held
    from guild_jupyter.store import transitions

    script, log = step
    (done,) = api.run(script, stage=True)
    (failed,) = api.run(script, "fail=2", stage=True)
    (released,) = api.run(script, stage=True, after=done.id)
    (ended,) = api.run(script, stage=True, after=failed.id)
    assert api.queue(run_once=True, poll_interval=1).join(60)  # runs both; settles the held ones
    assert released.refresh().status == "completed" and ended.refresh().status == "error"
    st = api.Store(str(guild_home))
    # Put each back in its half-way state: held, with the first write of its step done.
    (half_released,) = api.run(script, stage=True, after=done.id)
    open(half_released.path("STAGED"), "w").close()
    (half_ended,) = api.run(script, stage=True, after=failed.id)
    attrlib.write_attr(half_ended.attrs_dir, "exit_status", 1)
    attrlib.write_attr(half_ended.attrs_dir, "stopped", 1)
    assert half_released.refresh().status == "pending" and half_ended.refresh().status == "pending"
    out = settle_held(st, [half_released, half_ended])
    assert [r.id for r in out.released] == [half_released.id] and out.failed == []
    assert half_released.refresh().status == "staged" and not os.path.exists(half_released.path("PENDING"))
    assert half_ended.refresh().status == "error" and half_ended.get("stopped") == 1  # the outcome written once
    assert not set(os.listdir(half_ended.guild_dir)) & {"PENDING", "STAGED"}
    assert not os.path.exists(half_ended.path("output"))  # no second reason noted
    assert transitions.release_held(st, half_released) is False  # no longer held: nothing to do
    assert api.queue(run_once=True, poll_interval=1).join(60)
    assert started(log).count(half_released.id) == 1 and half_ended.id not in started(log)


def test_a_dependency_guild_is_starting_is_not_a_failure(step):
    """Guild's queue removes a run's PENDING before it writes LOCK; for that
    moment the run reads ``error``. A run waiting on it is not failed then;
    a run left so past the grace (a starter that died) fails its dependents."""
    from guild_jupyter.store.dependencies import STARTING_GRACE, dependency_state
    from guild_jupyter.store.markers import STAGED_MARKER

    script, _log = step
    (prep,) = api.run(script, stage=True)
    (after,) = api.run(script, stage=True, after=prep.id)
    os.remove(prep.path(STAGED_MARKER))  # the moment between Guild's PENDING and its LOCK
    assert prep.refresh().status == "error" and prep.get("exit_status") is None
    store = api.resolve_store(None)
    assert dependency_state(store, prep.id) == (prep.id, "pending")
    api.runs()  # a listing settles held runs: this one waits on
    assert after.refresh().status == "pending" and is_held(after)
    old = time.time() - STARTING_GRACE - 5
    os.utime(prep.guild_dir, (old, old))
    assert dependency_state(store, prep.id) == (prep.id, "error")
    api.runs()
    assert after.refresh().status == "error" and after.get("after_failure") == f"dependency {prep.id[:8]} failed"
