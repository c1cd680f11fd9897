"""Latest scalars as data of every run: the incremental event-file reader
(store/scalars/) checked against tensorboardX's own protobufs, its
handling of partial, corrupt and replaced files, the shared cache, and the
main scalar in every run row (views, monitor snapshot, runs --json, REST)."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys

import pytest

from conftest import cli, wait_for
from guild_jupyter import api, views
from guild_jupyter.errors import BadInput
from guild_jupyter.store.scalars.writer import ScalarWriter, _record_bytes
from guild_jupyter.store.scalars import reader as scalarlib
from support.snapshots import group


@pytest.fixture(autouse=True)
def fresh_cache():
    scalarlib.clear()
    yield
    scalarlib.clear()


def run_dir(tmp_path, name="run") -> str:
    d = tmp_path / name
    (d / ".guild").mkdir(parents=True)
    return str(d)


def event_bytes(step: int, values: dict) -> bytes:
    """One record written by tensorboardX's classes (not ours)."""
    from tensorboardX.proto import event_pb2, summary_pb2

    ev = event_pb2.Event(wall_time=1.0, step=step, summary=summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in values.items()]))
    return _record_bytes(ev.SerializeToString())


def tbx_read(path: str) -> list[tuple[int, str, float]]:
    """An independent reader: TFRecord framing by hand, events by protobuf."""
    from tensorboardX.proto import event_pb2

    out = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack_from("<Q", data, pos)
        if pos + 16 + n > len(data):
            break
        ev = event_pb2.Event()
        ev.ParseFromString(data[pos + 12:pos + 12 + n])
        out += [(ev.step, v.tag, v.simple_value) for v in ev.summary.value if v.HasField("simple_value")]
        pos += 16 + n
    return out


def events_file(d: str, name="events.out.tfevents.1.host") -> str:
    return os.path.join(d, ".guild", name)


# -- the reader -----------------------------------------------------------------------------------


def test_reader_agrees_with_tensorboardx_protobufs(tmp_path):
    rng = random.Random(7)
    d = run_dir(tmp_path)
    path = events_file(d)
    with open(path, "wb") as f:
        f.write(event_bytes(0, {}))
        for i in range(300):
            tags = rng.sample(["loss", "acc", "val/loss", "lr", "é-unicode"], rng.randint(1, 3))
            f.write(event_bytes(rng.choice([i, -i, 2**40 + i]), {t: rng.uniform(-1e6, 1e6) for t in tags}))
    expected = tbx_read(path)
    last = {}
    for step, tag, value in expected:
        last[tag] = (step, value)
    rs = scalarlib.read(d)
    assert rs.last == last and rs.errors == [] and not rs.partial
    assert rs.tags == list(dict.fromkeys(t for _s, t, _v in expected))
    assert rs.recent("loss") == [v for _s, t, v in expected if t == "loss"][-scalarlib.RECENT:]
    series, errors = scalarlib.series(d)
    assert errors == [] and series["acc"] == [(s, v) for s, t, v in expected if t == "acc"]


def test_only_appended_bytes_are_decoded(tmp_path, monkeypatch):
    d = run_dir(tmp_path)
    w = ScalarWriter(os.path.join(d, ".guild"), set())
    for i in range(50):
        w.feed(f"step: {i}\nloss: {i}\n".encode())
    w.flush()
    decoded = []
    real = scalarlib.decode_event
    monkeypatch.setattr(scalarlib, "decode_event", lambda data: decoded.append(data) or real(data))
    assert scalarlib.read(d).last["loss"] == (49, 49.0)
    first = len(decoded)
    assert first == 51  # the file header event and 50 scalars
    assert scalarlib.read(d).last["loss"] == (49, 49.0)
    assert len(decoded) == first  # nothing new: nothing decoded
    w.feed(b"step: 50\nloss: 0.5\nacc: 0.9\n")
    w.flush()
    w.close()
    rs = scalarlib.read(d)
    assert len(decoded) == first + 2
    assert rs.last == {"loss": (50, 0.5), "acc": (50, pytest.approx(0.9))}
    assert rs.recent("loss")[-2:] == [49.0, 0.5] and len(rs.recent("loss")) == scalarlib.RECENT


