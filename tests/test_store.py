"""The run store: attrs, atomic writes, status rules, listing, resolving."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from guild_jupyter import api
from guild_jupyter.errors import AmbiguousRun, RunNotFound, StoreError
from guild_jupyter.store import attrs
from guild_jupyter.store.run import Run
from guild_jupyter.store.store import Store


def test_attrs_are_json_and_yaml_alike(tmp_path):
    values = [0.1, 1e-05, -2.5e20, 3, -7, True, False, None, "a b", "ünï", [1, "x"],
              {"lr": 1e-4, "n": [1, 2], "s": "x: y"}, float("inf")]
    for v in values:
        text = attrs.encode(v)
        assert attrs.decode(text) == v or (v != v)
        # Guild reads attrs with PyYAML: it must see the same value.
        assert yaml.safe_load(text) == v
    # the scalar fast path agrees with YAML, also on non-ASCII digits
    for text in ("1795566875271914\n", "null\n", "true\n", "\u00b2\n", "\u0663\n"):
        assert attrs.decode(text) == yaml.safe_load(text)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    p = tmp_path / "x"
    for i in range(50):
        attrs.write_atomic(str(p), f"{i}\n")
    assert p.read_text() == "49\n"
    assert sorted(n for n in os.listdir(tmp_path) if n != "guild-home") == ["x"]


def _make_run(store: Store, project, *assignments, stage=True):
    return api.run(str(project / "train.py"), *assignments, stage=stage, store=store)[0]


def test_status_rules(project, guild_home):
    st = Store(guild_home)
    r = _make_run(st, project)
    assert r.status == "staged"
    open(r.path("PENDING"), "w").close()
    assert r.refresh().status == "pending"
    open(r.path("LOCK.remote"), "w").close()
    assert r.refresh().status == "running"
    for m in ("LOCK.remote", "PENDING", "STAGED"):
        os.unlink(r.path(m))
    # No outcome and no LOCK: the process died without recording one.
    assert r.refresh().status == "error"
    # A LOCK whose pid is alive: running.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import json

        import psutil

        created = psutil.Process(sleeper.pid).create_time()
        attrs.write_atomic(r.path("LOCK"), str(sleeper.pid))
        attrs.write_atomic(r.path("LOCK.start"), json.dumps({"pid": sleeper.pid, "start": created}))
        assert r.refresh().status == "running"
        # Same pid, another start time: a reused pid, so the run is dead.
        attrs.write_atomic(r.path("LOCK.start"), json.dumps({"pid": sleeper.pid, "start": created - 3600}))
        assert r.refresh().status == "error"
        # A start record naming another pid (left by a killed supervisor) never
        # applies to a LOCK written later (guild run --restart): Guild's rule,
        # the process started before the LOCK was written, decides.
        attrs.write_atomic(r.path("LOCK.start"), json.dumps({"pid": sleeper.pid + 1, "start": created - 3600}))
        assert r.refresh().status == "running"
        # A Guild LOCK older than its process: the pid was reused.
        os.utime(r.path("LOCK"), (created - 60, created - 60))
        assert r.refresh().status == "error"
    finally:
        sleeper.kill()
        sleeper.wait()
    attrs.write_atomic(r.path("LOCK.start"), "0")
    assert r.refresh().status == "error"  # dead pid
    for code, status in ((0, "completed"), (-15, "terminated"), (2, "error")):
        r.write_attr("exit_status", code)
        assert r.refresh().status == status


def test_an_outcome_appears_whole(project, guild_home, monkeypatch):
    """Readers take no lock, so at every write of a run's outcome, a reader
    that sees the run ended (``exit_status``, which its status follows) also
    sees when it ended (``stopped``)."""
    from guild_jupyter.store import transitions

    st = Store(str(guild_home))
    runs = [_make_run(st, project) for _ in range(2)]
    seen = []
    write = attrs.write_atomic

    def write_and_read(path, data):
        write(path, data)
        for r in runs:
            reader = Run(r.dir)  # another process's view: nothing cached
            seen.append((os.path.basename(path), reader.get("exit_status"), reader.get("stopped")))

    monkeypatch.setattr(attrs, "write_atomic", write_and_read)
    transitions.record_start_failure(st, runs[0], "not started: a test")  # staged -> error
    transitions.unstage(st, runs[1])  # staged -> terminated, never started
    assert {name for name, _es, _st in seen} >= {"exit_status", "stopped"}
    assert [s for s in seen if s[1] is not None and s[2] is None] == []
    assert runs[0].refresh().status == "error" and runs[1].refresh().status == "terminated"


def test_a_run_that_ends_while_its_status_is_read_never_reads_error(project, guild_home, monkeypatch):
    """A reader looks at a running run's files one by one (markers, the
    outcome, the LOCK holder). Its holder ending the run in between (outcome
    recorded, LOCK dropped) after the outcome was read as missing and before
    LOCK was checked: the run reads completed, never error without an
    outcome (a failure shown, or an event sent, for a run that completed)."""
    from guild_jupyter.procs import Identity
    from guild_jupyter.store import transitions

    st = Store(str(guild_home))
    me = Identity.current()
    r = _make_run(st, project)  # staged: taken by this process below, as a supervisor takes it
    transitions.acquire(st, r, me)
    assert Run(r.dir).status == "running"
    holder_of = Run.lock_holder
    ended = []

    def lock_holder_as_the_run_ends(run):
        if not ended:  # the holder records the outcome and lets go just now
            ended.append(True)
            transitions.record_outcome(st, Run(run.dir), 0, holder=me)
        return holder_of(run)

    monkeypatch.setattr(Run, "lock_holder", lock_holder_as_the_run_ends)
    reader = Run(r.dir)
    assert reader.status == "completed" and reader.exit_status == 0
    assert ended and not os.path.exists(r.path("LOCK"))


def test_corrupt_attr_gives_warning_and_partial_row(project, guild_home):
    st = Store(guild_home)
    good = _make_run(st, project, "lr=0.5")
    bad = _make_run(st, project, "lr=0.7")
    with open(os.path.join(bad.attrs_dir, "flags"), "w") as f:
        f.write("{lr: [unclosed\n")
    with open(os.path.join(bad.attrs_dir, "started"), "wb") as f:
        f.write(b"\xff\xfe")
    listing = api.runs(store=st)
    ids = [r.id for r in listing]
    assert set(ids) == {good.id, bad.id}
    row = next(r for r in listing if r.id == bad.id)
    assert row.flags == {} and row.status == "staged"
    assert any("flags" in w for w in listing.warnings)
    assert next(r for r in listing if r.id == good.id).flags["lr"] == 0.5
    assert "warning:" in str(listing)


def test_listing_filters_and_order(project, guild_home):
    st = Store(guild_home)
    a = _make_run(st, project, "lr=0.1")
    b = _make_run(st, project, "lr=0.2")
    c = api.run(str(project / "train.py"), label="special", stage=True, store=st)[0]
    assert [r.id for r in api.runs(store=st)] == [c.id, b.id, a.id]
    assert [r.id for r in api.runs("staged", label="special", store=st)] == [c.id]
    assert api.runs("completed", store=st) == []
    assert len(api.runs(op="train", store=st)) == 3
    assert api.runs(op="nope", store=st) == []
    assert [r.id for r in api.runs(limit=1, store=st)] == [c.id]
    assert st.staged_runs()[0].id == a.id  # queues start the oldest first


def test_resolve(project, guild_home):
    st = Store(guild_home)
    runs = [_make_run(st, project) for _ in range(3)]
    r0 = runs[0]
    assert st.resolve(r0.id).id == r0.id
    assert st.resolve(r0.id[:10]).id == r0.id
    assert st.resolve("1").id == runs[-1].id  # index in the newest-first listing
    with pytest.raises(RunNotFound):
        st.resolve("ffffffffffffffff0000")
    with pytest.raises(RunNotFound):
        st.resolve("../etc")
    # A number outside the listing falls back to an id prefix (Guild's rule):
    # pick one no run id starts with, so the test cannot pass or fail by chance.
    beyond = next(n for n in range(90, 200) if not any(r.id.startswith(str(n)) for r in runs))
    with pytest.raises(RunNotFound):
        st.resolve(str(beyond))
    # Force an ambiguous prefix.
    os.rename(runs[1].dir, os.path.join(st.runs_dir, r0.id[:6] + "0" * 26))
    os.rename(runs[2].dir, os.path.join(st.runs_dir, r0.id[:6] + "1" * 26))
    with pytest.raises(AmbiguousRun):
        st.resolve(r0.id[:6])


def test_unwritable_store(tmp_path, project):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreError):
        api.run(str(project / "train.py"), stage=True, store=str(blocker / "home"))
    assert not os.path.exists(str(blocker) + "/home")


def test_run_status_lock_is_guilds(guild_home):
    """Our lock is Guild's own: a holder in another process blocks us."""
    lock_path = os.path.join(guild_home, "locks", "run-status")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import filelock,sys,time; l=filelock.FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(30)",
         lock_path],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        assert holder.stdout.readline().strip() == "held"
        st = Store(guild_home)
        from guild_jupyter.errors import LockTimeout

        t0 = time.monotonic()
        with pytest.raises(LockTimeout):
            with st.lock(timeout=0.3):
                pass
        assert time.monotonic() - t0 >= 0.3
    finally:
        holder.kill()
        holder.wait()
    with Store(guild_home).lock(timeout=5):
        pass


