"""The first listing of runs the index knows nothing of (``store.cold_read``):
shared with a helper process, it lists exactly what one process alone
lists, whatever the helper does."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest

from conftest import guild
from guild_jupyter import api, views
from guild_jupyter.store import cold_read
from guild_jupyter.store import index as indexlib
from guild_jupyter.store.index import RunIndex
from guild_jupyter.store.scalars import reader as scalarlib
from guild_jupyter.store.store import Store

_START = cold_read.Helper.start.__func__
_READ_ONE = cold_read.read_one


def _age(run_dir, seconds=30):
    past = time.time_ns() - seconds * 1_000_000_000
    for root, _dirs, files in os.walk(os.path.join(run_dir, ".guild"), topdown=False):
        for name in files:
            os.utime(os.path.join(root, name), ns=(past, past), follow_symlinks=False)
        os.utime(root, ns=(past, past))


@pytest.fixture
def store_of_runs(project, guild_home):
    """Two real runs (one labelled by the real ``guild``), copied into eight more with fresh ids,
    and one damaged (its label attr a directory: listed with a warning),
    all settled."""
    made = []
    for i in range(2):
        made += api.run(str(project / "train.py"), f"lr=0.{i + 1}", "epochs=1", foreground=True,
                        stream=open(os.devnull, "w"), store=str(guild_home))
    guild("label", "--set", "the first", made[0].id, "-y")  # (the real CLI: rewritten in place)
    runs_dir = os.path.join(str(guild_home), "runs")
    for k in range(8):
        shutil.copytree(made[k % 2].dir, os.path.join(runs_dir, uuid.uuid4().hex), symlinks=True)
    damaged = os.path.join(runs_dir, uuid.uuid4().hex)
    shutil.copytree(made[1].dir, damaged, symlinks=True)
    label = os.path.join(damaged, ".guild", "attrs", "label")
    if os.path.exists(label):
        os.remove(label)
    os.makedirs(label)
    for name in os.listdir(runs_dir):
        _age(os.path.join(runs_dir, name))
    return str(guild_home)


def _listing(home, monkeypatch, helper: bool, child: str | None = None):
    """``(rows, helper)`` of a first listing with no listing file: each
    run's id, status, stamp, values, warnings and the main scalar its row
    shows; the helper used (None: none started)."""
    shutil.rmtree(os.path.join(home, "cache"), ignore_errors=True)
    RunIndex.forget()
    scalarlib.clear()
    monkeypatch.setattr(indexlib, "READ_AHEAD_MIN", 1)
    monkeypatch.setattr(cold_read, "HELPER_MIN", 1 if helper else 10**9)
    monkeypatch.setattr(cold_read, "_a_cpu_is_free", lambda: True)  # (a helper even on a busy or one-CPU machine)
    monkeypatch.setattr(cold_read, "BATCH", 1)  # this process's batches (the helper's own are 64)
    if child is not None:
        monkeypatch.setattr(cold_read, "_CHILD", child)
    # (files in the OS's cache, as a probe would find them here: no read-ahead threads)
    monkeypatch.setattr(indexlib, "_read_unknown", lambda d, ids: cold_read.read_many(d, ids, probe=0, disk=False))
    started = []
    def start(cls, runs_dir, ids):
        h = _START(cls, runs_dir, ids)
        started.append(h)
        return h

    monkeypatch.setattr(cold_read.Helper, "start", classmethod(start))
    def read_one(out, runs_dir, run_id, prefetch=False):
        # This process reads nothing before the helper handed back its first batch (or ended):
        # both sides certainly take part, whatever the machine's speed.
        h = started[0] if started else None
        deadline = time.monotonic() + 60
        while h is not None and h.low == len(h.ids) and not h._dead and time.monotonic() < deadline:
            h.poll()
            time.sleep(0.01)
        _READ_ONE(out, runs_dir, run_id, prefetch)

    monkeypatch.setattr(cold_read, "read_one", read_one)
    entries = RunIndex.for_store(Store(home)).listing()
    seeded = set(scalarlib._seeded)
    rows = sorted((e.id, e.status, e.stamp, e.values, sorted(e.warnings), views.main_scalar(e, spark=False)[0])
                  for e in entries)
    return rows, (started[0] if started else None), seeded


def test_a_listing_shared_with_a_helper_process_is_the_listing_of_one_process(store_of_runs, monkeypatch):
    alone, h, _ = _listing(store_of_runs, monkeypatch, helper=False)
    assert h is None
    assert len(alone) == 11
    assert sum(1 for r in alone if r[4]) == 1  # the damaged run's warning
    assert {r[3]["label"] for r in alone} >= {"the first"}
    assert all(r[5] is not None for r in alone if not r[4])  # train.py logs a loss
    shared, h, seeded = _listing(store_of_runs, monkeypatch, helper=True)
    assert h is not None
    assert h.proc.returncode is not None  # stopped and waited for: no process left behind
    # The helper handed back runs (their scalars too), not the damaged one (read here, with its warning).
    damaged = next(r[0] for r in alone if r[4])
    assert len(h.got) >= 5 and damaged not in h.got
    assert seeded and seeded <= {os.path.join(store_of_runs, "runs", i) for i in h.got}
    assert shared == alone
    # What the listing file kept of them is what a new process lists too.
    RunIndex.forget()
    scalarlib.clear()
    again = sorted((e.id, e.status, e.stamp, e.values, sorted(e.warnings), views.main_scalar(e, spark=False)[0])
                   for e in RunIndex.for_store(Store(store_of_runs)).listing())
    assert again == alone


@pytest.mark.parametrize("child", [
    "import sys; sys.exit(3)",  # dies at once
    "import sys; sys.stdout.buffer.write(b'\\x08\\x00\\x00\\x00notmarsh'); sys.stdout.flush(); sys.stdin.read()",
    "import marshal, struct, sys; f = marshal.dumps((0, [('0' * 32, (1,) * 8, 'completed', 1, 2, 1, False, 0,"
    " b'[]', None), 'junk'])); sys.stdout.buffer.write(struct.pack('<I', len(f)) + f); sys.stdout.flush();"
    " sys.stdin.read()",  # records of runs it was not asked about, or of the wrong shape
], ids=["dies", "garbage", "strangers"])
def test_a_helper_that_fails_changes_nothing_listed(store_of_runs, monkeypatch, child):
    alone, _, _ = _listing(store_of_runs, monkeypatch, helper=False)
    shared, h, _ = _listing(store_of_runs, monkeypatch, helper=True, child=child)
    assert h is not None and h.proc.returncode is not None
    assert not h.got
    assert shared == alone
