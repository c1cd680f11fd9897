"""The listing index against every way a run changes on disk: attrs
rewritten in place (as Guild writes them), the real ``guild`` CLI's edits
(``label``, ``run --restart``, ``runs rm``, ``runs restore``), listings in
this process and in new ones (from the listing file), ``-n N`` listings,
and a store of 100,000 runs.

"What a listing says is what is on disk": each check compares a listing
made through the index (and its file) with one made by a process that has
no cache at all."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import cli, guild
from guild_jupyter import api
from guild_jupyter.store import index as index_module
from guild_jupyter.store.index import RunIndex
from guild_jupyter.store.store import Store


def _age(run_dir, seconds=30):
    """Every file and directory of the run's .guild written ``seconds`` ago:
    settled, so listings trust (and keep) their stamps."""
    past = time.time_ns() - seconds * 1_000_000_000
    for root, _dirs, files in os.walk(os.path.join(run_dir, ".guild"), topdown=False):
        for name in files:
            os.utime(os.path.join(root, name), ns=(past, past), follow_symlinks=False)
        os.utime(root, ns=(past, past))


def _rows(runs) -> list:
    return [(r["id"], r["status"], r.get("label"), r.get("started"), json.dumps(r.get("flags"), sort_keys=True),
             sorted(r.get("warnings") or [])) for r in runs]


def _cli_json(home, *args) -> list:
    p = cli("runs", "--json", *args, "--store", home, check=0)
    return json.loads(p.stdout)


def _from_disk(home, *args) -> list:
    """The listing of a process that has no listing file to start from."""
    cache = os.path.join(str(home), "cache", "guild_jupyter")
    keep = cache + ".keep"
    os.rename(cache, keep)
    try:
        return _cli_json(home, *args)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        os.rename(keep, cache)


def assert_listing_is_disk(home, expect=None):
    """Every kind of listing (new process from the file, -n, this process's
    index, the full one and -n) says what a cache-less listing says."""
    disk = _rows(_from_disk(home))
    assert _rows(_cli_json(home)) == disk
    assert _rows(_cli_json(home, "-n", "2")) == disk[:2]
    here = api.runs(store=str(home))
    assert [(r.id, r.status, r.label, r.started) for r in here] == [d[:4] for d in disk]
    assert [r.id for r in api.runs(limit=2, store=str(home))] == [d[0] for d in disk[:2]]
    if expect is not None:
        expect(disk)
    return disk


def _finished(project, home, n=2):
    out = []
    for i in range(n):
        out += api.run(str(project / "train.py"), f"lr=0.{i + 1}", "epochs=1", foreground=True,
                       stream=open(os.devnull, "w"), store=str(home))
    for r in out:
        _age(r.dir)
    return out


def _dirs_mtimes(run):
    return [os.stat(os.path.join(run.dir, ".guild", sub)).st_mtime_ns for sub in ("", "attrs")]


def test_the_first_listing_without_a_cache_directory_keeps_its_listing_file(project, guild_home):
    """A store whose cache was removed (or a new one): the first listing
    writes the listing file, so the second process starts from it instead
    of reading every run again."""
    _finished(project, guild_home)
    cache = os.path.join(guild_home, "cache", "guild_jupyter")
    shutil.rmtree(os.path.join(guild_home, "cache"))
    rows = _rows(_cli_json(guild_home))
    assert os.path.exists(os.path.join(cache, "listing.v4"))
    assert _rows(_cli_json(guild_home)) == rows


def test_runs_read_ahead_by_threads_are_listed_as_read_one_by_one(project, guild_home, monkeypatch):
    """A full pass over runs it knows nothing of may read them from several
    threads (when the disk is what it waits on): the listing is the same,
    run for run, as the one read in this thread, damaged runs included."""
    from guild_jupyter.store import index as indexlib

    runs = _finished(project, guild_home, n=3)
    label = os.path.join(runs[1].dir, ".guild", "attrs", "label")
    if os.path.exists(label):
        os.remove(label)
    os.makedirs(label)  # unreadable: listed with a warning
    cache = os.path.join(guild_home, "cache")
    real = indexlib._read_unknown

    def listing(ahead: bool):
        shutil.rmtree(cache, ignore_errors=True)
        RunIndex.forget()
        monkeypatch.setattr(indexlib, "READ_AHEAD_MIN", 1 if ahead else 10**9)
        seen = []
        monkeypatch.setattr(indexlib, "_read_unknown",
                            lambda d, ids: seen.append(len(ids)) or real(d, ids, probe=0))  # threads only
        rows = [(e.id, e.status, e.stamp, e.values, sorted(e.warnings))
                for e in sorted(RunIndex.for_store(Store(str(guild_home))).listing(), key=lambda e: e.id)]
        return rows, seen

    serial, seen = listing(False)
    assert seen == []
    threaded, seen = listing(True)
    assert seen == [3]
    assert threaded == serial
    assert any(w for *_, w in serial)  # the damaged run's warning is there both ways


def test_an_attr_created_in_the_same_tick_as_a_young_runs_last_change_is_listed(project, guild_home):
    """attrs/'s mtime moves in coarse ticks: an attr created in the same
    tick as a young run's last change leaves it as it was. The next read of
    the run (its stamp moved: a file rewritten) must still open every attr,
    not trust the earlier stamp's list of the files that existed."""
    (r,) = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=open(os.devnull, "w"))
    assert {x.id: x.get("queue_id") for x in api.runs()}[r.id] is None  # the index holds it, no queue_id
    attrs, guild_dir = r.attrs_dir, r.guild_dir
    a, g = os.stat(attrs).st_mtime_ns, os.stat(guild_dir).st_mtime_ns
    with open(os.path.join(attrs, "queue_id"), "w") as f:
        f.write("made-in-the-same-tick\n")
    os.utime(attrs, ns=(a, a))  # as if within the same tick as the run's last change
    os.utime(guild_dir, ns=(g, g))
    with open(os.path.join(attrs, "started"), "r+") as f:  # rewritten in place, now: the stamp moves, young
        content = f.read()
        f.seek(0)
        f.write(content)
    os.utime(os.path.join(attrs, "started"))
    assert {x.id: x.get("queue_id") for x in api.runs()}[r.id] == "made-in-the-same-tick"


