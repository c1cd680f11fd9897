"""Status panel speed with a big store, side by side with a naive refresh.

    .venv/bin/python bench/bench_panel.py [--runs 10000] [--idle-seconds 10]

(a) one refresh of the panel's snapshot with N runs in the store:
    cold (a new kernel's first panel: every run read once), warm after a
    change (a run staged: the change token moves, every run is stat'ed, the
    new one read), warm with no change, and ``Panel.refresh()`` (snapshot +
    widget traits); the peer is what a panel without the cache would do
    per refresh: ``api.runs()`` + ``api.queues()``. Goal: <= 100 ms.
(b) the refresh thread's CPU use while the store is idle, over
    ``--idle-seconds``: the thread's own CPU time (``psutil`` per-thread
    times) and the whole process's. Goal: < 2% of one core.
(c) one refresh with ``--running`` of the runs running and each logging
    ``--lines`` scalar lines a second (a writer process appends their event
    files as the supervisor does, flushing each second), rows carrying the
    latest scalar and its sparkline: the snapshot at the default page size
    and with every running run on the page, and the REST runs listing of
    the running runs (100 rows). Goal: <= 100 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from common import fresh_home, project, ratio  # noqa: E402

SLEEPY = "import time\nsecs = 0.0\nlr = 0.1\ntime.sleep(secs)\nprint('loss: 0.5')\n"


def make_store(n: int, staged: int) -> str:
    """A store of ``n`` runs: ``staged`` staged, the rest completed (copies of
    real runs with fresh ids, which is how a big store looks to a reader)."""
    from guild_jupyter import api

    home = fresh_home("gj-bench-panel-")
    proj = project(SLEEPY)
    script = os.path.join(proj, "tiny.py")
    done = api.run(script, "lr=0.2", foreground=True, stream=io.StringIO(), store=home)[0]
    stage = api.run(script, "lr=0.3", stage=True, store=home)[0]
    runs = os.path.join(home, "runs")
    for i in range(n - 2):
        src = stage.dir if i < staged - 1 else done.dir
        shutil.copytree(src, os.path.join(runs, uuid.uuid4().hex))
    return home, script


def timed(fn, repeat=1):
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_refresh(home: str, script: str, n: int, repeat: int) -> None:
    from guild_jupyter import api
    from guild_jupyter.frontends.panel import panel
    from guild_jupyter.store.index import SETTLE_NS

    print(f"(a) one refresh with {n} runs in the store")
    state = api.monitor(home)
    (cold,) = timed(state.snapshot)
    snap = state.snapshot()
    assert snap["counts"]["total"] == n, snap["counts"]

    def stage_then_snapshot():
        api.run(script, stage=True, store=home)
        t0 = time.perf_counter()
        state.snapshot()
        return time.perf_counter() - t0

    changed = [stage_then_snapshot() for _ in range(repeat)]
    # Mtimes are coarse: a store written within the settle window is scanned
    # in full on every pass; "nothing changed" is the steady state after it.
    time.sleep(SETTLE_NS / 1e9 + 0.2)
    state.snapshot()
    same = timed(state.snapshot, repeat)
    p = panel(store=home, refresh=0, display=False)

    def stage_then_panel_refresh():
        api.run(script, stage=True, store=home)
        t0 = time.perf_counter()
        p.refresh()
        return time.perf_counter() - t0

    widget = [stage_then_panel_refresh() for _ in range(repeat)]
    p.close()

    def naive():
        rl = api.runs(store=home)
        api.queues(store=home)
        return rl

    (peer,) = timed(naive)
    med = statistics.median
    print(f"    cold: first snapshot (reads every run)     {cold * 1000:8.1f} ms   (once per store per process)")
    print(f"    warm, after a change (median of {repeat})      {med(changed) * 1000:8.1f} ms   max {max(changed) * 1000:.1f} ms   (goal <= 100 ms)")
    print(f"    warm, nothing changed (median of {repeat})     {med(same) * 1000:8.1f} ms")
    print(f"    Panel.refresh() after a change (median)    {med(widget) * 1000:8.1f} ms   (snapshot + widget traits)")
    print(f"    peer: api.runs() + api.queues()            {peer * 1000:8.1f} ms   ratio peer/ours-after-change {ratio(peer, med(changed))}")


WRITER = r"""
import sys, time, os, json
sys.path.insert(0, sys.argv[1])
from guild_jupyter.store.scalars.writer import ScalarWriter
from guild_jupyter.procs import Identity
dirs, rate = json.loads(sys.argv[2]), float(sys.argv[3])
me = json.dumps(Identity.current().as_record())
writers = []
for d in dirs:  # running: a LOCK naming this live process, no exit status
    for name in ("exit_status", "stopped"):
        try:
            os.remove(os.path.join(d, ".guild", "attrs", name))
        except FileNotFoundError:
            pass
    with open(os.path.join(d, ".guild", "LOCK"), "w") as f:
        f.write(str(os.getpid()))
    with open(os.path.join(d, ".guild", "LOCK.start"), "w") as f:
        f.write(me)
    writers.append(ScalarWriter(os.path.join(d, ".guild"), set()))
