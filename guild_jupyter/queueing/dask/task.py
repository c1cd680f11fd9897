"""What runs on a Dask worker for one run: the Dask task.

``run_on_worker`` (key: the run id) has the run's runner (:mod:`.runner`)
forked by the worker's launcher (:mod:`.launcher`: a warm process, so no
interpreter starts per run), else spawns it as ``python -m
guild_jupyter.queueing.dask.runner``, in its own session; it keeps the
other end of the runner's stdin (its EOF tells the runner the worker
died) and returns the runner's last report line as its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ...store.dask_records import this_host
from . import launcher


def run_on_worker(run_dir: str, owner: dict, gpu_count: int, key: str) -> dict:
    """The Dask task (``key``: its own key). Returns ``{"result": "exit"|"skip"|"error", ...}``."""
    try:
        from distributed import get_worker

        w = get_worker()
        worker, address = str(w.name), w.address
    except Exception:  # noqa: BLE001 - outside a worker (a test calling it directly)
        worker, address = "", ""
    host = this_host()
    base = {"worker": worker, "address": address, "host": host}
    if not os.path.isdir(os.path.join(run_dir, ".guild")):
        return dict(base, result="error",
                    why=f"the run directory {run_dir} is not visible on Dask worker {worker or host} "
                        "(the store must be on a filesystem all workers see)")
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "") if gpu_count else ""
    argv = [run_dir, json.dumps(owner), key, worker or host, host, gpus]
    lines, code = [], None
    conn = launcher.ensure(launcher.socket_name())
    if conn is not None:  # the worker's launcher forks the runner: no interpreter to start
        try:
            lines = launcher.request(conn, argv)
        except OSError:
            lines = []
    if not lines:  # no launcher, or it died before forking the runner: a fresh interpreter
        cmd = [sys.executable, "-m", "guild_jupyter.queueing.dask.runner", *argv]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
        for raw in proc.stdout:  # stdin stays open: its EOF tells the runner the worker died
            lines.append(raw.decode(errors="replace").strip())
        proc.stdin.close()
        code = proc.wait()
    last = lines[-1] if lines else f"error: the runner exited with status {code} before reporting"
    if last.startswith("exit "):
        return dict(base, result="exit", exit_status=int(last[5:]))
    kind, _, why = last.partition(": ")
    return dict(base, result=kind if kind in ("skip", "error") else "error", why=why or last)
