"""The queue engine's hosts and faults: the host protocol, wait-for-running
across queues, recovery of pending runs, the foreground CLI queue, disk
faults (a real full tmpfs) and runs that cannot be read."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import wait_for
from guild_jupyter import api
from guild_jupyter.queueing.config import parse_queue_flags
from guild_jupyter.queueing.hosts import DetachedQueue, ForegroundQueue, QueueHost, ThreadQueue
from guild_jupyter.queueing.loop import LocalStarter, QueueLoop
from guild_jupyter.errors import StoreError
from guild_jupyter.opdef import ScriptOp
from guild_jupyter.procs import Identity
from guild_jupyter.store import transitions
from guild_jupyter.store.store import Store

TIMED_PY = """\
import os, time
x = 0
with open(os.environ["RUN_LOG"], "a") as f:
    f.write(f"start {os.environ['RUN_ID']} {time.time()!r}\\n")
time.sleep(0.3)
with open(os.environ["RUN_LOG"], "a") as f:
    f.write(f"end {os.environ['RUN_ID']} {time.time()!r}\\n")
"""

TINY_PY = "import os\nx = 0\nlog = os.environ.get('RUN_LOG')\nif log:\n    open(log, 'a').write(os.environ['RUN_ID'] + '\\n')\n"


def _dead_identity() -> Identity:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = Identity.of(p.pid)
    p.wait()
    assert ident is not None and not ident.alive()
    return ident


@contextlib.contextmanager
def _loop(store, *flags, echo=None, **options):
    """A queue loop of ours in a thread of this test (its queue run held by
    this process), so the test sees every line it logs."""
    config = parse_queue_flags(flags)
    from guild_jupyter.queueing.config import create_queue_run

    qrun = create_queue_run(store, config, "thread")
    holder = Identity.current()
    transitions.acquire(store, qrun, holder)
    stop = threading.Event()
    loop = QueueLoop(store, config, qrun, stop, echo=echo, **options)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("status", loop.run_loop()), daemon=True)
    t.start()
    try:
        yield loop, t
    finally:
        stop.set()
        t.join(30)
        transitions.record_outcome(store, qrun, result.get("status", 1), holder)


# -- the protocol ----------------------------------------------------------------------------


def test_every_host_implements_the_protocol(project, guild_home):
    st = api.resolve_store(None)
    config = parse_queue_flags(["poll-interval=1"])
    t = ThreadQueue(st, config)
    d = DetachedQueue.start(st, config)
    f = ForegroundQueue(st, config)
    ft = threading.Thread(target=f.serve, daemon=True)
    ft.start()
    r = None
    try:
        s = ThreadQueue(st, config, host="server")  # the Jupyter server's queues (api.host_queue)
        hosts = (t, d, f, s)
        for q in hosts:
            assert isinstance(q, QueueHost), q
            wait_for(lambda: q.status == "waiting", message=f"{q.host} queue waits")
            assert q.current_run is None and q.config == config and q.run.id == q.id
        assert {q.host for q in hosts} == {"thread", "detached", "cli", "server"}
        r = api.run(str(project / "train.py"), "sleep=0.3", "epochs=3", stage=True)[0]
        wait_for(lambda: any(q.current_run is not None and q.current_run.id == r.id for q in hosts),
                 message="one host reports the run it started")
    finally:
        for q in (t, d, f, s):
            q.stop(wait=False)
        for q in (t, d, f, s):
            assert q.join(15), q
            assert q.status == "stopped" and q.run.refresh().status == "terminated"
        if r is not None:  # a stopped queue leaves its run going: it ends by itself
            (r,) = api.wait(r, timeout=30)
            assert r.status == "completed"


# -- wait-for-running across queues -------------------------------------------------------------


def test_wait_for_running_queues_never_overlap(project, tmp_path, monkeypatch):
    """Two queues with wait-for-running: a run the other queue has claimed
    (pending, not yet running) counts as running, so no two runs overlap."""
    log = tmp_path / "times.log"
    monkeypatch.setenv("RUN_LOG", str(log))
    (project / "timed.py").write_text(TIMED_PY)
    staged = api.run(str(project / "timed.py"), "x=range[1:30]", stage=True)
    assert len(staged) == 30
    queues = [api.queue(background=True, wait_for_running=True, run_once=True, poll_interval=1) for _ in range(2)]
    for q in queues:
        assert q.join(180)
    assert [r.refresh().status for r in staged] == ["completed"] * 30
    spans = {}
    for line in log.read_text().splitlines():
        what, run_id, t = line.split()
        spans.setdefault(run_id, {})[what] = float(t)
    assert len(spans) == 30
    order = sorted(spans.values(), key=lambda s: s["start"])
    overlaps = [(a, b) for a, b in zip(order, order[1:]) if b["start"] < a["end"]]
    assert not overlaps, f"{len(overlaps)} run(s) started while another was running"
    starters = {r.get("queue_id") for r in staged}
    assert starters == {q.id for q in queues}  # both took part


# -- pending runs -------------------------------------------------------------------------------


def test_ownerless_pending_is_never_touched(project, guild_home):
    r = api.run(str(project / "train.py"), stage=True)[0]
    with open(r.path("PENDING"), "wb"):
        pass  # what Guild writes while it prepares a run
    hour_ago = time.time() - 3600
    os.utime(r.path("PENDING"), (hour_ago, hour_ago))
    q = api.queue(run_once=True)
    assert q.join(30)
    assert r.refresh().status == "pending"
    assert os.path.getsize(r.path("PENDING")) == 0 and abs(os.stat(r.path("PENDING")).st_mtime - hour_ago) < 1
    assert r.get("exit_status") is None and r.id not in api.output(q.id)


def test_pending_of_dead_claimers_and_damaged_claims_end_recorded(project, guild_home):
    st = api.resolve_store(None)
    dead = transitions.Claim(_dead_identity(), "f" * 32)
    # Claimed by a queue that died: back to staged, then started.
    back = api.run(str(project / "train.py"), "name=back", stage=True)[0]
    with st.lock():
        transitions.claim(st, back, dead)
    # Started directly (never staged) by a process that died: error, with why.
    (never,) = transitions.create(st, [ScriptOp.from_path(str(project / "train.py")).spec({})],
                                  staged=False, owner=dead)
    # Garbage in PENDING: a damaged claim, settled like a dead one.
    garbled_staged = api.run(str(project / "train.py"), "name=garbled", stage=True)[0]
    garbled = api.run(str(project / "train.py"), "name=garbled2", stage=True)[0]
    for r in (garbled_staged, garbled):
        with open(r.path("PENDING"), "wb") as f:
            f.write(b"\x00{not json")
    os.unlink(garbled.path("STAGED"))
    assert all(r.refresh().status == "pending" for r in (back, never, garbled_staged, garbled))
    q = api.queue(run_once=True)
    assert q.join(60)
    assert back.refresh().status == "completed" and garbled_staged.refresh().status == "completed"
    assert never.refresh().status == "error" and garbled.refresh().status == "error"
    assert f"claimer (pid {dead.owner.pid}) died" in api.output(never.id)
    assert "claim record is unreadable" in api.output(garbled.id)
    log = api.output(q.id)
    assert f"Returned run {back.id} to staged" in log and f"Returned run {garbled_staged.id} to staged" in log


# -- the foreground CLI queue ---------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT])
def test_foreground_cli_queue_stops_on_signal(project, guild_home, sig):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "guild_jupyter", "queue", "poll-interval=5"], cwd=project, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qrun = wait_for(lambda: next(iter(api.runs(status="running")), None), message="the queue runs")
        assert qrun.is_queue and qrun.lock_pid() == p.pid  # the CLI process holds the queue itself
        r = api.run(str(project / "train.py"), "sleep=0.5", "epochs=4", stage=True)[0]
        wait_for(lambda: r.refresh().status == "running", message="the queue starts the run")
        p.send_signal(sig)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + sig, err
    qrun.refresh()
    assert qrun.status == "terminated" and qrun.exit_status == -sig
    assert f"Starting staged run {r.id}" in out and "Stopping queue" in out  # the log, on the terminal
    assert f"Starting staged run {r.id}" in api.output(qrun.id)  # and in the queue run's output
    assert r.refresh().status == "running"  # the run goes on under its supervisor
    wait_for(lambda: r.refresh().status == "completed", message="the run completes after its queue stopped")


# -- runs that cannot be read, starts that fail ----------------------------------------------------


def test_run_with_unreadable_flags_is_recorded_error_not_started(project, guild_home, tmp_path, monkeypatch):
    log = tmp_path / "ran.log"
    monkeypatch.setenv("RUN_LOG", str(log))
    (project / "tiny.py").write_text(TINY_PY)
    bad, good = api.run(str(project / "tiny.py"), "x=[1,2]", stage=True)
    with open(bad.path("attrs", "flags"), "wb") as f:
        f.write(b"\xff\xfe{[ not yaml")
    q = api.queue(run_once=True)
    assert q.join(60)
    assert bad.refresh().status == "error" and good.refresh().status == "completed"
    assert "flags" in api.output(bad.id) and "cannot be read" in api.output(bad.id)
    assert log.read_text().split() == [good.id]  # the bad run never ran
    assert f"Run {bad.id} cannot start" in api.output(q.id)


class _FlakyStarter(LocalStarter):
    """Fails like a full disk the first ``n`` times."""

    def __init__(self, store, n):
        super().__init__(store)
        self.failures = n

    def start(self, run):
        if self.failures:
            self.failures -= 1
            raise StoreError("store not writable: cannot start run: No space left on device")
        return super().start(run)


def test_start_failing_with_store_error_is_retried(project, guild_home, tmp_path, monkeypatch):
    log = tmp_path / "ran.log"
    monkeypatch.setenv("RUN_LOG", str(log))
    (project / "tiny.py").write_text(TINY_PY)
    st = api.resolve_store(None)
    runs = api.run(str(project / "tiny.py"), "x=[1,2]", stage=True)
    out = io.StringIO()
    starter = _FlakyStarter(st, 5)
    with _loop(st, "poll-interval=0.2", echo=out, starter=starter) as (loop, _t):
        wait_for(lambda: all(r.refresh().status == "completed" for r in runs), message="both runs complete")
    assert starter.failures == 0
    assert sorted(log.read_text().split()) == sorted(r.id for r in runs)  # each ran exactly once
    text = out.getvalue()
    for r in runs:  # logged once per run, however often it was retried
        assert text.count(f"Starting staged run {r.id}") == 1
        assert text.count(f"Run {r.id} could not start") <= 1


# -- a full disk ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path, size="1m"):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {p.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(path) -> str:
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_queue_survives_a_full_disk(project, tmp_path, monkeypatch):
    disk = tmp_path / "disk"
    with _tmpfs(disk):
        monkeypatch.setenv("GUILD_HOME", str(disk))
        log = tmp_path / "ran.log"
        monkeypatch.setenv("RUN_LOG", str(log))
        (project / "tiny.py").write_text(TINY_PY)
        (project / "slow.py").write_text("import time\nx = 0\ntime.sleep(1.0)\n")
        st = Store(str(disk))
        out = io.StringIO()
        with _loop(st, "poll-interval=2", echo=out) as (loop, t):
            first = api.run(str(project / "slow.py"), stage=True)[0]
            wait_for(lambda: first.refresh().status == "running", message="the first run starts")
            later = api.run(str(project / "tiny.py"), "x=[1,2,3]", stage=True)
            filler = _fill(disk)
            # The queue cannot claim (or start) while the disk is full; it keeps trying.
            wait_for(lambda: "Cannot go on for now" in out.getvalue() or "could not start" in out.getvalue(),
                     timeout=20, message="the queue meets the full disk")
            wait_for(lambda: first.refresh().status == "completed", timeout=30,
                     message="the run going ends on the full disk")  # its outcome: in the space it reserved
            # A full disk is a passing fault (as tests/reliability/test_faults.py holds it): the runs
            # it holds up wait -- staged, or pending while a start is tried again -- never an error,
            # and the queue lives on.
            held = [r.refresh().status for r in later]
            assert t.is_alive() and set(held) <= {"staged", "pending"}, held
            msgs = [line.split(" ", 4)[-1] for line in out.getvalue().splitlines()]
            assert len(msgs) == len(set(msgs)), msgs  # no error logged on every pass
            os.unlink(filler)
            wait_for(lambda: all(r.refresh().status in ("completed", "error", "terminated") for r in later),
                     timeout=30, message="the later runs end once space is back")
            assert t.is_alive()
        # Each ran once, and completed.
        assert [r.status for r in later] == ["completed"] * 3, [api.output(r.id) for r in later]
        ran = log.read_text().split()
        assert sorted(ran) == sorted(r.id for r in later)


def test_a_stop_between_a_dask_runners_mark_and_its_supervisor_is_carried_out(tmp_path, guild_home, launcher):
    """A Dask runner on this machine marked a claimed run held (LOCK.remote:
    it reads running) and has not started its supervisor yet, so no LOCK
    names a process to signal. A stop then leaves the stop request: the
    supervisor started after it records the start and never runs the
    script; the run ends terminated, stopped by the user."""
    from guild_jupyter.execution import launch
    from guild_jupyter.store import dask_records

    d = tmp_path / "p"
    d.mkdir()
    (d / "tiny.py").write_text(TINY_PY)
    ran = tmp_path / "ran.log"
    os.environ["RUN_LOG"] = str(ran)
    try:
        st = api.resolve_store(None)
        me = transitions.Claim.by_this_process(kind="queue")
        (r,) = api.run(str(d / "tiny.py"), stage=True)
        with st.lock():
            transitions.claim(st, r, me)
        assert transitions.mark_remote(st, r, dask_records.this_host(), me.owner)
        assert r.refresh().status == "running" and r.lock_holder() is None
        api.stop(r.id, wait=False)
        assert dask_records.stop_requested(r)
        proc = launch.start(r)
        proc.wait(30)
        wait_for(lambda: r.refresh().status == "terminated", message="the stopped run ends terminated")
        assert not ran.exists(), "the script ran after the stop"
        assert r.get("stopped_by") == "user"
    finally:
        os.environ.pop("RUN_LOG", None)


def test_slots_start_runs_side_by_side(project, guild_home):
    """The loop's extension point for parallel hosts: two slots, two runs at once."""
    st = api.resolve_store(None)
    a, b, c = api.run(str(project / "train.py"), "sleep=0.4", "epochs=2", "lr=[1,2,3]", stage=True)
    with _loop(st, "poll-interval=1", slots=[None, None]) as (loop, _t):
        wait_for(lambda: sum(r.refresh().status == "running" for r in (a, b, c)) == 2,
                 message="two runs going at once")
        wait_for(lambda: all(r.refresh().status == "completed" for r in (a, b, c)), message="all complete")