@pytest.mark.parametrize("attr, content, check", [
    ("started", b"\x00\xff\xfe binary\x01", lambda row: any("started" in w for w in row[5])),
    ("label", b"rewritten in place\n", lambda row: row[2] == "rewritten in place"),
    ("exit_status", b"3\n", lambda row: row[1] == "error"),
    ("flags", b'{"lr": 0.5, "epochs": 9}\n', lambda row: '"epochs": 9' in row[4]),
    ("started", b"4102444800000000\n", lambda row: row[3] == 4102444800000000),
])
def test_an_attr_rewritten_in_place_is_listed_as_it_is_now(project, guild_home, attr, content, check):
    """Issue 26 item 3: a rewrite in place moves no directory's mtime, only
    the file's own stamp; the next listing (same process, new process, -n)
    says what the file says now, with a warning when it cannot be read."""
    a, b = _finished(project, guild_home)
    assert_listing_is_disk(guild_home)  # the listing file now holds both runs
    assert os.path.exists(os.path.join(guild_home, "cache", "guild_jupyter", "listing.v4"))
    target = a if attr != "started" else b  # the older run, so a new started reorders
    before = _dirs_mtimes(target)
    with open(os.path.join(target.attrs_dir, attr), "r+b") as f:  # in place, as Guild writes attrs
        f.truncate(0)
        f.write(content)
    assert _dirs_mtimes(target) == before
    disk = assert_listing_is_disk(guild_home)
    row = next(d for d in disk if d[0] == target.id)
    assert check(row), row


def test_the_real_guild_cli_edits_are_seen_by_the_next_listing(project, guild_home):
    a, b = _finished(project, guild_home)
    home = guild_home
    assert_listing_is_disk(home)

    guild("label", "--set", "by guild", a.id, "-y")
    assert_listing_is_disk(home, lambda disk: next(d for d in disk if d[0] == a.id)[2] == "by guild")

    old_started = next(d for d in assert_listing_is_disk(home) if d[0] == a.id)[3]
    guild("run", "--restart", a.id, "-y")  # rewrites attrs in place; the run ends completed again
    disk = assert_listing_is_disk(home)
    assert disk[0][0] == a.id and disk[0][3] > old_started and disk[0][1] == "completed"

    guild("runs", "rm", b.id, "-y")
    assert [d[0] for d in assert_listing_is_disk(home)] == [a.id]
    guild("runs", "restore", b.id, "-y")
    assert [d[0] for d in assert_listing_is_disk(home)] == [a.id, b.id]


