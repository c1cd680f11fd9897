"""A viewer of a big store works from what changed: its groups and sweeps
are moved run by run (``RunIndex.changed_since``) instead of sorted again,
it keeps decoded only the values of the rows it shows, and the index
remembers which runs carry warnings instead of looking at every run. Each
check compares the kept arrangement with one made from scratch, or what
the index holds with what the run's own files say."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import guild
from guild_jupyter import api
from guild_jupyter.store import index as index_module
from guild_jupyter.store.index import RunIndex
from guild_jupyter.store.run import Run
from guild_jupyter.store.store import Store


def _age(run_dir, seconds=30):
    """The run's .guild written ``seconds`` ago: settled, so the listing
    file keeps it."""
    past = time.time_ns() - seconds * 1_000_000_000
    for root, _dirs, files in os.walk(os.path.join(run_dir, ".guild"), topdown=False):
        for name in files:
            os.utime(os.path.join(root, name), ns=(past, past))
        os.utime(root, ns=(past, past))


def _finish(project, home, *flags):
    runs = api.run(str(project / "train.py"), *flags, "epochs=1", foreground=True, stream=open(os.devnull, "w"),
                   store=str(home))
    for r in runs:
        _age(r.dir)
    return runs


def _arranged(monitor) -> tuple:
    groups, counts = monitor.grouped()
    return ({name: [e.id for e in entries] for name, entries in groups.items()},
            {s: n for s, n in counts.items() if n}, monitor.recent_sweeps())


def test_a_viewer_moves_only_what_changed_and_agrees_with_one_that_sorts_everything(project, guild_home):
    home = str(guild_home)
    a, b = _finish(project, guild_home, "lr=[0.1,0.2]")  # one sweep of two
    (c,) = _finish(project, guild_home, "lr=0.3")
    m = api.monitor(store=home)
    m.snapshot()
    kept = m._arranged
    assert kept is not None

    def check():
        m.snapshot()
        mine = _arranged(m)
        fresh = api.monitor(store=home)  # the same index, its arrangement made from scratch
        assert fresh._arranged is None
        assert mine == _arranged(fresh)
        assert m._arranged is kept  # moved run by run, never rebuilt
        return mine

    staged = api.run(str(project / "train.py"), "lr=[0.4,0.5,0.6]", stage=True, store=home)
    groups, counts, sweeps = check()
    assert sorted(groups["staged"]) == sorted(r.id for r in staged) and counts["staged"] == 3
    assert [s["id"] for s in sweeps][:2] == [staged[0].get("sweep"), a.get("sweep")]
    assert sweeps[0]["counts"] == {"staged": 3}

    api.unstage(staged[1].id, store=home)
    groups, counts, sweeps = check()
    assert sorted(groups["staged"]) == sorted([staged[0].id, staged[2].id]) and counts["unstaged"] == 1
    assert groups["finished"][0] == staged[1].id  # most recently ended first
    assert sweeps[0]["counts"] == {"staged": 2, "unstaged": 1}

    guild("label", "--set", "by guild", c.id, "-y", env={"GUILD_HOME": home})
    m.index.update(full=True)  # (a label rewritten in place shows on a full pass)
    check()
    assert next(r for r in m.snapshot()["groups"][4]["rows"] if r["id"] == c.id)["label"] == "by guild"

    api.delete(b.id, store=home)
    groups, counts, sweeps = check()
    assert b.id not in groups["finished"] and a.get("sweep") not in [s["id"] for s in sweeps]  # one run left
    api.unstage(staged[0].id, staged[2].id, store=home)
    groups, counts, sweeps = check()
    assert groups["staged"] == [] and counts["unstaged"] == 3


def test_changed_since_names_the_runs_that_moved_or_says_it_no_longer_knows(project, guild_home, monkeypatch):
    home = str(guild_home)
    a, b = _finish(project, guild_home, "lr=[0.1,0.2]")
    monkeypatch.setattr(index_module, "CHANGES_KEPT", 3)
    index = RunIndex(Store(home))
    index.update(full=True)
    v = index.version
    assert index.changed_since(v) == set()
    staged = api.run(str(project / "train.py"), stage=True, store=home)[0]
    index.update(full=True)
    assert index.changed_since(v) == {staged.id}
    v = index.version
    api.delete(a.id, b.id, store=home)
    index.update(full=True)
    assert index.changed_since(v) == {a.id, b.id}
    more = api.run(str(project / "train.py"), "lr=[0.3,0.4]", stage=True, store=home)
    index.update(full=True)
    assert index.changed_since(v) is None  # four changes since, three remembered
    api.unstage(staged.id, *[r.id for r in more], store=home)


def test_a_viewer_of_runs_from_the_listing_file_decodes_only_the_rows_it_shows(project, guild_home):
    home = str(guild_home)
    runs = _finish(project, guild_home, "lr=[0.1,0.2,0.3,0.4,0.5,0.6]")
    unstaged = api.run(str(project / "train.py"), "lr=0.7", stage=True, store=home)[0]
    api.unstage(unstaged.id, store=home)
    _age(unstaged.dir)
    # Another process lists the store: the listing file then holds every run.
    subprocess.run([sys.executable, "-m", "guild_jupyter", "runs", "--store", home], check=True,
                   stdout=subprocess.DEVNULL, timeout=120)
    RunIndex.forget(home)
    m = api.monitor(store=home, page_size=2)
    snap = m.snapshot()
    finished = next(g for g in snap["groups"] if g["name"] == "finished")
    assert finished["total"] == 7 and len(finished["rows"]) == 2
    assert [s["runs"] for s in snap["sweeps"]] == [6]
    entries = m.index.entries
    decoded = {i for i, e in entries.items() if e._values is not None}
    shown = {r["id"] for r in finished["rows"]}
    assert decoded <= shown | {runs[0].id}  # the rows shown, and the sweep's first run (its op)
    assert len(decoded) < len(entries) - 3
    # What the entries derived without decoding is what the runs' files say.
    for run_id, e in entries.items():
        r = Run(e.dir)
        assert (e.sweep, e.unstaged) == (r.get("sweep"), r.get("unstaged") is True), run_id
    assert entries[unstaged.id].unstaged and not entries[runs[0].id].unstaged


def test_the_index_lists_a_damaged_runs_warning_until_the_run_is_gone(project, guild_home):
    home = str(guild_home)
    a, b = _finish(project, guild_home, "lr=[0.1,0.2]")
    index = RunIndex(Store(home))
    index.update(full=True)
    assert index.warnings() == []
    with open(os.path.join(a.dir, ".guild", "attrs", "flags"), "w") as f:
        f.write("{not: [yaml\n")  # unreadable
    index.update(full=True)
    (warning,) = index.warnings()
    assert a.id[:8] in warning and "flags" in warning
    api.delete(a.id, store=home)
    index.update(full=True)
    assert index.warnings() == []


def test_runs_whose_records_another_entry_version_wrote_are_still_listed(project, guild_home):
    """A listing file whose records another version of the code wrote (its
    entry version differs) loses those records, never the runs: each is
    read from its files, even while runs/ is as the file last saw it."""
    import json
    import struct

    from guild_jupyter.store import listing_file

    home = str(guild_home)
    ids = sorted(r.id for r in _finish(project, guild_home, "lr=[0.1,0.2,0.3]"))
    runs_dir = os.path.join(home, "runs")
    past = time.time_ns() - 30 * 1_000_000_000
    os.utime(runs_dir, ns=(past, past))  # settled: the file keeps runs/'s mtime and skips listing it
    subprocess.run([sys.executable, "-m", "guild_jupyter", "runs", "--store", home], check=True,
                   stdout=subprocess.DEVNULL, timeout=120)
    path = os.path.join(home, "cache", "guild_jupyter", listing_file.NAME)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    nl = data.index(b"\n")
    head = json.loads(data[:nl])
    assert head["count"] == 3 and head["runs_mtime"] == past
    fmt = listing_file.RECORD.format
    assert fmt.endswith("4B")
    at = struct.calcsize(fmt[:-2])  # the entry version: the first of the last four bytes
    for i in range(head["count"]):
        data[nl + 1 + i * listing_file.RECORD.size + at] = (listing_file.ENTRY_VERSION + 1) % 256
    with open(path, "wb") as f:
        f.write(data)
    assert os.stat(runs_dir).st_mtime_ns == past
    p = subprocess.run([sys.executable, "-m", "guild_jupyter", "runs", "--json", "--store", home], check=True,
                       capture_output=True, text=True, timeout=120)
    assert sorted(r["id"] for r in json.loads(p.stdout)) == ids
    RunIndex.forget(home)
    assert sorted(r.id for r in api.runs(store=home)) == ids
