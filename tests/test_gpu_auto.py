"""GPU slots: ``gpus=auto`` queues in several processes share ``per-gpu``
slots through the store, under the run-status lock; the chosen GPU is
recorded in the run and is its ``CUDA_VISIBLE_DEVICES``; NVML's memory and
utilisation rules hold runs back. NVML is the fake of
``$GUILD_JUPYTER_FAKE_GPUS``, inherited by every process (queues, runs)."""

from __future__ import annotations

import collections
import json
import os

import pytest

from conftest import cli, guild, run_dirs, wait_for
from guild_jupyter import api
from guild_jupyter.errors import BadInput, WrongState
from guild_jupyter.procs import Identity
from guild_jupyter.store import transitions
from support.snapshots import group

GiB = 2**30

#: Appends "start|end RUN_ID CUDA_VISIBLE_DEVICES TIME" to $RUN_LOG (O_APPEND:
#: whole lines from many processes).
SLOT_PY = """\
import os, time
x = 0
def note(what):
    line = f"{what} {os.environ['RUN_ID']} {os.environ.get('CUDA_VISIBLE_DEVICES', '-')} {time.time()!r}\\n"
    fd = os.open(os.environ["RUN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)
note("start")
time.sleep(0.15)
note("end")
"""


@pytest.fixture
def slot_project(tmp_path, monkeypatch):
    d = tmp_path / "slots"
    d.mkdir()
    (d / "slot.py").write_text(SLOT_PY)
    log = tmp_path / "runs.log"
    monkeypatch.setenv("RUN_LOG", str(log))
    return d, log


def fake_gpus(monkeypatch, devices):
    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", json.dumps(devices))


def read_log(log):
    """{run id: [(what, gpus, time)]} from the runs' log."""
    out = collections.defaultdict(list)
    for line in log.read_text().splitlines():
        what, run_id, gpus, t = line.split()
        out[run_id].append((what, gpus, float(t)))
    return out


def max_per_gpu(events) -> dict:
    """The most runs seen going at once on each GPU, from start/end times."""
    points = []
    for evs in events.values():
        (_, gpus, t0), (_, _, t1) = sorted(evs, key=lambda e: e[0] != "start")
        for g in gpus.split(","):
            points += [(t0, 1, g), (t1, -1, g)]
    going, peak = collections.Counter(), collections.Counter()
    for _t, delta, g in sorted(points, key=lambda p: (p[0], p[1])):  # an end before a start at the same time
        going[g] += delta
        peak[g] = max(peak[g], going[g])
    return dict(peak)


def test_queues_in_three_processes_never_exceed_the_slots_of_a_gpu(slot_project, monkeypatch):
    project, log = slot_project
    fake_gpus(monkeypatch, [{}, {}, {}])
    runs = api.run(str(project / "slot.py"), "x=range[1:60]", stage=True)
    assert len(runs) == 60
    flags = ("gpus=auto", "per-gpu=2", "run-once=yes", "poll-interval=1")
    detached = [api.queue(*flags, background=True) for _ in range(2)]
    thread = api.queue(*flags)
    queues = detached + [thread]
    try:
        wait_for(lambda: all(q.join(0) for q in queues), timeout=90, message="the three queues to drain the runs")
    finally:
        for q in queues:
            q.stop(timeout=10)
    events = read_log(log)
    runs = [r.refresh() for r in runs]
    # every run started exactly once, and completed
    assert sorted(events) == sorted(r.id for r in runs)
    assert all([e[0] for e in evs] == ["start", "end"] for evs in events.values())
    assert all(r.status == "completed" for r in runs)
    # the GPU recorded in the run is the one its process saw
    for r in runs:
        assert r.gpus in ("0", "1", "2") and events[r.id][0][1] == r.gpus
        assert r.get("gpus_requested", "missing") is None  # it asked for none
    # never more than 2 runs on a GPU, though 3 queues had 6 slots each
    peak = max_per_gpu(events)
    assert max(peak.values()) <= 2, peak
    assert max(peak.values()) == 2, peak  # runs did share GPUs: the limit was what held them
    # more than one of the queues started runs
    by_queue = collections.Counter(r.get("queue_id") for r in runs)
    assert len(by_queue) >= 2 and set(by_queue) <= {q.id for q in queues}, by_queue