def test_a_restart_by_us_and_a_new_run_reach_a_viewer_without_a_full_pass(project, guild_home, monkeypatch):
    """The change journal: a viewer's refresh looks at the runs our
    transitions name (and new directories), not at every run."""
    a, b = _finished(project, guild_home)
    monkeypatch.setattr(index_module, "FULL_PASS_EVERY", 10 ** 9)
    index = RunIndex(Store(str(guild_home)))
    index.update(full=True)
    index.update(full=False)
    assert index.entries[a.id].status == "completed"
    api.restart(a.id, stage=True, store=str(guild_home))
    c = api.run(str(project / "train.py"), stage=True, store=str(guild_home))[0]
    assert index.update(full=False)
    assert index.entries[a.id].status == "staged" and index.entries[c.id].status == "staged"
    api.delete(b.id, store=str(guild_home))
    index.update(full=False)
    assert b.id not in index.entries
    api.unstage(a.id, c.id, store=str(guild_home))


def test_staging_numbers_new_runs_without_listing_the_store(project, guild_home):
    _finished(project, guild_home, 3)
    code = (
        "import sys, json\n"
        "from guild_jupyter import api\n"
        f"rl = api.run({str(project / 'train.py')!r}, 'lr=[0.1,0.2,0.3]', stage=True)\n"
        "print(json.dumps({'indexed': 'guild_jupyter.store.index' in sys.modules,\n"
        "                  'rows': [[i, r.id] for i, r in zip(rl.indices, rl)]}))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(p.stdout)
    assert out["indexed"] is False  # the listing index was never built
    listing = _cli_json(guild_home)
    assert sorted(out["rows"]) == [[d["index"], d["id"]] for d in listing[:3]]
    api.unstage(*[i for _, i in out["rows"]], store=str(guild_home))


def _build_big_store(home, template_dir, n):
    """``n`` runs copied from ``template_dir`` (files hard-linked, each run
    its own ``started``): how a big store is built without running n runs."""
    runs = os.path.join(home, "runs")
    guild_dir = os.path.join(template_dir, ".guild")
    linked = [f for f in ("opref", "attrs/exit_status", "attrs/stopped", "attrs/flags", "attrs/label",
                          "attrs/run_params", "attrs/op", "attrs/initialized")
              if os.path.exists(os.path.join(guild_dir, f))]
    base = 1_700_000_000_000_000
    ids = []
    sources = os.path.join(home, "sources")
    src = {}
    for i in range(n):
        if i % 60_000 == 0:  # a file has at most 65,000 links (ext4): a fresh copy to link to
            for f in linked:
                src[f] = os.path.join(sources, str(i), f.replace("/", "_"))
                os.makedirs(os.path.dirname(src[f]), exist_ok=True)
                shutil.copy2(os.path.join(guild_dir, f), src[f])
        run_id = f"{i:08x}" + "0" * 24
        g = os.path.join(runs, run_id, ".guild")
        os.makedirs(g + "/attrs")
        for f in linked:
            os.link(src[f], os.path.join(g, f))
        with open(g + "/attrs/started", "w") as fh:
            fh.write(f"{base + (i * 7919) % n * 1000}\n")  # distinct, not in id order
        ids.append(run_id)
    return ids


def test_a_store_of_100000_runs_is_listed_correctly(project, tmp_path):
    """No timing: the order, the newest-N path (one stat a run) against the
    full listing, and a started rewritten in place deep in the store."""
    home = str(tmp_path / "big")
    os.makedirs(home + "/runs")
    (template,) = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=open(os.devnull, "w"),
                          store=str(tmp_path / "small"))
    n = 100_000
    _build_big_store(home, template.dir, n)
    p = cli("runs", "--store", home, check=0, timeout=600)
    lines = p.stdout.splitlines()
    assert len(lines) == n
    full_ids = [line.split(":")[1].split("]")[0] for line in lines]  # 8-char prefixes: the run's number
    shown_order = [(int(i[:8], 16) * 7919) % n for i in full_ids]
    assert shown_order == sorted(shown_order, reverse=True)
    top = cli("runs", "-n", "20", "--store", home, check=0, timeout=600).stdout.splitlines()
    assert top == lines[:20]
    # The oldest run's started rewritten in place into the future: first in the next -n listing.
    oldest = full_ids[-1]
    started = os.path.join(home, "runs", oldest + "0" * 24, ".guild", "attrs", "started")
    with open(started, "r+") as f:
        f.truncate(0)
        f.write("4102444800000000\n")
    top = cli("runs", "-n", "3", "--store", home, check=0, timeout=600).stdout.splitlines()
    assert [t.split("]")[0] for t in top] == ["[1:" + oldest, "[2:" + full_ids[0], "[3:" + full_ids[1]]
    js = _cli_json(home, "-n", "5")
    assert [d["id"][:8] for d in js] == [oldest] + full_ids[:4]


