"""Per-run overhead of a notebook run, against papermill running the same notebook.

    .venv/bin/python bench/bench_notebook.py [--repeat N] [--work S] [--queued N]

The notebook: a markdown cell, a tagged parameters cell (``lr``, ``work``),
the injected values, a cell that prints five ``loss:`` lines and sleeps
``work`` seconds (default 1.0), an expression. Its own work is that sleep;
everything else is overhead: interpreter and imports, staging, the
supervisor, a fresh kernel (started, then shut down), cell execution
round-trips, the output tee, saving the executed notebook.

Measured in the same run, interleaved (ours, papermill, ours, ...), each a
fresh process, with the venv's interpreter:

(a) ``guild-jupyter run nb.ipynb lr=0.3 --foreground`` -- the whole command,
    to the recorded outcome -- against ``papermill nb.ipynb out.ipynb -p lr
    0.3`` (each: wall time minus ``work``);
(b) ``--queued`` staged trials of a sweep started one after another by a
    ``guild-jupyter queue run-once=yes`` (queue start to its exit, per run,
    minus ``work``) against as many papermill commands one after another.

Goal: ours <= 1.2x papermill's overhead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import OURS, PY, env_for, fresh_home, median  # noqa: E402

PAPERMILL = os.path.join(os.path.dirname(PY), "papermill")


def write_notebook(path: str, work: float) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell(f"lr = 0.1\nwork = {work!r}\n")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        new_markdown_cell("# A training notebook"),
        params,
        new_code_cell("import time\nfor step in range(5):\n    print(f'step: {step}')\n"
                      "    print(f'loss: {lr / (step + 1):.6f}')\ntime.sleep(work)"),
        new_code_cell("lr * 2"),
    ]
    nbformat.write(nb, path)


def _env(home: str) -> dict:
    env = env_for(home)
    # papermill's python3 kernelspec (the venv's share/jupyter/kernels) runs
    # "python": this venv's, as ours runs sys.executable.
    env["PATH"] = os.path.dirname(PY) + os.pathsep + env.get("PATH", "")
    return env


def _timed(cmd, env, cwd) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return took


def ours_foreground(proj: str, home: str) -> float:
    return _timed(OURS + ["run", "nb.ipynb", "lr=0.3", "--foreground"], _env(home), proj)


def papermill(proj: str, home: str, out: str) -> float:
    return _timed([PAPERMILL, "nb.ipynb", out, "-p", "lr", "0.3", "--no-progress-bar", "--log-level", "ERROR"],
                  _env(home), proj)


def ours_queued(proj: str, home: str, n: int) -> float:
    """Stages an ``n``-trial sweep, then times a run-once queue starting them
    one after another (queue start to exit). Returns the time per run."""
    values = ",".join(str(0.1 * (i + 1)) for i in range(n))
    _timed(OURS + ["run", "nb.ipynb", f"lr=[{values}]", "--stage"], _env(home), proj)
    took = _timed(OURS + ["queue", "run-once=yes"], _env(home), proj)
    from guild_jupyter import api

    done = [r for r in api.runs(store=home) if not r.is_queue]
    statuses = {r.status for r in done[:n]}
    if statuses != {"completed"}:
        raise SystemExit(f"bench: queued runs ended {statuses}")
    return took / n


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--work", type=float, default=1.0, help="seconds the notebook itself works (a sleep)")
    p.add_argument("--queued", type=int, default=4, help="trials started by one queue in (b)")
    a = p.parse_args()
    if not os.access(PAPERMILL, os.X_OK):
        raise SystemExit("bench: papermill is not installed in this venv (pip install -e '.[test]')")
    proj = tempfile.mkdtemp(prefix="gj-bench-nb-")
    write_notebook(os.path.join(proj, "nb.ipynb"), a.work)
    out = os.path.join(proj, "papermill-out.ipynb")
    home = fresh_home()

    ours_foreground(proj, home)  # warm the page cache for both
    papermill(proj, home, out)
    ours, peer = [], []
    for _ in range(a.repeat):
        ours.append(ours_foreground(proj, home))
        peer.append(papermill(proj, home, out))
    o, m = median(ours) - a.work, median(peer) - a.work
    print(f"notebook run, per-run overhead (work {a.work:.1f} s subtracted; median of {a.repeat}; {sys.executable})")
    print(f"  (a) guild-jupyter run nb.ipynb --foreground   {o:6.2f} s   (wall {median(ours):.2f} s)")
    print(f"      papermill nb.ipynb out.ipynb             {m:6.2f} s   (wall {median(peer):.2f} s)")
    print(f"      ratio ours/papermill                     {o / m:6.2f}x   (goal <= 1.2x)")

    queued, peer_seq = [], []
    for _ in range(max(1, a.repeat // 2)):
        queued.append(ours_queued(proj, fresh_home(), a.queued))
        t0 = time.perf_counter()
        for _ in range(a.queued):
            papermill(proj, home, out)
        peer_seq.append((time.perf_counter() - t0) / a.queued)
    q, s = median(queued) - a.work, median(peer_seq) - a.work
    print(f"  (b) {a.queued} staged trials through a run-once queue {q:6.2f} s per run")
    print(f"      {a.queued} papermill commands one after another {s:6.2f} s per run")
    print(f"      ratio ours/papermill                     {q / s:6.2f}x   (goal <= 1.2x)")


if __name__ == "__main__":
    main()
