"""CLI start-up: ``guild-jupyter runs`` on an empty store, this tree against
an earlier commit and against the real ``guild runs``, in the same run.

    .venv/bin/python bench/bench_startup.py [REF] [--samples 20]

REF (default: the commit before the verbs' glue, 2c8e9a9) is exported with
``git archive`` and byte-compiled; both trees run from this venv's
interpreter as ``python -m guild_jupyter runs`` with ``PYTHONPATH`` pointing
at their tree, sample by sample in turn so that machine load hits both
alike. Prints each one's median and p90 wall time, its median CPU time
(user + system of the process: what load on a shared machine changes
least) and the ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_before_after import export  # noqa: E402
from common import GUILD, PY, env_for, fresh_home, median, pct  # noqa: E402

DEFAULT_REF = "2c8e9a9"


def timed(cmd, env, cwd) -> tuple[float, float]:
    """(wall, CPU) seconds of one command."""
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ref", nargs="?", default=DEFAULT_REF)
    ap.add_argument("--samples", type=int, default=20)
    opts = ap.parse_args()
    before_tree = export(opts.ref)
    home = fresh_home()
    env = env_for(home)
    cmds = {
        "before": ([PY, "-m", "guild_jupyter", "runs"], dict(env, PYTHONPATH=before_tree)),
        "after": ([PY, "-m", "guild_jupyter", "runs"], dict(env, PYTHONPATH=ROOT)),
        "guild": ([GUILD, "runs"], env),
    }
    # cwd: the empty home, not this checkout, which `-m` would put ahead of PYTHONPATH.
    for cmd, e in cmds.values():  # warm the page cache and the byte-code
        timed(cmd, env=e, cwd=home)
    times: dict = {k: [] for k in cmds}
    for _ in range(opts.samples):
        for name, (cmd, e) in cmds.items():
            times[name].append(timed(cmd, env=e, cwd=home))
    for name, xs in times.items():
        walls, cpus = [w for w, _ in xs], [c for _, c in xs]
        print(f"{name:>7}: wall median {median(walls) * 1000:7.1f} ms   p90 {pct(walls, 90) * 1000:7.1f} ms   "
              f"CPU median {median(cpus) * 1000:7.1f} ms   (n={len(xs)})")
    for i, what in ((0, "wall"), (1, "CPU")):
        b, a, g = (median([x[i] for x in times[k]]) for k in ("before", "after", "guild"))
        print(f"{what}: after / before {a / b:.3f}   guild runs / after {g / a:.1f}x")


if __name__ == "__main__":
    main()
