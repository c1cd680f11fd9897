"""A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 for
tests: started, killed, restarted and closed by the test that uses them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from conftest import wait_for

BIN = os.path.dirname(sys.executable)


class Cluster:
    """A ``dask scheduler`` and named ``dask worker`` processes (no nanny:
    the worker process is the one a test kills)."""

    def __init__(self, tmp, port: int = 0):
        self.tmp = tmp
        os.makedirs(tmp, exist_ok=True)
        self.file = os.path.join(tmp, "scheduler.json")
        self.port = port
        self.workers: dict[str, subprocess.Popen] = {}
        self.gone: list = []  # workers a test let go of (killed, or left to exit): still closed at the end
        self.start_scheduler()

    def start_scheduler(self) -> None:
        """(Again, after ``kill_scheduler``: on the same port when one was given.)"""
        if os.path.exists(self.file):
            os.unlink(self.file)
        env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
        self.scheduler = subprocess.Popen(
            [os.path.join(BIN, "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", self.file],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: os.path.exists(self.file) and os.path.getsize(self.file) > 0, timeout=60,
                 message="the scheduler file")
        self.address = wait_for(lambda: _read_json(self.file).get("address"), timeout=10, message="an address")

    def kill_scheduler(self) -> None:
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(10)

    def add_worker(self, name: str, gpu: bool = False, host: str | None = None) -> None:
        env = dict(os.environ)
        if host:  # the worker plays another machine: the runs it holds are marked held there
            env["GUILD_JUPYTER_HOSTNAME"] = host
        env.pop("CUDA_VISIBLE_DEVICES", None)
        cmd = [os.path.join(BIN, "dask"), "worker", "--scheduler-file", self.file, "--nthreads", "1",
               "--no-nanny", "--name", name, "--host", "127.0.0.1", "--no-dashboard"]
        if gpu:
            env["CUDA_VISIBLE_DEVICES"] = "0"
            cmd += ["--resources", "GPU=1"]
        self.workers[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              start_new_session=True)

    def wait_workers(self, names) -> None:
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as c:
            wait_for(lambda: set(names) <= {w["name"] for w in c.scheduler_info()["workers"].values()},
                     timeout=60, interval=0.1, message=f"workers {names}")

    def kill(self, name: str) -> None:
        p = self.workers.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait(10)

    def close(self) -> None:
        self.workers.update({f"gone-{i}": p for i, p in enumerate(self.gone)})
        for p in [*self.workers.values(), self.scheduler]:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5  # a worker's graceful close may wait on the scheduler: bounded
        for p in [*self.workers.values(), self.scheduler]:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


@contextlib.contextmanager
def running_cluster(tmp, **workers):
    """A ``Cluster`` in ``tmp`` with ``workers`` (name: ``add_worker``'s
    keywords) up and registered; closed on the way out, whatever happens."""
    c = Cluster(tmp)
    try:
        for name, kw in workers.items():
            c.add_worker(name, **kw)
        c.wait_workers(list(workers))
        yield c
    finally:
        c.close()


def _read_json(path):
    import json

    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


