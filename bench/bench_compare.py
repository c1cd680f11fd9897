"""Compare speed, side by side with the real ``guild compare --csv``.

    .venv/bin/python bench/bench_compare.py [--runs 1000] [--steps 20] [--repeat 3]

A store of N runs, each with 5 scalars logged over ``--steps`` steps and
its own flags, is made from one real run: its directory copied with fresh
ids, its flags rewritten with the store's attr writer and its event file
rewritten with the supervisor's ``ScalarWriter`` (so each run's values
differ). Then, on the same store:

- ``guild-jupyter compare --json`` (a new process) vs ``guild compare
  --csv -``: the ratio is the goal (>= 10x). Measured twice: the first
  compare of the store, which decodes every event file (``scalars.json``
  removed before each try), and a later one, which finds the runs in
  ``cache/guild_jupyter/scalars.json`` and only stats their files;
- ``guild-jupyter compare --sort -acc --json`` (filters and sort cost little);
- ``api.compare()`` in a process that compared before (warm: the event
  files are only stat'ed), as a notebook that compares again sees it.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from common import GUILD, OURS, env_for, fresh_home, median, project, ratio, timed  # noqa: E402

SCRIPT = ("lr = 0.1\nbatch = 32\nsteps = 2\n"
          "for i in range(steps):\n"
          "    print(f'step: {i}')\n"
          "    for k in ('loss', 'acc', 'val_loss', 'val_acc', 'lr_now'):\n"
          "        print(f'{k}: {lr / (i + 1)}')\n")
TAGS = ("loss", "acc", "val_loss", "val_acc", "lr_now")


def make_store(n: int, steps: int) -> str:
    from guild_jupyter import api
    from guild_jupyter.store.scalars.writer import ScalarWriter
    from guild_jupyter.store import attrs

    home = fresh_home("gj-bench-compare-")
    proj = project(SCRIPT)
    template = api.run(os.path.join(proj, "tiny.py"), foreground=True, stream=io.StringIO(), store=home)[0]
    runs = os.path.join(home, "runs")
    for i in range(n - 1):
        d = os.path.join(runs, uuid.uuid4().hex)
        shutil.copytree(template.dir, d)
        gdir = os.path.join(d, ".guild")
        lr, batch = 0.001 * (i + 1), 2 ** (i % 6)
        attrs.write_attr(os.path.join(gdir, "attrs"), "flags", {"lr": lr, "batch": batch, "steps": steps})
        for name in os.listdir(gdir):
            if name.startswith("events.out.tfevents"):
                os.remove(os.path.join(gdir, name))
        w = ScalarWriter(gdir, set())
        for step in range(steps):
            w.feed(f"step: {step}\n".encode())
            for k, tag in enumerate(TAGS):
                w.feed(f"{tag}: {lr * (k + 1) / (step + 1)}\n".encode())
        w.close()
    shutil.rmtree(proj, ignore_errors=True)
    return home


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=20, help="steps each run logged its 5 scalars at")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    home = make_store(args.runs, args.steps)
    print(f"store: {home} ({args.runs} runs x 5 scalars x {args.steps} steps; made in {time.perf_counter() - t0:.1f} s)")
    env = env_for(home)
    try:
        saved = os.path.join(home, "cache", "guild_jupyter", "scalars.json")
        first = []
        for _ in range(args.repeat):
            if os.path.exists(saved):
                os.remove(saved)
            first.append(timed(OURS + ["compare", "--json"], env=env))
        assert os.path.exists(saved)
        ours = [timed(OURS + ["compare", "--json"], env=env) for _ in range(args.repeat)]
        sort = [timed(OURS + ["compare", "--sort", "-acc", "--json"], env=env) for _ in range(args.repeat)]
        peer = [timed([GUILD, "compare", "--csv", "-"], env=env) for _ in range(args.repeat)]
        from guild_jupyter import api

        table = api.compare(store=home)
        assert len(table) == args.runs and len(table.scalar_names) == 5, (len(table), table.scalar_names)
        warm = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            api.compare(store=home)
            warm.append(time.perf_counter() - t)
        print(f"    guild compare --csv -                     {median(peer):8.2f} s   (median of {args.repeat})")
        print(f"    guild-jupyter compare --json, first       {median(first):8.2f} s   ratio {ratio(median(peer), median(first))}   (every event file decoded)")
        print(f"    guild-jupyter compare --json, later       {median(ours):8.2f} s   ratio {ratio(median(peer), median(ours))}   (goal >= 10x)")
        print(f"    guild-jupyter compare --sort -acc --json  {median(sort):8.2f} s   ratio {ratio(median(peer), median(sort))}")
        print(f"    api.compare() again in one process        {median(warm):8.2f} s   ratio {ratio(median(peer), median(warm))}")
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