def test_runs_asking_for_two_gpus_get_two_at_once(slot_project, monkeypatch):
    project, log = slot_project
    fake_gpus(monkeypatch, [{}, {}, {}, {}])
    pairs = api.run(str(project / "slot.py"), "x=[1,2,3,4]", gpus="auto:2", stage=True)
    singles = api.run(str(project / "slot.py"), "x=[5,6]", stage=True)
    assert all(r.gpus == "auto:2" and "CUDA_VISIBLE_DEVICES" not in r.get("op")["op-cmd"]["cmd-env"]
               for r in pairs)
    q = api.queue("gpus=auto", "run-once=yes", "poll-interval=1")
    assert q.join(60)
    events = read_log(log)
    for r in pairs:
        r.refresh()
        assert r.status == "completed" and len(r.gpus.split(",")) == 2 and events[r.id][0][1] == r.gpus
        assert r.get("gpus_requested") == "auto:2"
    assert all(len(s.refresh().gpus.split(",")) == 1 for s in singles)
    assert max(max_per_gpu(events).values()) == 1  # per-gpu=1 (default)


def test_memory_and_utilisation_rules_steer_runs(slot_project, monkeypatch):
    """GPU 0 is nearly full with another user's process, GPU 1 is busy:
    every run goes to GPU 2, two at a time, and the log says why."""
    project, log = slot_project
    fake_gpus(monkeypatch, [
        {"memory": {"total": 16 * GiB}, "processes": [{"pid": 4242, "usedGpuMemory": 15 * GiB}]},
        {"memory": {"total": 16 * GiB, "used": 0}, "utilization": {"gpu": 95}},
        {"memory": {"total": 16 * GiB, "used": GiB}, "utilization": {"gpu": 10}},
    ])
    runs = api.run(str(project / "slot.py"), "x=[1,2,3,4,5,6]", stage=True)
    q = api.queue("gpus=auto", "per-gpu=2", "min-free-memory=4GiB", "max-util=50", "run-once=yes",
                  "poll-interval=1")
    assert q.join(60)
    events = read_log(log)
    assert {r.refresh().gpus for r in runs} == {"2"}
    assert {e[0][1] for e in events.values()} == {"2"}
    assert max_per_gpu(events) == {"2": 2}
    out = open(q.run.path("output")).read()
    assert "GPU 0 has 1.0 GiB free (min-free-memory)" in out and "GPU 1 is 95% busy (max-util=50)" in out


def test_cli_auto_queue_serves_pinned_runs_of_its_gpus(slot_project, monkeypatch):
    """``guild-jupyter queue gpus=auto:1`` (the CLI's foreground queue): a run
    pinned to GPU 1 and an unpinned one share GPU 1's one slot, in turn; a
    run pinned to GPU 0 is not its to start."""
    project, log = slot_project
    fake_gpus(monkeypatch, [{}, {}])
    script = str(project / "slot.py")
    (pinned,) = api.run(script, "x=1", gpus="1", stage=True)
    (free,) = api.run(script, "x=2", stage=True)
    (other,) = api.run(script, "x=3", gpus="0", stage=True)
    p = cli("queue", "gpus=auto:1", "run-once=yes", "poll-interval=1", check=0)
    assert "Skipping staged run " + other.id in p.stdout + p.stderr
    assert (pinned.refresh().status, free.refresh().status, other.refresh().status) == ("completed", "completed", "staged")
    assert pinned.gpus == free.gpus == "1"
    events = read_log(log)
    assert max_per_gpu(events) == {"1": 1}


