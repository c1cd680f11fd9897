"""Dask queues, side by side with Guild's own ``dask:scheduler``.

    .venv/bin/python bench/bench_dask.py [--runs 40] [--sleep 1] [--workers 2] [--skip guild,local,cluster]
                                         [--ref d3129e0] [--rounds 1]

N staged runs that each sleep S seconds, on W Dask workers (one thread
each), run-once:

- guild:   ``guild run dask:scheduler workers=W run-once=yes`` (guildai's
           plugin: a LocalCluster it starts itself) on N runs staged by
           ``guild run --stage-trials``;
- local:   ``guild-jupyter queue dask=local:W run-once=yes`` (an embedded
           LocalCluster of W worker processes) on N runs staged by us;
- cluster: the same queue against an existing ``dask scheduler`` and W
           ``dask worker`` processes started beforehand (what a user with a
           cluster sees: no cluster start in the time).

For each: wall time of the command (cluster start and stop included), the
makespan (first run's ``started`` to last run's ``stopped``, from the
runs' attrs), and the dispatch overhead per run: makespan x W / N - S, the
time each run holds a worker beyond its sleep (dispatch, supervisor and
interpreter start, outcome), and the CPU seconds a run costs the machine,
every process together (the queue, the scheduler, the workers, their
launchers, runners, supervisors and scripts; ``local`` includes its
cluster's start and stop, ``cluster`` what the running cluster spent while
the queue ran; this bench is a child subreaper, so every process is
counted). Ratios are Guild's / ours.

``--ref REF`` also runs ``local`` and ``cluster`` with an earlier commit
(exported with ``git archive``, run from this venv with ``PYTHONPATH``
pointing at it, the workers of ``cluster`` too), alternating with this tree
round by round (``--rounds``), and prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from bench_lifecycle import become_subreaper, reap_all, tree_cpu  # noqa: E402
from common import GUILD, OURS, PY, env_for, fresh_home, median, ratio  # noqa: E402

from guild_jupyter.store.run import Run  # noqa: E402

BIN = os.path.dirname(sys.executable)


def _script(d: str, sleep: float) -> str:
    p = os.path.join(d, "sleep_run.py")
    with open(p, "w") as f:
        f.write(f"import time\nx = 0\ntime.sleep({sleep!r})\n")
    return p


def _measure(home: str, n: int, workers: int, sleep: float, wall: float, ops=("sleep_run.py",)) -> dict:
    runs = []
    for name in os.listdir(os.path.join(home, "runs")):
        r = Run(os.path.join(home, "runs", name))
        if r.op_name in ops:
            runs.append(r)
    statuses = [r.status for r in runs]
    assert len(runs) == n and statuses.count("completed") == n, {s: statuses.count(s) for s in set(statuses)}
    first = min(r.started for r in runs)
    last = max(r.stopped for r in runs)
    span = (last - first) / 1e6
    return {"wall": wall, "makespan": span, "overhead": span * workers / n - sleep, "cpu": CPU[0] / n}


#: CPU seconds of the last measured command (``tree_cpu`` before and after it).
CPU = [0.0]


def bench_guild(n, workers, sleep) -> dict:
    home = fresh_home()
    env = env_for(home)
    d = tempfile.mkdtemp(prefix="gj-dask-guild-")
    script = _script(d, sleep)
    subprocess.run([GUILD, "run", script, f"x=range[1:{n}]", "--stage-trials", "-y"], env=env, cwd=d,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    try:
        c0 = tree_cpu()
        t = time.perf_counter()
        subprocess.run([GUILD, "run", "dask:scheduler", f"workers={workers}", "run-once=yes", "-y"], env=env, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
        wall = time.perf_counter() - t
        reap_all()
        CPU[0] = tree_cpu() - c0
        return _measure(home, n, workers, sleep, wall)
    finally:
        _remove(home, d)


def _remove(*dirs) -> None:
    import shutil

    for x in dirs:
        shutil.rmtree(x, ignore_errors=True)


#: The tree the "local" and "cluster" sides run (None: this one, as installed).
TREE = [None]
LOADS: list = []  # the load average as each measurement started


def _ours():
    return list(OURS) if TREE[0] is None else [PY, "-m", "guild_jupyter"]


def _env(home):
    env = env_for(home)
    if TREE[0] is not None:
        env["PYTHONPATH"] = TREE[0]
    return env


def _stage_ours(n, sleep):
    home = fresh_home()
    env = _env(home)
    d = tempfile.mkdtemp(prefix="gj-dask-ours-")
    script = _script(d, sleep)
    subprocess.run([*_ours(), "run", script, f"x=range[1:{n}]", "--stage"], env=env, cwd=d,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return home, env, d


def bench_local(n, workers, sleep) -> dict:
    home, env, d = _stage_ours(n, sleep)
    try:
        c0 = tree_cpu()
        t = time.perf_counter()
        subprocess.run([*_ours(), "queue", f"dask=local:{workers}", "run-once=yes", "poll-interval=1"], env=env,
                       cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
        wall = time.perf_counter() - t
        reap_all()
        CPU[0] = tree_cpu() - c0
        return _measure(home, n, workers, sleep, wall)
    finally:
        _remove(home, d)


def bench_cluster(n, workers, sleep) -> dict:
    home, env, d = _stage_ours(n, sleep)
    sched_file = os.path.join(d, "scheduler.json")
    denv = dict(env, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    procs = [subprocess.Popen([os.path.join(BIN, "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", "127.0.0.1:0", "--scheduler-file", sched_file],
                              env=denv, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        for i in range(workers):
            procs.append(subprocess.Popen([os.path.join(BIN, "dask"), "worker", "--scheduler-file", sched_file,
                                           "--nthreads", "1", "--name", f"w{i}", "--host", "127.0.0.1",
                                           "--no-dashboard"], env=denv, cwd=d, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        address = _wait_cluster(sched_file, workers)
        time.sleep(2.0)  # the workers' start-up done (their launchers started by the plugin a queue registers)
        c0 = tree_cpu()
        t = time.perf_counter()
        subprocess.run([*_ours(), "queue", f"dask={address}", "run-once=yes", "poll-interval=1"], env=env, cwd=d,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
        wall = time.perf_counter() - t
        CPU[0] = tree_cpu() - c0
        return _measure(home, n, workers, sleep, wall)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        reap_all(10)
        _remove(home, d)


def _wait_cluster(sched_file: str, workers: int) -> str:
    from distributed import Client

    deadline = time.monotonic() + 120
    while not (os.path.exists(sched_file) and os.path.getsize(sched_file)):
        if time.monotonic() > deadline:
            raise RuntimeError("the scheduler did not start")
        time.sleep(0.1)
    with open(sched_file) as f:
        address = json.load(f)["address"]
    with Client(address, timeout=30, set_as_default=False) as c:
        c.wait_for_workers(workers, timeout=120)
    return address


def _export(ref: str) -> str:
    import compileall

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    d = tempfile.mkdtemp(prefix="gj-dask-before-")
    archive = subprocess.run(["git", "-C", root, "archive", ref, "guild_jupyter"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", d], input=archive, check=True)
    compileall.compile_dir(os.path.join(d, "guild_jupyter"), quiet=1)
    return d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--sleep", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip", default="")
    ap.add_argument("--ref", default=None, help="an earlier commit to run side by side (local, cluster)")
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    become_subreaper()
    skip = set(filter(None, a.skip.split(",")))
    trees = {"": None}
    if a.ref:
        trees[f"@{a.ref}"] = _export(a.ref)
    results: dict = {}
    for rnd in range(a.rounds):
        order = list(trees.items()) if rnd % 2 == 0 else list(reversed(trees.items()))
        for name, fn in (("guild", bench_guild), ("local", bench_local), ("cluster", bench_cluster)):
            if name in skip:
                continue
            for tag, tree in ([("", None)] if name == "guild" else order):
                if name == "guild" and rnd > 0:
                    continue  # the peer once: it is slow and its figure is not what changes
                TREE[0] = tree
                LOADS.append(os.getloadavg()[0])
                try:
                    r = fn(a.runs, a.workers, a.sleep)
                    results.setdefault(name + tag, []).append(r)
                except Exception as e:  # noqa: BLE001 - say why a side could not run, keep the others
                    print(f"{name + tag}: could not run: {type(e).__name__}: {e}")
    for tree in trees.values():
        if tree:
            _remove(tree)
    print(f"{a.runs} runs of {a.sleep:g}s on {a.workers} Dask workers (ideal makespan "
          f"{a.runs * a.sleep / a.workers:.1f}s), medians of {a.rounds} round(s); load average "
          f"{os.getloadavg()[0]:.2f} (at each start: {', '.join(f'{x:.1f}' for x in LOADS)})")
    print(f"{'':18}{'wall s':>9}{'makespan s':>12}{'x ideal':>9}{'overhead/run s':>16}{'CPU/run ms':>12}")
    med = {k: {f: median([r[f] for r in v]) for f in ("wall", "makespan", "overhead", "cpu")}
           for k, v in results.items()}
    ideal = a.runs * a.sleep / a.workers
    for name, r in med.items():
        print(f"{name:18}{r['wall']:9.2f}{r['makespan']:12.2f}{r['makespan'] / ideal:9.3f}{r['overhead']:16.3f}"
              f"{r['cpu'] * 1000:12.1f}")
    for name in med:
        if "@" not in name and f"{name}@{a.ref}" in med:
            t, r = med[name], med[f"{name}@{a.ref}"]
            print(f"{name}/{name}@{a.ref}: makespan {t['makespan'] / r['makespan']:.2f}, overhead/run "
                  f"{t['overhead'] / r['overhead']:.2f}, CPU/run {t['cpu'] / r['cpu']:.2f}")
    g = med.get("guild")
    for name in med:
        if g and name != "guild":
            r = med[name]
            print(f"guild/{name}: wall {ratio(g['wall'], r['wall'])}, makespan {ratio(g['makespan'], r['makespan'])}, "
                  f"overhead/run {ratio(g['overhead'], r['overhead'])}")


if __name__ == "__main__":
    main()
