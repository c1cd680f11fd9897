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
    ap.add_argument("--keep", action="store_true", help="keep the temp store")
    args = ap.parse_args()
    t0 = time.perf_counter()
    home, script = make_store(args.runs, args.staged)
    print(f"store: {home} ({args.runs} runs, {args.staged} staged; made in {time.perf_counter() - t0:.1f} s)")
    try:
        bench_refresh(home, script, args.runs, args.repeat)
        bench_idle(home, args.runs + args.repeat * 2, args.idle_seconds)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(os.path.dirname(script), ignore_errors=True)


if __name__ == "__main__":
    main()