def test_an_incomplete_trailing_record_is_read_once_complete(tmp_path):
    d = run_dir(tmp_path)
    path = events_file(d)
    whole = event_bytes(1, {"loss": 1.0}) + event_bytes(2, {"loss": 2.0})
    tail = event_bytes(3, {"loss": 3.0})
    for cut in (5, 12, len(tail) - 1):  # inside the header, at the data, before the last crc
        scalarlib.clear()
        with open(path, "wb") as f:
            f.write(whole + tail[:cut])
        rs = scalarlib.read(d)
        assert rs.last["loss"] == (2, 2.0) and rs.partial and rs.errors == []
        with open(path, "ab") as f:
            f.write(tail[cut:])
        rs = scalarlib.read(d)
        assert rs.last["loss"] == (3, 3.0) and not rs.partial and rs.recent("loss") == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("where", ["length", "length-crc", "data", "data-crc", "protobuf"])
def test_a_corrupt_record_stops_that_file_and_keeps_what_came_before(tmp_path, where):
    d = run_dir(tmp_path)
    good = event_bytes(1, {"loss": 1.0})
    bad = bytearray(event_bytes(2, {"loss": 2.0}))
    if where == "length":
        bad[0] ^= 0x01
    elif where == "length-crc":
        bad[9] ^= 0xFF
    elif where == "data":
        bad[14] ^= 0x01
    elif where == "data-crc":
        bad[-1] ^= 0xFF
    else:  # a well-framed record whose data is no Event
        from guild_jupyter.store.scalars.tfrecord import masked_crc32c

        data = b"\x0f\xff\xff"
        header = struct.pack("<Q", len(data))
        bad = header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))
    after = event_bytes(3, {"loss": 3.0, "acc": 0.5})
    with open(events_file(d), "wb") as f:
        f.write(good + bytes(bad) + after)
    other = events_file(d, "events.out.tfevents.2.host")
    with open(other, "wb") as f:  # another file of the run is read on
        f.write(event_bytes(4, {"acc": 0.75}))
    rs = scalarlib.read(d)
    assert rs.last == {"loss": (1, 1.0), "acc": (4, 0.75)}
    assert len(rs.errors) == 1 and "events.out.tfevents.1.host" in rs.errors[0] and "\n" not in rs.errors[0]
    again = scalarlib.read(d)  # not read again, not reported twice
    assert again.last == rs.last and len(again.errors) == 1


def test_garbage_and_empty_files_never_raise(tmp_path):
    d = run_dir(tmp_path)
    with open(events_file(d), "wb") as f:
        f.write(os.urandom(4096))
    open(events_file(d, "events.out.tfevents.2.host"), "wb").close()
    rs = scalarlib.read(d)
    assert rs.last == {} and len(rs.errors) == 1
    assert views.main_scalar(type("R", (), {"dir": d})()) == (None, [])


def test_a_replaced_shorter_file_is_read_afresh(tmp_path):
    d = run_dir(tmp_path)
    path = events_file(d)
    with open(path, "wb") as f:
        f.write(b"".join(event_bytes(i, {"loss": float(i)}) for i in range(10)))
    assert scalarlib.read(d).last["loss"] == (9, 9.0)
    with open(path, "wb") as f:
        f.write(event_bytes(0, {"acc": 0.1}))
    rs = scalarlib.read(d)
    assert rs.last == {"acc": (0, pytest.approx(0.1))} and rs.recent("loss") == []


def test_the_cache_is_bounded_and_drops_deleted_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(scalarlib, "MAX_RUNS", 3)
    dirs = []
    for i in range(5):
        d = run_dir(tmp_path, f"r{i}")
        with open(events_file(d), "wb") as f:
            f.write(event_bytes(i, {"loss": float(i)}))
        dirs.append(d)
        assert scalarlib.read(d).last["loss"] == (i, float(i))
    assert list(scalarlib._cache) == dirs[2:]
    shutil.rmtree(dirs[4])
    assert scalarlib.read(dirs[4]).last == {}
    assert dirs[4] not in scalarlib._cache


# -- the main scalar of a row -----------------------------------------------------------------------


class _Run:
    def __init__(self, d):
        self.dir = d


def test_main_scalar_is_loss_else_the_first_logged_else_the_one_asked_for(tmp_path):
    d = run_dir(tmp_path)
    with open(events_file(d), "wb") as f:
        f.write(event_bytes(0, {"acc": 0.1}) + event_bytes(1, {"acc": 0.2, "val": 5.0}))
    assert views.main_scalar(_Run(d)) == ({"tag": "acc", "value": pytest.approx(0.2), "step": 1},
                                         [pytest.approx(0.1), pytest.approx(0.2)])
    with open(events_file(d), "ab") as f:
        f.write(event_bytes(2, {"loss": float("nan")}))
    main, spark = views.main_scalar(_Run(d))
    assert main == {"tag": "loss", "value": "nan", "step": 2} and spark == ["nan"]  # JSON-able
    assert views.main_scalar(_Run(d), "val") == ({"tag": "val", "value": 5.0, "step": 1}, [5.0])
    assert views.main_scalar(_Run(d), "nope") == (None, [])


