"""Supervisor throughput: a script's heavy output, under the supervisor vs alone.

    .venv/bin/python bench/bench_supervisor.py [--mb N] [--repeat N]

Two scripts print N MB (default 100) with ``print``, as training scripts do:
(a) ordinary lines (100 bytes each, one ``loss: x`` scalar line in 1000);
(b) tqdm-style ``\\r`` progress updates (100 bytes each) with no newline
    until the very end.
Each is timed alone (``python -u``, output to /dev/null, and to a file) and
as a run (launched in the background, until its outcome is recorded: fork of
the supervisor, the script, the tee into ``.guild/output``, scalars, the
outcome). Goal: a run within 1.5x of the script alone.
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
from common import PY, fresh_home, median  # noqa: E402

LINES = """\
import sys
n = {n}
for i in range(n):
    if i % 1000 == 999:
        print(f"loss: {{1.0 / (i + 1):<93.8f}}")
    else:
        print(f"epoch {{i // 10000:4d}} batch {{i % 10000:6d}}/10000  lr=0.00100  loss={{0.5:.6f}}  acc={{0.9:.4f}}  {{'.' * 29}}")
"""

PROGRESS = """\
import sys
n = {n}
for i in range(n):
    pct = i * 100 // n
    print(f"\\r{{pct:3d}}%|{{'#' * (pct // 4):<25}}| {{i:8d}}/{{n}} [00:12<00:15, 36.2it/s] {{'.' * 26}}", end="")
print()
"""


def _script(dirname: str, name: str, template: str, n: int) -> str:
    path = os.path.join(dirname, name)
    with open(path, "w") as f:
        f.write(template.format(n=n))
    return path


def _alone(script: str, to_file: bool) -> tuple[float, int]:
    with tempfile.TemporaryFile() if to_file else open(os.devnull, "wb") as out:
        t0 = time.perf_counter()
        subprocess.run([PY, "-u", script], stdout=out, check=True)
        return time.perf_counter() - t0, out.tell()


def _as_run(script: str, home: str) -> tuple[float, int]:
    from guild_jupyter import api

    t0 = time.perf_counter()
    r = api.run(script, store=home)[0]
    while r.refresh().status == "running":
        time.sleep(0.005)
    took = time.perf_counter() - t0
    assert r.status == "completed", (r.status, api.output(r.id, tail=5, store=home))
    size = os.path.getsize(r.path("output"))
    api.delete(r.id, store=home)
    return took, size


def bench(label: str, script: str, repeat: int, home: str) -> float:
    null = [_alone(script, False)[0] for _ in range(repeat)]
    file = [_alone(script, True) for _ in range(repeat)]
    runs = [_as_run(script, home) for _ in range(repeat)]
    expect = file[0][1]
    sizes = {s for _, s in runs}
    assert sizes == {expect}, f"output sizes {sizes}, expected {expect}"
    n, f, o = median(null), median(t for t, _ in file), median(t for t, _ in runs)
    print(f"{label}  ({expect / 1e6:.0f} MB, median of {repeat})")
    print(f"    script alone, stdout to /dev/null  {n:7.2f} s")
    print(f"    script alone, stdout to a file     {f:7.2f} s")
    print(f"    as a run (supervised, tee+scalars) {o:7.2f} s   {o / n:.2f}x /dev/null   {o / f:.2f}x file"
          f"   (goal <= 1.5x)")
    return o / n


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    n = a.mb * 1_000_000 // 100
    proj = tempfile.mkdtemp(prefix="gj-bench-proj-")
    home = fresh_home()
    os.environ["GUILD_HOME"] = home
    lines = _script(proj, "lines.py", LINES, n)
    progress = _script(proj, "progress.py", PROGRESS, n)
    bench("(a) ordinary lines", lines, a.repeat, home)
    bench("(b) \\r progress output, no newlines", progress, a.repeat, home)


if __name__ == "__main__":
    main()
