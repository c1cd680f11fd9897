"""Queue and staging speed, side by side with the real guild CLI.

    .venv/bin/python bench/bench_queue.py [--samples N] [--guild-samples N]
        [--runs N] [--guild-runs N] [--trials N] [--guild-trials N]

(a) pickup latency: from the moment a stage command returns to the run's
    recorded ``started`` time, with a queue already waiting. Ours: a
    detached ``guild-jupyter queue`` (default poll interval, 10 s). Guild:
    ``guild run queue`` with its default poll interval and with
    ``poll-interval=1``. Each tool stages with its own command.
(b) per-run queue overhead: N trivial staged runs through one run-once
    queue; (wall time / N) - bare ``python -c pass``.
(c) staging a sweep of N trials: ``guild-jupyter run --stage`` vs
    ``guild run --stage-trials``.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import (  # noqa: E402
    GUILD, OURS, bare_start, env_for, fmt_lat, fresh_home, median, project, ratio, run_ids, timed)
from common import wait_until as _wait  # noqa: E402

from guild_jupyter.store.run import Run  # noqa: E402


def _queue_waiting(home, queue_ids):
    """True once the queue run logs that it is up (its log has a line)."""
    for i in queue_ids:
        out = os.path.join(home, "runs", i, ".guild", "output")
        if os.path.exists(out) and os.path.getsize(out) > 0:
            return True
    return False


def _start_time(home, run_id):
    r = Run(os.path.join(home, "runs", run_id))
    if r.status in ("staged", "pending"):
        return None
    return r.get("started")


def pickup(kind, samples, poll=None):
    proj = project()
    home = fresh_home()
    env = env_for(home)
    before = run_ids(home)
    if kind == "ours":
        subprocess.run(OURS + ["queue", "--background"], env=env, cwd=proj, check=True, stdout=subprocess.DEVNULL)
        stage = OURS + ["run", "tiny.py", "--stage"]
    else:
        args = [GUILD, "run", "queue", "-y", "--background"]
        if poll:
            args.insert(3, f"poll-interval={poll}")
        subprocess.run(args, env=env, cwd=proj, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stage = [GUILD, "run", "tiny.py", "--stage", "-y"]
    queue_ids = _wait(lambda: run_ids(home) - before, 30, "the queue run")
    _wait(lambda: _queue_waiting(home, queue_ids), 60, "the queue to start")
    lat = []
    try:
        for _ in range(samples):
            # a random phase against the peer's poll timer, the same for ours
            time.sleep(random.uniform(0, 1.0))
            known = run_ids(home)
            subprocess.run(stage, env=env, cwd=proj, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            returned = time.time()
            (new,) = _wait(lambda: run_ids(home) - known, 10, "the staged run")
            started = _wait(lambda: _start_time(home, new), 120, "the run to start")
            lat.append(started / 1e6 - returned)
            _wait(lambda: Run(os.path.join(home, "runs", new)).status not in ("running", "pending"), 60, "the run to end")
    finally:
        subprocess.run(OURS + ["stop", "--queues"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return lat


def stage_sweep_cmd(kind, n):
    """Each tool's own command staging an n-trial sweep of tiny.py."""
    if kind == "ours":
        return OURS + ["run", "tiny.py", f"x=range[1:{n}]", "--stage"]
    return [GUILD, "run", "tiny.py", f"x=range[1:{n}]", "--stage-trials", "-y"]


def queue_overhead(kind, n):
    proj = project()
    home = fresh_home()
    env = env_for(home)
    timed(stage_sweep_cmd(kind, n), env, proj)
    if kind == "ours":
        t = timed(OURS + ["queue", "run-once=yes"], env, proj)
    else:
        t = timed([GUILD, "run", "queue", "run-once=yes", "-y"], env, proj)
    statuses = [Run(os.path.join(home, "runs", i)).status for i in run_ids(home)]
    done = sum(s == "completed" for s in statuses)
    assert done >= n, f"{kind}: only {done} of {n} runs completed"
    return t


def staging(kind, n):
    proj = project()
    home = fresh_home()
    env = env_for(home)
    t = timed(stage_sweep_cmd(kind, n), env, proj)
    count = len(run_ids(home))
    assert count == n, f"{kind}: staged {count} of {n}"
    return t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--guild-samples", type=int, default=8)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--guild-runs", type=int, default=50)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--guild-trials", type=int, default=1000)
    p.add_argument("--skip", default="", help="comma list of parts to skip: a,b,c")
    a = p.parse_args()
    skip = set(a.skip.split(","))
    bare = bare_start()

    if "a" not in skip:
        ours = pickup("ours", a.samples)
        g10 = pickup("guild", a.guild_samples)
        g1 = pickup("guild", a.guild_samples, poll=1)
        print("(a) pickup latency, stage command returns -> run started")
        print(f"    guild-jupyter queue (poll 10 s)  {fmt_lat(ours)}   (goal p50 <= 50 ms)")
        print(f"    guild run queue (poll 10 s)      {fmt_lat(g10)}   p50 ratio {ratio(median(g10), median(ours))}")
        print(f"    guild run queue poll-interval=1  {fmt_lat(g1)}   p50 ratio {ratio(median(g1), median(ours))}")

    if "b" not in skip:
        o = queue_overhead("ours", a.runs)
        g = queue_overhead("guild", a.guild_runs)
        oo, go = o / a.runs - bare, g / a.guild_runs - bare
        print(f"(b) per-run queue overhead (bare python start {bare * 1000:.1f} ms subtracted)")
        print(f"    guild-jupyter queue run-once, {a.runs} runs: {o:7.2f} s total, {oo * 1000:7.1f} ms/run")
        print(f"    guild run queue run-once, {a.guild_runs} runs:   {g:7.2f} s total, {go * 1000:7.1f} ms/run")
        print(f"    ratio guild/ours per run: {ratio(go, oo)}   (goal >= 8x)")

    if "c" not in skip:
        o = staging("ours", a.trials)
        g = staging("guild", a.guild_trials)
        print(f"(c) staging a sweep")
        print(f"    guild-jupyter run --stage, {a.trials} trials:       {o:7.2f} s   (goal <= 2 s)")
        print(f"    guild run --stage-trials, {a.guild_trials} trials:  {g:7.2f} s   "
              f"ratio per trial {ratio(g / a.guild_trials, o / a.trials)}")


if __name__ == "__main__":
    main()
