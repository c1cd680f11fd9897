"""Priorities and dependencies (SPEC 12): what ``--after`` costs, side by
side with plain staging and the real guild CLI in the same run.

    .venv/bin/python bench/bench_deps.py [--runs 10000] [--reps 15] [--guild-reps 3] [--samples 20]

(a) staging one run into a store of ``--runs`` runs, a whole CLI process
    each, interleaved: ``guild-jupyter run --stage`` (plain), with
    ``--after ID-PREFIX`` (a run's 8-character prefix: the store's listing
    is read to tell a run from a sweep id), with ``--after 1:6`` (a listing
    range), with ``--priority 5``; and ``guild run --stage -y`` (Guild has
    no ``--after``). Medians; goal: ``--after`` <= 2x plain. With
    ``--before REF[,REF]`` (default d3129e0, the last round's commit, exported
    with ``git archive``), plain staging by that tree too, interleaved, as
    ``python -m guild_jupyter`` with ``PYTHONPATH`` at each tree (this tree
    also so, for a like-for-like ratio), each in its own copy of the store
    (the two versions' listing files differ).
(b) from a dependency's end to its dependent running, with a queue
    waiting: the dependency's recorded ``stopped`` to the dependent's
    recorded ``started`` (both written by the store on this machine). A
    detached queue with two slots (the second slot waits while the
    dependency runs), and one with a single slot (the slot the dependency
    frees takes its dependent). Beside it, in the same queue, the pickup of
    a plain staged run (stage returns -> started). Goal: p50 <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import common  # noqa: E402
from common import (GUILD, OURS, PY, clone_runs, env_for, fmt_lat, fresh_home, median, project,  # noqa: E402
                    timed)
from common import wait_until as _wait  # noqa: E402

from guild_jupyter.store.run import Run  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SLEEP_PY = "import time\nsleep = 0.0\ntime.sleep(sleep)\n"


def big_store(n: int) -> tuple[str, str, str]:
    """(home, project, the id of a completed run) of a store of ``n`` runs:
    one real run, cloned."""
    proj = project(SLEEP_PY)
    home = fresh_home()
    env = env_for(home)
    subprocess.run(OURS + ["run", "tiny.py", "--foreground"], env=env, cwd=proj, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (template,) = os.listdir(os.path.join(home, "runs"))
    clone_runs(home, os.path.join(home, "runs", template), n - 1)
    past = time.time() - 600  # as a store that is not brand new: its runs' stamps settled (store.index)
    for run_id in os.listdir(os.path.join(home, "runs")):
        for rel in (".guild/attrs/label", ".guild/attrs", ".guild"):
            os.utime(os.path.join(home, "runs", run_id, rel), (past, past))
    subprocess.run(OURS + ["runs", "-n", "1"], env=env, cwd=proj, check=True, stdout=subprocess.DEVNULL)  # the index
    return home, proj, template


def export(ref: str) -> str:
    return common.export(ref, "gj-before-")


def staging(a) -> None:
    home, proj, dep = big_store(a.runs)
    env = env_for(home)
    kinds = {
        "plain": (OURS + ["run", "tiny.py", "--stage"], env),
        "--after ID-PREFIX": (OURS + ["run", "tiny.py", "--stage", "--after", dep[:8]], env),
        "--after 1:6": (OURS + ["run", "tiny.py", "--stage", "--after", "1:6"], env),
        "--priority 5": (OURS + ["run", "tiny.py", "--stage", "--priority", "5"], env),
    }
    befores = [ref for ref in a.before.split(",") if ref]
    if befores:
        module = [PY, "-m", "guild_jupyter", "run", "tiny.py", "--stage"]
        kinds["plain, python -m"] = (module, dict(env, PYTHONPATH=ROOT))
        for ref in befores:
            before_home, _p, _d = big_store(a.runs)
            kinds[f"plain, python -m, {ref}"] = (module, dict(env_for(before_home), PYTHONPATH=export(ref)))
    times: dict = {k: [] for k in kinds}
    for k, (cmd, e) in kinds.items():  # warm: the listing file written once for the store as it is
        timed(cmd, e, proj)
    for _ in range(a.reps):
        for k, (cmd, e) in kinds.items():
            times[k].append(timed(cmd, e, proj))
    g = [timed([GUILD, "run", "tiny.py", "--stage", "-y"], env, proj) for _ in range(a.guild_reps)]
    plain = median(times["plain"])
    print(f"(a) staging one run into a store of {a.runs} runs, whole CLI process, median of {a.reps} "
          f"(interleaved)")
    for k, xs in times.items():
        print(f"    guild-jupyter run --stage {k:26s} {median(xs) * 1000:8.1f} ms   x{median(xs) / plain:.2f} of plain")
    for ref in befores:
        now, then = median(times["plain, python -m"]), median(times[f"plain, python -m, {ref}"])
        print(f"    plain staging, this tree / {ref}: x{now / then:.2f}")
    print(f"    guild run --stage -y (no --after)           {median(g) * 1000:8.1f} ms   "
          f"({median(g) / plain:.1f}x ours plain; median of {a.guild_reps})")
    print("    goal: --after <= 2x plain staging")


def _started(home, run_id):
    r = Run(os.path.join(home, "runs", run_id))
    if r.status in ("staged", "pending"):
        return None
    return r.get("started")


def _stopped(home, run_id):
    r = Run(os.path.join(home, "runs", run_id))
    return r.get("stopped") if r.status in ("completed", "error", "terminated") else None


def latency(a, max_running: int) -> tuple[list, list]:
    """(dependency ended -> dependent started, plain pickup) in seconds."""
    from guild_jupyter import api

    proj = project(SLEEP_PY)
    home = fresh_home()
    os.environ["GUILD_HOME"] = home
    q = api.queue(f"max-running={max_running}", background=True, store=home)
    _wait(lambda: os.path.getsize(q.run.path("output")) > 0 if os.path.exists(q.run.path("output")) else False,
          30, "the queue")
    script = os.path.join(proj, "tiny.py")
    after, pickup = [], []
    try:
        for _ in range(a.samples):
            (dep,) = api.run(script, "sleep=0.2", stage=True, store=home)
            (held,) = api.run(script, stage=True, after=dep.id, store=home)
            t = _wait(lambda: _started(home, held.id), 30, "the dependent to start")
            end = _stopped(home, dep.id)
            after.append((t - end) / 1e6)
            _wait(lambda: _stopped(home, held.id), 30, "the dependent to end")
            t0 = time.time()
            (plain,) = api.run(script, stage=True, store=home)
            t = _wait(lambda: _started(home, plain.id), 30, "a plain run to start")
            pickup.append(t / 1e6 - t0)
            _wait(lambda: _stopped(home, plain.id), 30, "the plain run to end")
    finally:
        q.stop(timeout=20)
    return after, pickup


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10000)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--guild-reps", type=int, default=3)
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--before", default="d3129e0",
                   help="commits (comma-separated) whose plain staging is timed too ('' for none)")
    p.add_argument("--skip", default="", help="comma list of parts to skip: a,b")
    a = p.parse_args()
    skip = set(a.skip.split(","))
    if "a" not in skip:
        staging(a)
    if "b" not in skip:
        print("(b) a dependency's end -> its dependent running (recorded stopped -> recorded started), "
              "a detached queue waiting")
        for slots in (2, 1):
            after, pickup = latency(a, slots)
            print(f"    max-running={slots}: --after   {fmt_lat(after)}")
            print(f"    max-running={slots}: plain pickup (stage returns -> started) {fmt_lat(pickup)}")
        print("    goal: p50 <= 50 ms; guild 0.9 has no --after (a pipeline there is a script that polls)")


if __name__ == "__main__":
    main()
