"""Helpers shared by the benchmarks: timing whole commands and making stores."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

PY = sys.executable
GUILD = os.path.join(os.path.dirname(sys.executable), "guild")
OURS = [os.path.join(os.path.dirname(sys.executable), "guild-jupyter")]  # the console script users run


def _precompile() -> None:
    """Byte-compile the package once: with PYTHONDONTWRITEBYTECODE set (as on
    these machines) every process would otherwise compile what changed."""
    import compileall

    compileall.compile_dir(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "guild_jupyter"),
                           quiet=1)


_precompile()


def export(ref: str, prefix: str = "gj-before-") -> str:
    """The package as it was at ``ref`` (``git archive``), byte-compiled, in a
    new directory: what a ``--ref`` column runs with ``PYTHONPATH`` at it
    (from a directory that is not this checkout, which ``python -m`` would
    put ahead of PYTHONPATH)."""
    import compileall

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    d = tempfile.mkdtemp(prefix=prefix)
    archive = subprocess.run(["git", "-C", root, "archive", ref, "guild_jupyter"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", d], input=archive, check=True)
    compileall.compile_dir(os.path.join(d, "guild_jupyter"), quiet=1)
    return d


def timed(cmd, env=None, cwd=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def bare_start(n: int = 10) -> float:
    """Median wall time of ``python -c pass``: the start-up floor a per-run overhead subtracts."""
    return median([timed([PY, "-c", "pass"]) for _ in range(n)])


def run_ids(home: str) -> set:
    return set(os.listdir(os.path.join(home, "runs")))


def wait_until(cond, timeout: float, what: str, interval: float = 0.005):
    """Polls ``cond`` until it returns something truthy (returned); exits the bench after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise SystemExit(f"bench: timed out waiting for {what}")


def fmt_lat(xs, width: int = 8) -> str:
    """p50 and p95 of latencies in seconds, in ms."""
    return f"p50 {median(xs) * 1000:{width}.1f} ms   p95 {pct(xs, 95) * 1000:{width}.1f} ms   (n={len(xs)})"


def median(xs):
    return statistics.median(xs)


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def fresh_home(prefix="gj-bench-") -> str:
    d = tempfile.mkdtemp(prefix=prefix)
    os.makedirs(os.path.join(d, "runs"))
    return d


def env_for(home: str) -> dict:
    e = dict(os.environ, GUILD_HOME=home, NO_IMPORT_FLAGS_PROGRESS="1")
    e.pop("CUDA_VISIBLE_DEVICES", None)
    return e


def env_of_version(home: str, tree: str | None) -> dict:
    """``env_for`` that runs ``tree`` (an ``export``ed earlier version) on
    ``PYTHONPATH``, or, with None, the venv's own install (no PYTHONPATH).
    The commands must run from a directory that is not a checkout:
    ``python -m`` puts the working directory ahead of PYTHONPATH."""
    e = env_for(home)
    if tree is not None:
        e["PYTHONPATH"] = tree
    else:
        e.pop("PYTHONPATH", None)
    return e


def clone_runs(home: str, template_run_dir: str, n: int) -> None:
    """Fills a store with ``n`` copies of one run (fresh ids), fast."""
    runs = os.path.join(home, "runs")
    for _ in range(n):
        shutil.copytree(template_run_dir, os.path.join(runs, uuid.uuid4().hex))


def project(script="x = 0\n") -> str:
    d = tempfile.mkdtemp(prefix="gj-bench-proj-")
    with open(os.path.join(d, "tiny.py"), "w") as f:
        f.write(script)
    return d


def ratio(peer: float, ours: float) -> str:
    return f"{peer / ours:.1f}x" if ours > 0 else "inf"