def test_a_gpu_claim_is_refused_when_the_gpu_is_full(project, monkeypatch):
    """transitions.claim counts again under the lock: whatever a caller
    decided, no claim puts more than per-gpu runs on a GPU, and a refused
    claim writes nothing."""
    st = api.resolve_store(None)
    a, b = api.run(str(project / "train.py"), "lr=[1,2]", stage=True)
    me = transitions.Claim.by_this_process("q" * 32)
    transitions.claim(st, a, me, gpus="0", per_gpu=1)
    assert a.refresh().status == "pending" and a.gpus == "0"
    with pytest.raises(WrongState, match="GPU 0 has no free slot"):
        transitions.claim(st, b, me, gpus="0", per_gpu=1)
    b.refresh()
    assert b.status == "staged" and b.gpus is None and not os.path.exists(b.path("PENDING"))
    transitions.claim(st, b, me, gpus="1", per_gpu=1)
    assert b.refresh().gpus == "1"


def test_a_run_returned_to_staged_asks_again_for_what_it_asked(project):
    """A claimer that died before starting its run: the run goes back to
    staged asking for ``auto:2`` again, not pinned to the GPUs it was given."""
    import subprocess
    import sys

    st = api.resolve_store(None)
    (r,) = api.run(str(project / "train.py"), gpus="auto:2", stage=True)
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = Identity.of(p.pid)
    p.wait()
    transitions.claim(st, r, transitions.Claim(dead, "q" * 32), gpus="0,1", per_gpu=1)
    assert r.refresh().gpus == "0,1"
    with st.lock():
        back = transitions.recover_pending(st, [r])
    assert back == [r] and r.refresh().status == "staged" and r.gpus == "auto:2"
    assert not os.path.exists(os.path.join(r.attrs_dir, "gpus_requested"))


def test_queue_rows_show_gpu_slots(slot_project, monkeypatch):
    project, _log = slot_project
    (project / "slow.py").write_text("import time\nx = 0\ntime.sleep(30)\n")
    fake_gpus(monkeypatch, [{}, {}])
    runs = api.run(str(project / "slow.py"), "x=[1,2,3]", stage=True)
    q = api.queue("gpus=auto", "per-gpu=1", "poll-interval=1")
    try:
        wait_for(lambda: sum(r.refresh().status == "running" for r in runs) == 2, message="two runs going")
        from guild_jupyter.views import queue_row

        (info,) = [i for i in api.queues() if i.id == q.id]
        row = queue_row(info)
        assert row["slots"] == {"used": 2, "total": 2, "per_gpu": {"0": 1, "1": 1}}
        assert "2 of 2 slots busy" in row["description"]
        assert row["slots_text"] == "2 of 2 slots busy · GPU 0: 1 run, GPU 1: 1 run" and "per-gpu=1" in row["options_text"]
        assert row["state_text"] == "running 2 of 2" and row["gpus_text"] == "every GPU, one chosen per run"
        assert "None" not in " ".join(v for k, v in row.items() if k.endswith("_text"))
        from guild_jupyter.frontends.panel.markup import queue_html

        assert row["slots_text"] in queue_html(row)  # the panel's slots column
        out = cli("queues", "--json", check=0).stdout
        (listed,) = [x for x in json.loads(out) if x["id"] == q.id]
        assert listed["slots"]["per_gpu"] == {"0": 1, "1": 1}
        # the monitor snapshot (panel, page, REST): the third run waits for a slot of this full queue
        snap = api.monitor().snapshot()
        (shown,) = [x for x in snap["queues"] if x["id"] == q.id]
        assert shown["slots"] == row["slots"]
        (waiting,) = group(snap, "staged")["rows"]
        assert "waiting for queue" in waiting["waiting"], waiting
    finally:
        q.stop(timeout=10)
        for r in runs:
            api.stop(r.id) if r.refresh().status in ("running", "staged") else None


def test_guild_lists_an_auto_queue_run(slot_project, monkeypatch):
    fake_gpus(monkeypatch, [{}, {}])
    q = api.queue("gpus=auto:1", "per-gpu=2", "min-free-memory=1GiB", "run-once=yes", "poll-interval=1")
    assert q.join(30)
    out = guild("runs", "info", q.id[:8]).stdout
    assert "queue" in out and "per-gpu: 2" in out and "min-free-memory: 1GiB" in out and "gpus: auto:1" in out


# -- bad input: one line, nothing written ----------------------------------------------------


