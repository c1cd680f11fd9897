"""A small real store with something in every group, and the view model's
snapshot and events of it: what ``scripts/make-viewmodel-fixtures.py``
writes to ``tests/fixtures/`` for the browser's tests, and what
``tests/test_viewmodel.py`` checks those files against.

Real runs through the api (a sweep with a failed trial, staged runs, one
with a priority, one held for its dependency, a running run stopped by the
user, a retry), a real queue thread that is
paused, resumed and drained, and fake GPUs (``gpus_fake``: there is no
NVIDIA GPU here). Everything it starts has ended when it returns.
"""

from __future__ import annotations

import io
import os
import time

TRAIN = (
    "import time\n"
    "lr = 0.1\n"
    "epochs = 4\n"
    "secs = 0.0\n"
    "for step in range(epochs):\n"
    "    print(f'loss: {lr / (step + 1):.4f}', flush=True)\n"
    "time.sleep(secs)\n"
    "if lr < 0.005:\n"
    "    raise SystemExit('lr too small: the loss diverged')\n"
)
FAKE_GPUS = [{"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-8f3c1a2b-0000-4000-8000-000000000000",
              "memory": {"total": 80 * 2**30, "used": 3 * 2**30}, "utilization": {"gpu": 45}},
             {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-8f3c1a2b-0000-4000-8000-000000000001",
              "memory": {"total": 80 * 2**30, "used": 0}, "utilization": {"gpu": 0}}]
#: What the fixture files say the store is (instead of a temporary directory).
SHOWN_HOME = "/home/you/.guild"


def _wait(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _seen(watcher, kind: str) -> bool:
    """Looks once more; whether an event of ``kind`` was seen by now."""
    watcher.look()
    return any(e["kind"] == kind for e in watcher.log.since(0))


def build(home: str, project: str) -> tuple[dict, dict]:
    """(snapshot, events answer) of a store built at ``home`` with scripts in
    ``project``: the snapshot taken while a run runs and a queue is paused,
    the events after everything ended (every kind of event)."""
    from guild_jupyter import api
    from guild_jupyter.gpus.nvml import NvmlProbe
    from guild_jupyter.gpus.fake import FakeNvml

    script = os.path.join(project, "train.py")
    with open(script, "w") as f:
        f.write(TRAIN)
    monitor = api.monitor(home, probe=NvmlProbe(nvml=FakeNvml(FAKE_GPUS)), page_size=10)
    watcher = api.EventWatcher(monitor)
    monitor.events = watcher
    watcher.look()
    trials = api.run(script, "lr=[0.1,0.01,0.001]", foreground=True, stream=io.StringIO(), store=home)
    watcher.look()
    failed = next(t for t in trials if t.refresh().status == "error")
    # A queue paused before anything is staged: it starts none of the staged runs below.
    q = api.queue("gpus=7", poll_interval=60, store=home)
    try:
        api.pause_queue(q, store=home)
        _wait(lambda: _seen(watcher, "queue-paused"), "the queue's pause")
        (pinned,) = api.run(script, "lr=0.05", gpus="0", stage=True, store=home)
        api.run(script, "lr=0.02", "epochs=8", stage=True, label="longer", priority=5, store=home)
        # Held for its dependency (SPEC 12): the pinned run, which this queue (GPU 7) never starts.
        api.run(script, "lr=0.04", stage=True, after=pinned.id, priority=2, store=home)
        (running,) = api.run(script, "secs=60", store=home)
        api.retry(failed.id, store=home)
        watcher.look()
        snapshot = monitor.snapshot()
        api.stop(running.id, store=home)
        watcher.look()
        # A run that holds the queue while it drains: the drain is seen before the queue ends.
        (hold,) = api.run(script, "lr=0.03", "secs=60", stage=True, store=home)
        api.resume_queue(q, store=home)
        _wait(lambda: _seen(watcher, "queue-resumed"), "the queue's resume")
        _wait(lambda: hold.refresh().status == "running", "the queue starting the run it holds")
        api.drain_queue(q, store=home)
        _wait(lambda: _seen(watcher, "queue-draining"), "the queue's drain")
        api.stop(hold.id, store=home)
        assert q.join(30), "the drained queue did not end"
        _wait(lambda: _seen(watcher, "queue-ended"), "the queue's end")
    finally:
        q.stop(timeout=20)
        api.stop(all=True, store=home, timeout=20)
    return snapshot, watcher.log.answer(0)


def shown(data, home: str):
    """``data`` with the temporary store's path replaced by ``SHOWN_HOME``."""
    import json

    return json.loads(json.dumps(data).replace(os.path.abspath(home), SHOWN_HOME))


def key_paths(value, prefix: str = "") -> set:
    """Every key path of a JSON value (``groups[].rows[].actions[].verb``):
    the shape two snapshots share whatever their values."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.add(path)
            out |= key_paths(v, path)
    elif isinstance(value, list):
        for v in value:
            out |= key_paths(v, prefix + "[]")
    return out