def _touch_keeping_mtime(run_dir, name):
    """A marker added to the run's .guild whose mtime is then set back: a
    change made in the same mtime tick as the one before, which no stamp
    can show."""
    g = os.path.join(run_dir, ".guild")
    before = os.stat(g).st_mtime_ns
    with open(os.path.join(g, name), "w"):
        pass
    os.utime(g, ns=(before, before))
    assert os.stat(g).st_mtime_ns == before


def test_a_claims_scan_sees_a_marker_added_in_the_same_mtime_tick(project, guild_home):
    """A run whose stamp is too young to trust is looked at by every claim's
    scan (by its markers, not read in full): a marker that came within the
    same mtime tick (Guild's ownerless PENDING here) moves it out of the
    staged runs a queue may claim."""
    from guild_jupyter.store.markers import PENDING_MARKER

    store = Store(str(guild_home))
    a, b = api.run(str(project / "train.py"), "lr=[0.1,0.2]", stage=True, store=str(guild_home))
    staged, pending, _locked = store.scan_waiting(3600)  # exact: its first look
    assert sorted(r.id for r in staged) == sorted([a.id, b.id]) and pending == []
    _touch_keeping_mtime(a.dir, PENDING_MARKER)
    staged, pending, _locked = store.scan_waiting(3600)  # quick: within max_age of the exact one
    assert [r.id for r in staged] == [b.id]
    assert [r.id for r in pending] == [a.id]
    os.remove(os.path.join(a.dir, ".guild", PENDING_MARKER))
    api.unstage(a.id, b.id, store=str(guild_home))


def test_a_claims_quick_scan_sees_settled_staged_runs_markers_and_an_exact_one_their_attrs(project, guild_home):
    """Between two exact scans a settled staged run is taken as it was
    while its .guild and attrs have not moved: a marker added (which moves
    .guild) is seen at once; an attr Guild rewrote in place (the order a
    queue starts runs in, here) by the next exact scan; the values a claim
    weighs are the files' then."""
    from guild_jupyter.store.markers import PENDING_MARKER

    store = Store(str(guild_home))
    runs = api.run(str(project / "train.py"), "lr=[0.1,0.2]", stage=True, store=str(guild_home))
    a, b = sorted(runs, key=lambda r: (r.timestamp, r.id))
    _age(a.dir, 60)
    _age(b.dir, 30)
    staged, _pending, _locked = store.scan_waiting(0)
    assert [r.id for r in staged] == [a.id, b.id]  # oldest staged first
    assert [r.timestamp for r in staged] == [a.timestamp, b.timestamp]
    with open(os.path.join(a.attrs_dir, "started"), "r+b") as f:  # in place, as Guild writes attrs
        f.truncate(0)
        f.write(b"4102444800000000\n")
    staged, _pending, _locked = store.scan_waiting(0)  # exact
    assert [r.id for r in staged] == [b.id, a.id]
    assert staged[1].timestamp == 4102444800000000
    with open(os.path.join(b.dir, ".guild", PENDING_MARKER), "w"):
        pass
    staged, pending, _locked = store.scan_waiting(3600)  # quick
    assert [r.id for r in staged] == [a.id] and [r.id for r in pending] == [b.id]
    assert staged[0].timestamp == 4102444800000000
    os.remove(os.path.join(b.dir, ".guild", PENDING_MARKER))
    api.unstage(a.id, b.id, store=str(guild_home))