print("ready", flush=True)
i, t0 = 0, time.monotonic()
while True:
    i += 1
    for w in writers:
        w.feed(f"step: {i}\nloss: {1.0 / i:.6f}\n".encode())
    time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
"""


def bench_running(home: str, n: int, running: int, lines: float, repeat: int) -> None:
    import json
    import subprocess

    from guild_jupyter import api
    from guild_jupyter.store.index import SETTLE_NS

    runs_dir = os.path.join(home, "runs")
    done = [d for d in sorted(os.listdir(runs_dir))
            if os.path.exists(os.path.join(runs_dir, d, ".guild", "attrs", "exit_status"))]
    dirs = [os.path.join(runs_dir, d) for d in done[:running]]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, root, json.dumps(dirs), str(lines)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        from guild_jupyter.store.store import Store

        Store(home).notify_change()  # as a run's start does (store/transitions.py)
        print(f"(c) one refresh with {n} runs, {running} of them running and logging {lines:g} lines/s each")
        state = api.monitor(home)
        big = api.monitor(home, page_size=running)
        time.sleep(SETTLE_NS / 1e9 + 1.2)  # past the settle window; every file written at least once
        for m in (state, big):
            snap = m.snapshot()
        assert snap["counts"]["running"] == running, snap["counts"]
        rows = next(g for g in snap["groups"] if g["name"] == "running")["rows"]
        assert len(rows) == running and all(r["scalar"] and r["spark"] for r in rows), rows[0]
        default, full, rest = [], [], []
        for _ in range(repeat):
            time.sleep(1.0)  # a panel refresh period: every run appended ~lines records
            default += timed(state.snapshot)
            full += timed(big.snapshot)
            rest += timed(lambda: state.list_runs(statuses=["running"], limit=running))
        latest = next(g for g in big.snapshot()["groups"] if g["name"] == "running")["rows"][0]
        med = statistics.median
        print(f"    snapshot, default page ({state.page_size} rows/group)   {med(default) * 1000:8.1f} ms   max {max(default) * 1000:.1f} ms   (goal <= 100 ms)")
        print(f"    snapshot, all {running} running rows on the page   {med(full) * 1000:8.1f} ms   max {max(full) * 1000:.1f} ms   (goal <= 100 ms)")
        print(f"    REST listing of the {running} running runs         {med(rest) * 1000:8.1f} ms   max {max(rest) * 1000:.1f} ms")
        print(f"    (a row: {latest['scalar']}, spark of {len(latest['spark'])} values; median of {repeat})")
    finally:
        writer.kill()
        writer.wait()


def bench_idle(home: str, n: int, seconds: float) -> None:
    import psutil

    from guild_jupyter.frontends.panel import panel

    print(f"(b) refresh thread CPU while idle, {n} runs, refresh every 1 s, over {seconds:g} s")
    p = panel(store=home, refresh=1.0, display=False)
    deadline = time.monotonic() + 120
    while p.snapshot is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # past the first (cold) build and one more refresh
    tid = p._thread.native_id
    proc = psutil.Process()

    def thread_cpu():
        for t in proc.threads():
            if t.id == tid:
                return t.user_time + t.system_time
        return 0.0

    t_thread, t_proc, t_wall = thread_cpu(), time.process_time(), time.monotonic()
    time.sleep(seconds)
    d_thread, d_proc, d_wall = thread_cpu() - t_thread, time.process_time() - t_proc, time.monotonic() - t_wall
    p.close()
    alive = threading.active_count()
    print(f"    refresh thread CPU   {d_thread * 1000:8.1f} ms = {100 * d_thread / d_wall:5.2f}% of one core   (goal < 2%)")
    print(f"    whole process CPU    {d_proc * 1000:8.1f} ms = {100 * d_proc / d_wall:5.2f}% of one core")
    print(f"    threads left after close: {alive - 1} besides main")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--staged", type=int, default=200, help="how many of them are staged")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--running", type=int, default=100, help="runs running and logging in (c)")
    ap.add_argument("--lines", type=float, default=10.0, help="scalar lines a second each running run logs")
    ap.add_argument("--only-running", action="store_true", help="run (c) only")
    ap.add_argument("--keep", action="store_true", help="keep the temp store")
    args = ap.parse_args()
    t0 = time.perf_counter()
    home, script = make_store(args.runs, args.staged)
    print(f"store: {home} ({args.runs} runs, {args.staged} staged; made in {time.perf_counter() - t0:.1f} s)")
    try:
        if not args.only_running:
            bench_refresh(home, script, args.runs, args.repeat)
            bench_idle(home, args.runs + args.repeat * 2, args.idle_seconds)
        total = args.runs + (0 if args.only_running else args.repeat * 2)
        bench_running(home, total, args.running, args.lines, args.repeat)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(os.path.dirname(script), ignore_errors=True)


if __name__ == "__main__":
    main()