LOGGER = """\
import time
lr = 0.1
n = 1000000
for i in range(n):
    print(f"step: {i}", flush=True)
    print(f"loss: {i}", flush=True)
    time.sleep(0.05)
"""


def test_a_run_logging_at_20hz_shows_its_latest_loss_everywhere(tmp_path, guild_home):
    """Snapshot rows, ``runs --json`` and the run's row of the API carry the
    value last written, within one refresh (the writer flushes every second)."""
    script = tmp_path / "logger.py"
    script.write_text(LOGGER)
    (run,) = api.run(str(script), cwd=str(tmp_path))
    try:
        mon = api.monitor(store=str(guild_home))
        written = lambda: [int(v) for _s, t, v in _all_events(run.dir) if t == "loss"]  # noqa: E731

        def row():
            snap = mon.snapshot()
            rows = group(snap, "running")["rows"]
            return rows[0] if rows and rows[0]["scalar"] and rows[0]["scalar"]["value"] >= 40 else None

        r = wait_for(row, timeout=30, message="a loss of 40 or more in the snapshot")
        assert r["scalar"]["tag"] == "loss" and r["scalar"]["value"] in written()
        assert r["spark"] == sorted(r["spark"]) and len(r["spark"]) == scalarlib.RECENT
        json.dumps(r)
        # the latest value on disk is what the next snapshot shows
        latest = written()[-1]
        again = group(mon.snapshot(), "running")["rows"][0]["scalar"]["value"]
        assert again >= latest
        p = cli("runs", "--json", "--store", str(guild_home), check=0)
        (listed,) = json.loads(p.stdout)
        assert listed["scalar"]["tag"] == "loss" and listed["scalar"]["value"] >= latest
        assert views.run_row(run)["scalar"]["value"] >= latest
    finally:
        api.stop(run.id)


def _all_events(d):
    out = []
    gdir = os.path.join(d, ".guild")
    for name in sorted(os.listdir(gdir)):
        if name.startswith("events.out"):
            out += tbx_read(os.path.join(gdir, name))
    return out


def test_rows_of_every_kind_carry_scalar_and_spark(project, guild_home):
    cli("run", "train.py", "lr=0.5", "epochs=3", "--foreground", cwd=project, check=0)
    api.run("train.py", stage=True, cwd=str(project))
    snap = api.monitor(store=str(guild_home)).snapshot()
    (done,) = group(snap, "finished")["rows"]
    (staged,) = group(snap, "staged")["rows"]
    assert done["scalar"] == {"tag": "loss", "value": pytest.approx(0.5 / 3, rel=1e-5), "step": 2}
    assert done["spark"] == [pytest.approx(0.5), pytest.approx(0.25), pytest.approx(0.5 / 3, rel=1e-5)]
    assert done["scalar_text"] == "loss 0.166667"
    assert staged["scalar"] is None and staged["spark"] == [] and staged["scalar_text"] == ""
    listing = api.runs(store=str(guild_home))
    assert "completed  loss 0.166667" in str(listing)
    assert "<td>loss 0.166667</td>" in listing._repr_html_()
    listing.scalar = "nope"
    assert "loss" not in str(listing)
    df = api.runs(store=str(guild_home)).to_dataframe()
    assert set(df["scalar"].dropna()) == {"loss"}
    mon = api.monitor(store=str(guild_home), scalar="loss")
    assert group(mon.snapshot(), "finished")["rows"][0]["scalar"]["tag"] == "loss"
    with pytest.raises(BadInput):
        api.monitor(store=str(guild_home), scalar=3)


def test_a_corrupt_event_file_shows_what_could_be_read_in_runs_and_compare(project, guild_home):
    cli("run", "train.py", "lr=0.5", "epochs=3", "--foreground", cwd=project, check=0)
    (r,) = api.runs()
    gdir = os.path.join(r.dir, ".guild")
    (name,) = [n for n in os.listdir(gdir) if n.startswith("events.out")]
    with open(os.path.join(gdir, name), "r+b") as f:
        data = f.read()
        f.seek(len(data) - 3)
        f.write(b"\xff\xff\xff")  # the last record's data crc
    for args in (("runs",), ("runs", "--json"), ("compare",), ("compare", "--json")):
        p = cli(*args, check=0)
        assert "Traceback" not in p.stderr
    p = cli("compare", check=0)
    assert "loss" in p.stdout and "0.25" in p.stdout  # the value before the corrupt record
    assert "warning: run " + r.id[:8] in p.stdout and "corrupt record" in p.stdout
    assert json.loads(cli("runs", "--json", check=0).stdout)[0]["scalar"]["value"] == pytest.approx(0.25)


