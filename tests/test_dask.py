"""Dask queues (issue 17) against a real ``dask scheduler`` and real ``dask
worker`` processes on 127.0.0.1: one with ``--resources GPU=1`` and
``CUDA_VISIBLE_DEVICES=0``, one without. Each test stops what it starts."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import cli, guild, outcomes_recorded, run_dirs, stop_guild_queue, wait_for
from support.dask_cluster import Cluster, running_cluster
from guild_jupyter import api
from guild_jupyter.errors import BadInput
from support.snapshots import group

pytestmark = [
    pytest.mark.dask,
    pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                       reason="dask is not installed: pip install 'guild_jupyter[dask]'"),
]

BIN = os.path.dirname(sys.executable)
SCRIPT = """\
import os, time
x = 0
sleep = 0.0
with open(os.path.join(os.environ["RUN_DIR"], "ran.txt"), "a") as f:
    f.write(os.environ.get("CUDA_VISIBLE_DEVICES", "-") + "\\n")
time.sleep(sleep)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(str(tmp_path_factory.mktemp("dask")), gpu0={"gpu": True}, cpu0={}) as c:
        yield c


@pytest.fixture
def script(tmp_path):
    p = tmp_path / "work.py"
    p.write_text(SCRIPT)
    return str(p)


def ran(run) -> list[str]:
    """One line per time the run's script ran: the CUDA_VISIBLE_DEVICES it saw."""
    try:
        with open(os.path.join(run.dir, "ran.txt")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def output(run) -> str:
    with open(run.path("output"), "rb") as f:
        return f.read().decode(errors="replace")


# -- dispatching and placement -------------------------------------------------------------


def test_sweep_runs_each_once_gpu_runs_on_the_gpu_worker(cluster, script):
    plain = api.run(script, "x=range[1:16]", stage=True)
    pinned = api.run(script, "x=range[1:8]", gpus="0", stage=True)
    q = api.queue(dask=cluster.address, run_once=True, poll_interval=1)
    try:
        assert q.join(120)
    finally:
        q.stop()
    runs = plain + pinned
    assert [r.refresh().status for r in runs] == ["completed"] * 24
    assert all(len(ran(r)) == 1 for r in runs)  # each exactly once
    assert {r.get("dask_worker") for r in pinned} == {"gpu0"}
    assert all(ran(r) == ["0"] for r in pinned)  # the GPU worker's CUDA_VISIBLE_DEVICES
    assert all(ran(r) == ["-"] for r in plain)
    assert {r.get("dask_worker") for r in plain} <= {"gpu0", "cpu0"}
    assert {r.get("queue_id") for r in runs} == {q.id}
    done = set(guild("select", "--all", "--completed").stdout.split())
    assert {r.id for r in runs} <= done  # the real guild CLI agrees
    # the queue recorded the cluster: address, both workers and their resources
    (qrow,) = [x for x in _queue_rows(include_finished=True) if x["id"] == q.id]
    workers = {w["name"]: w for w in qrow["dask"]["workers"]}
    assert qrow["dask"]["address"] == cluster.address
    assert workers["gpu0"]["resources"] == {"GPU": 1} and workers["cpu0"]["resources"] == {}
    assert q.run.refresh().flags["max-running"] == 2  # one slot per worker thread


def _queue_rows(include_finished=False):
    from guild_jupyter import views

    return [views.queue_row(i) for i in api.queues(include_finished=include_finished)]


def test_runs_json_shows_the_worker(cluster, script):
    (r,) = api.run(script, gpus="0", stage=True)
    q = api.queue(dask=cluster.address, run_once=True, poll_interval=1)
    assert q.join(60)
    import json

    rows = json.loads(cli("runs", "--json", check=0).stdout)
    rows = rows["runs"] if isinstance(rows, dict) else rows
    (row,) = [x for x in rows if x["id"] == r.id]
    assert row["worker"] == "gpu0" and row["status"] == "completed"


@pytest.mark.guild
def test_alongside_a_thread_queue_and_guild_queue_exactly_once(cluster, script, tmp_path):
    runs = api.run(script, "x=range[1:30]", stage=True)
    env = dict(os.environ, NO_RESTARTING_MSG="1")
    gq = subprocess.Popen([os.path.join(BIN, "guild"), "run", "queue", "poll-interval=1", "-y"], cwd=str(tmp_path),
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    queues = []
    try:
        queues.append(api.queue(dask=cluster.address, poll_interval=1))
        queues.append(api.queue(poll_interval=1))
        dq = queues[0]
        # Every outcome recorded, not every status finished: a run Guild's queue is starting reads
        # error for a moment, and Guild's queue, stopped then, would take that run down with it.
        wait_for(lambda: outcomes_recorded(runs), timeout=120, interval=0.2, message="all runs finish")
    finally:
        for q in queues:
            q.stop()
        stop_guild_queue(gq)
    assert [r.refresh().status for r in runs] == ["completed"] * 30
    assert all(len(ran(r)) == 1 for r in runs)
    by_dask = [r for r in runs if r.get("queue_id") == dq.id]
    assert by_dask and all(r.get("dask_worker") in ("gpu0", "cpu0") for r in by_dask)


# -- stop, worker death ---------------------------------------------------------------------


def test_stop_a_remote_run(cluster, script):
    (r,) = api.run(script, "sleep=60", stage=True)
    q = api.queue(dask=cluster.address, poll_interval=1)
    try:
        wait_for(lambda: len(ran(r)) == 1, timeout=60, message="the run's script runs on a worker")
        assert r.refresh().status == "running" and r.get("dask_worker") in ("gpu0", "cpu0")
        api.stop(r.id)
        assert r.refresh().status == "terminated"
        wait_for(lambda: q.current_run is None, timeout=30, message="the queue frees the slot")
    finally:
        q.stop()
    assert len(ran(r)) == 1


def test_worker_killed_mid_run_records_error_never_twice(tmp_path, script):
    with running_cluster(str(tmp_path / "own"), doomed={}) as c:
        (slow,) = api.run(script, "sleep=60", stage=True)
        (later,) = api.run(script, stage=True)
        # Two slots on a one-thread worker: the second run is submitted while
        # the first runs, and is not started when the worker dies.
        q = api.queue(dask=c.address, run_once=True, poll_interval=1, max_running=2)
        try:
            wait_for(lambda: len(ran(slow)) == 1, timeout=60, message="the slow run runs")
            assert slow.refresh().status == "running" and later.refresh().status in ("staged", "pending")
            c.kill("doomed")
            wait_for(lambda: slow.refresh().status == "error", timeout=30, message="the run recorded error")
            assert "worker lost" in output(slow)
            c.add_worker("fresh")  # the other run is unaffected: it runs once a worker is there
            wait_for(lambda: later.refresh().status == "completed", timeout=60, message="the next run completes")
            assert q.join(30)
        finally:
            q.stop()
        assert len(ran(slow)) == 1 and slow.refresh().status == "error"  # never run twice
        assert later.get("dask_worker") == "fresh" and len(ran(later)) == 1


def test_a_run_held_by_another_machine_shows_running_and_stops_through_its_runner(tmp_path, script):
    with running_cluster(str(tmp_path / "far"), far0={"host": "far-host"}) as c:
        (r,) = api.run(script, "sleep=60", stage=True)
        q = api.queue(dask=c.address, poll_interval=1)
        try:
            wait_for(lambda: len(ran(r)) == 1, timeout=60, message="the run runs on the far worker")
            assert r.get("dask_host") == "far-host"
            with open(r.path("LOCK.remote")) as f:
                assert f.read() == "far-host"  # Guild's marker: running on every machine
            assert r.id in guild("select", "--all", "--running").stdout
            assert r.refresh().status == "running"
            api.stop(r.id)  # from "this" machine: its runner on the far one stops it
            assert os.path.exists(r.path("dask-stop"))
            assert r.refresh().status == "terminated" and r.exit_status == -15
            assert not os.path.exists(r.path("LOCK.remote"))
        finally:
            q.stop()
    assert len(ran(r)) == 1


def test_a_run_whose_machine_and_queue_are_gone_is_settled_once_its_heartbeat_is_stale(tmp_path, script):
    from guild_jupyter.procs import kill_identities, tree_identities

    with running_cluster(str(tmp_path / "gone"), gone0={"host": "gone-host"}) as c:
        (r,) = api.run(script, "sleep=60", stage=True)
        q = api.queue(dask=c.address, poll_interval=1)
        wait_for(lambda: len(ran(r)) == 1, timeout=60, message="the run runs on the far worker")
        q.stop()  # the queue is gone...
        runner = r.get("dask_dispatch")["pid"]
        kill_identities(tree_identities(runner))  # ... and so is everything on "gone-host"
        api.runs()  # a listing, with a fresh heartbeat: the run is not judged from here
        assert r.refresh().status == "running"
        past = time.time() - 300
        os.utime(r.path("LOCK.remote"), (past, past))  # 300 s without a heartbeat
        api.runs()  # a listing settles it
        assert r.refresh().status == "error"
        assert "worker lost: the machine that held the run (gone-host) has not been heard from" in output(r)
        assert not os.path.exists(r.path("LOCK.remote")) and len(ran(r)) == 1


# -- an embedded cluster -----------------------------------------------------------------------


def test_local_cluster_of_two_workers(script, ipython):
    runs = api.run(script, "x=range[1:4]", stage=True)
    ipython.run_line_magic("load_ext", "guild_jupyter")
    q = ipython.run_line_magic("guild", "queue dask=local:2 run-once=yes poll-interval=1")
    assert q.join(120)
    assert [r.refresh().status for r in runs] == ["completed"] * 4
    assert all(len(ran(r)) == 1 for r in runs)
    assert {r.get("dask_worker") for r in runs} <= {"0", "1"}
    assert q.run.refresh().flags["dask"] == "local:2"
    assert q.run.flags["max-running"] == 2


def test_an_embedded_clusters_workers_spend_no_cpu_on_what_a_runner_never_uses(guild_home):
    """The embedded cluster's workers (separate processes, configured
    through their nannies) run without the statistical profiler, with slow
    event-loop and system checks and no memory limit: they only wait on
    runs that are processes of their own; its scheduler steals no work."""
    from guild_jupyter.queueing.dask.starter import DaskStarter
    from guild_jupyter.store.store import Store

    starter = DaskStarter(Store(str(guild_home)), "local:1")
    try:
        def seen(dask_worker=None):  # (client.run passes the worker by this name)
            import dask

            return (dask.config.get("distributed.worker.profile.enabled"),
                    dask.config.get("distributed.admin.tick.interval"), dask_worker.memory_manager.memory_limit)

        (answer,) = starter.client.run(seen).values()
        assert answer == (False, "1s", None)
        # Its scheduler keeps no work stealing: a run is submitted only to a free worker thread.
        assert "stealing" not in starter.cluster.scheduler.extensions
    finally:
        starter.close()


def test_detached_dask_queue(script):
    runs = api.run(script, "x=[1,2]", stage=True)
    q = api.queue(dask="local:1", run_once=True, poll_interval=1, background=True)
    assert q.join(120)
    assert q.run.refresh().status == "completed"
    assert [r.refresh().status for r in runs] == ["completed"] * 2
    assert all(len(ran(r)) == 1 and r.get("dask_worker") == "0" for r in runs)
    assert q.run.flags["max-running"] == 1


# -- bad input ----------------------------------------------------------------------------------


def test_unreachable_scheduler_is_one_clear_error_and_nothing_claimed(script, guild_home):
    runs = api.run(script, "x=[1,2]", stage=True)
    before = run_dirs(guild_home)
    with pytest.raises(BadInput, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        api.queue(dask="tcp://127.0.0.1:9")  # refused, not waited on: the test's own timeout bounds a hang
    p = cli("queue", "dask=127.0.0.1:9", "run-once=yes")  # the CLI: one line, exit status 2
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in p.stderr
    assert run_dirs(guild_home) == before  # no queue run
    assert [r.refresh().status for r in runs] == ["staged", "staged"]


@pytest.mark.parametrize("value", ["local:0", "local:x", "tcp://a/b"])
def test_bad_dask_values(value, guild_home, ipython):
    before = run_dirs(guild_home)
    with pytest.raises(BadInput, match="bad value for dask"):
        api.queue(dask=value)
    p = cli("queue", f"dask={value}")
    assert p.returncode == 2 and "bad value for dask" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    from IPython.core.error import UsageError

    ipython.run_line_magic("load_ext", "guild_jupyter")
    with pytest.raises(UsageError, match="bad value for dask"):
        ipython.run_line_magic("guild", f"queue dask={value}")
    assert run_dirs(guild_home) == before


def test_gpus_and_dask_do_not_mix(guild_home):
    with pytest.raises(BadInput, match="gpus does not apply to a Dask queue"):
        api.queue("gpus=0", dask="local:1")
    assert run_dirs(guild_home) == set()


def test_gpu_run_with_no_gpu_worker_stays_staged_with_the_reason(script):
    (gpu_run,) = api.run(script, gpus="0", stage=True)
    (plain,) = api.run(script, stage=True)
    q = api.queue(dask="local:1", poll_interval=1)
    try:
        wait_for(lambda: plain.refresh().status == "completed", timeout=90, message="the unpinned run completes")
        from guild_jupyter.api.queueing import queue_registry
        from guild_jupyter.api.selection import resolve_store
        from guild_jupyter.monitor import StoreMonitor

        snap = StoreMonitor(resolve_store(None), handles=queue_registry.list).snapshot()
        (row,) = [x for x in group(snap, "staged")["rows"] if x["id"] == gpu_run.id]
        assert row["waiting"] == "no Dask worker has GPU resources"
        (qrow,) = [x for x in snap["queues"] if x["id"] == q.id]
        assert qrow["dask"]["dashboard"].startswith("http://127.0.0.1:")
        assert len(qrow["dask"]["workers"]) == 1
        from guild_jupyter.frontends.panel.markup import queue_html

        html = queue_html(qrow)  # the panel: the cluster under the queue's row
        assert f"Dask <code>{qrow['dask']['address']}</code>" in html
        assert qrow["dask"]["worker_texts"] == ["0: idle"] and qrow["dask"]["workers_text"] == "0: idle"
        assert f"<a href='{qrow['dask']['dashboard']}'" in html and " · 0: idle" in html
        from guild_jupyter.frontends.panel.markup import run_html

        (done,) = [x for x in group(snap, "finished")["rows"] if x["id"] == plain.id]
        assert done["worker"] == "0" and "work.py @ 0" in run_html(done, "finished")
    finally:
        q.stop()
    assert gpu_run.refresh().status == "staged" and ran(gpu_run) == []
    log = output(q.run)
    assert f"Skipping staged run {gpu_run.id}: no Dask worker has GPU resources" in log


def test_dask_not_installed_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from guild_jupyter import api\n"
            "try:\n    api.queue(dask='local:1')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "BadInput a Dask queue needs distributed: pip install 'guild_jupyter[dask]'"


def test_a_worker_that_cannot_see_the_run_directory_fails_with_that_message(tmp_path):
    from guild_jupyter.queueing.dask.task import run_on_worker

    out = run_on_worker(str(tmp_path / "elsewhere" / "runs" / "abc"), {"pid": 1, "start": 0.0}, 0, "abc")
    assert out["result"] == "error"
    assert "is not visible on Dask worker" in out["why"] and "filesystem all workers see" in out["why"]


def test_panel_form_starts_a_dask_queue(cluster, script):
    from guild_jupyter.frontends.panel import panel

    (r,) = api.run(script, stage=True)
    p = panel(refresh=0, display=False)
    try:
        before = len(api.queues(include_finished=True))
        p.queue_dask.value = "local:0"
        p.queue_start.click()
        assert "cannot start the queue" in p.feedback.value and "bad value for dask" in p.feedback.value
        assert len(api.queues(include_finished=True)) == before
        p.queue_dask.value = cluster.address
        p.queue_run_once.value = True
        p.queue_start.click()
        assert "started queue" in p.feedback.value and f"Dask {cluster.address}" in p.feedback.value
        wait_for(lambda: r.refresh().status == "completed", timeout=60, message="the panel's Dask queue runs it")
        assert r.get("dask_worker") in ("gpu0", "cpu0") and len(ran(r)) == 1
        # Run once: with nothing left staged it ends by itself (not left for the teardown to stop).
        wait_for(lambda: not api.queues(), timeout=60, message="the run-once queue ends")
    finally:
        p.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _queue_log(q) -> str:
    return api.output(q.id)


def _staged_waiting(run_id):
    snap = api.monitor(probe=None).snapshot(page_size=100)
    staged = next(g for g in snap["groups"] if g["name"] == "staged")
    return next((r.get("waiting") for r in staged["rows"] if r["id"] == run_id), None)


def _dask_row(q):
    return next(row["dask"] for row in api.monitor().snapshot()["queues"] if row["id"] == q.id)


@pytest.mark.timeout(300)
def test_no_worker_then_one_joining_then_the_scheduler_restarted(tmp_path, script):
    """Issue 26 item 1: a Dask queue whose cluster has no worker claims
    nothing (a local queue takes the runs meanwhile) and says why in its log
    and row; a worker joining is used; a scheduler restarted (its workers
    gone) is reconnected to, said in the log, and runs staged meanwhile stay
    staged until a worker can take them."""
    c = Cluster(str(tmp_path / "cluster"), port=_free_port())
    q = None
    try:
        q = api.queue(dask=c.address, poll_interval=0.5)
        first = api.run(script, "x=[1,2]", stage=True)
        wait_for(lambda: "Waiting: the Dask cluster has no worker" in _queue_log(q), timeout=30,
                 message="the queue to say it has no worker")
        assert all(r.refresh().status == "staged" for r in first)
        wait_for(lambda: _staged_waiting(first[0].id) == "the Dask cluster has no worker", timeout=15,
                 message="the staged row's reason")
        assert _dask_row(q)["waiting"] == "the Dask cluster has no worker"
        local = api.queue(run_once=True, poll_interval=0.5)  # not held by the Dask queue: it takes them
        assert local.join(60)
        assert [r.refresh().status for r in first] == ["completed", "completed"]
        assert not any(r.get("dask_worker") for r in first)

        c.add_worker("w1")
        second = api.run(script, "x=[3,4]", stage=True)
        wait_for(lambda: all(r.refresh().status == "completed" for r in second), timeout=60,
                 message="the runs on the worker that joined")
        assert {r.get("dask_worker") for r in second} == {"w1"}
        assert "Dask workers can take runs again" in _queue_log(q)

        c.kill_scheduler()  # its worker goes too (or is useless): taken off the cluster
        c.gone.append(c.workers.pop("w1"))
        wait_for(lambda: "Lost the Dask scheduler" in _queue_log(q), timeout=30, message="the queue to notice")
        (third,) = api.run(script, "x=5", stage=True)
        wait_for(lambda: "not reachable" in (_staged_waiting(third.id) or ""), timeout=30,
                 message="the staged row to say the scheduler is away")
        assert third.refresh().status == "staged"
        c.start_scheduler()
        wait_for(lambda: "Reconnected to the Dask scheduler" in _queue_log(q), timeout=60,
                 message="the queue to reconnect")
        assert third.refresh().status == "staged"
        c.add_worker("w2")
        wait_for(lambda: third.refresh().status == "completed", timeout=60, message="the run after the restart")
        assert third.get("dask_worker") == "w2"
        log = _queue_log(q)
        assert log.index("Lost the Dask scheduler") < log.index("Reconnected to the Dask scheduler")
    finally:
        if q is not None:
            q.stop(wait=True, timeout=20)
        c.close()
