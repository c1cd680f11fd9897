"""Listing and staging at scale (issue 23), side by side with an earlier
commit and the real ``guild`` CLI in the same run.

    .venv/bin/python bench/bench_scale.py [--runs 10000] [--ref d3129e0] [--rounds 3]
                                          [--big 100000] [--big-home DIR] [--skip-guild]

(a) N finished runs (copies of one real run, fresh ids), each version on its
    own copy of the store, warmed by its own code; alternating rounds:
    CLI start-up (``runs`` on an empty store), warm ``runs``, ``runs -n 20``,
    ``runs --json``, the first and second listing after the cache is lost,
    staging one run (``run tiny.py --stage``) into the store and into an
    empty one; ``guild runs -a`` on the same store.
(b) --big M (a store of M runs copied the same way; ``--big-home`` keeps it
    for the next time): warm ``runs -n 20``, ``runs --json``, staging one
    run (and into an empty store), alternating with --ref (listing the same
    runs/ through a link, its own cache beside) and ``guild runs`` (20
    shown) once; then ours only: a monitor snapshot (what the
    panel and ``/guild/api/state`` build) after a change, claim latency
    (staged -> started with a detached queue waiting: the run's
    ``started`` minus its ``initialized``), the CPU of a monitor refreshing
    every second while nothing changes, the same of the server's watcher
    thread, and the index's memory.

Medians; the load average is printed with the figures. Nothing here is a
test: timings never go into tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import common  # noqa: E402
from common import GUILD, PY, env_of_version, median  # noqa: E402


def export(ref: str) -> str:
    return common.export(ref, "gj-scale-before-")


def ours(args, home, tree=None, cwd=None, out=subprocess.DEVNULL) -> float:
    # cwd: the store unless given, never this checkout: ``-m`` puts the working directory
    # first on sys.path, ahead of PYTHONPATH, so --ref's tree would silently be this one
    t = time.perf_counter()
    subprocess.run([PY, "-m", "guild_jupyter", *args], env=env_of_version(home, tree), cwd=cwd or home, stdout=out,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def optional(args, home, tree=None) -> float:
    """``ours`` for a verb an earlier version may lack (d3129e0 has no ``runs --json``): NaN then."""
    try:
        return ours(args, home, tree)
    except subprocess.CalledProcessError:
        return float("nan")


def make_project() -> str:
    d = tempfile.mkdtemp(prefix="gj-scale-proj-")
    with open(os.path.join(d, "tiny.py"), "w") as f:
        f.write("x = 0\nprint('loss: 0.5')\n")
    return d


def make_store(n: int, proj: str, home: str | None = None) -> str:
    home = home or tempfile.mkdtemp(prefix="gj-scale-")
    runs = os.path.join(home, "runs")
    os.makedirs(runs, exist_ok=True)
    have = [x for x in os.listdir(runs) if not x.startswith(".")]
    if not have:
        ours(["run", "tiny.py", "--foreground"], home, cwd=proj)
        have = os.listdir(runs)
    template = os.path.join(runs, have[0])
    for _ in range(n - len(have)):
        shutil.copytree(template, os.path.join(runs, uuid.uuid4().hex))
    return home


def copy_store(home: str) -> str:
    d = tempfile.mkdtemp(prefix="gj-scale-copy-")
    shutil.rmtree(d)
    shutil.copytree(home, d, symlinks=True)
    shutil.rmtree(os.path.join(d, "cache"), ignore_errors=True)
    return d


def stage_once(home, proj, tree=None) -> float:
    before = set(os.listdir(os.path.join(home, "runs")))
    t = ours(["run", "tiny.py", "--stage"], home, tree, cwd=proj)
    for new in set(os.listdir(os.path.join(home, "runs"))) - before:
        shutil.rmtree(os.path.join(home, "runs", new))
    return t


def drop_cache(home) -> None:
    shutil.rmtree(os.path.join(home, "cache", "guild_jupyter"), ignore_errors=True)


def section_a(n: int, ref: str | None, rounds: int, skip_guild: bool) -> list:
    """Returns the temporary directories it made (the caller removes them)."""
    proj = make_project()
    base = make_store(n, proj)
    trees = {"ours": None}
    if ref:
        trees[ref] = export(ref)
    homes = {k: copy_store(base) for k in trees}
    empty = {k: tempfile.mkdtemp(prefix="gj-scale-empty-") for k in trees}
    for k, h in homes.items():  # warmed by its own code
        ours(["runs"], h, trees[k])
        ours(["runs"], h, trees[k])
    keys = ("empty", "full", "n20", "json", "cold1", "cold2", "stage", "stage_empty")
    res = {k: {m: [] for m in keys} for k in trees}
    for rnd in range(rounds):
        order = list(trees) if rnd % 2 == 0 else list(reversed(trees))
        for k in order:
            tree, home, r = trees[k], homes[k], res[k]
            os.makedirs(os.path.join(empty[k], "runs"), exist_ok=True)
            r["empty"].append(ours(["runs"], empty[k], tree))
            r["full"].append(ours(["runs"], home, tree))
            r["n20"].append(ours(["runs", "-n", "20"], home, tree))
            r["json"].append(optional(["runs", "--json"], home, tree))
            r["stage"].append(stage_once(home, proj, tree))
            r["stage_empty"].append(stage_once(empty[k], proj, tree))
            drop_cache(home)
            r["cold1"].append(ours(["runs"], home, tree))
            r["cold2"].append(ours(["runs"], home, tree))
            ours(["runs"], home, tree)  # warm again for the next round
    floor = stat_floor(os.path.join(homes["ours"], "runs"))
    g = None
    if not skip_guild:
        g = median([_timed_guild(["runs", "-a"], homes["ours"]) for _ in range(2)])
    print(f"(a) {n} finished runs, medians of {rounds} alternating round(s); load average "
          f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"    {'':22}" + "".join(f"{k:>14}" for k in trees))
    labels = {"empty": "runs, empty store", "full": "runs (warm, all)", "n20": "runs -n 20 (warm)",
              "json": "runs --json (warm)", "cold1": "runs, cache lost", "cold2": "  ... the second",
              "stage": f"stage 1 into {n}", "stage_empty": "stage 1 into empty"}
    for m in keys:
        print(f"    {labels[m]:22}" + "".join(f"{median(res[k][m]):13.3f}s".replace("nan", "n/a") for k in trees))
    for k in trees:
        r = {m: median(v) for m, v in res[k].items()}
        line = (f"    {k}: runs -n 20 = {r['n20'] / r['empty']:.2f}x start-up; "
                f"stage into {n} = {r['stage'] / r['stage_empty']:.2f}x into empty")
        if g:
            line += f"; guild runs -a {g:.2f}s = {g / r['full']:.1f}x our full listing"
        print(line)
    empty_ours = median(res["ours"]["empty"])
    key, stamp, per_run = floor
    print(f"    the system calls alone (this process, nothing else done): one stat a run (the sort key's file, "
          f"what -n 20 checks) {key * 1000:.1f} ms = {key / empty_ours:.2f}x start-up; every stamped file "
          f"({per_run:.1f} stats a run, what an exact full listing checks) {stamp:.3f} s"
          + (f" = guild runs -a / {g / stamp:.1f}" if g else ""))
    return [proj, base, *homes.values(), *empty.values(), *(t for t in trees.values() if t)]


def stat_floor(runs_dir: str, rounds: int = 5) -> tuple:
    """(seconds, seconds, stats a run): the ``stat`` calls alone, with the
    run directory open as the index opens it, of one file a run (the sort
    key's, ``attrs/started``) and of every file a run's stamp looks at
    (``.guild``, ``attrs/``, each listed attr and the opref that exists):
    the least an exact listing pays in system calls on this machine,
    medians of ``rounds``."""
    from guild_jupyter.store.entry import STAMPED

    ids = [i for i in os.listdir(runs_dir) if not i.startswith(".")]
    fd = os.open(runs_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        paths = []
        for i in ids:
            paths += [i + "/.guild", i + "/.guild/attrs"]
            paths += [i + p for p in STAMPED if os.path.exists(os.path.join(runs_dir, i + p))]

        def timed(names):
            stat = os.stat
            t = time.perf_counter()
            for name in names:
                stat(name, dir_fd=fd)
            return time.perf_counter() - t

        keys = [i + "/.guild/attrs/started" for i in ids]
        key = median([timed(keys) for _ in range(rounds)])
        stamp = median([timed(paths) for _ in range(rounds)])
    finally:
        os.close(fd)
    return key, stamp, len(paths) / max(1, len(ids))


def _timed_guild(args, home) -> float:
    t = time.perf_counter()
    subprocess.run([GUILD, *args], env=env_of_version(home, None), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


SNAPSHOT = r"""
import json, os, resource, subprocess, sys, time
from guild_jupyter import api
from guild_jupyter.store.index import RunIndex
home, proj = sys.argv[1], sys.argv[2]
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
before = rss()
m = api.monitor(store=home, probe=None)
t = time.perf_counter(); m.snapshot(); first = time.perf_counter() - t
mem = rss() - before
m.snapshot()
after_change = []
env = dict(os.environ, GUILD_HOME=home)
for _ in range(5):
    subprocess.run([sys.executable, "-m", "guild_jupyter", "run", "tiny.py", "--stage"], cwd=proj, env=env,
                   stdout=subprocess.DEVNULL, check=True)
    t = time.perf_counter(); m.snapshot(); after_change.append(time.perf_counter() - t)
# idle: a refresh a second, as the panel and the server's watcher do
c0 = os.times(); t0 = time.monotonic()
while time.monotonic() - t0 < 30:
    m.snapshot()
    time.sleep(1.0)
c1 = os.times()
cpu = (c1.user + c1.system - c0.user - c0.system) / (time.monotonic() - t0)
# the server's watcher (api.WatchThread: a look at the change token every 0.1 s), idle
w = api.EventWatcher(m)
th = api.WatchThread(w).start()
t0 = time.monotonic()
while not w.moved and time.monotonic() - t0 < 600:  # its first look learns the store
    time.sleep(0.1)
time.sleep(2)
c0 = os.times(); t0 = time.monotonic()
time.sleep(30)
c1 = os.times()
watch_cpu = (c1.user + c1.system - c0.user - c0.system) / (time.monotonic() - t0)
th.stop()
staged = [r.id for r in api.runs("staged", store=home)]
api.unstage(*staged, store=home)
print(json.dumps({"first": first, "mem": mem, "after_change": sorted(after_change), "idle_cpu": cpu,
                  "watch_cpu": watch_cpu}))
"""


def section_b(n: int, big_home: str | None, skip_guild: bool, ref: str | None, rounds: int) -> list:
    """Returns the temporary directories it made (the caller removes them)."""
    proj = make_project()
    home = make_store(n, proj, big_home)
    made = [proj] if big_home else [proj, home]
    trees = {"ours": None}
    homes = {"ours": home}
    if ref:  # the earlier commit lists the same runs/ (a link) with its own cache beside
        trees[ref] = export(ref)
        homes[ref] = tempfile.mkdtemp(prefix="gj-scale-ref-")
        os.symlink(os.path.join(home, "runs"), os.path.join(homes[ref], "runs"))
        made += [trees[ref], homes[ref]]
    empty = {k: tempfile.mkdtemp(prefix="gj-scale-empty-") for k in trees}
    made += list(empty.values())
    for k in trees:  # warmed by its own code: the listing file
        os.makedirs(os.path.join(empty[k], "runs"))
        ours(["runs", "-n", "1"], homes[k], trees[k])
        ours(["runs"], homes[k], trees[k])
    res = {k: {m: [] for m in ("n20", "json", "stage", "stage_e")} for k in trees}
    for rnd in range(rounds):
        for k in (list(trees) if rnd % 2 == 0 else list(reversed(trees))):
            tree, h, r = trees[k], homes[k], res[k]
            r["n20"] += [ours(["runs", "-n", "20"], h, tree) for _ in range(3)]
            r["json"].append(optional(["runs", "--json"], h, tree))
            r["stage"] += [stage_once(h, proj, tree) for _ in range(3)]
            r["stage_e"] += [stage_once(empty[k], proj, tree) for _ in range(3)]
    g20 = None if skip_guild else _timed_guild(["runs"], home)  # guild's default: the newest 20 shown
    p = subprocess.run([PY, "-c", SNAPSHOT, home, proj], env=env_of_version(home, None), capture_output=True, text=True,
                       check=True)
    snap = json.loads(p.stdout.strip().splitlines()[-1])
    lat = claim_latency(home, proj, 10)
    med = {k: {m: median(v) for m, v in res[k].items()} for k in trees}
    o = med["ours"]
    print(f"(b) {n} finished runs; medians of {rounds} alternating round(s); load average "
          f"{os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"    {'':30}" + "".join(f"{k:>14}" for k in trees) + "   goal")
    rows = (("runs -n 20 (warm)", "n20", 1, "s", "<= 0.3 s"), ("runs --json (warm)", "json", 1, "s", "<= 4 s"),
            ("stage 1 run into it", "stage", 1000, "ms", "<= 100 ms"),
            ("stage 1 run into an empty store", "stage_e", 1000, "ms", ""))
    for label, m, scale, unit, goal in rows:
        print(f"    {label:30}" + "".join(f"{med[k][m] * scale:12.3f}{unit:2}".replace("nan", "n/a") for k in trees)
              + f"   {goal}")
    for k in trees:
        print(f"    {k}: stage into {n} = {med[k]['stage'] / med[k]['stage_e']:.2f}x into empty (goal <= 1.1x)")
    if g20 is not None:
        print(f"    guild runs (20 shown) {g20:.2f}s = {g20 / o['n20']:.1f}x our runs -n 20")
    print(f"    monitor snapshot after a change: median {median(snap['after_change']) * 1000:.1f}ms "
          f"(all: {', '.join(f'{x * 1000:.0f}' for x in snap['after_change'])}); first {snap['first']:.2f}s "
          f"(goal <= 100 ms)")
    print(f"    claim latency, staged -> started, p50 {median(lat) * 1000:.1f}ms "
          f"(all: {', '.join(f'{x * 1000:.0f}' for x in sorted(lat))}) (goal <= 30 ms)")
    print(f"    idle monitor refreshing every 1 s: {snap['idle_cpu'] * 100:.2f}% of a core (goal < 2 %)")
    print(f"    idle server watcher (WatchThread, 0.1 s ticks): {snap['watch_cpu'] * 100:.2f}% of a core (goal < 2 %)")
    print(f"    index memory (RSS growth of the first snapshot): {snap['mem'] / 2**20:.0f} MB (goal <= 200 MB)")
    return made


def claim_latency(home, proj, samples: int) -> list:
    from guild_jupyter.store.run import Run

    subprocess.run([PY, "-m", "guild_jupyter", "queue", "--background", "poll-interval=10"],
                   env=env_of_version(home, None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    time.sleep(5)  # its first pass over the store
    out = []
    try:
        for _ in range(samples):
            before = set(os.listdir(os.path.join(home, "runs")))
            ours(["run", "tiny.py", "--stage"], home, cwd=proj)
            (new,) = set(os.listdir(os.path.join(home, "runs"))) - before
            r = Run(os.path.join(home, "runs", new))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and r.refresh().status in ("staged", "pending"):
                time.sleep(0.005)
            while time.monotonic() < deadline and r.refresh().status == "running":
                time.sleep(0.005)
            out.append((r.get("started") - r.get("initialized")) / 1e6)
    finally:
        subprocess.run([PY, "-m", "guild_jupyter", "stop", "--queues"], env=env_of_version(home, None),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--ref", default="d3129e0")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--big-home", default=None)
    ap.add_argument("--skip-guild", action="store_true")
    ap.add_argument("--skip-a", action="store_true")
    a = ap.parse_args()
    made = []
    try:
        if not a.skip_a:
            made += section_a(a.runs, a.ref or None, a.rounds, a.skip_guild)
        if a.big:
            made += section_b(a.big, a.big_home, a.skip_guild, a.ref or None, a.rounds)
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