@pytest.mark.parametrize(
    "flags, says",
    [(["gpus=auto:9"], "GPU 9 is not among the GPUs NVML reports on this machine (0, 1)"),
     (["gpus=auto", "per-gpu=0"], "per-gpu"),
     (["max-running=0"], "max-running"),
     (["gpus=auto", "min-free-memory=lots"], "min-free-memory"),
     (["gpus=auto", "max-util=150"], "max-util")],
)
def test_bad_slot_flags(flags, says, guild_home, monkeypatch, ipython):
    fake_gpus(monkeypatch, [{}, {}])
    before = run_dirs(guild_home)
    with pytest.raises(BadInput, match=says.replace("(", r"\(").replace(")", r"\)")):
        api.queue(*flags)
    p = cli("queue", *flags)
    assert p.returncode == 2 and says in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    from IPython.core.error import UsageError

    ipython.run_line_magic("load_ext", "guild_jupyter")
    with pytest.raises(UsageError, match="max-util|max-running|per-gpu|min-free-memory|GPU 9"):
        ipython.run_line_magic("guild", "queue " + " ".join(flags))
    assert run_dirs(guild_home) == before


def test_auto_queue_without_gpus_is_bad_input(guild_home, monkeypatch):
    fake_gpus(monkeypatch, {"devices": [], "init_error": "NVML Shared Library Not Found"})
    with pytest.raises(BadInput, match="gpus=auto: no NVIDIA GPU found"):
        api.queue("gpus=auto")
    assert run_dirs(guild_home) == set()


def test_bad_auto_run_request(project, guild_home):
    with pytest.raises(BadInput, match="auto:N"):
        api.run(str(project / "train.py"), gpus="auto:0", stage=True)
    with pytest.raises(BadInput, match="needs --stage"):
        api.run(str(project / "train.py"), gpus="auto")  # no queue to choose: nothing starts
    p = cli("run", str(project / "train.py"), "--gpus", "auto:2")
    assert p.returncode == 2 and "needs --stage" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert run_dirs(guild_home) == set()


def test_fake_gpu_memory_counts_other_users_processes(monkeypatch):
    """The fake NVML's used memory, unless given, is what its processes use
    (as NVML counts other users' work); the GPU states a queue sees follow."""
    from guild_jupyter.queueing import gpu_slots as gpuslots
    from guild_jupyter.gpus.nvml import NvmlProbe
    from guild_jupyter.queueing.policy import QueueConfig
    from guild_jupyter.gpus.fake import FakeNvml

    probe = NvmlProbe(nvml=FakeNvml([
        {"memory": {"total": 16 * GiB}, "processes": [{"pid": 7, "usedGpuMemory": 6 * GiB},
                                                      {"pid": 8, "usedGpuMemory": 4 * GiB}]},
        {"memory": {"total": 16 * GiB, "used": GiB}, "processes": [{"pid": 9, "usedGpuMemory": 8 * GiB}],
         "utilization": {"gpu": 33}},
    ]))
    gpus, _uuids = gpuslots.resolve_gpus("auto", probe)
    states = gpuslots.gpu_states(gpus, {"1": 1}, QueueConfig(gpus="auto", min_free_memory=GiB), probe=probe)
    assert [(s.id, s.used, s.free_memory, s.utilization) for s in states] == [
        ("0", 0, 6 * GiB, 0), ("1", 1, 15 * GiB, 33)]  # an explicit "used" is taken as given
    with pytest.raises(BadInput, match=r"GPU 5 is not among the GPUs NVML reports on this machine \(0, 1\)"):
        gpuslots.resolve_gpus("auto:0,5", probe)
    assert gpuslots.resolve_gpus("auto:1", probe)[0] == ("1",)
    # a run pinned by UUID holds the GPU's slot like one pinned by index
    gpus, uuids = gpuslots.resolve_gpus("auto", probe)
    states = gpuslots.gpu_states(gpus, {"GPU-fake-0001": 1, "0": 1}, QueueConfig(gpus="auto"), uuids)
    assert [(s.id, s.used, s.free_memory) for s in states] == [("0", 1, None), ("1", 1, None)]
