"""Exactly once, under every kind of queue at once and queues killed as they claim.

200 short runs are staged; four queues of four kinds drain them together: a
real ``guild run queue run-once=yes`` (Guild's own, under the same
run-status lock), our thread queue, our detached queue and our CLI
foreground queue (``python -m guild_jupyter queue run-once=yes``). Meanwhile
the test starts queues of ours (detached ones and CLI ones, in turn) and
``kill -9``s each as soon as it has claimed a run (the run is pending under
its claim, usually before its supervisor took the run), then starts the
next. A last run-once queue drains what the killed ones left.

Checked: each run ran its script exactly once (the script appends RUN_ID to
a log with O_APPEND), every run is ``completed`` in our listing and in the
real ``guild runs``, every queue run (the killed ones too, once listed) has
an outcome and no lifecycle file left, and no process of the test survives.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import GUILD, guild, wait_for
from guild_jupyter import api
from guild_jupyter.store import transitions
from test_invariants import (  # noqa: F401 - ``marked`` is a fixture
    FINISHED,
    LOGGING_SCRIPT,
    all_runs,
    marked,
    outcome_problems,
    sigkill,
    start_record_problems,
    starts,
    stop_everything,
    wait_let_go,
    wait_no_orphans,
)

pytestmark = [pytest.mark.reliability, pytest.mark.guild]

N_RUNS = 200
MIN_KILLS = 4  # victim queues killed by the mixed-queues test, whatever the timing


def _first_claim_by(runs, pids, window: int = 12):
    """(run, pid) for a run among the oldest still-staged ones whose PENDING
    names one of ``pids`` as claimer and that has no LOCK yet, or None.
    Queues take the oldest staged run first, so the window is where claims
    happen."""
    seen = 0
    for r in runs:
        names = _names(r)
        if "STAGED" not in names:
            continue
        seen += 1
        if "PENDING" in names and "LOCK" not in names:
            c = transitions.read_claim(r)
            if isinstance(c, transitions.Claim) and c.owner.pid in pids:
                return r, c.owner.pid
        if seen >= window:
            break
    return None


def _names(r) -> set:
    try:
        return set(os.listdir(r.guild_dir))
    except OSError:
        return set()


class Killer:
    """Starts queues of ours, one at a time, and kills each with SIGKILL as soon
    as it claims a run (or after ``patience`` seconds without a claim)."""

    def __init__(self, staged, project, patience: float = 2.0):
        self.staged = staged
        self.project = project
        self.patience = patience
        self.kills = collections.Counter()  # kind -> kills
        self.at_claim = []  # (run id, kind): killed while its claim had no LOCK yet
        self.victim = None  # (kind, pid, Popen or None)

    def start_victim(self, n: int) -> bool:
        # The first two victims (one detached, one CLI) wait a moment between their
        # claim and its start (the queues' CLAIM_HOLD), so that those kills land there
        # for certain; the others start at full speed, killed wherever their first
        # claim is seen.
        hold = {"GUILD_JUPYTER_CLAIM_HOLD": "0.5"} if n < 2 else {}
        if n % 2 == 0:
            os.environ.update(hold)  # (the detached queue's process inherits it; this one read it at import)
            try:
                q = api.queue(background=True, poll_interval=1)
            finally:
                os.environ.pop("GUILD_JUPYTER_CLAIM_HOLD", None)
            holder = q.run.refresh().lock_holder()
            assert holder is not None, "a detached queue returned before holding its run"
            self.victim = ("detached", holder.pid, None)
        else:
            p = subprocess.Popen([sys.executable, "-m", "guild_jupyter", "queue", "poll-interval=1"],
                                 cwd=self.project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=dict(os.environ, **hold), start_new_session=True)
            self.victim = ("cli", p.pid, p)
        return bool(hold)

    def kill_victim(self) -> None:
        if self.victim is None:
            return
        kind, pid, proc = self.victim
        sigkill(pid)
        if proc is not None:
            proc.wait(10)
        self.kills[kind] += 1
        self.victim = None

    def round(self, n: int) -> None:
        held = self.start_victim(n)
        kind, pid, _ = self.victim
        # A held victim is waited for until it claims (runs are staged while the first
        # rounds race Guild's slow queue alone): its kill is the one sure to land at a claim.
        deadline = time.monotonic() + (60 if held else self.patience)
        while time.monotonic() < deadline:
            hit = _first_claim_by(self.staged, {pid})
            if hit is not None:
                self.kill_victim()
                if "LOCK" not in _names(hit[0]):
                    self.at_claim.append((hit[0].id, kind))
                return
            time.sleep(0.0005)
        self.kill_victim()


@pytest.mark.timeout(240)
def test_each_run_starts_exactly_once_under_mixed_queues_and_kills(tmp_path, guild_home, marked):
    mark, log = marked
    project = tmp_path / "project"
    project.mkdir()
    (project / "tiny.py").write_text(LOGGING_SCRIPT)
    staged = list(api.run(str(project / "tiny.py"), f"sleep=linspace[0:0.02:{N_RUNS}]", stage=True))
    assert len(staged) == N_RUNS
    ids = {r.id for r in staged}

    procs = []
    killer = Killer(staged, project)
    try:
        env = dict(os.environ, NO_RESTARTING_MSG="1", NO_IMPORT_FLAGS_PROGRESS="1")
        gq = subprocess.Popen([GUILD, "run", "queue", "run-once=yes", "poll-interval=1", "-y"], cwd=project,
                              env=env, stdout=open(tmp_path / "guild-queue.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
        procs.append(gq)
        # Guild's queue (slow to start: its CLI) has started a run before ours join, and the
        # first MIN_KILLS victims are killed racing it alone (each at its first claim, the runs
        # it held left pending under a dead claim for the others to recover): however fast our
        # queues then drain the rest, both always happen.
        wait_for(lambda: any(r.refresh().get("queue_id") is None and r.status in ("running", "completed")
                             for r in staged), timeout=90, interval=0.05, message="Guild's queue starting a run")
        for n in range(MIN_KILLS):
            killer.round(n)
        cq = subprocess.Popen([sys.executable, "-m", "guild_jupyter", "queue", "run-once=yes", "poll-interval=1"],
                              cwd=project, stdout=open(tmp_path / "cli-queue.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
        procs.append(cq)
        tq = api.queue(run_once=True, poll_interval=1)
        dq = api.queue(background=True, run_once=True, poll_interval=1)

        def staged_left():
            return sum("STAGED" in _names(r) for r in staged)

        # A victim queue a round, killed at its first claim, while runs are staged.
        n = MIN_KILLS
        deadline = time.monotonic() + 150
        while staged_left() and time.monotonic() < deadline:
            killer.round(n)
            n += 1

        for p in procs:
            p.wait(120)
        assert tq.join(120), "the thread queue did not finish"
        assert dq.join(120), "the detached queue did not finish"
        # What the killed queues left pending goes back to staged and runs now.
        drain = api.queue(run_once=True, poll_interval=0.5)
        assert drain.join(120), "the draining queue did not finish"

        def all_ended():
            return all(r.refresh().status in ("completed", "error", "terminated") for r in staged)

        wait_for(all_ended, timeout=60, interval=0.2, message="all runs end")
        api.runs()  # settles the queue runs of the killed queues

        runs = all_runs(guild_home)
        wait_let_go(list(runs.values()))
        counts = starts(log)
        problems = start_record_problems(guild_home, log, runs)
        missing = ids - set(counts)
        if missing:
            problems.append(f"{len(missing)} run(s) never ran: {sorted(missing)[:5]}")
        statuses = collections.Counter(r.refresh().status for r in staged)
        if statuses["completed"] != len(ids):
            problems.append(f"not all completed: {dict(statuses)}")
        listed = json.loads(guild("runs", "--json").stdout)
        guild_status = {x["id"]: x["status"] for x in listed}
        bad = {rid: guild_status.get(rid) for rid in ids if guild_status.get(rid) != "completed"}
        if bad:
            problems.append(f"guild runs disagrees for {len(bad)} run(s): {dict(list(bad.items())[:5])}")
        queue_runs = [r for r in runs.values() if r.is_queue]
        for q in queue_runs:
            for p in outcome_problems(q):
                problems.append(f"queue {q.id} ({q.status}): {p}")
            if guild_status.get(q.id) not in ("completed", "terminated", "error"):
                problems.append(f"guild runs shows queue {q.id} as {guild_status.get(q.id)}")
        for line in wait_no_orphans(mark, timeout=10):
            problems.append(f"orphan process: {line}")

        by = collections.Counter(runs[rid].get("queue_id") for rid in ids)
        ours = {tq.id, dq.id}
        print(f"kills: {dict(killer.kills)}; killed at claim: {len(killer.at_claim)}; "
              f"started by: thread {by[tq.id]}, detached {by[dq.id]}, guild/other-unrecorded {by[None]}, "
              f"cli+victims {len(ids) - by[tq.id] - by[dq.id] - by[None]}")
        assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
        assert sum(killer.kills.values()) >= MIN_KILLS, f"too few kills to mean anything: {dict(killer.kills)}"
        assert killer.at_claim, "no queue was killed between its claim and the run's start"
        assert by[None] >= 1, "the real guild queue started no run"
        assert sum(by[q] for q in ours) >= 1, "our queues started no run"
    finally:
        killer.kill_victim()
        stop_everything(procs)


# -- the Dask dispatch: launchers, workers and queues killed ---------------------------------


def _launchers(mark: str) -> list:
    """The test's Dask launcher processes (one per live worker): children of
    a worker. (The runners a launcher forks, and their supervisors and
    scripts, show the launcher's command line too: forked, not started.)"""
    import psutil

    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if ("guild_jupyter.queueing.dask.launcher" in " ".join(p.cmdline())
                    and p.environ().get("INV_MARK") == mark and "worker" in " ".join(p.parent().cmdline())):
                out.append(p)
        except (psutil.Error, AttributeError):
            continue
    return out


class WorkerKeeper:
    """Keeps ``n`` workers in the cluster: a killed one is replaced (a new
    name: the scheduler may still know the old one) by ``tend``."""

    def __init__(self, cluster, n: int):
        self.cluster = cluster
        self.n = n
        self.made = 0
        self.tend()

    def tend(self) -> None:
        for name, p in list(self.cluster.workers.items()):
            if p.poll() is not None:
                self.cluster.gone.append(self.cluster.workers.pop(name))
        while len(self.cluster.workers) < self.n:
            self.cluster.add_worker(f"w{self.made}")
            self.made += 1


@pytest.mark.dask
@pytest.mark.timeout(300)
def test_dask_runs_start_exactly_once_while_launchers_workers_and_queues_are_killed(tmp_path, guild_home, marked):
    """The per-worker launcher holds nothing of a run: ``kill -9`` of it (and
    of workers, and of the Dask queue's process) loses no run and starts
    none twice. Runs whose worker died while they ran end ``error`` ("worker
    lost"); every other run completes, once."""
    pytest.importorskip("distributed")
    import random

    from support.dask_cluster import Cluster

    mark, log = marked
    rng = random.Random(int(os.environ.get("GUILD_JUPYTER_INVARIANT_SEED") or random.randrange(1 << 30)))
    project = tmp_path / "project"
    project.mkdir()
    (project / "tiny.py").write_text(LOGGING_SCRIPT)
    staged = list(api.run(str(project / "tiny.py"), "sleep=linspace[0.05:0.4:40]", stage=True))
    ids = {r.id for r in staged}
    cluster = Cluster(str(tmp_path / "cluster"))
    kills = collections.Counter()
    queues = []
    try:
        keeper = WorkerKeeper(cluster, 2)
        cluster.wait_workers(list(cluster.workers))
        queues.append(api.queue(dask=cluster.address, background=True, poll_interval=0.5))
        local = api.queue(poll_interval=0.5)  # a local queue beside: claims race, never overlap

        def staged_left():
            return sum(r.refresh().status == "staged" for r in staged)

        # The kills every round makes (in a random order), then random ones
        # while staged runs are left; when the runs drain before the planned
        # kills are done, more are staged: the planned kills always happen.
        plan = ["launcher"] * 3 + ["worker", "queue"]
        rng.shuffle(plan)
        deadline = time.monotonic() + 150
        while (plan or staged_left()) and time.monotonic() < deadline:
            if plan and not staged_left():
                more = api.run(str(project / "tiny.py"), "sleep=linspace[0.05:0.4:8]", stage=True)
                staged += more
                ids |= {r.id for r in more}
            time.sleep(rng.uniform(0.2, 0.8))
            what = plan[0] if plan else rng.choices(["launcher", "worker", "queue"], [5, 2, 1])[0]
            done = False
            if what == "launcher":
                victims = _launchers(mark)
                if victims:
                    sigkill(rng.choice(victims).pid)
                    done = True
            elif what == "worker" and cluster.workers:
                name = rng.choice(sorted(cluster.workers))
                cluster.kill(name)
                done = True
            elif what == "queue":
                holder = queues[-1].run.refresh().lock_holder()
                if holder is not None:
                    sigkill(holder.pid)
                    done = True
                    queues.append(api.queue(dask=cluster.address, background=True, poll_interval=0.5))
            if done:
                kills[what] += 1
                if plan and plan[0] == what:
                    plan.pop(0)
            keeper.tend()

        local.stop(wait=True, timeout=20)
        api.stop(queues=True, timeout=20)
        cluster.close()
        drain = api.queue(run_once=True, poll_interval=0.5)  # what the killed queues left pending
        assert drain.join(120), "the draining queue did not finish"

        def all_ended():
            return all(r.refresh().status in FINISHED for r in staged)

        wait_for(all_ended, timeout=90, interval=0.2, message="all runs end")
        api.runs()  # settles what killed processes left
        runs = all_runs(guild_home)
        problems = start_record_problems(guild_home, log, runs)
        counts = starts(log)
        statuses = collections.Counter(r.refresh().status for r in staged)
        for r in staged:
            if r.status == "completed" and counts[r.id] != 1:
                problems.append(f"run {r.id} completed and ran {counts[r.id]} time(s)")
            elif r.status == "error":
                out = api.output(r.id)
                if "worker lost" not in out and "never started" not in out:
                    problems.append(f"run {r.id} error without a reason: {out[-300:]}")
            elif r.status != "completed":
                problems.append(f"run {r.id} ended {r.status} (exit {r.get('exit_status')}, worker "
                                f"{r.get('dask_worker')}): {api.output(r.id)[-400:]!r}")
        for q in (r for r in runs.values() if r.is_queue):
            for p in outcome_problems(q):
                problems.append(f"queue {q.id} ({q.status}): {p}")
        for line in wait_no_orphans(mark, timeout=15):
            problems.append(f"orphan process: {line}")
        on_dask = sum(1 for r in staged if r.get("dask_worker"))
        print(f"kills: {dict(kills)}; statuses: {dict(statuses)}; ran on Dask workers: {on_dask}")
        assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
        assert set(counts) <= ids and statuses["completed"] >= len(ids) // 2, dict(statuses)
        assert not plan, f"the planned kills were not all made within the time: {plan} left ({dict(kills)})"
        assert on_dask >= 5, "hardly any run went through the Dask dispatch"
    finally:
        try:
            api.stop(queues=True, timeout=15)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        cluster.close()