def test_a_dask_runner_never_marks_a_run_stopped_after_its_dispatch(project, guild_home):
    """A Dask runner took the dispatch of a claimed run, then a stop took the
    run off (pending -> terminated) before the runner marked it held there:
    the mark is refused and writes nothing, so the run never reads running
    again and never starts; a run still pending under another claim is
    refused too; one still pending under the queue's claim is marked."""
    st = api.resolve_store(None)
    me = transitions.Claim.by_this_process(kind="queue")
    stopped, other, going = api.run(str(project / "train.py"), "name=[a,b,c]", stage=True)
    with st.lock():
        for r in (stopped, other, going):
            transitions.claim(st, r, me)
    assert transitions.cancel_pending(st, stopped, "stopped") and stopped.refresh().status == "terminated"
    assert not transitions.mark_remote(st, stopped, "elsewhere", me.owner)
    assert stopped.refresh().status == "terminated" and not os.path.exists(stopped.path("LOCK.remote"))
    assert not transitions.mark_remote(st, other, "elsewhere", _dead_identity())
    assert other.refresh().status == "pending" and not os.path.exists(other.path("LOCK.remote"))
    assert transitions.mark_remote(st, going, "elsewhere", me.owner) and going.refresh().status == "running"
    os.remove(going.path("LOCK.remote"))  # no runner holds it: back to what the claim says
    for r in (other, going):
        transitions.cancel_pending(st, r.refresh(), "cleanup")
