"""CLI start-up: ``guild-jupyter runs`` on an empty store, this tree against
an earlier commit and against the real ``guild runs``, in the same run.

    .venv/bin/python bench/bench_startup.py [REF] [--samples 20]

REF (default: the commit before the verbs' glue, 2c8e9a9) is exported with
``git archive`` and byte-compiled; both trees run from this venv's
interpreter as ``python -m guild_jupyter runs`` with ``PYTHONPATH`` pointing
at their tree, sample by sample in turn so that machine load hits both
alike. Prints each one's median and p90 and the ratios.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_before_after import export  # noqa: E402
from common import GUILD, PY, env_for, fresh_home, median, pct, timed  # noqa: E402

DEFAULT_REF = "2c8e9a9"


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
    for cmd, e in cmds.values():  # warm the page cache and the byte-code
        timed(cmd, env=e)
    times: dict = {k: [] for k in cmds}
    for _ in range(opts.samples):
        for name, (cmd, e) in cmds.items():
            times[name].append(timed(cmd, env=e))
    for name, xs in times.items():
        print(f"{name:>7}: median {median(xs) * 1000:7.1f} ms   p90 {pct(xs, 90) * 1000:7.1f} ms   (n={len(xs)})")
    b, a, g = (median(times[k]) for k in ("before", "after", "guild"))
    print(f"after / before: {a / b:.3f}   guild runs / after: {g / a:.1f}x")


if __name__ == "__main__":
    main()
