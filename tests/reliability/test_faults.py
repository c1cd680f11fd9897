"""Faults around the queues, with real processes: a kernel killed outright
while its queue and runs go on, stops/unstages/deletes racing three queues,
and a store whose disk fills up while a queue is running."""

from __future__ import annotations

import collections
import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time

import pytest

from conftest import guild, wait_for
from guild_jupyter import api
from guild_jupyter.errors import GuildJupyterError
from support.jupyter import jupyter_dirs
from test_invariants import (  # noqa: F401 - ``marked`` is a fixture
    FINISHED,
    LOGGING_SCRIPT,
    acquired,
    all_runs,
    marked,
    marked_processes,
    outcome_problems,
    sigkill,
    start_record_problems,
    starts,
    stop_everything,
    wait_let_go,
    wait_no_orphans,
)

pytestmark = pytest.mark.reliability


@pytest.fixture
def script(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    (d / "train_inv.py").write_text(LOGGING_SCRIPT)
    return str(d / "train_inv.py")


def _ended(runs):
    return all(r.refresh().status in FINISHED for r in runs)


# -- a kernel killed with SIGKILL ------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_killed_kernel_loses_no_outcome_and_starts_nothing_twice(tmp_path, guild_home, marked, script):
    """A real ipykernel starts a thread queue (which starts a staged run) and
    a run of its own, then is killed with SIGKILL: both runs complete and
    record it, the queue run ends with an outcome (its sentinel records it),
    the run still staged is started once by the next queue."""
    from jupyter_client import KernelManager

    mark, log = marked
    env = dict(os.environ, **jupyter_dirs(tmp_path / "jupyter"))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(tmp_path))
    kernel_pid = km.provisioner.process.pid
    kc = km.client()
    try:
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        code = (
            "from guild_jupyter import api\n"
            f"a = api.run({script!r}, 'sleep=2.5', stage=True)[0]\n"
            f"b = api.run({script!r}, 'sleep=0.1', stage=True, label='after')[0]\n"
            "q = api.queue(poll_interval=0.5)\n"
            f"c = api.run({script!r}, 'sleep=2.5')[0]\n"
            "print(a.id, b.id, q.id, c.id, c.status)\n"
        )
        out = []
        reply = kc.execute_interactive(
            code, timeout=60,
            output_hook=lambda msg: out.append(msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
        assert reply["content"]["status"] == "ok", reply["content"]
        a_id, b_id, q_id, c_id, c_status = "".join(out).split()
        assert c_status == "running"
        st = api.resolve_store(None)
        a, b, q, c = (st.run(i) for i in (a_id, b_id, q_id, c_id))
        wait_for(lambda: a.refresh().status == "running", timeout=20, message="the kernel's queue starts run a")
        assert q.refresh().status == "running" and b.refresh().status == "staged"

        sigkill(kernel_pid)
        km.provisioner.process.wait(10)

        # The queue's sentinel sees its kernel gone and records the queue's end.
        wait_for(lambda: q.refresh().status in FINISHED, timeout=15, message="the queue run ends")
        wait_for(lambda: _ended([a, c]), timeout=30, message="runs a and c end")
        assert a.status == "completed" and c.status == "completed", (a.status, c.status)
        assert b.refresh().status == "staged", "the staged run was taken by a dead queue"
        drain = api.queue(run_once=True, poll_interval=0.5)
        assert drain.join(30)
        assert b.refresh().status == "completed"

        api.runs()
        runs = all_runs(guild_home)
        wait_let_go(list(runs.values()))
        problems = start_record_problems(guild_home, log, runs)
        for r in runs.values():
            problems += [f"run {r.id} ({r.op_name}, {r.status}): {p}" for p in outcome_problems(r)]
        assert sorted(starts(log)) == sorted([a.id, b.id, c.id])
        problems += [f"orphan process: {line}" for line in wait_no_orphans(mark)]
        assert not problems, "\n".join(problems)
        assert q.status == "terminated" and isinstance(q.exit_status, int) and q.exit_status < 0
    finally:
        kc.stop_channels()
        if km.provisioner is not None and km.provisioner.process is not None and km.provisioner.process.poll() is None:
            sigkill(kernel_pid)
            km.provisioner.process.wait(10)
        km.cleanup_resources()
        try:
            api.stop(queues=True, timeout=15)
        except Exception:  # noqa: BLE001 - cleanup only
            pass


# -- unstage / stop / delete racing three queues ---------------------------------------------------


@pytest.mark.guild
@pytest.mark.timeout(150)
def test_unstage_stop_and_delete_racing_three_queues(tmp_path, guild_home, marked, script):
    """While a thread queue, a detached queue and a CLI queue start runs, the
    test unstages, stops and deletes random staged and pending runs (and
    stops running ones). Every run ends in exactly one recorded state: ran
    (at most once, with an outcome), or never started (unstaged or
    cancelled, exit status -15, its script never ran); never both."""
    mark, log = marked
    seed = int(os.environ.get("GUILD_JUPYTER_INVARIANT_SEED") or random.randrange(1 << 30))
    print(f"seed {seed}")
    rng = random.Random(seed)

    def stage(n):
        out = []
        for _ in range(n):
            out += api.run(script, f"sleep={rng.choice([0.02, 0.1, 0.3])}", stage=True)
        return out

    staged = stage(20)
    procs = []
    queues = []
    done = collections.defaultdict(set)  # what the test did that succeeded: action -> ids
    lost = collections.Counter()
    unexpected = []
    try:
        queues.append(api.queue(poll_interval=0.5))
        queues.append(api.queue(background=True, poll_interval=0.5))
        procs.append(subprocess.Popen([sys.executable, "-m", "guild_jupyter", "queue", "poll-interval=0.5"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        end = time.monotonic() + 10
        while time.monotonic() < end:
            waiting = [r for r in staged if r.refresh().status in ("staged", "pending", "running")]
            if sum(r.status == "staged" for r in waiting) < 8:  # the queues never run dry
                staged += stage(rng.randint(2, 6))
                continue
            r = rng.choice(waiting)
            action = rng.choice(["unstage", "stop", "delete"] if r.status == "staged" else ["stop", "delete"])
            try:
                if action == "unstage":
                    api.unstage(r.id)
                elif action == "stop":
                    api.stop(r.id, wait=rng.random() < 0.3, timeout=8)
                else:
                    api.delete(r.id)
                if action != "stop" or not acquired(r.refresh()):
                    done[action if action != "stop" else "cancelled"].add(r.id)
            except GuildJupyterError as e:
                lost[f"{action}: {type(e).__name__}"] += 1
            except Exception as e:  # noqa: BLE001 - not a lost race: a bug
                unexpected.append(f"{action} {r.id}: {type(e).__name__}: {e}")
            time.sleep(rng.uniform(0, 0.05))
        print(f"did: { {k: len(v) for k, v in done.items()} }; lost races: {dict(lost)}")

        api.stop(queues=True, timeout=15)
        for p in procs:
            p.wait(20)
        drain = api.queue(run_once=True, poll_interval=0.5)
        assert drain.join(60)
        ids = {r.id for r in staged}
        runs = all_runs(guild_home)
        mine = [runs[i] for i in ids]
        wait_for(lambda: _ended(mine), timeout=30, message="every run ends")
        api.runs()
        runs = all_runs(guild_home)
        wait_let_go(list(runs.values()))
        counts = starts(log)

        problems = list(unexpected)
        problems += start_record_problems(guild_home, log, runs)
        for rid in ids:
            r = runs[rid].refresh()
            problems += [f"run {rid} ({r.status}): {p}" for p in outcome_problems(r)]
            ran, was_acquired = rid in counts, acquired(r)
            if not was_acquired:  # never started: unstaged or cancelled, and nothing else
                if r.exit_status != -15 or ran:
                    problems.append(f"run {rid} never started but ends {r.status} ({r.exit_status}), ran={ran}")
            if r.get("unstaged") and (was_acquired or ran):
                problems.append(f"run {rid} is both unstaged and started")
            for action in ("unstage", "cancelled"):
                if rid in done[action] and (ran or was_acquired):
                    problems.append(f"run {rid} was taken off the queue ({action}) and still started")
            if rid in done["delete"] and not os.path.isdir(os.path.join(guild_home, "trash", "runs", rid)):
                problems.append(f"run {rid} was deleted but is not in the trash")
        for q in (r for r in runs.values() if r.is_queue):
            problems += [f"queue {q.id} ({q.status}): {p}" for p in outcome_problems(q)]
        problems += [f"orphan process: {line}" for line in wait_no_orphans(mark)]
        # The real guild CLI records the same end for each run.
        guild_status = {x["id"]: x["status"] for x in json.loads(guild("runs", "--json").stdout)}
        for rid, r in runs.items():
            if os.path.dirname(r.dir) == os.path.join(str(guild_home), "runs") and guild_status.get(rid) != r.status:
                problems.append(f"run {rid}: ours {r.status}, guild runs {guild_status.get(rid)}")
        assert not problems, f"seed {seed}:\n" + "\n".join(problems[:40])
        assert sum(len(v) for v in done.values()) >= 5, f"the race hardly raced: {dict(done)}"
        assert counts, "no run started"
    finally:
        stop_everything(procs)


# -- the store's disk fills up -----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if p.returncode != 0:
        if "permission denied" in p.stderr.lower() or "only root" in p.stderr.lower() or os.geteuid() != 0:
            pytest.skip(f"cannot mount a tmpfs here (EPERM): {p.stderr.strip()}")
        raise AssertionError(f"mount failed: {p.stderr}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(path) -> int:
    """Fills the file system of ``path`` to the last byte; returns bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 1 << 12, 1 << 8, 1):
            chunk = b"x" * size
            while True:
                try:
                    n += f.write(chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return n


def _state(runs, q) -> str:
    """What the runs and the queue look like, for a failure message."""
    lines = []
    for r in runs:
        r.refresh()
        try:
            files = sorted(os.listdir(r.guild_dir))
        except OSError as e:
            files = [str(e)]
        holder = r.lock_holder()
        lines.append(f"run {r.id}: {r.status} exit={r.exit_status} holder={holder} files={files}")
    lines.append(f"queue {q.id}: {q.run.refresh().status}; its log:\n{api.output(q.id)}")
    return "\n".join(lines)


@pytest.mark.timeout(120)
def test_a_full_disk_loses_no_outcome_and_the_queue_survives(tmp_path, marked, monkeypatch, small_disk, script):
    """A detached queue runs while the store's disk fills up: every run that
    started records an outcome, the queue keeps going, and once space is
    freed the runs still staged start (each once)."""
    mark, log = marked
    home = small_disk / "home"
    home.mkdir()
    monkeypatch.setenv("GUILD_HOME", str(home))
    staged = []
    for sleep in [1.5] + [0.3] * 2 + [0.05] * 9:
        staged += api.run(script, f"sleep={sleep}", stage=True)
    filler = small_disk / "filler"
    q = None
    try:
        q = api.queue(background=True, poll_interval=0.5)
        qholder = q.run.refresh().lock_holder()
        wait_for(lambda: staged[0].refresh().status == "running", timeout=20, message="the first run starts")
        (direct,) = api.run(script, "sleep=1.5")  # a second run going when the disk fills
        before = set(os.listdir(home / "runs"))
        written = _fill(filler)
        assert written > 0
        full_at = time.monotonic()
        # Full: staging and starting fail cleanly, leaving nothing behind.
        with pytest.raises(GuildJupyterError):
            api.run(script, "sleep=0.1", stage=True)
        with pytest.raises(GuildJupyterError):
            api.run(script, "sleep=0.1")
        assert set(os.listdir(home / "runs")) == before, "a failed stage or start left a run behind"
        # Full for a while: runs end (outcome in the space reserved at their start),
        # starts fail and go back to staged, the queue backs off and retries.
        wait_for(lambda: _ended([staged[0], direct]), timeout=15, message="the runs going end on a full disk")
        wait_let_go([staged[0], direct])
        for r in (staged[0], direct):
            assert not outcome_problems(r), (r.id, outcome_problems(r))
        time.sleep(max(0.0, 3 - (time.monotonic() - full_at)))
        assert qholder.alive(), "the queue process died of a full disk"
        assert q.run.refresh().status == "running", f"the queue run is {q.run.status}"
        during = {r.id: r.refresh().status for r in staged}
        ended_while_full = [r for r in staged if during[r.id] in FINISHED]
        wait_let_go(ended_while_full)
        for r in ended_while_full:
            assert not outcome_problems(r), (r.id, outcome_problems(r))
        # Space comes back a page at a time (as when another process frees it
        # gradually): a start that fails for lack of space is retried, whatever
        # else still fits, never turned into a recorded failure.
        size = os.path.getsize(filler)
        for _ in range(16):
            size = max(0, size - 4096)
            os.truncate(filler, size)
            time.sleep(0.25)
        os.unlink(filler)
        waiting = [r for r in staged if r is not staged[0]]  # staged when the disk filled
        print(f"full for {time.monotonic() - full_at:.1f}s; statuses while full: "
              f"{collections.Counter(during.values())}")
        try:
            wait_for(lambda: _ended(staged), timeout=20, message="every run ends once space is freed")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{_state(staged, q)}") from None
        assert qholder.alive() and q.run.refresh().status == "running", "the queue did not survive"

        counts = starts(log)
        problems = []
        for r in waiting:  # a full disk is a passing fault: the runs it held up start once space is back
            if r.id not in counts or r.status != "completed":
                problems.append(f"run {r.id} was staged while the disk was full and ends {r.status} "
                                f"(exit status {r.exit_status}, ran its script: {r.id in counts}, "
                                f"files {sorted(os.listdir(r.guild_dir))}): {api.output(r.id).strip()[-300:]!r}")
        api.runs()
        runs = all_runs(home)
        wait_let_go(staged + [direct])
        problems += start_record_problems(home, log, runs)
        for r in staged + [direct]:
            problems += [f"run {r.id} ({r.status}): {p}" for p in outcome_problems(r)]
            leftovers = [n for n in os.listdir(r.guild_dir) if n.endswith(".tmp")]
            leftovers += [n for n in os.listdir(r.path("attrs")) if n.endswith(".tmp")]
            if leftovers:
                problems.append(f"run {r.id}: temp files left: {leftovers}")
        q.stop(timeout=15)
        wait_let_go([q.run])
        problems += [f"queue: {p}" for p in outcome_problems(q.run)]
        problems += [f"orphan process: {line}" for line in wait_no_orphans(mark)]
        print(f"statuses at the end: {collections.Counter(r.status for r in staged)}; "
              f"run going at the fill: {staged[0].status}, direct run: {direct.refresh().status}")
        print(api.output(q.id))
        assert not problems, "\n".join(problems) + "\nthe queue's log:\n" + api.output(q.id)
    finally:
        if filler.exists():
            os.unlink(filler)
        if q is not None:
            try:
                q.stop(timeout=15)
            except Exception:  # noqa: BLE001 - cleanup only
                pass
        for p in marked_processes(mark):  # before the disk is unmounted
            p.kill()
        shutil.rmtree(home, ignore_errors=True)
