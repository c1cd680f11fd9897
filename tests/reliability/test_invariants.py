"""Random interleavings of every lifecycle action, from three processes on one
store, and the invariants that must hold whatever happened.

Three *driver* processes (the script ``DRIVER`` below, each with its own
seed) stage runs, start thread and detached queues, stop, unstage and delete
runs, start runs directly, and ``kill -9`` supervisors and queue processes,
all through the public API and all at once; the test kills one driver
outright half-way and starts it again. With Dask installed, a real
scheduler and two workers (replaced as they die) join in: the drivers also
start Dask queues (threads and detached) and ``kill -9`` workers and their
launchers (``GUILD_JUPYTER_INVARIANT_DASK=0`` leaves them out; a run whose
worker died while it ran ends ``error``, "worker lost"). Then the test stops every queue,
drains what is still staged with one run-once queue, waits for every run to
end, lists the runs once (which settles runs whose supervisor was killed)
and checks:

- every run started at most once: the script appends ``RUN_ID`` to a log
  (``O_APPEND``) as its first act; a run in the log was acquired (its
  ``started`` is later than its staging), was never unstaged or cancelled,
  and every completed run is in the log;
- priorities and dependencies (SPEC 12): drivers stage runs with random
  priorities, ``--after`` and ``--after-any`` runs of theirs (which others
  stop, delete or kill meanwhile) and change priorities; a run that ran
  did so after each of its dependencies ended (completed, for ``--after``);
  a run ended by its dependencies never ran, and the dependency it names
  did fail, end otherwise or go; none is left waiting;
- no run is written by a non-owner: foreign runs planted first (Guild-style
  ownerless, hour-old ``PENDING`` runs; runs whose Guild-format ``LOCK``
  names a live unrelated process started *after* the LOCK was written) are
  byte- and mtime-identical at the end, and that process was never signalled;
- every finished run has an outcome (``exit_status`` and ``stopped``) and
  no lifecycle file left (``LOCK*``, ``PENDING``, ``STAGED``, reserves);
- no orphan: no process whose environment carries this round's marker is
  alive;
- no driver met an exception outside the package's own errors (a lost race
  is a ``GuildJupyterError``, e.g. ``WrongState``; anything else is a bug).

The seed comes from ``GUILD_JUPYTER_INVARIANT_SEED`` or is random; it is
printed, and named in every failure. ``bench/run_invariants.sh`` runs many
rounds. The helpers below are shared with the other reliability tests.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import psutil
import pytest

from conftest import wait_for
from guild_jupyter import api
from guild_jupyter.store import transitions
from guild_jupyter.store.run import Run
from support.store_state import diff, snapshot

pytestmark = pytest.mark.reliability

# -- helpers shared by the reliability tests ------------------------------------------

#: The training script: first appends its RUN_ID to $INV_LOG (one O_APPEND
#: write: lines never interleave), then sleeps ``sleep`` seconds.
LOGGING_SCRIPT = textwrap.dedent(
    """\
    import os, time
    sleep = 0.1
    fd = os.open(os.environ["INV_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (os.environ["RUN_ID"] + "\\n").encode())
    os.close(fd)
    time.sleep(sleep)
    print("loss: 0.5")
    """
)

LIFECYCLE_FILES = ("LOCK", "LOCK.start", "LOCK.procs", "LOCK.remote", "PENDING", "STAGED")
FINISHED = ("completed", "error", "terminated")


@pytest.fixture
def marked(tmp_path, monkeypatch):
    """A unique marker in the environment of the processes the test starts
    (drivers, queues, supervisors, scripts inherit it) and the starts log;
    on teardown any process of the test still alive is killed (the test itself
    asserts there is none: this only keeps a failure from leaking)."""
    mark = uuid.uuid4().hex
    log = tmp_path / "starts.log"
    monkeypatch.setenv("INV_MARK", mark)
    monkeypatch.setenv("INV_LOG", str(log))
    yield mark, log
    for p in marked_processes(mark):
        try:
            p.kill()
        except psutil.Error:
            pass


def _ours(p, mark: str, root: str) -> bool:
    # A process forked (not exec'd) from one that was started before the marker
    # was set shows its parent's original environment in /proc: its working
    # directory (a script runs in its run directory) or its arguments (a
    # supervisor, a queue, a sentinel name their run directory) give it away.
    if p.environ().get("INV_MARK") == mark:
        return True
    if p.cwd().startswith(root):
        return True
    return any(a.startswith(root) for a in p.cmdline())


def marked_processes(mark: str) -> list:
    """Live (non-zombie) processes other than this one that belong to the
    test: the marker in their environment, or their working directory or an
    argument under the test's temporary directory (``INV_LOG``'s)."""
    root = os.path.dirname(os.environ["INV_LOG"]) + os.sep
    out = []
    me = os.getpid()
    for p in psutil.process_iter(["pid"]):
        if p.pid == me:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if _ours(p, mark, root):
                out.append(p)
        except psutil.Error:
            continue
    return out


def describe(procs) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())[:200]}")
        except psutil.Error:
            out.append(f"{p.pid} (gone)")
    return out


def wait_no_orphans(mark: str, timeout: float = 10.0) -> list[str]:
    """Waits (bounded) for every marked process to end; returns the ones left."""
    deadline = time.monotonic() + timeout
    while True:
        left = marked_processes(mark)
        if not left or time.monotonic() > deadline:
            return describe(left)
        time.sleep(0.1)


def starts(log) -> collections.Counter:
    try:
        with open(log) as f:
            return collections.Counter(line.strip() for line in f if line.strip())
    except FileNotFoundError:
        return collections.Counter()


def all_runs(home) -> dict:
    """Every run of the store, live or in Guild's trash: id -> Run."""
    out = {}
    for sub in ("runs", os.path.join("trash", "runs")):
        d = os.path.join(str(home), sub)
        if os.path.isdir(d):
            for name in os.listdir(d):
                if len(name) == 32 and not name.startswith("."):
                    out[name] = Run(os.path.join(d, name))
    return out


def outcome_problems(run: Run) -> list[str]:
    """What is wrong with a run that should have ended: no outcome, or a
    lifecycle file left behind."""
    run.refresh()
    out = []
    names = set(os.listdir(run.guild_dir)) if os.path.isdir(run.guild_dir) else set()
    left = sorted(n for n in names if n in LIFECYCLE_FILES or n.startswith(".reserve"))
    if left:
        out.append(f"left {left}")
    es, stopped = run.get("exit_status"), run.get("stopped")
    if not isinstance(es, int) or isinstance(es, bool):
        out.append(f"exit_status {es!r}")
    if not isinstance(stopped, int) or isinstance(stopped, bool):
        out.append(f"stopped {stopped!r}")
    return out


def wait_let_go(runs, timeout: float = 15.0) -> None:
    """Waits (bounded, without failing: the checks that follow name what is
    wrong) until every run that reads finished has its outcome whole and no
    lifecycle file left. A run reads finished as soon as ``exit_status`` is
    written; its supervisor (or queue) drops the reserve, LOCK and its records
    right after, so a check made at once can catch that moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(r.refresh().status in FINISHED and outcome_problems(r) for r in runs):
            return
        time.sleep(0.05)


def acquired(run: Run) -> bool:
    """The run was started (acquired): ``started`` moved past its staging
    time (``create`` writes ``started == initialized`` for a staged run and
    no ``started`` for a pending one)."""
    started, init = run.get("started"), run.get("initialized")
    if not isinstance(started, int):
        return False
    return not isinstance(init, int) or started > init


def start_record_problems(home, log, runs: dict, exempt=()) -> list[str]:
    """Exactly-once bookkeeping shared by the tests: each id in the log at
    most once, belongs to a run of the store, that run was acquired and never
    unstaged; every completed run is in the log."""
    counts = starts(log)
    out = []
    for rid, n in counts.items():
        if n > 1:
            out.append(f"run {rid} started {n} times")
        r = runs.get(rid)
        if r is None:
            out.append(f"run {rid} in the starts log but not in the store")
            continue
        if not acquired(r):
            out.append(f"run {rid} ran its script but was never acquired (started={r.get('started')})")
        if r.get("unstaged"):
            out.append(f"run {rid} ran its script and is marked unstaged")
    for rid, r in runs.items():
        if rid in exempt or r.is_queue:
            continue
        if r.refresh().get("exit_status") == 0 and rid not in counts:
            out.append(f"run {rid} completed but never ran its script")
    return out


def dependency_problems(runs: dict, counts, exempt=()) -> list[str]:
    """What breaks SPEC 12 among ``runs`` (every run, live or in the trash):
    a run that ran (in the starts ``counts``) before a dependency ended, or
    after one that did not complete (for ``--after``); a run ended by its
    dependencies that ran, or whose named dependency completed and is
    still there."""
    from guild_jupyter.store.records import read_after

    out = []
    for rid, r in runs.items():
        if rid in exempt or r.is_queue:
            continue
        deps = read_after(r.refresh())
        if deps is None:
            continue
        if not isinstance(deps, list):
            out.append(f"run {rid}: unreadable dependency record")
            continue
        failure = r.get("after_failure")
        if rid in counts:
            if failure:
                out.append(f"run {rid} ran and is recorded ended by its dependencies ({failure})")
            for dep_id, any_outcome in deps:
                dep = runs.get(dep_id)
                if dep is None:
                    out.append(f"run {rid} ran after {dep_id}, which is nowhere")
                    continue
                dep.refresh()
                if not isinstance(dep.stopped, int) or not isinstance(r.started, int) or dep.stopped > r.started:
                    out.append(f"run {rid} started ({r.started}) before its dependency {dep_id} ended ({dep.stopped})")
                if not any_outcome and dep.get("exit_status") != 0:
                    out.append(f"run {rid} ran after {dep_id}, which ended {dep.status}")
        elif failure:
            named = failure.split()[1] if failure.startswith("dependency ") else ""
            dep = next((d for d in runs.values() if d.id.startswith(named)), None) if named else None
            if dep is None:
                out.append(f"run {rid}: ended by its dependencies ({failure}), which names no run")
            elif dep.refresh().get("exit_status") == 0 and "/trash/" not in dep.dir:
                out.append(f"run {rid}: ended by its dependencies ({failure}), but {dep.id} completed")
    return out


def stop_everything(procs) -> None:
    """Cleanup: kill the test's own processes, then stop every queue."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    try:
        api.stop(queues=True, timeout=15)
    except Exception:  # noqa: BLE001 - cleanup only
        pass


def sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- the driver --------------------------------------------------------------------------

DRIVER = textwrap.dedent(
    r'''
    """One driver: random lifecycle actions through the API, from one process."""
    import json, os, random, signal, sys, time, traceback
    from guild_jupyter import api
    from guild_jupyter.errors import GuildJupyterError

    seed, n_actions, duration, script, journal_path, planted_path, max_staged = sys.argv[1:8]
    rng = random.Random(seed)
    n_actions, duration, max_staged = int(n_actions), float(duration), int(max_staged)
    planted = set(json.load(open(planted_path)))
    journal = open(journal_path, "a")

    def note(**kw):
        kw["t"] = time.time()
        kw["driver"] = seed
        journal.write(json.dumps(kw) + "\n")
        journal.flush()

    def mine(rs):
        return [r for r in rs if r.id not in planted]

    def listing(*statuses):
        return mine(api.runs(statuses or None))

    def sleep_flag():
        return f"sleep={rng.choice([0.05, 0.1, 0.3, 0.6, 1.2])}"

    thread_queues = []

    def waits():
        """A priority and the runs to wait for (SPEC 12), sometimes."""
        kw = {}
        if rng.random() < 0.3:
            kw["priority"] = rng.choice([-5, 1, 3, 10])
        if rng.random() < 0.35:
            cands = [r for r in listing() if not r.is_queue]
            if cands:
                picked = [r.id for r in rng.sample(cands, min(len(cands), rng.randint(1, 2)))]
                kw["after_any" if rng.random() < 0.25 else "after"] = picked
        return kw

    def stage():
        if len(listing("staged", "pending")) >= max_staged:
            return "skip"
        kw = waits()
        if rng.random() < 0.25:  # a sweep: all or nothing
            rs = api.run(script, f"sleep=[{rng.choice([0.05, 0.2])},{rng.choice([0.3, 0.5])}]", stage=True, **kw)
        else:
            rs = []
            for _ in range(rng.randint(1, 3)):
                rs += api.run(script, sleep_flag(), stage=True, **kw)
        note(action="staged", ids=[r.id for r in rs], **kw)

    def prioritize():
        cands = listing("staged", "pending")
        if not cands:
            return "skip"
        r = rng.choice(cands)
        api.prioritize(r.id, priority=rng.choice([-3, 0, 7]))
        note(action="prioritized", id=r.id)

    def thread_queue():
        if sum(q.status != "stopped" for q in thread_queues) >= 1:
            return "skip"
        q = api.queue(poll_interval=rng.choice([0.5, 1, 2]), run_once=rng.random() < 0.3)
        thread_queues.append(q)
        note(action="thread_queue", id=q.id)

    def detached_queue():
        if len([r for r in listing("running", "pending") if r.is_queue]) >= 4:
            return "skip"
        q = api.queue(background=True, poll_interval=rng.choice([0.5, 1, 2]), run_once=rng.random() < 0.3)
        note(action="detached_queue", id=q.id)

    def start_direct():
        (r,) = api.run(script, sleep_flag())
        note(action="started_direct", id=r.id, status=r.status)

    def stop_run():
        cands = [r for r in listing("running", "pending") if not r.is_queue]
        if not cands:
            return "skip"
        r = rng.choice(cands)
        was = r.status
        api.stop(r.id, wait=rng.random() < 0.5, timeout=8)
        r.refresh()
        if not (isinstance(r.get("started"), int) and r.get("started") > (r.get("initialized") or 0)):
            # Taken off the queue before it ever started: it must never start.
            note(action="cancelled", id=r.id, was=was, status=r.status)
        else:
            note(action="stopped", id=r.id, was=was)

    def unstage():
        cands = listing("staged") + [r for r in listing("pending") if api.is_held(r)]
        if not cands:
            return "skip"
        r = rng.choice(cands)
        api.unstage(r.id)
        note(action="unstaged", id=r.id)

    def delete():
        cands = [r for r in listing("completed", "error", "terminated", "staged")]
        cands += [r for r in listing("pending") if api.is_held(r)]
        if not cands:
            return "skip"
        r = rng.choice(cands)
        api.delete(r.id)
        note(action="deleted", id=r.id, was=r.status)

    def kill_holder(queues, action):
        """kill -9 of the process holding a random running run (or queue)."""
        cands = [r for r in listing("running") if r.is_queue == queues]
        if not cands:
            return "skip"
        r = rng.choice(cands)
        h = r.lock_holder()
        if h is None:
            return "skip"
        os.kill(h.pid, signal.SIGKILL)
        note(action=action, id=r.id, pid=h.pid)

    def kill_supervisor():
        return kill_holder(False, "killed_supervisor")

    def kill_queue():
        return kill_holder(True, "killed_queue")

    def stop_queue():
        cands = [r for r in listing("running") if r.is_queue]
        if not cands:
            return "skip"
        r = rng.choice(cands)
        api.stop(r.id, timeout=8)
        note(action="stopped_queue", id=r.id)

    DASK = os.environ.get("INV_DASK")  # a scheduler's address: Dask queues and worker kills join in

    def dask_queue():
        if not DASK or len([r for r in listing("running", "pending") if r.is_queue and r.flags.get("dask")]) >= 2:
            return "skip"
        q = api.queue(dask=DASK, background=rng.random() < 0.6, poll_interval=rng.choice([0.5, 1]),
                      run_once=rng.random() < 0.3)
        note(action="dask_queue", id=q.id)

    def dask_processes(kind):
        """kind "worker": the cluster's worker processes; "launcher": their
        launchers (a launcher's runners show its command line too: forked)."""
        import psutil
        out = []
        for p in psutil.process_iter(["pid"]):
            try:
                cmd = " ".join(p.cmdline())
                if kind == "worker" and "dask worker" in cmd.replace("dask-worker", "dask worker") \
                        and os.environ["INV_DASK_FILE"] in cmd:
                    out.append(p.pid)
                elif (kind == "launcher" and "guild_jupyter.queueing.dask.launcher" in cmd
                      and os.environ["INV_DASK_FILE"] in " ".join(p.parent().cmdline())):
                    out.append(p.pid)
            except (psutil.Error, AttributeError):
                continue
        return out

    def kill_dask(kind):
        if not DASK:
            return "skip"
        pids = dask_processes(kind)
        if not pids:
            return "skip"
        pid = rng.choice(pids)
        os.kill(pid, signal.SIGKILL)
        note(action=f"killed_{kind}", pid=pid)

    def kill_worker():
        return kill_dask("worker")

    def kill_launcher():
        return kill_dask("launcher")

    ACTIONS = [(stage, 6), (thread_queue, 1), (detached_queue, 1.2), (start_direct, 0.5), (stop_run, 1.5),
               (unstage, 1.5), (delete, 0.8), (kill_supervisor, 1), (kill_queue, 0.7), (stop_queue, 0.3),
               (prioritize, 0.5)]
    if DASK:
        ACTIONS += [(dask_queue, 1), (kill_worker, 0.4), (kill_launcher, 0.6)]
    funcs, weights = zip(*ACTIONS)
    end = time.monotonic() + duration
    errors = {}
    for i in range(n_actions):
        if time.monotonic() > end:
            break
        f = rng.choices(funcs, weights)[0]
        try:
            f()
        except GuildJupyterError as e:  # a lost race: the run moved on meanwhile
            key = f"{f.__name__}: {type(e).__name__}: {str(e)[:70]}"
            errors[key] = errors.get(key, 0) + 1
        except Exception as e:
            note(action="unexpected", what=f.__name__, error=f"{type(e).__name__}: {e}",
                 tb=traceback.format_exc())
        time.sleep(rng.uniform(0.02, 0.3))
    if rng.random() < 0.5:
        for q in thread_queues:
            q.stop(wait=True, timeout=10)
    note(action="done", expected_errors=errors)
    '''
)


def _plant_foreign(project, home) -> tuple[list, list]:
    """Runs that belong to someone else: Guild-style ownerless PENDING runs
    (an empty PENDING, no STAGED, an hour old) and runs whose Guild-format
    LOCK names a live unrelated process started after the LOCK was written.
    Returns (their run dirs, the unrelated processes)."""
    dirs, strangers = [], []
    hour_ago = time.time() - 3600
    for _ in range(2):
        (r,) = api.run(str(project / "train_inv.py"), "sleep=0.1", stage=True, label="foreign")
        os.unlink(r.path("STAGED"))
        with open(r.path("PENDING"), "wb"):
            pass
        os.utime(r.path("PENDING"), (hour_ago, hour_ago))
        dirs.append(r.dir)
    env = {k: v for k, v in os.environ.items() if k != "INV_MARK"}
    for _ in range(2):
        (r,) = api.run(str(project / "train_inv.py"), "sleep=0.1", stage=True, label="foreign")
        os.unlink(r.path("STAGED"))
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], env=env)
        strangers.append(p)
        born = psutil.Process(p.pid).create_time()
        with open(r.path("LOCK"), "w") as f:
            f.write(str(p.pid))
        os.utime(r.path("LOCK"), (born - 3600, born - 3600))
        dirs.append(r.dir)
    return dirs, strangers


