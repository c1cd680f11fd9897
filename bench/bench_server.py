"""The server extension's REST API under load, with the real guild CLI as peer.

    .venv/bin/python bench/bench_server.py [--runs N] [--requests N] [--concurrent N]

(a) ``GET /guild/api/runs`` (first page of 100, newest first) with N runs in
    the store: p50/p95 over repeated requests, against ``guild runs -n N``
    (the nearest thing Guild offers: a whole listing from its CLI).
(b) a bounded load loop: ``--requests`` requests (runs, state, queues, one
    run) from ``--concurrent`` client threads on loopback; errors counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from common import GUILD, PY, clone_runs, env_for, fresh_home, median, pct, project, ratio, timed  # noqa: E402
from support.jupyter import start_jupyter  # noqa: E402


def get(server, path):
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--concurrent", type=int, default=16)
    a = p.parse_args()

    proj = project("x = 0\nprint('loss: 0.5')\n")
    home = fresh_home()
    env = env_for(home)
    subprocess.run([PY, "-m", "guild_jupyter", "run", "tiny.py", "--foreground"], env=env, cwd=proj, check=True,
                   stdout=subprocess.DEVNULL)
    template = os.path.join(home, "runs", os.listdir(os.path.join(home, "runs"))[0])
    clone_runs(home, template, a.runs - 1)
    some_id = os.listdir(os.path.join(home, "runs"))[0]

    server = start_jupyter(tempfile.mkdtemp(prefix="gj-bench-server-"), env={"GUILD_HOME": home},
                           root_dir=proj, extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    try:
        t0 = time.perf_counter()
        status, first = get(server, "/guild/api/runs")
        cold = time.perf_counter() - t0
        assert status == 200 and first["total"] == a.runs, first.get("total")
        lat = []
        for _ in range(a.samples):
            t0 = time.perf_counter()
            status, body = get(server, "/guild/api/runs")
            lat.append(time.perf_counter() - t0)
            assert status == 200 and len(body["runs"]) == 100
        filtered = []
        for _ in range(max(5, a.samples // 5)):
            t0 = time.perf_counter()
            status, body = get(server, "/guild/api/runs?status=completed&label=x&limit=1000&offset=100")
            filtered.append(time.perf_counter() - t0)
            assert status == 200 and len(body["runs"]) == 1000
        peer = timed([GUILD, "runs", "-n", str(a.runs)], env)
        print(f"(a) GET /guild/api/runs, {a.runs} runs in the store, first page of 100")
        print(f"    first request (index still warming up)     {cold * 1000:8.1f} ms")
        print(f"    p50 {median(lat) * 1000:8.1f} ms   p95 {pct(lat, 95) * 1000:8.1f} ms   (n={a.samples}; goal p50 <= 100 ms)")
        print(f"    filtered page (status=completed&label=x&limit=1000&offset=100): p50 {median(filtered) * 1000:.1f} ms")
        print(f"    guild runs -n {a.runs} (whole CLI)        {peer * 1000:8.1f} ms   ratio {ratio(peer, median(lat))}")

        paths = ["/guild/api/runs", "/guild/api/state", "/guild/api/queues", f"/guild/api/runs/{some_id}",
                 "/guild/api/runs?status=completed&limit=10&offset=500"]
        errors = []
        times = []

        def one(i):
            t = time.perf_counter()
            try:
                status, _ = get(server, paths[i % len(paths)])
                if status != 200:
                    errors.append(status)
            except Exception as e:  # noqa: BLE001 - counted, reported
                errors.append(repr(e))
            times.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=a.concurrent) as pool:
            list(pool.map(one, range(a.requests)))
        wall = time.perf_counter() - t0
        print(f"(b) {a.requests} requests from {a.concurrent} concurrent clients: {len(errors)} errors, "
              f"{wall:.2f} s, {a.requests / wall:.0f} req/s, p50 {median(times) * 1000:.0f} ms, "
              f"p95 {pct(times, 95) * 1000:.0f} ms")
        if errors:
            print("    errors:", errors[:5])
    finally:
        server.stop()


if __name__ == "__main__":
    main()
