"""The tail of a huge run output, whole processes timed side by side.

    .venv/bin/python bench/bench_tail.py [--mib 1024] [--repeat 5]

``guild-jupyter output RUN --tail 10`` on a run whose output is ``--mib``
MiB (1 GiB by default): wall time and peak RSS of the CLI process (goal:
<= 50 ms and <= 50 MB). Guild 0.9's ``guild cat`` has no tail option, so
the peers are ``guild cat --output RUN`` (what a Guild user pipes into
``tail``: it reads the whole output) and coreutils' ``tail -n 10 FILE``.
The store and its 1 GiB file are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import GUILD, OURS, env_for, fresh_home, median, project, ratio  # noqa: E402

LAST = b"".join(b"last line %d: 50%%\r100%%\n" % i for i in range(10))


TIME = "/usr/bin/time"  # GNU time: the peak RSS of a child it forks itself


def measure(cmd, env=None) -> tuple[float, int, bytes]:
    """(wall seconds, peak RSS in bytes, stdout) of one whole process.

    The RSS comes from a second run under GNU time when there is one: a
    child forked by this (big) Python process inherits its high-water RSS
    mark through exec, so wait4's figure would be ours, not the command's."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    if os.access(TIME, os.X_OK):
        t = subprocess.run([TIME, "-f", "%M", *cmd], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=True)
        rss = int(t.stderr.split()[-1]) * 1024
    else:  # an upper bound
        import resource

        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return wall, rss, p.stdout


def big_run(home: str, env: dict, mib: int) -> tuple[str, str]:
    """A real finished run (staged, then unstaged: no process needed) whose
    output is ``mib`` MiB ending in ``LAST``."""
    proj = project("print('hello')\n")
    try:
        subprocess.run(OURS + ["run", "tiny.py", "--stage"], env=env, cwd=proj, check=True,
                       stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(proj)
    run_id = os.listdir(os.path.join(home, "runs"))[0]
    subprocess.run(OURS + ["unstage", run_id], env=env, check=True, stdout=subprocess.DEVNULL)
    path = os.path.join(home, "runs", run_id, ".guild", "output")
    block = (b"y" * 99 + b"\n") * (1024 * 1024 // 100)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)
        f.write(LAST)
    try:
        os.remove(path + ".index")  # its per-line records would not match the file
    except FileNotFoundError:
        pass
    return run_id, path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    home = fresh_home()
    try:
        env = env_for(home)
        run_id, path = big_run(home, env, a.mib)
        size = os.path.getsize(path)
        ours = [measure(OURS + ["output", run_id, "--tail", "10"], env) for _ in range(a.repeat)]
        assert all(out == LAST for _, _, out in ours), "wrong tail"
        coreutils = [measure(["tail", "-n", "10", path]) for _ in range(a.repeat)]
        guild_wall, guild_rss, guild_out = measure([GUILD, "cat", "--output", run_id], env)
        assert guild_out.endswith(LAST) and len(guild_out) >= size - 64
        o_wall, o_rss = median([w for w, _, _ in ours]), max(r for _, r, _ in ours)
        t_wall, t_rss = median([w for w, _, _ in coreutils]), max(r for _, r, _ in coreutils)
        print(f"tail of a {size / 2**30:.2f} GiB run output (median wall of {a.repeat}, max peak RSS)")
        bare = median([measure([sys.executable, "-c", "pass"])[0] for _ in range(a.repeat)])
        print(f"    python -c pass (start-up floor)      {bare * 1000:8.1f} ms")
        print(f"    guild-jupyter output RUN --tail 10  {o_wall * 1000:8.1f} ms  {o_rss / 2**20:7.1f} MB"
              f"   (goal <= 50 ms, <= 50 MB)")
        print(f"    tail -n 10 FILE (coreutils)         {t_wall * 1000:8.1f} ms  {t_rss / 2**20:7.1f} MB")
        print(f"    guild cat --output RUN              {guild_wall * 1000:8.1f} ms  {guild_rss / 2**20:7.1f} MB"
              f"   ratio guild/ours {ratio(guild_wall, o_wall)} (time), {ratio(guild_rss, o_rss)} (memory)")
        print("    (Guild 0.9's cat has no tail option: it reads the whole output)")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