def test_guild_filelock_waits_for_our_lock(guild_home):
    """The other direction: while we hold the lock, filelock (Guild's) cannot take it."""
    lock_path = os.path.join(guild_home, "locks", "run-status")
    st = Store(guild_home)
    probe = ("import filelock,sys\n"
             "try:\n"
             "    filelock.FileLock(sys.argv[1]).acquire(timeout=0.3); print('got')\n"
             "except filelock.Timeout:\n"
             "    print('timeout')\n")
    with st.lock():
        with st.lock():  # reentrant within a thread
            out = subprocess.run([sys.executable, "-c", probe, lock_path], capture_output=True, text=True).stdout
    assert out.strip() == "timeout"
    out = subprocess.run([sys.executable, "-c", probe, lock_path], capture_output=True, text=True).stdout
    assert out.strip() == "got"


def test_threads_of_one_process_exclude_each_other(guild_home):
    import threading

    st = Store(guild_home)
    inside, overlaps = [], []

    def work():
        for _ in range(50):
            with st.lock():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps


def test_listing_cache_never_shows_stale_values(project, guild_home):
    """Finished runs are listed from a cache; every way a run changes
    afterwards -- Guild relabelling it in place, a corrupt attr, a deleted
    run, a new run -- shows up in the next listing."""
    from conftest import guild

    a = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=open(os.devnull, "w"))[0]
    b = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=open(os.devnull, "w"))[0]
    first = api.runs()
    assert [r.id for r in first] == [b.id, a.id] and all(r.status == "completed" for r in first)
    assert os.path.exists(os.path.join(guild_home, "cache", "guild_jupyter", "listing.v4"))
    guild("label", "--set", "relabelled", a.id, "-y")  # Guild rewrites the label attr in place
    assert {r.id: r.label for r in api.runs()}[a.id] == "relabelled"
    with open(os.path.join(b.attrs_dir, "exit_status"), "w") as f:
        f.write("{oops")  # in place, as a crash or a foreign tool might
    os.utime(b.attrs_dir, None)
    listing = api.runs()
    row = next(r for r in listing if r.id == b.id)
    assert row.status == "error" and any("exit_status" in w for w in listing.warnings)
    api.delete(a.id)
    c = api.run(str(project / "train.py"), stage=True)[0]
    assert [r.id for r in api.runs()] == [c.id, b.id]
