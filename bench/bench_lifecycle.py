"""What every run pays to go through a queue: CPU, overhead and claim latency.

    .venv/bin/python bench/bench_lifecycle.py [--runs 200] [--sleep 0.1] [--workers 4]
                                              [--ref 2df4b3d] [--rounds 3] [--claims 20]

(a) N staged runs that each sleep S seconds through one local run-once
    queue, ``guild-jupyter queue max-running=W run-once=yes`` (no Dask):
    wall time, makespan (first run's ``started`` to last run's ``stopped``)
    and its ratio to the ideal N x S / W, the overhead a run (makespan x W /
    N - S: what each run holds its slot beyond its sleep), and the CPU
    seconds a run costs, all processes together (queue, supervisors,
    scripts; the queue's start-up included, spread over the N runs). CPU is
    what limits W runs going at once on a machine of 2 cores, and what the
    machine's other load changes least: this bench is a child subreaper, so
    every process of the queue is counted once it ended.
(b) claim latency: a detached queue waiting (``poll-interval=10``), one run
    staged at a time from the CLI: the run's ``started`` minus its
    ``initialized`` (issue 23's measure: staged -> started, a queue
    waiting), p50 / p95.

``--ref REF`` runs both with an earlier commit too (exported with ``git
archive``, run from this venv with ``PYTHONPATH`` pointing at it), in
alternating order round by round; medians, and this tree / REF ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import common  # noqa: E402
from common import PY, env_of_version, fresh_home, median, pct  # noqa: E402

from guild_jupyter.store.run import Run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def become_subreaper() -> None:
    """Orphans of the processes we start (supervisors, forked runners) end
    up as our children, so their CPU reaches RUSAGE_CHILDREN when reaped."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_all(timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def tree_cpu() -> float:
    """CPU seconds of every process this one started, ended and reaped
    (RUSAGE_CHILDREN) plus, for those still alive, their own and their
    reaped children's (psutil): a delta of two calls counts each process once."""
    import psutil

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = r.ru_utime + r.ru_stime
    for p in psutil.Process().children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def export(ref: str) -> str:
    return common.export(ref, "gj-life-before-")


def ours(args, env, cwd, **kw):
    return subprocess.run([PY, "-m", "guild_jupyter", *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=True, **kw)


def stage(n: int, sleep: float, tree):
    home = fresh_home()
    env = env_of_version(home, tree)
    d = tempfile.mkdtemp(prefix="gj-life-proj-")
    with open(os.path.join(d, "sleep_run.py"), "w") as f:
        f.write(f"import time\nx = 0\ntime.sleep({sleep!r})\n")
    ours(["run", "sleep_run.py", f"x=range[1:{n}]", "--stage"], env, d)
    return home, env, d


def measure(home: str, n: int, workers: int, sleep: float) -> dict:
    runs = [Run(os.path.join(home, "runs", name)) for name in os.listdir(os.path.join(home, "runs"))]
    runs = [r for r in runs if r.op_name == "sleep_run.py"]
    statuses = [r.status for r in runs]
    assert len(runs) == n and statuses.count("completed") == n, {s: statuses.count(s) for s in set(statuses)}
    span = (max(r.stopped for r in runs) - min(r.started for r in runs)) / 1e6
    return {"makespan": span, "x_ideal": span / (n * sleep / workers), "overhead": span * workers / n - sleep}


def bench_local(n: int, sleep: float, workers: int, tree) -> dict:
    home, env, d = stage(n, sleep, tree)
    try:
        time.sleep(2.5)  # the staged runs' stamps settle, as in a queue fed over time
        c0 = tree_cpu()
        t = time.perf_counter()
        ours(["queue", f"max-running={workers}", "run-once=yes"], env, d, timeout=900)
        wall = time.perf_counter() - t
        reap_all()
        cpu = tree_cpu() - c0
        return dict(measure(home, n, workers, sleep), wall=wall, cpu=cpu / n)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)


def claim_latency(samples: int, tree) -> list:
    home = fresh_home()
    env = env_of_version(home, tree)
    d = tempfile.mkdtemp(prefix="gj-life-claim-")
    with open(os.path.join(d, "tiny.py"), "w") as f:
        f.write("x = 0\n")
    out = []
    try:
        ours(["queue", "--background", "poll-interval=10"], env, d)
        time.sleep(1.0)
        for _ in range(samples):
            before = set(os.listdir(os.path.join(home, "runs")))
            ours(["run", "tiny.py", "--stage"], env, d)
            new = [x for x in set(os.listdir(os.path.join(home, "runs"))) - before]
            r = Run(os.path.join(home, "runs", new[0]))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (r.refresh().status in ("staged", "pending", "running")):
                time.sleep(0.005)
            out.append((r.get("started") - r.get("initialized")) / 1e6)
            time.sleep(0.2)
    finally:
        subprocess.run([PY, "-m", "guild_jupyter", "stop", "--queues"], env=env, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        reap_all(10)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--sleep", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--ref", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--claims", type=int, default=20)
    a = ap.parse_args()
    become_subreaper()
    trees = {"this": None}
    if a.ref:
        trees[a.ref] = export(a.ref)
    res = {k: {"local": [], "claim": []} for k in trees}
    loads = []
    try:
        for rnd in range(a.rounds):
            for k in (list(trees) if rnd % 2 == 0 else list(reversed(trees))):
                loads.append(os.getloadavg()[0])
                res[k]["local"].append(bench_local(a.runs, a.sleep, a.workers, trees[k]))
                if a.claims:
                    res[k]["claim"] += claim_latency(a.claims, trees[k])
    finally:
        for t in trees.values():
            if t:
                shutil.rmtree(t, ignore_errors=True)
    print(f"(a) {a.runs} runs of {a.sleep:g}s through one local run-once queue, max-running={a.workers} (ideal "
          f"makespan {a.runs * a.sleep / a.workers:.2f}s); medians of {a.rounds} alternating round(s); load average "
          f"at each start {', '.join(f'{x:.1f}' for x in loads)}")
    print(f"    {'':14}{'wall s':>9}{'makespan s':>12}{'x ideal':>9}{'overhead/run ms':>17}{'CPU/run ms':>12}")
    med = {}
    for k in trees:
        rs = res[k]["local"]
        m = med[k] = {f: median([r[f] for r in rs]) for f in ("wall", "makespan", "x_ideal", "overhead", "cpu")}
        print(f"    {k:14}{m['wall']:9.2f}{m['makespan']:12.2f}{m['x_ideal']:9.3f}{m['overhead'] * 1000:17.1f}"
              f"{m['cpu'] * 1000:12.1f}")
    if a.ref:
        t, r = med["this"], med[a.ref]
        print(f"    this/{a.ref}: makespan {t['makespan'] / r['makespan']:.2f}, overhead/run "
              f"{t['overhead'] / r['overhead']:.2f}, CPU/run {t['cpu'] / r['cpu']:.2f}")
    if a.claims:
        print(f"(b) claim latency, staged -> started with a detached queue waiting ({a.claims} a round)")
        for k in trees:
            xs = res[k]["claim"]
            print(f"    {k:14} p50 {median(xs) * 1000:7.1f} ms   p95 {pct(xs, 95) * 1000:7.1f} ms   (n={len(xs)})")
        if a.ref:
            print(f"    this/{a.ref}: p50 {median(res['this']['claim']) / median(res[a.ref]['claim']):.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