def _start_driver(driver_py, seed, project, journal, planted_path, n_actions, duration):
    return subprocess.Popen(
        [sys.executable, str(driver_py), str(seed), str(n_actions), str(duration),
         str(project / "train_inv.py"), str(journal), str(planted_path), "12"],
        stdout=subprocess.DEVNULL, stderr=open(str(journal) + f".{seed}.stderr", "wb"),
    )


def _journal(path) -> list[dict]:
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


@pytest.mark.timeout(240)
def test_random_interleavings_keep_the_invariants(tmp_path, guild_home, marked, monkeypatch):
    mark, log = marked
    seed = int(os.environ.get("GUILD_JUPYTER_INVARIANT_SEED") or random.randrange(1 << 30))
    print(f"GUILD_JUPYTER_INVARIANT_SEED={seed}")
    rng = random.Random(seed)
    project = tmp_path / "project"
    project.mkdir()
    (project / "train_inv.py").write_text(LOGGING_SCRIPT)
    driver_py = tmp_path / "driver.py"
    driver_py.write_text(DRIVER)
    journal = tmp_path / "journal.jsonl"
    duration = float(os.environ.get("GUILD_JUPYTER_INVARIANT_SECONDS", "24"))

    foreign_dirs, strangers = _plant_foreign(project, guild_home)
    planted_path = tmp_path / "planted.json"
    planted_path.write_text(json.dumps([os.path.basename(d) for d in foreign_dirs]))
    before = {d: snapshot(d) for d in foreign_dirs}
    stranger_ids = [(p.pid, psutil.Process(p.pid).create_time()) for p in strangers]

    drivers = []
    cluster = keeper = None
    if importlib.util.find_spec("distributed") is not None and os.environ.get("GUILD_JUPYTER_INVARIANT_DASK", "1") != "0":
        cluster, keeper = _start_cluster(tmp_path)  # Dask hosts join: queues on it, workers and launchers killed
        monkeypatch.setenv("INV_DASK", cluster.address)
        monkeypatch.setenv("INV_DASK_FILE", cluster.file)
    try:
        drivers = [_start_driver(driver_py, seed * 10 + i, project, journal, planted_path, 400, duration)
                   for i in range(3)]
        # Half-way (at a random moment), one driver dies outright and is started again.
        time.sleep(rng.uniform(0.3, 0.6) * duration)
        victim = rng.randrange(3)
        drivers[victim].kill()
        drivers[victim].wait(10)
        drivers.append(_start_driver(driver_py, seed * 10 + 5, project, journal, planted_path, 400,
                                     duration / 2))
        for d in drivers:
            d.wait(duration + 60)
        phases = [("drivers ended", time.monotonic())]

        # The end: every queue stopped, the cluster closed (runs on it end "worker lost"),
        # what is staged drained by one run-once queue.
        api.stop(queues=True, timeout=15)
        phases.append(("queues stopped", time.monotonic()))
        if cluster is not None:
            keeper.stop()
            cluster.close()
            phases.append(("cluster closed", time.monotonic()))
        drain = api.queue(run_once=True, poll_interval=0.5)
        drained = drain.join(90)
        phases.append(("drained", time.monotonic()))
        # Where a slow round spent its time (read with the seed when one is slow).
        print("phases: " + ", ".join(f"{name} +{t - phases[0][1]:.1f}s" for name, t in phases))
        if not drained:
            print(api.output(drain.run.id)[-3000:])
        assert drained, f"seed {seed}: the draining queue did not finish"
        runs = all_runs(guild_home)
        foreign = {os.path.basename(d) for d in foreign_dirs}

        def all_ended():
            return all(r.refresh().status in FINISHED for rid, r in runs.items() if rid not in foreign)

        try:
            wait_for(all_ended, timeout=30, interval=0.1, message=f"every run to end (seed {seed})")
        except AssertionError:
            for rid, r in sorted(runs.items()):  # what each run left unended shows, to diagnose it
                if rid not in foreign and r.refresh().status not in FINISHED:
                    names = sorted(os.listdir(r.guild_dir)) if os.path.isdir(r.guild_dir) else []
                    markers = [n for n in names if n.isupper() or n.startswith("LOCK")]
                    print(f"not ended: {rid} {r.status} {r.op_name} {markers} "
                          f"claim={transitions.read_claim(r)!r} dispatch={r.get('dask_dispatch')!r}")
            raise
        api.runs()  # settles runs whose supervisor was killed (their orphans are ended)
        runs = all_runs(guild_home)
        wait_let_go([r for rid, r in runs.items() if rid not in foreign])
        entries = _journal(journal)

        problems = []
        # No driver met an exception outside the package's own errors.
        for e in entries:
            if e["action"] == "unexpected":
                problems.append(f"driver {e['driver']}: {e['what']} raised {e['error']}\n{e['tb']}")
        # Started at most once; started means acquired; completed means it ran.
        problems += start_record_problems(guild_home, log, runs, exempt=foreign)
        counts = starts(log)
        for e in entries:
            if e["action"] in ("unstaged", "cancelled") and e["id"] in counts:
                problems.append(f"run {e['id']} was {e['action']} by driver {e['driver']} and still ran")
        # Dependencies (SPEC 12): a run ran after what it waited for; one ended by them never ran.
        problems += dependency_problems(runs, counts, foreign)
        # Every run has an outcome and no lifecycle file left (the foreign ones aside).
        for rid, r in sorted(runs.items()):
            if rid in foreign:
                continue
            for p in outcome_problems(r):
                problems.append(f"run {rid} ({r.op_name}, {r.status}): {p}")
        # Nobody wrote into the foreign runs; nobody signalled the unrelated processes.
        for d in foreign_dirs:
            for line in diff(before[d], snapshot(d)):
                problems.append(f"foreign run {os.path.basename(d)}: {line}")
        for pid, created in stranger_ids:
            if not psutil.pid_exists(pid) or psutil.Process(pid).create_time() != created:
                problems.append(f"the unrelated process {pid} named in a foreign LOCK was killed")
        # No orphan process.
        for line in wait_no_orphans(mark, timeout=10):
            problems.append(f"orphan process: {line}")

        summary = collections.Counter(e["action"] for e in entries)
        statuses = collections.Counter(r.status for r in runs.values())
        waited = collections.Counter(("ended by a dependency" if r.get("after_failure") else r.status)
                                     for r in runs.values() if r.get("after") is not None)
        print(f"actions: {dict(summary)}\nstatuses: {dict(statuses)}\nstarts: {len(counts)}\n"
              f"runs staged --after: {dict(waited)}")
        for e in entries:
            if e["action"] == "done":
                print(f"driver {e['driver']} lost races: {e['expected_errors']}")
        assert not problems, f"seed {seed}: {len(problems)} invariant violation(s):\n" + "\n".join(problems[:40])
        assert summary["staged"] >= 3, f"seed {seed}: the drivers hardly did anything: {dict(summary)}"
    finally:
        for d in drivers:
            if d.poll() is None:
                d.kill()
                d.wait(10)
        try:
            api.stop(queues=True, timeout=15)
        except Exception:  # noqa: BLE001 - cleanup: the assertion above says what went wrong
            pass
        if cluster is not None:
            keeper.stop()
            cluster.close()
        for p in strangers:
            p.kill()
            p.wait(10)


