"""Parallel queues and GPU slots, side by side with the real guild CLI.

    .venv/bin/python bench/bench_parallel.py [--runs N] [--guild-runs N]
        [--samples N] [--sleep S] [--skip a,b]

(a) N trivial staged runs through one run-once queue: ours with
    ``max-running=4`` and with ``max-running=1`` (the seed's one at a
    time), and Guild's ``guild run queue`` (one at a time; it has no
    parallel queue). Wall time and per-run overhead ((wall / N) - bare
    ``python -c pass`` - the run's sleep; below zero when runs overlap). ``--sleep S`` makes each run sleep S seconds (runs
    that do some work show what the slots buy; trivial ones show the cost
    per run).
(b) claim latency of a GPU slot: 3 detached ``gpus=auto per-gpu=1`` queues
    wait on 4 fake GPUs ($GUILD_JUPYTER_FAKE_GPUS); a run is staged; time
    from its staging (``initialized``, written as its directory is built)
    to its recorded ``started`` (claim, GPU count, supervisor start). Next
    to it, the same with one plain queue (no GPU slots): what the GPU count
    under the lock, and the competition, add. Guild has no GPU slots: no
    peer for (b).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import (  # noqa: E402
    GUILD, OURS, bare_start, env_for, fmt_lat, fresh_home, median, project, ratio, run_ids, timed, wait_until)

from guild_jupyter.store.run import Run  # noqa: E402

FAKE_GPUS = json.dumps([{}, {}, {}, {}])


def _wait(cond, timeout, what):
    return wait_until(cond, timeout, what, interval=0.002)


def _stage(kind, n, proj, env, sleep):
    flags = [f"x=range[1:{n}]"] + ([f"s={sleep}"] if sleep else [])
    if kind == "guild":
        cmd = [GUILD, "run", "tiny.py", *flags, "--stage-trials", "-y"]
    else:
        cmd = OURS + ["run", "tiny.py", *flags, "--stage"]
    timed(cmd, env, proj)


def through_queue(kind, n, sleep, max_running=1):
    proj = project("import time\nx = 0\ns = 0.0\ntime.sleep(s)\n")
    home = fresh_home()
    env = env_for(home)
    _stage(kind, n, proj, env, sleep)
    if kind == "guild":
        t = timed([GUILD, "run", "queue", "run-once=yes", "-y"], env, proj)
    else:
        t = timed(OURS + ["queue", "run-once=yes", f"max-running={max_running}"], env, proj)
    runs = [Run(os.path.join(home, "runs", i)) for i in run_ids(home)]
    done = sum(r.status == "completed" and not r.is_queue for r in runs)
    assert done == n, f"{kind}: {done} of {n} runs completed"
    return t


def _started(home, run_id):
    r = Run(os.path.join(home, "runs", run_id))
    return None if r.status in ("staged", "pending") else r.get("started")


def claim_latency(samples, queues, flags):
    proj = project()
    home = fresh_home()
    env = dict(env_for(home), GUILD_JUPYTER_FAKE_GPUS=FAKE_GPUS)
    for _ in range(queues):
        subprocess.run(OURS + ["queue", "--background", *flags], env=env, cwd=proj, check=True,
                       stdout=subprocess.DEVNULL)
    queue_ids = _wait(lambda: run_ids(home) if len(run_ids(home)) == queues else None, 30, "the queues")
    logs = [os.path.join(home, "runs", i, ".guild", "output") for i in queue_ids]
    _wait(lambda: all(os.path.exists(f) and os.path.getsize(f) > 0 for f in logs), 30, "the queues to start")
    lat, gpus = [], set()
    try:
        for _ in range(samples):
            known = run_ids(home)
            subprocess.run(OURS + ["run", "tiny.py", "--stage"], env=env, cwd=proj, check=True,
                           stdout=subprocess.DEVNULL)
            (new,) = _wait(lambda: run_ids(home) - known, 10, "the staged run")
            started = _wait(lambda: _started(home, new), 60, "the run to start")
            r = Run(os.path.join(home, "runs", new))
            lat.append((started - r.get("initialized")) / 1e6)
            _wait(lambda: r.refresh().status not in ("running", "pending"), 60, "the run to end")
            gpus.add(r.gpus)
    finally:
        subprocess.run(OURS + ["stop", "--queues"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return lat, gpus


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--guild-runs", type=int, default=50)
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--skip", default="", help="comma list of parts to skip: a,b")
    a = p.parse_args()
    skip = set(a.skip.split(","))
    bare = bare_start()

    if "a" not in skip:
        rows = [("guild-jupyter queue max-running=4", a.runs, through_queue("ours", a.runs, a.sleep, 4)),
                ("guild-jupyter queue max-running=1", a.runs, through_queue("ours", a.runs, a.sleep, 1)),
                ("guild run queue (one at a time)", a.guild_runs, through_queue("guild", a.guild_runs, a.sleep))]
        print(f"(a) staged runs through one run-once queue, each run sleeping {a.sleep:g} s "
              f"(overhead: bare python start {bare * 1000:.1f} ms and the sleep subtracted; {os.cpu_count()} CPUs)")
        per = {}
        for name, n, t in rows:
            per[name] = t / n - bare - a.sleep
            print(f"    {name:36s} {n:4d} runs {t:7.2f} s   {t / n * 1000:7.1f} ms/run wall   "
                  f"{per[name] * 1000:7.1f} ms/run overhead")
        print(f"    ratio per run, max-running=1 / max-running=4: {ratio(rows[1][2] / rows[1][1], rows[0][2] / rows[0][1])}")
        print(f"    ratio per run, guild / max-running=4:         {ratio(rows[2][2] / rows[2][1], rows[0][2] / rows[0][1])}")
        print(f"    ratio per run, guild / max-running=1:         {ratio(rows[2][2] / rows[2][1], rows[1][2] / rows[1][1])}")

    if "b" not in skip:
        auto, gpus = claim_latency(a.samples, 3, ["gpus=auto", "per-gpu=1"])
        plain, _ = claim_latency(a.samples, 1, [])
        print("(b) claim latency of a GPU slot: run staged -> run started")
        print(f"    3 competing gpus=auto per-gpu=1 queues, 4 fake GPUs  {fmt_lat(auto, 7)}   GPUs used: "
              f"{','.join(sorted(g or '-' for g in gpus))}")
        print(f"    1 plain queue (no GPU slots)                         {fmt_lat(plain, 7)}   "
              f"p50 ratio {ratio(median(auto), median(plain))}")


if __name__ == "__main__":
    main()