def _damage(run_dir, how):
    """One way a run's listed files can be odd on disk (``how``)."""
    g = os.path.join(run_dir, ".guild")
    attrs = os.path.join(g, "attrs")

    def replace(path, data):
        if os.path.lexists(path):
            os.remove(path)
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)

    if how == "label-directory":
        replace(os.path.join(attrs, "label"), None)
        os.makedirs(os.path.join(attrs, "label"))
    elif how == "binary-started":
        replace(os.path.join(attrs, "started"), b"\x00\xff\xfe binary\x01")
    elif how == "empty-flags":
        replace(os.path.join(attrs, "flags"), b"")
    elif how == "fifo-exit-status":
        replace(os.path.join(attrs, "exit_status"), None)
        os.mkfifo(os.path.join(attrs, "exit_status"))
    elif how == "dangling-label":
        replace(os.path.join(attrs, "label"), None)
        os.symlink(os.path.join(attrs, "no-such-file"), os.path.join(attrs, "label"))
    elif how == "no-opref":
        replace(os.path.join(g, "opref"), None)
    elif how == "binary-opref":
        replace(os.path.join(g, "opref"), b"\xff\xfe\x00")
    elif how == "yaml-label":
        replace(os.path.join(attrs, "label"), b"label: [written, by, guild]\n")
    elif how == "queue-id-added":
        replace(os.path.join(attrs, "queue_id"), b"q123\n")
    elif how == "no-exit-status":  # a run that died without an outcome: error
        replace(os.path.join(attrs, "exit_status"), None)


DAMAGES = ("label-directory", "binary-started", "empty-flags", "fifo-exit-status", "dangling-label", "no-opref",
           "binary-opref", "yaml-label", "queue-id-added", "no-exit-status")


def test_a_run_read_in_one_look_is_stamped_and_read_as_stamp_then_read_would(project, guild_home):
    """A run never read (a lost cache, a new store) is stamped by the
    descriptor it is read through (``entry.read_new``): the stamp, values,
    status, markers and warnings are those of ``stamp_of`` then
    ``read_entry``, for sound runs and for each odd file; the next pass's
    own stamp (with the hint) holds it; a young run is left to the usual way."""
    from guild_jupyter.store import entry as entrylib

    runs = _finished(project, guild_home, n=len(DAMAGES) + 1)
    runs_dir = os.path.join(guild_home, "runs")
    for r, how in zip(runs, DAMAGES):
        _damage(r.dir, how)
        _age(r.dir)
    now = time.time_ns()
    for r in runs:
        got = entrylib.read_new(runs_dir, r.id, now)
        assert got is not None, r.id
        stamp, e = got
        want_stamp = entrylib.stamp_of(r.id, None, runs_dir)
        want = entrylib.read_entry(r.dir, want_stamp, full_look=True)
        assert stamp == want_stamp
        assert entrylib.stamp_of(r.id, None, runs_dir, stamp) == stamp  # the next pass trusts it
        assert (e.values, e.status, e.markers, e.damaged, e.warnings) == \
               (want.values, want.status, want.markers, want.damaged, want.warnings)
    labels = {r.id: entrylib.read_new(runs_dir, r.id, now)[1] for r in runs}
    assert any(e.warnings for e in labels.values())  # the odd files are seen, not read as sound
    assert labels[runs[DAMAGES.index("queue-id-added")].id].values["queue_id"] == "q123"
    young = runs[-1]
    with open(os.path.join(young.attrs_dir, "label"), "w") as f:  # just written: not settled
        f.write("young\n")
    assert entrylib.read_new(runs_dir, young.id, time.time_ns()) is None


