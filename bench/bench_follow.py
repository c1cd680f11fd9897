"""Live output latency: from a line written by a run to the line shown.

    .venv/bin/python bench/bench_follow.py [--lines 200] [--rate 20] [--repeat 3]

A real run (started in the background, its supervisor teeing its output)
prints ``tick I TIME`` lines, ``TIME`` being ``time.time()`` as it prints,
``--rate`` lines a second after a short warm-up. Three followers read it at
the same time and record when each line reaches them:

- ``api.follow`` in this process (what ``%guild output RUN --follow`` runs
  in a kernel), writing to a recorder;
- ``guild-jupyter output RUN -f``, a whole CLI process read through a pipe
  (what a terminal shows);
- coreutils ``tail -F`` on the run's ``.guild/output``: the peer. Guild 0.9
  has no follow of its own (``guild cat --output`` prints what is there and
  exits), so a Guild user follows a run with ``tail -f``.

Reports p50/p95/max latency per follower (goal for ours: p50 <= 100 ms),
ratios against ``tail -F``, and whether every line arrived; also how long
after the run's end ``api.follow`` returned (goal: within 1 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import OURS, env_for, fresh_home, pct  # noqa: E402

SCRIPT = ("import time\nlines = 200\nrate = 20.0\nwarmup = 2.0\ntime.sleep(warmup)\n"
          "for i in range(lines):\n    print(f'tick {i} {time.time():.6f}', flush=True)\n    time.sleep(1.0 / rate)\n")


class Recorder:
    """Collects (line, receive time) from text written in pieces."""

    def __init__(self):
        self.buf = ""
        self.got: dict = {}

    def write(self, text: str) -> None:
        now = time.time()
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for ln in lines:
            parts = ln.split()
            if len(parts) == 3 and parts[0] == "tick":
                self.got[int(parts[1])] = now - float(parts[2])

    def flush(self) -> None:
        pass


def read_pipe(proc, rec: Recorder) -> None:
    for line in iter(proc.stdout.readline, b""):
        rec.write(line.decode("utf-8", "replace"))


def one_round(home: str, proj: str, lines: int, rate: float) -> dict:
    os.environ["GUILD_HOME"] = home
    from guild_jupyter import api

    run = api.run(os.path.join(proj, "ticker.py"), f"lines={lines}", f"rate={rate}")[0]
    env = env_for(home)
    recs = {"api.follow": Recorder(), "guild-jupyter output -f": Recorder(), "tail -F (peer)": Recorder()}
    cli = subprocess.Popen(OURS + ["output", run.id, "-f"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    tail = subprocess.Popen(["tail", "-n", "+1", "-F", run.path("output")], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    readers = [threading.Thread(target=read_pipe, args=(p, recs[name]), daemon=True)
               for p, name in ((cli, "guild-jupyter output -f"), (tail, "tail -F (peer)"))]
    for t in readers:
        t.start()
    ended = api.follow(run.id, recs["api.follow"], note=open(os.devnull, "w"))
    returned = time.time()
    cli.wait(30)
    deadline = time.monotonic() + 3.0  # tail -F never ends by itself: give it time for the last lines
    while len(recs["tail -F (peer)"].got) < lines and time.monotonic() < deadline:
        time.sleep(0.01)
    tail.terminate()
    tail.wait(10)
    for t in readers:
        t.join(10)
    return {"recs": recs, "after_end": returned - ended.stopped / 1e6, "status": ended.status}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=200)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    home = fresh_home()
    proj = os.path.join(home, "proj")
    os.makedirs(proj)
    with open(os.path.join(proj, "ticker.py"), "w") as f:
        f.write(SCRIPT)
    lat: dict = {}
    missing: dict = {}
    after_end = []
    try:
        for _ in range(args.repeat):
            r = one_round(home, proj, args.lines, args.rate)
            after_end.append(r["after_end"])
            for name, rec in r["recs"].items():
                lat.setdefault(name, []).extend(rec.got.values())
                missing[name] = missing.get(name, 0) + (args.lines - len(rec.got))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    peer = pct(lat["tail -F (peer)"], 50) if lat.get("tail -F (peer)") else None
    print(f"{args.repeat} runs x {args.lines} lines at {args.rate:g} lines/s; latency from print() in the run "
          f"to the line received:")
    print(f"{'follower':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'lines lost':>10} {'p50 vs tail -F':>15}")
    for name, xs in lat.items():
        ms = [x * 1000 for x in xs]
        rel = f"{pct(xs, 50) / peer:.2f}x" if peer else "-"
        print(f"{name:28} {pct(ms, 50):8.1f} {pct(ms, 95):8.1f} {max(ms):8.1f} {missing[name]:10d} {rel:>15}")
    print(f"api.follow returned {1000 * max(after_end):.0f} ms (max) after the run's recorded end "
          f"(median {1000 * sorted(after_end)[len(after_end) // 2]:.0f} ms); goal: within 1 s")
    goal = pct(lat["api.follow"], 50) <= 0.1 and missing["api.follow"] == 0
    print(f"goal p50 <= 100 ms with every line: {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
