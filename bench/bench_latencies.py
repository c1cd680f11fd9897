"""The figures the test suite no longer asserts (issue 26 item 9), measured
here side by side with the peer, reported as ratios.

    .venv/bin/python bench/bench_latencies.py [--repeat N]

(a) \\r progress output, binary bytes and a last line without newline (the
    workload of tests/test_process_control.py's byte-exact test): the script
    alone, as our run (background, until its outcome is recorded) and as
    ``guild run -y`` (the real guild CLI).
(b) a run staged while a live panel refreshes itself (every second): how
    long until the panel's own thread shows it, next to one ``guild runs
    --staged`` listing it (the peer's way of seeing it).
(c) a stop of a run whose child, in its own session, ignores SIGTERM and
    holds the output pipe (grace 1 s): ``api.stop`` until it returns with
    the run terminated, next to ``guild stop -y`` of the same run until the
    run is terminated on disk (and until the command returns).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import GUILD, PY, env_for, fresh_home, fmt_lat, median, project, ratio, wait_until  # noqa: E402

PROGRESS = """\
import sys
n = 60000
def chunks(n):
    for i in range(n):
        yield b"\\r%6d/%d |%-30s|" % (i, n, b"#" * (i * 30 // n))
    yield b"\\rloss: 0.25\\r\\n"
    yield bytes(range(256)) * 64
    yield b"\\nacc: 0.5"
if __name__ == "__main__":
    out = sys.stdout.buffer
    for c in chunks(n):
        out.write(c)
"""

ESCAPED = """\
import os, subprocess, sys, time
code = ("import signal, time\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "print('up', flush=True)\\n"
        "while True:\\n"
        "    time.sleep(0.05)\\n")
child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
while True:
    time.sleep(0.05)
"""


def progress_output(repeat: int) -> None:
    from guild_jupyter import api

    proj = project(PROGRESS)
    script = os.path.join(proj, "tiny.py")
    home = fresh_home()
    env = env_for(home)
    alone, ours, peer = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([PY, "-u", script], stdout=subprocess.DEVNULL, check=True)
        alone.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        (r,) = api.run(script, store=home)
        wait_until(lambda: r.refresh().status != "running", 120, "our run to end", 0.002)
        ours.append(time.perf_counter() - t0)
        assert r.status == "completed", r.status
        t0 = time.perf_counter()
        subprocess.run([GUILD, "run", "tiny.py", "-y"], env=env, cwd=proj, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        peer.append(time.perf_counter() - t0)
    a, o, g = median(alone), median(ours), median(peer)
    print(f"(a) \\r progress + binary output, median of {repeat}")
    print(f"    script alone                 {a:7.2f} s")
    print(f"    as our run (until recorded)  {o:7.2f} s   {o / a:.2f}x the script alone")
    print(f"    guild run -y                 {g:7.2f} s   {g / a:.2f}x the script alone   guild/ours {ratio(g, o)}")


def panel_pickup(repeat: int) -> None:
    from guild_jupyter import api
    from guild_jupyter.frontends.panel import panel

    proj = project("x = 0\n")
    script = os.path.join(proj, "tiny.py")
    home = fresh_home()
    env = env_for(home)
    p = panel(store=home, display=False)  # refreshes itself every second
    ours, peer = [], []
    try:
        wait_until(lambda: p.snapshot is not None, 30, "the first refresh")
        for _ in range(repeat):
            t0 = time.perf_counter()
            (r,) = api.run(script, stage=True, store=home)
            wait_until(lambda: any(row.run_id == r.id for row in p.groups["staged"].rows), 30, "the staged run shown",
                       0.002)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = subprocess.run([GUILD, "runs", "--staged"], env=env, capture_output=True, text=True).stdout
            peer.append(time.perf_counter() - t0)
            assert r.id[:8] in out
            api.unstage(r.id, store=home)
    finally:
        p.close()
    print(f"(b) a staged run shown by a live panel (refresh every 1 s), {repeat} runs")
    print(f"    ours: panel thread shows it   {fmt_lat(ours)}")
    print(f"    peer: one guild runs --staged {fmt_lat(peer)}   guild/ours (p50) {ratio(median(peer), median(ours))}")


def stop_escaped(repeat: int) -> None:
    from guild_jupyter import api

    os.environ["GUILD_JUPYTER_STOP_GRACE"] = "1"
    proj = project(ESCAPED)
    script = os.path.join(proj, "tiny.py")
    home = fresh_home()
    env = env_for(home)
    env["GUILD_JUPYTER_STOP_GRACE"] = "1"
    ours, peer, peer_cmd = [], [], []
    for i in range(2 * repeat):
        (r,) = api.run(script, store=home)
        wait_until(lambda: "up" in api.output(r.id, store=home), 30, "the child to be up")
        t0 = time.perf_counter()
        if i % 2 == 0:
            (done,) = api.stop(r.id, store=home)
            assert done.status == "terminated", done.status
            ours.append(time.perf_counter() - t0)
        else:
            stopper = subprocess.Popen([GUILD, "stop", "-y", r.id], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            wait_until(lambda: r.refresh().status == "terminated", 60, "guild stop to end the run", 0.002)
            peer.append(time.perf_counter() - t0)
            stopper.wait(120)  # guild's own command waits on the processes it listed (up to 30 s)
            peer_cmd.append(time.perf_counter() - t0)
    print(f"(c) stop of a run with an escaped child ignoring SIGTERM (grace 1 s), {repeat} each")
    print(f"    ours: api.stop                         {fmt_lat(ours)}")
    print(f"    peer: guild stop -y, run terminated    {fmt_lat(peer)}   guild/ours (p50) "
          f"{ratio(median(peer), median(ours))}")
    print(f"    peer: guild stop -y, command returns   {fmt_lat(peer_cmd)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    progress_output(args.repeat)
    panel_pickup(args.repeat * 2)
    stop_escaped(args.repeat)


if __name__ == "__main__":
    main()
