"""The magics' speed, in a real IPython shell, side by side with the guild CLI.

    .venv/bin/python bench/bench_magics.py [--runs N] [--trials N] [--guild-trials N]

(a) ``%guild runs`` with N runs in the store (default 10,000; goal <= 0.5 s):
    the listing, and everything a notebook does with the cell's value
    (IPython's display formatter: text and HTML), showing the default 20
    rows and every row (``--all``); against ``guild runs`` (20 rows);
(b) staging a sweep from a cell, ``%guild run train.py
    lr=linspace[0:1:N] --stage`` (default 1,000 trials; goal <= 2 s), with and
    without rendering the result, against ``guild run ... --stage-trials``
    per trial (measured on fewer trials: Guild takes a while per trial).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from common import GUILD, env_for, fresh_home, median, ratio  # noqa: E402

TRAIN = "lr = 0.1\nepochs = 2\nfor i in range(epochs):\n    print(f'loss: {lr / (i + 1)}')\n"


def shell_in(home: str, project: str):
    from IPython.core.interactiveshell import InteractiveShell

    from traitlets.config import Config

    os.environ["GUILD_HOME"] = home
    os.environ["IPYTHONDIR"] = fresh_home("gj-bench-ipython-")  # never the user's ~/.ipython
    os.chdir(project)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    sh = InteractiveShell.instance(config=config)
    sh.extension_manager.load_extension("guild_jupyter")
    return sh


def best_of(n, fn):
    times, value = [], None
    for _ in range(n):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), median(times), value


def fill_store(home: str, project: str, n: int) -> None:
    """One real completed run, copied to n - 1 more run dirs with fresh ids."""
    env = env_for(home)
    subprocess.run([sys.executable, "-m", "guild_jupyter", "run", "train.py", "--foreground"],
                   cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
    runs = os.path.join(home, "runs")
    (template,) = os.listdir(runs)
    src = os.path.join(runs, template)
    for _ in range(n - 1):
        shutil.copytree(src, os.path.join(runs, uuid.uuid4().hex), symlinks=True)


def bench_listing(sh, n: int, home: str, guild_list: bool) -> None:
    fmt = sh.display_formatter.format

    def magic_and_display(line):
        value = sh.run_line_magic("guild", line)
        data, _meta = fmt(value)
        assert len(value) == n and "text/html" in data and "text/plain" in data
        return len(data["text/html"])

    listing_min, listing_med, _ = best_of(3, lambda: sh.run_line_magic("guild", "runs"))
    shown_min, shown_med, size = best_of(3, lambda: magic_and_display("runs"))
    # Every row: a fresh listing each time, so each run's attrs are read for the table.
    all_min, all_med, all_size = best_of(3, lambda: magic_and_display("runs --all"))
    print(f"(a) %guild runs with {n} runs in the store (best / median of 3)")
    print(f"    listing only (the magic's value)           {listing_min:6.3f} s / {listing_med:6.3f} s")
    print(f"    listing + display, 20 rows (the default)   {shown_min:6.3f} s / {shown_med:6.3f} s"
          f"   {size / 1e3:.0f} kB HTML   (goal <= 0.5 s)")
    print(f"    listing + display, every row (--all)       {all_min:6.3f} s / {all_med:6.3f} s"
          f"   {all_size / 1e6:.1f} MB HTML")
    if guild_list and os.access(GUILD, os.X_OK):
        t0 = time.perf_counter()
        subprocess.run([GUILD, "runs"], env=env_for(home), check=True, stdout=subprocess.DEVNULL)
        g = time.perf_counter() - t0
        print(f"    guild runs (shows 20; whole process)       {g:6.3f} s"
              f"   ratio guild/ours (default display) {ratio(g, shown_min)}")


def bench_staging(sh, home: str, project: str, trials: int, guild_trials: int) -> None:
    runs_dir = os.path.join(home, "runs")
    line = f"run train.py lr=linspace[0:1:{trials}] --stage"

    def stage():
        shutil.rmtree(runs_dir, ignore_errors=True)
        os.makedirs(runs_dir)
        t0 = time.perf_counter()
        value = sh.run_line_magic("guild", line)
        t1 = time.perf_counter()
        sh.display_formatter.format(value)
        t2 = time.perf_counter()
        assert len(value) == trials and len(os.listdir(runs_dir)) == trials
        return t1 - t0, t2 - t0

    results = [stage() for _ in range(3)]
    magic = min(r[0] for r in results)
    shown = min(r[1] for r in results)
    print(f"(b) %guild {line}  (best of 3)")
    print(f"    staging                               {magic:6.3f} s   {magic / trials * 1000:6.2f} ms/trial")
    print(f"    staging + notebook display            {shown:6.3f} s   (goal <= 2 s)")
    if guild_trials and os.access(GUILD, os.X_OK):
        ghome = fresh_home()
        t0 = time.perf_counter()
        subprocess.run([GUILD, "run", "train.py", f"lr=linspace[0:1:{guild_trials}]", "--stage-trials", "-y"],
                       cwd=project, env=env_for(ghome), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        g = time.perf_counter() - t0
        staged = len(os.listdir(os.path.join(ghome, "runs")))
        per_guild = g / max(1, staged)
        print(f"    guild run --stage-trials, {staged} trials   {g:6.3f} s   {per_guild * 1000:6.2f} ms/trial"
              f"   ratio guild/ours per trial {ratio(per_guild, magic / trials)}")
        shutil.rmtree(ghome, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--guild-trials", type=int, default=50, help="trials for the guild CLI (0: skip)")
    p.add_argument("--no-guild-list", action="store_true", help="skip timing `guild runs` on the big store")
    a = p.parse_args()
    project = fresh_home("gj-bench-proj-")
    with open(os.path.join(project, "train.py"), "w") as f:
        f.write(TRAIN)
    home = fresh_home()
    t0 = time.perf_counter()
    fill_store(home, project, a.runs)
    print(f"filled a store with {a.runs} runs in {time.perf_counter() - t0:.1f} s ({home})")
    sh = shell_in(home, project)
    bench_listing(sh, a.runs, home, not a.no_guild_list)
    stage_home = fresh_home()
    os.environ["GUILD_HOME"] = stage_home
    bench_staging(sh, stage_home, project, a.trials, a.guild_trials)
    os.chdir(os.path.dirname(project))
    for d in (home, stage_home, project, os.environ["IPYTHONDIR"]):
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