class _Keeper(threading.Thread):
    """Keeps two workers in the cluster while the drivers kill them: a
    killed one is replaced (by a new name) within half a second."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.made = 0
        self.done = threading.Event()

    def tend(self) -> None:
        for name, p in list(self.cluster.workers.items()):
            if p.poll() is not None:
                self.cluster.gone.append(self.cluster.workers.pop(name))
        while len(self.cluster.workers) < 2:
            self.cluster.add_worker(f"w{self.made}")
            self.made += 1

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.tend()

    def stop(self) -> None:
        self.done.set()
        self.join(10)


def _start_cluster(tmp_path):
    """A real scheduler and two workers kept alive; the drivers get its
    address (``INV_DASK``) and scheduler file (``INV_DASK_FILE``)."""
    from support.dask_cluster import Cluster

    cluster = Cluster(str(tmp_path / "dask"))
    keeper = _Keeper(cluster)
    try:
        keeper.tend()
        cluster.wait_workers(list(cluster.workers))
    except BaseException:
        cluster.close()
        raise
    keeper.start()
    return cluster, keeper


@pytest.mark.timeout(60)
def test_stop_all_leaves_the_runs_of_others_alone(tmp_path, guild_home, marked):
    """``stop --all`` stops every run and queue of ours, and nothing else: a
    run Guild is preparing (ownerless PENDING: a ``guild run`` process will
    start it once its dependencies are resolved, whatever we write) and a
    run whose LOCK names a process that is not its own are not written, and
    that process is not signalled (``guild stop --all`` itself only stops
    running runs)."""
    mark, log = marked
    project = tmp_path / "project"
    project.mkdir()
    (project / "train_inv.py").write_text(LOGGING_SCRIPT)
    foreign_dirs, strangers = _plant_foreign(project, guild_home)
    before = {d: snapshot(d) for d in foreign_dirs}
    try:
        q = api.queue(background=True, poll_interval=0.5)
        (ours,) = api.run(str(project / "train_inv.py"), "sleep=30")
        api.stop(all=True, timeout=15)
        assert ours.refresh().status == "terminated" and q.run.refresh().status == "terminated"
        problems = []
        for d in foreign_dirs:
            problems += [f"foreign run {os.path.basename(d)}: {line}" for line in diff(before[d], snapshot(d))]
        problems += [f"unrelated process {p.pid} was signalled" for p in strangers if p.poll() is not None]
        problems += [f"orphan process: {line}" for line in wait_no_orphans(mark)]
        assert not problems, "\n".join(problems)
    finally:
        try:
            api.stop(queues=True, timeout=15)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        for p in strangers:
            p.kill()
            p.wait(10)
