"""Run store and supervisor speed, side by side with the real guild CLI.

    .venv/bin/python bench/bench_core.py [--runs N] [--list N] [--guild-list N]

(a) per-run overhead over a bare ``python -c pass`` for a trivial script:
    ``guild-jupyter run tiny.py --foreground`` (the console script) vs ``guild run tiny.py -y``;
(b) listing a store of N runs: ``guild-jupyter runs`` vs ``guild runs -n N``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import GUILD, OURS, PY, clone_runs, env_for, fresh_home, median, project, ratio, timed  # noqa: E402


def per_run_overhead(n: int) -> None:
    proj = project()
    home = fresh_home()
    env = env_for(home)
    bare = [timed([PY, "-c", "pass"]) for _ in range(n)]
    ours = [timed(OURS + ["run", "tiny.py", "--foreground"], env, proj) for _ in range(n)]
    peer = [timed([GUILD, "run", "tiny.py", "-y"], env, proj) for _ in range(max(3, n // 3))]
    b, o, g = median(bare), median(ours), median(peer)
    print(f"(a) per-run overhead, trivial script, median of {n} (guild: {max(3, n // 3)})")
    print(f"    bare python -c pass      {b * 1000:8.1f} ms")
    print(f"    guild-jupyter foreground {o * 1000:8.1f} ms   overhead {(o - b) * 1000:7.1f} ms")
    print(f"    guild run -y             {g * 1000:8.1f} ms   overhead {(g - b) * 1000:7.1f} ms")
    print(f"    ratio guild/ours overhead: {ratio(g - b, o - b)}   (goal: ours <= 50 ms, >= 8x)")


def listing(n: int, guild_n: int) -> None:
    proj = project("x = 0\nprint('loss: 0.5')\n")
    home = fresh_home()
    env = env_for(home)
    subprocess.run(OURS + ["run", "tiny.py", "--foreground"], env=env, cwd=proj,
                   check=True, stdout=subprocess.DEVNULL)
    template = os.path.join(home, "runs", os.listdir(os.path.join(home, "runs"))[0])
    clone_runs(home, template, n - 1)
    ours_cli = min(timed(OURS + ["runs"], env) for _ in range(3))
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from guild_jupyter import api

    t0 = time.perf_counter()
    rl = api.runs(store=home)
    text = str(rl)
    ours_api = time.perf_counter() - t0
    assert len(rl) == n and text
    print(f"(b) listing {n} runs")
    print(f"    guild-jupyter runs (CLI, whole process) {ours_cli:7.3f} s")
    print(f"    api.runs() + text table (in process)    {ours_api:7.3f} s   (goal <= 0.5 s)")
    if guild_n == n:
        g = timed([GUILD, "runs", "-n", str(n)], env)
        print(f"    guild runs -n {n}                     {g:7.3f} s   ratio {ratio(g, ours_cli)}")
    else:
        small = fresh_home()
        clone_runs(small, template, guild_n)
        senv = env_for(small)
        g = timed([GUILD, "runs", "-n", str(guild_n)], senv)
        o = min(timed(OURS + ["runs"], senv) for _ in range(3))
        print(f"    guild is measured on {guild_n} runs (too slow on {n}):")
        print(f"    guild runs -n {guild_n}  {g:7.3f} s   guild-jupyter runs {o:7.3f} s   ratio {ratio(g, o)}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--list", type=int, default=10000)
    p.add_argument("--guild-list", type=int, default=10000)
    a = p.parse_args()
    per_run_overhead(a.runs)
    listing(a.list, a.guild_list)


if __name__ == "__main__":
    main()
