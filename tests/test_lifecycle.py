"""The lifecycle module, one transition at a time, and the defects found at
its edges (stale start records, pid reuse, sweeps run one at a time, zombie
supervisors, unowned PENDINGs), with real processes and a real store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import cli, guild, output_line, wait_for
from guild_jupyter import api
from guild_jupyter.errors import RunStartError, WrongState
from guild_jupyter.procs import Identity
from guild_jupyter.store import attrs as attrlib
from guild_jupyter.store import transitions
from guild_jupyter.store.store import Store


def _stage(project, *assignments, n=1):
    out = []
    for _ in range(n):
        out += api.run(str(project / "train.py"), *assignments, stage=True)
    return out


def _markers(run):
    return sorted(n for n in os.listdir(run.guild_dir) if n.isupper() or n.startswith("LOCK"))


def _dead_identity():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = Identity.of(p.pid)
    p.wait()
    return ident or Identity(p.pid, time.time())


# -- each transition on its own ----------------------------------------------------


def test_claim_and_return_to_staged(project, guild_home):
    st = Store(guild_home)
    (r,) = _stage(project)
    by = transitions.Claim.by_this_process("q" * 32)
    transitions.claim(st, r, by, gpus="1")
    assert r.refresh().status == "pending"
    c = transitions.read_claim(r)
    assert c.owner == Identity.current() and c.queue_id == "q" * 32
    assert r.gpus == "1" and r.get("queue_id") == "q" * 32
    with pytest.raises(WrongState):  # claimed: no second claim
        transitions.claim(st, r, by)
    transitions.return_to_staged(st, r)
    assert r.refresh().status == "staged" and _markers(r) == ["STAGED"]


def test_recover_pending_only_touches_dead_claims_of_ours(project, guild_home):
    st = Store(guild_home)
    guilds, live, dead_staged, dead_unstaged, damaged = _stage(project, n=5)
    # Guild's PENDING: empty, no STAGED, and old: never touched.
    os.unlink(guilds.path("STAGED"))
    open(guilds.path("PENDING"), "w").close()
    hour_ago = time.time() - 3600
    os.utime(guilds.path("PENDING"), (hour_ago, hour_ago))
    transitions.claim(st, live, transitions.Claim.by_this_process())
    dead = transitions.Claim(_dead_identity())
    transitions.claim(st, dead_staged, dead)
    transitions.claim(st, dead_unstaged, dead)
    os.unlink(dead_unstaged.path("STAGED"))  # a launch's own pending run
    transitions.claim(st, damaged, dead)
    attrlib.write_atomic(damaged.path("PENDING"), b"\x00garbage{")
    before = {n: os.stat(guilds.path(n)).st_mtime_ns for n in os.listdir(guilds.guild_dir)}
    logged = []
    with st.lock():
        _, pending, _ = st.scan_waiting()
        back = transitions.recover_pending(st, pending, logged.append)
    assert sorted(r.id for r in back) == sorted([dead_staged.id, damaged.id])
    assert guilds.refresh().status == "pending"
    assert {n: os.stat(guilds.path(n)).st_mtime_ns for n in os.listdir(guilds.guild_dir)} == before
    assert not os.path.exists(guilds.path("attrs/exit_status"))
    assert live.refresh().status == "pending"
    assert dead_staged.refresh().status == "staged"
    assert damaged.refresh().status == "staged"
    # Not staged and its claimer dead: recorded error, PENDING gone (never stuck).
    assert dead_unstaged.refresh().status == "error" and "PENDING" not in _markers(dead_unstaged)
    assert "never started" in api.output(dead_unstaged.id)
    assert any("unreadable" in line for line in logged)
    # A second pass has nothing left to do.
    logged.clear()
    with st.lock():
        _, pending, _ = st.scan_waiting()
        assert transitions.recover_pending(st, pending, logged.append) == []
    assert logged == []


def test_acquire_refuses_stopped_foreign_claimed_and_unreadable(project, guild_home):
    st = Store(guild_home)
    a, b, c = _stage(project, n=3)
    me = Identity.current()
    transitions.unstage(st, a)
    with pytest.raises(WrongState):
        transitions.acquire(st, a, me)
    transitions.claim(st, b, transitions.Claim(_dead_identity()))
    with pytest.raises(WrongState):
        transitions.acquire(st, b, me, claimed_by=me)
    attrlib.write_atomic(c.path("attrs/flags"), b"{lr: [unclosed")
    with pytest.raises(RunStartError, match="flags"):
        transitions.acquire(st, c, me)
    assert c.refresh().status == "staged" and not os.path.exists(c.path("LOCK"))


def test_acquire_and_record_outcome(project, guild_home):
    st = Store(guild_home)
    (r,) = _stage(project)
    me = Identity.current()
    transitions.acquire(st, r, me)
    assert r.refresh().status == "running"
    assert json.loads(open(r.path("LOCK.start")).read()) == me.as_record()
    assert _markers(r) == ["LOCK", "LOCK.start"]
    # Someone else took the run (guild run --restart wrote a new LOCK): the
    # old holder records nothing and leaves that LOCK alone.
    attrlib.write_atomic(r.path("LOCK"), "1")
    transitions.record_outcome(st, r, 0, holder=me)
    assert os.path.exists(r.path("LOCK")) and r.refresh().exit_status is None
    attrlib.write_atomic(r.path("LOCK"), str(me.pid))
    transitions.record_outcome(st, r, 3, holder=me)
    assert r.refresh().status == "error" and r.exit_status == 3 and isinstance(r.stopped, int)
    assert _markers(r) == [] and not [n for n in os.listdir(r.guild_dir) if n.startswith(".reserve")]


def test_unstage_and_delete_of_a_staged_run(project, guild_home):
    st = Store(guild_home)
    a, b = _stage(project, n=2)
    transitions.unstage(st, a)
    a.refresh()
    assert a.status == "terminated" and a.get("unstaged") is True and a.get("stopped")
    transitions.delete(st, b)  # staged: unstaged first, so a restore never requeues it
    trashed = os.path.join(guild_home, "trash", "runs", b.id, ".guild")
    assert not os.path.exists(os.path.join(trashed, "STAGED"))
    guild("runs", "restore", b.id[:8], "-y")
    assert b.refresh().status == "terminated"
    assert b.id not in [r.id for r in api.runs("staged")]


def test_cancel_pending_and_start_failure(project, guild_home):
    st = Store(guild_home)
    a, b = _stage(project, n=2)
    transitions.claim(st, a, transitions.Claim.by_this_process())
    assert transitions.cancel_pending(st, a, "stopped before it started")
    assert a.refresh().status == "terminated" and _markers(a) == []
    assert not transitions.cancel_pending(st, a)
    transitions.record_start_failure(st, b, "no interpreter")
    assert b.refresh().status == "error" and "no interpreter" in api.output(b.id)
    assert _markers(b) == []


# -- process identity at the edges ------------------------------------------------------


def test_stop_all_never_signals_a_reused_pid(project, guild_home):
    """A Guild-format LOCK (no start record) naming a pid that now belongs to
    an unrelated process started after the LOCK was written."""
    (r,) = _stage(project)
    os.unlink(r.path("STAGED"))
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        attrlib.write_atomic(r.path("LOCK"), str(stranger.pid))
        born = Identity.of(stranger.pid).start
        os.utime(r.path("LOCK"), (born - 120, born - 120))
        assert r.refresh().status == "error"
        cli("stop", "--all", check=0)
        time.sleep(0.2)  # give a wrongly sent signal time to land
        assert stranger.poll() is None, "an unrelated process was signalled"
    finally:
        stranger.kill()
        stranger.wait()


def test_killed_supervisor_is_settled_by_the_next_look(project, guild_home):
    (r,) = api.run(str(project / "train.py"), "sleep=60", "epochs=1")
    holder = r.lock_holder()
    wait_for(lambda: transitions.recorded_processes(r.refresh()), message="script recorded")
    script = transitions.recorded_processes(r)[0]
    os.kill(holder.pid, signal.SIGKILL)
    wait_for(lambda: not holder.alive(), message="supervisor gone")
    assert script.alive(), "the script outlives its supervisor until someone looks"
    listed = {x.id: x.status for x in api.runs()}
    assert listed[r.id] == "error"
    wait_for(lambda: not script.alive(), timeout=10, message="orphaned script ended")
    assert r.refresh().exit_status == 1 and not os.path.exists(r.path("LOCK"))
    assert "supervisor" in api.output(r.id)
    assert r.id[:8] in guild("runs", "--error").stdout


def _leave_locked(run, ident, remote_host=None):
    """What a supervisor killed between recording the outcome and letting go leaves."""
    attrlib.write_atomic(run.path("LOCK.start"), json.dumps(ident.as_record()))
    attrlib.write_atomic(run.path("LOCK"), str(ident.pid))
    if remote_host is not None:
        attrlib.write_atomic(run.path("LOCK.remote"), remote_host)


def test_a_finished_run_left_locked_is_let_go_by_the_next_look(project, guild_home):
    """A supervisor killed after it recorded the outcome and before it
    removed LOCK (and its records): the next listing, or a queue's next
    pass, removes them; the outcome stays as recorded. A LOCK whose holder
    lives is left alone, and so is one held by another machine still heard
    from."""
    from guild_jupyter.execution import control
    from guild_jupyter.store.dask_records import this_host

    a, b, c, d = api.run(str(project / "train.py"), "epochs=1", "lr=[1,2,3,4]")
    wait_for(lambda: {r.refresh().status for r in (a, b, c, d)} == {"completed"}, timeout=60,
             message="the four runs complete")
    for r in (a, b, c, d):
        control.wait_for_release(r)
    _leave_locked(a, _dead_identity())
    _leave_locked(b, _dead_identity(), remote_host=this_host())  # a Dask run on this machine
    _leave_locked(c, Identity.current())  # its holder still lives
    _leave_locked(d, _dead_identity(), remote_host="elsewhere")  # heard from a moment ago
    assert b.refresh().status == "running" and d.refresh().status == "running"
    listed = {r.id: r.status for r in api.runs()}
    assert listed[a.id] == "completed" and _markers(a.refresh()) == []
    wait_for(lambda: b.refresh().status == "completed", message="the Dask run reads completed again")
    assert _markers(b) == [] and b.exit_status == 0
    assert _markers(c.refresh()) == ["LOCK", "LOCK.start"]
    assert d.refresh().status == "running" and "LOCK.remote" in _markers(d)
    # a queue's pass lets go too
    e = api.run(str(project / "train.py"), "epochs=1")[0]
    wait_for(lambda: e.refresh().status == "completed", message="the run completes")
    control.wait_for_release(e)
    _leave_locked(e, _dead_identity())
    assert api.queue(run_once=True, poll_interval=0.5).join(30)
    assert _markers(e.refresh()) == [] and e.status == "completed"
    for r in (c, d):
        for name in ("LOCK", "LOCK.start", "LOCK.remote"):
            if os.path.exists(r.path(name)):
                os.remove(r.path(name))


def test_stop_of_a_run_whose_supervisor_was_killed(project, guild_home):
    (r,) = api.run(str(project / "train.py"), "sleep=60", "epochs=1")
    wait_for(lambda: transitions.recorded_processes(r.refresh()), message="script recorded")
    script = transitions.recorded_processes(r)[0]
    os.kill(r.lock_holder().pid, signal.SIGKILL)
    wait_for(lambda: r.refresh().lock_holder() is None, message="supervisor gone")
    (stopped,) = api.stop(r.id)
    assert stopped.status == "error" and not script.alive()


def test_stop_timeout_ends_the_whole_tree(project, guild_home, tmp_path):
    """A caller's timeout shorter than the grace: the supervisor, the script
    and its child are all killed, and the outcome is recorded."""
    (project / "stubborn.py").write_text(textwrap.dedent("""\
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
        print("child", child.pid, flush=True)
        time.sleep(120)
        """))
    os.environ["GUILD_JUPYTER_STOP_GRACE"] = "30"
    (r,) = api.run(str(project / "stubborn.py"))
    line = wait_for(lambda: output_line(r.id, "child "), message="child started")
    child = Identity.of(int(line.split()[1]))
    holder = r.lock_holder()
    (stopped,) = api.stop(r.id, timeout=1)
    assert stopped.status == "terminated" and stopped.exit_status < 0
    # Ended by the caller's timeout, not the 30 s grace: the last resort killed the supervisor and noted it.
    assert "stop: the run did not end within its grace period; its processes were killed" in api.output(r.id)
    assert not holder.alive() and not child.alive()
    assert not os.path.exists(r.path("LOCK"))
    assert r.id[:8] in guild("runs", "--terminated").stdout


ZOMBIE_CHECK = textwrap.dedent("""\
    import sys, threading, time, psutil
    from guild_jupyter import api
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()  # a kernel has threads
    (r,) = api.run(sys.argv[1], "epochs=1")
    deadline = time.monotonic() + 30
    while r.refresh().status == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    def statuses():  # a child may exit between children() and status(): it is then neither
        for c in psutil.Process().children():
            try:
                yield c.pid, c.status()
            except psutil.NoSuchProcess:
                pass
    while time.monotonic() < deadline:
        children = list(statuses())
        zombies = [pid for pid, s in children if s == psutil.STATUS_ZOMBIE]
        alive = [pid for pid, s in children if s != psutil.STATUS_ZOMBIE]
        if not zombies and not alive:
            break
        time.sleep(0.02)
    print(r.status, len(zombies))
    """)


def test_a_threaded_host_leaves_no_zombie_supervisor(project, tmp_path):
    script = tmp_path / "host.py"
    script.write_text(ZOMBIE_CHECK)
    p = subprocess.run([sys.executable, str(script), str(project / "train.py")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["completed", "0"]


# -- sweeps without --stage -------------------------------------------------------------


def _trial_log(tmp_path):
    log = tmp_path / "trials.log"
    os.environ["TRIAL_LOG"] = str(log)
    return log


TIMED = textwrap.dedent("""\
    import os, time
    x = 1
    sleep = 0.3
    with open(os.environ["TRIAL_LOG"], "a") as f:
        f.write(f"start {x} {time.time()}\\n")
    time.sleep(sleep)
    with open(os.environ["TRIAL_LOG"], "a") as f:
        f.write(f"end {x} {time.time()}\\n")
    """)


def _intervals(log):
    starts, ends = {}, {}
    for line in log.read_text().split("\n"):
        if line:
            kind, x, t = line.split()
            (starts if kind == "start" else ends)[x] = float(t)
    return [(starts[x], ends.get(x)) for x in sorted(starts, key=starts.get)]


def test_background_sweep_runs_its_trials_one_after_another(project, tmp_path):
    log = _trial_log(tmp_path)
    (project / "timed.py").write_text(TIMED)
    try:
        trials = api.run(str(project / "timed.py"), "x=[1,2,3]")
        assert [t.status for t in trials][1:] == ["pending", "pending"]
        assert trials[0].status in ("running", "completed")
        # A queue running meanwhile never takes a trial waiting its turn.
        q = api.queue(poll_interval=0.2)
        try:
            wait_for(lambda: all(t.refresh().status == "completed" for t in trials), timeout=30,
                     message="the three trials complete")
        finally:
            q.stop()
        spans = _intervals(log)
        assert len(spans) == 3
        for (s1, e1), (s2, _) in zip(spans, spans[1:]):
            assert s2 >= e1, "trials overlapped"
        assert api.output(q.id).count("Starting staged run") == 0
    finally:
        del os.environ["TRIAL_LOG"]


def test_stopping_a_background_sweep_leaves_the_rest_unstarted(project, tmp_path):
    log = _trial_log(tmp_path)
    (project / "timed.py").write_text(TIMED)
    try:
        trials = api.run(str(project / "timed.py"), "x=[1,2,3,4]", "sleep=30")
        wait_for(lambda: log.exists() and log.read_text(), message="first trial runs")
        stopped = api.stop(*[t.id for t in trials if t.refresh().status in ("running", "pending")])
        assert [r.status for r in stopped] == ["terminated"] * 4
        assert all(t.refresh().started is None or t is trials[0] for t in trials[1:])
        time.sleep(0.5)  # the batch host must not start anything after the stop
        assert len(_intervals(log)) == 1
        assert all(t.refresh().status == "terminated" for t in trials)
    finally:
        del os.environ["TRIAL_LOG"]


def test_killing_the_batch_host_records_unstarted_trials(project, tmp_path, guild_home):
    log = _trial_log(tmp_path)
    (project / "timed.py").write_text(TIMED)
    try:
        trials = api.run(str(project / "timed.py"), "x=[1,2,3]", "sleep=1")
        host = transitions.read_claim(trials[1]).owner
        assert host.pid != os.getpid()  # the batch host took the claims over
        os.kill(host.pid, signal.SIGKILL)
        wait_for(lambda: not host.alive(), message="batch host gone")
        q = api.queue(run_once=True)
        assert q.join(30)
        wait_for(lambda: trials[0].refresh().status == "completed", message="running trial ends")
        assert [t.refresh().status for t in trials[1:]] == ["error", "error"]
        assert "never started" in api.output(trials[1].id)
        assert len(_intervals(log)) == 1
    finally:
        del os.environ["TRIAL_LOG"]


def test_cli_foreground_sweep_runs_trials_in_turn(project, tmp_path):
    log = _trial_log(tmp_path)
    (project / "timed.py").write_text(TIMED)
    try:
        p = cli("run", project / "timed.py", "x=[1,2]", "sleep=0.1", "--foreground", check=0)
        spans = _intervals(log)
        assert len(spans) == 2 and spans[1][0] >= spans[0][1]
        assert [r.status for r in api.runs()] == ["completed", "completed"]
        assert p.returncode == 0
    finally:
        del os.environ["TRIAL_LOG"]


def test_cli_foreground_sweep_interrupted(project, tmp_path):
    log = _trial_log(tmp_path)
    (project / "timed.py").write_text(TIMED)
    try:
        p = subprocess.Popen([sys.executable, "-m", "guild_jupyter", "run", str(project / "timed.py"),
                              "x=[1,2,3]", "sleep=30", "--foreground"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: log.exists() and log.read_text(), message="first trial started")
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 130
        runs = api.runs()
        assert sorted(r.status for r in runs) == ["terminated"] * 3
        assert sum(r.started is not None for r in runs) == 1
    finally:
        del os.environ["TRIAL_LOG"]
