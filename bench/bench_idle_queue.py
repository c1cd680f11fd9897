"""An idle queue's memory and CPU against the runs it may keep going
(``max-running``), this tree against an earlier commit, in the same run.

    .venv/bin/python bench/bench_idle_queue.py [REF] [--window 3] [--sizes 1,10000,10000000]

For each size, each tree starts a ``QueueLoop`` in a process of its own on
an empty store (``poll-interval=0.1``, the flag's bound), lets it go idle,
then measures over ``--window`` seconds the process's CPU time and how far
its RSS grew from before the loop was made. Sizes past the flag's bound
(10,000) go straight into ``QueueConfig``, which takes any number: what an
idle queue costs must not depend on it. REF defaults to the commit before
the slots were reworked (2c8e9a9).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_before_after import export  # noqa: E402
from common import PY  # noqa: E402

DEFAULT_REF = "2c8e9a9"

IDLE = textwrap.dedent("""\
    import json, sys, threading, time
    import psutil
    from guild_jupyter import api
    from guild_jupyter.queueing.config import create_queue_run
    from guild_jupyter.queueing.loop import QueueLoop
    from guild_jupyter.queueing.policy import QueueConfig

    store = api.resolve_store(sys.argv[1])
    config = QueueConfig(max_running=int(sys.argv[2]), poll_interval=0.1)
    run = create_queue_run(store, config, "thread")
    proc = psutil.Process()
    before = proc.memory_info().rss
    stop = threading.Event()
    loop = QueueLoop(store, config, run, stop)
    t = threading.Thread(target=loop.run_loop)
    t.start()
    while loop.state != "waiting":
        time.sleep(0.01)
    cpu0, wall0 = sum(proc.cpu_times()[:2]), time.monotonic()
    time.sleep(float(sys.argv[3]))
    cpu, wall = sum(proc.cpu_times()[:2]) - cpu0, time.monotonic() - wall0
    print(json.dumps({"grown": proc.memory_info().rss - before, "cpu": cpu / wall}))
    stop.set()
    t.join()
""")


def measure(tree: str, size: int, window: float) -> dict:
    home = tempfile.mkdtemp(prefix="gj-idle-")
    env = dict(os.environ, PYTHONPATH=tree)
    # cwd: not this checkout, which "-c" would put first on sys.path, ahead of PYTHONPATH
    p = subprocess.run([PY, "-c", IDLE, home, str(size), str(window)], capture_output=True, text=True, env=env, cwd=home,
                       timeout=600)
    if p.returncode:
        raise SystemExit(p.stderr)
    return json.loads(p.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ref", nargs="?", default=DEFAULT_REF)
    ap.add_argument("--window", type=float, default=3.0)
    ap.add_argument("--sizes", default="1,10000,10000000")
    opts = ap.parse_args()
    before = export(opts.ref)
    print(f"{'max-running':>12}  {'before: RSS grown':>18} {'CPU':>6}   {'after: RSS grown':>17} {'CPU':>6}")
    for size in (int(s) for s in opts.sizes.split(",")):
        b, a = measure(before, size, opts.window), measure(ROOT, size, opts.window)
        print(f"{size:>12}  {b['grown'] / 2**20:>15.1f} MiB {b['cpu']:>6.1%}   {a['grown'] / 2**20:>14.1f} MiB "
              f"{a['cpu']:>6.1%}")


if __name__ == "__main__":
    main()