def test_rest_rows_carry_the_scalar(tmp_path, project):
    from support.jupyter import start_jupyter

    home = tmp_path / "rest-home"
    (home / "runs").mkdir(parents=True)
    cli("run", "train.py", "lr=0.5", "epochs=3", "--foreground", "--store", home, cwd=project, check=0)
    s = start_jupyter(tmp_path / "jupyter", env={"GUILD_HOME": str(home)}, root_dir=project,
                      extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    try:
        st, listing = s.request("/guild/api/runs")
        assert st == 200
        (row,) = listing["runs"]
        assert row["scalar"]["tag"] == "loss" and row["scalar"]["value"] == pytest.approx(0.5 / 3, rel=1e-5)
        st, state = s.request("/guild/api/state")
        assert group(state, "finished")["rows"][0]["spark"][-1] == pytest.approx(0.5 / 3, rel=1e-5)
    finally:
        s.stop()


def test_reading_scalars_imports_no_protobuf():
    """The hot path decodes by hand: neither tensorboardX nor protobuf."""
    code = ("import sys, tempfile, os\n"
            "from guild_jupyter.store.scalars import reader as scalars\n"
            "d = tempfile.mkdtemp(); os.mkdir(d + '/.guild')\n"
            "scalars.read(d)\n"
            "bad = [m for m in sys.modules if m.startswith(('google.protobuf', 'tensorboardX', 'matplotlib'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_runs_scalar_option_chooses_the_column_and_refuses_an_unknown_one(project, guild_home, ipython):
    from guild_jupyter.frontends.magics import GuildMagics
    from IPython.core.error import UsageError

    (project / "acc.py").write_text("print('acc: 0.5')\nprint('loss: 2')\n")
    cli("run", "acc.py", "--foreground", cwd=project, check=0)
    assert "completed  loss 2" in cli("runs", check=0).stdout
    assert "completed  acc 0.5" in cli("runs", "--scalar", "acc", check=0).stdout
    assert json.loads(cli("runs", "--scalar", "acc", "--json", check=0).stdout)[0]["scalar"]["tag"] == "acc"
    p = cli("runs", "--scalar", "nope")
    assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1
    assert "unknown scalar 'nope'; known scalars: acc, loss" in p.stderr
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    assert "acc 0.5" in str(ipython.run_line_magic("guild", "runs --scalar acc"))
    with pytest.raises(UsageError, match="unknown scalar 'nope'; known scalars: acc, loss"):
        ipython.run_line_magic("guild", "runs --scalar nope")


def test_crc32c_agrees_with_tensorboardx_in_both_table_modes(monkeypatch):
    from tensorboardX.crc32c import crc32c as reference

    from guild_jupyter.store.scalars import tfrecord

    rng = random.Random(3)
    samples = [bytes(rng.randrange(256) for _ in range(n)) for n in list(range(40)) + [1000, 4097]]
    want = [reference(s) for s in samples]
    monkeypatch.setattr(tfrecord, "_CRC_TABLE16", [])
    monkeypatch.setattr(tfrecord, "_native", None)
    monkeypatch.setattr(tfrecord, "_native_tried", True)  # the pure-Python tables
    monkeypatch.setattr(tfrecord, "TABLE16_AFTER", 10**12)
    assert [tfrecord.crc32c(s) for s in samples] == want
    assert tfrecord._CRC_TABLE16 == []  # the byte table only
    monkeypatch.setattr(tfrecord, "TABLE16_AFTER", 0)
    tfrecord.crc32c(b"x")
    assert len(tfrecord._CRC_TABLE16) == 65536
    assert [tfrecord.crc32c(s) for s in samples] == want
    # A big read loads the compiled package (an install dependency) instead.
    monkeypatch.setattr(tfrecord, "_CRC_TABLE16", [])
    monkeypatch.setattr(tfrecord, "_native_tried", False)
    tfrecord.crc32c(b"x")
    assert tfrecord._native is not None and tfrecord._CRC_TABLE16 == []
    assert [tfrecord.crc32c(s) for s in samples] == want


def _store_with_runs(tmp_path, n=3):
    """runs/<id>/.guild/events... with old mtimes (settled), as a store has them."""
    home = tmp_path / "home"
    dirs = []
    for i in range(n):
        d = home / "runs" / f"run{i:030d}"
        (d / ".guild").mkdir(parents=True)
        path = d / ".guild" / "events.out.tfevents.1.host"
        path.write_bytes(b"".join(event_bytes(s, {"loss": float(i + s), "acc": 0.5}) for s in range(5)))
        old = (1_600_000_000 * 10**9,) * 2
        os.utime(path, ns=old)
        os.utime(d / ".guild", ns=old)
        dirs.append(str(d))
    return home, dirs


def test_a_new_process_restores_settled_runs_without_decoding(tmp_path, monkeypatch):
    from guild_jupyter.store.scalars import cache_file as scalars_file

    home, dirs = _store_with_runs(tmp_path)
    first = {d: scalarlib.read(d).last for d in dirs}
    scalarlib.save()
    saved = home / "cache" / "guild_jupyter" / scalars_file.NAME
    assert len(json.loads(saved.read_text())["runs"]) == 3
    scalarlib.clear()  # as a new process starts
    monkeypatch.setattr(os, "listdir", lambda p: pytest.fail(f"listed {p}"))  # two stats a run, no listing
    assert {d: scalarlib.read(d).last for d in dirs} == first
    monkeypatch.undo()
    scalarlib.clear()
    decoded = []
    real = scalarlib.decode_event
    monkeypatch.setattr(scalarlib, "decode_event", lambda data: decoded.append(data) or real(data))
    assert {d: scalarlib.read(d).last for d in dirs} == first and decoded == []
    assert scalarlib.read(dirs[0]).tags == ["loss", "acc"]
    # an appended file is read from its own records, not from the entry
    with open(os.path.join(dirs[1], ".guild", "events.out.tfevents.1.host"), "ab") as f:
        f.write(event_bytes(9, {"loss": -1.0}))
    scalarlib.clear()
    rs = scalarlib.read(dirs[1])
    assert rs.last["loss"] == (9, -1.0) and rs.recent("loss")[-1] == -1.0 and len(decoded) == 6
    # a new event file (a restarted run) too
    shutil.copy(os.path.join(dirs[2], ".guild", "events.out.tfevents.1.host"),
                os.path.join(dirs[2], ".guild", "events.out.tfevents.2.host"))
    scalarlib.clear()
    assert scalarlib.read(dirs[2]).recent("loss") == [2.0, 3.0, 4.0, 5.0, 6.0] * 2


def test_fresh_or_unclean_runs_are_not_kept_and_a_bad_file_is_ignored(tmp_path):
    from guild_jupyter.store.scalars import cache_file as scalars_file

    home, dirs = _store_with_runs(tmp_path, 2)
    young = os.path.join(dirs[0], ".guild", "events.out.tfevents.1.host")
    os.utime(young)  # just written: its mtime may still not move on the next append
    with open(os.path.join(dirs[1], ".guild", "events.out.tfevents.1.host"), "ab") as f:
        f.write(event_bytes(7, {"loss": 1.0})[:9])  # an incomplete record at the end
    os.utime(os.path.join(dirs[1], ".guild", "events.out.tfevents.1.host"), ns=(10**18, 10**18))
    for d in dirs:
        scalarlib.read(d)
    scalarlib.save()
    saved = home / "cache" / "guild_jupyter" / scalars_file.NAME
    assert not saved.exists()
    for bad in (b"{", b'{"v": 1, "runs": {"run%030d": [1, 2, 3]}}' % 0, b'{"v": 1, "runs": []}'):
        scalarlib.clear()
        (home / "cache" / "guild_jupyter").mkdir(parents=True, exist_ok=True)
        saved.write_bytes(bad)
        assert scalarlib.read(dirs[0]).last["loss"] == (4, 4.0)


def test_runs_the_bounded_cache_dropped_are_still_saved(tmp_path, monkeypatch):
    from guild_jupyter.store.scalars import cache_file as scalars_file

    monkeypatch.setattr(scalarlib, "MAX_RUNS", 2)
    home, dirs = _store_with_runs(tmp_path, 5)
    for d in dirs:
        scalarlib.read(d)
    assert len(scalarlib._cache) == 2
    scalarlib.save()
    saved = json.loads((home / "cache" / "guild_jupyter" / scalars_file.NAME).read_text())["runs"]
    assert sorted(saved) == sorted(os.path.basename(d) for d in dirs)