def test_a_listing_after_the_cache_is_lost_shows_each_runs_scalars_as_its_files_say(project, guild_home, monkeypatch):
    """The first listing without a cache takes each run's event files from
    the listing of ``.guild`` the index made (``scalars.reader.prime``):
    the scalars shown are those of a process that reads them the usual
    way, including an event file added after the index's look."""
    from guild_jupyter.store.scalars import reader as scalarlib
    from guild_jupyter.store.scalars.writer import ScalarWriter

    runs = _finished(project, guild_home, n=3)
    store = Store(str(guild_home))

    def shown():
        from guild_jupyter import views
        return [(r.id, views.main_scalar(r, spark=False)[0]) for r in store.runs()]

    def without_cache():
        shutil.rmtree(os.path.join(guild_home, "cache"), ignore_errors=True)
        RunIndex.forget()
        scalarlib.clear()

    monkeypatch.setattr(scalarlib, "PRIMED_FOR", 3600.0)  # however slow this machine is
    without_cache()
    primed = shown()
    assert all(s is not None for _, s in primed)  # train.py logs a loss
    without_cache()
    monkeypatch.setattr(scalarlib, "MAX_PRIMED", 0)  # nothing kept: every .guild listed again
    assert shown() == primed
    assert not scalarlib._primed
    monkeypatch.setattr(scalarlib, "MAX_PRIMED", 20000)
    # An event file added after the index listed .guild: the primed names miss it, but they are kept
    # under .guild's mtime from before that listing, so the next read lists .guild again, and what is
    # saved for the next process does not hide it either.
    without_cache()
    index = RunIndex.for_store(store)
    index.listing()
    target = runs[0]
    scratch = os.path.join(str(guild_home), "scratch")
    os.makedirs(scratch)
    w = ScalarWriter(scratch, set())
    w.feed_line(b"zz_added_later: 7.0")
    w.close()
    (made,) = [n for n in os.listdir(scratch) if n.startswith("events.out.tfevents.")]
    g = os.path.join(target.dir, ".guild")
    before = os.stat(g).st_mtime_ns
    os.rename(os.path.join(scratch, made), os.path.join(g, "events.out.tfevents.4000000000.added"))
    os.utime(g, ns=(before + 1_000_000_000, before + 1_000_000_000))  # a later mtime tick
    first = scalarlib.read(target.dir)  # the primed look: a moment before the file came
    assert "zz_added_later" not in first.last
    scalarlib.save()  # what the next process starts from
    scalarlib.clear()
    assert scalarlib.read(target.dir).last["zz_added_later"] == (0, 7.0)


def test_what_runs_json_prints_follows_the_real_guild_clis_tag_mark_and_comment(project, guild_home):
    """The index keeps the attrs ``runs --json`` prints (tags, marked,
    comments, the opref line...): Guild's ``tag``, ``mark`` and ``comment``
    rewrite them, and the next ``runs --json`` (from the listing file, and
    with no cache) says what ``guild runs --json`` says."""
    a, b = _finished(project, guild_home)
    home = guild_home

    def fields(rows):
        return {r["id"]: (r["tags"], r["marked"], [c.get("body") for c in r["comments"] or []], r["opref"])
                for r in rows}

    def guild_json():
        return fields(json.loads(guild("runs", "--json", "-a").stdout))

    assert fields(_cli_json(home)) == guild_json()  # (the listing file now holds both runs)
    guild("tag", "--add", "best", "--add", "small", a.id, "-y")
    guild("mark", b.id, "-y")
    guild("comment", "--add", "looks right", a.id, "-y")
    want = guild_json()
    assert want[a.id][0] == ["best", "small"] and want[b.id][1] is True and want[a.id][2] == ["looks right"]
    assert fields(_cli_json(home)) == want
    assert fields(_from_disk(home)) == want
    guild("tag", "--delete", "best", a.id, "-y")
    guild("mark", "--clear", b.id, "-y")
    assert fields(_cli_json(home)) == guild_json()
    _age(a.dir)
    _cli_json(home)  # (the listing file holds the runs as they are now)
    before = _dirs_mtimes(a)
    with open(os.path.join(a.attrs_dir, "tags"), "r+b") as f:  # in place, as Guild writes attrs
        f.truncate(0)
        f.write(b"[rewritten, in, place]\n")
    assert _dirs_mtimes(a) == before
    assert fields(_cli_json(home))[a.id][0] == ["rewritten", "in", "place"]
