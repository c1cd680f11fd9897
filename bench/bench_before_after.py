"""Queue speed of this tree against an earlier commit, measured in the same run.

    .venv/bin/python bench/bench_before_after.py [REF] [--rounds 3] [--runs 200] [--samples 20]

REF (default: the commit the README's figures were taken at) is exported
with ``git archive`` into a temporary directory and byte-compiled; both
versions then run from this venv's interpreter as ``python -m guild_jupyter``
with ``PYTHONPATH`` pointing at their tree (subprocesses they start inherit
it), alternating round by round so that machine load hits both alike. It
measures bench_queue's (a) pickup latency and (b) per-run queue overhead and
prints each as before / after with the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench_queue  # noqa: E402
import common  # noqa: E402
from common import PY, median, pct, timed  # noqa: E402

DEFAULT_REF = "d3129e0"  # the README's figures (before the lifecycle rework)


def export(ref: str) -> str:
    return common.export(ref, "gj-before-")


def use(tree: str) -> None:
    """Point bench_queue at one version: its commands and their environment."""
    bench_queue.OURS[:] = [PY, "-m", "guild_jupyter"]
    base_env_for = use.base_env_for

    def env_for(home):
        e = base_env_for(home)
        e["PYTHONPATH"] = tree
        return e

    bench_queue.env_for = env_for


use.base_env_for = bench_queue.env_for


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("ref", nargs="?", default=DEFAULT_REF)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--samples", type=int, default=20)
    a = p.parse_args()
    trees = {"before": export(a.ref), "after": ROOT}
    lat = {k: [] for k in trees}
    per_run = {k: [] for k in trees}
    bare = median([timed([PY, "-c", "pass"]) for _ in range(10)])
    for r in range(a.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for which in order:
            use(trees[which])
            lat[which] += bench_queue.pickup("ours", a.samples)
            per_run[which].append(bench_queue.queue_overhead("ours", a.runs) / a.runs - bare)
    print(f"queue speed, {a.ref} (before) vs this tree (after), {a.rounds} alternating rounds")
    for which in trees:
        xs = lat[which]
        print(f"  pickup latency {which:6}  p50 {median(xs) * 1000:6.1f} ms  p95 {pct(xs, 95) * 1000:6.1f} ms  (n={len(xs)})")
    for which in trees:
        print(f"  per-run overhead {which:6}  {median(per_run[which]) * 1000:6.1f} ms/run  "
              f"(rounds: {', '.join(f'{x * 1000:.1f}' for x in per_run[which])})")
    b, after = median(per_run["before"]), median(per_run["after"])
    print(f"  per-run overhead after/before: {after / b:.2f}x   (issue goal: no more than 1.10x)")


if __name__ == "__main__":
    main()
