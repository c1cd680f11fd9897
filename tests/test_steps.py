"""Steps (issue 22 item 1): a run whose output never sets ``step`` gets, per
tag, step k on its k-th value, so curves are lines; ``step:`` keeps
Guild's rule. Checked by reading the event files back with tensorboardX's
own protobufs (not our reader), against the real ``guild compare`` (last
values unchanged), and through ``plot --x``. Also the writer's index of its
event file (``store/scalars/sidecar``): what charts read equals an
independent decoding of the events, and a file replaced or copied falls
back to decoding."""

from __future__ import annotations

import csv
import io
import math
import os
import random
import shutil
import struct

import pytest

from conftest import cli, guild, run_dirs
from guild_jupyter import api, charts
from guild_jupyter.errors import BadInput
from guild_jupyter.store.scalars.series import SeriesRead
from guild_jupyter.store.scalars.writer import ScalarWriter

EPOCHS_PY = ("lr = 0.1\nepochs = 4\n"
             "for epoch in range(1, epochs + 1):\n"
             "    print(f'epoch: {epoch}')\n"
             "    print(f'loss: {lr / epoch:.6f}')\n"
             "    print(f'acc: {1 - lr / epoch:.6f}')\n")


def tbx_events(run_dir: str) -> list[tuple[int, str, float, float]]:
    """(step, tag, value, wall time) of every scalar in the run's event
    files, decoded with tensorboardX's protobufs (framing by hand)."""
    from tensorboardX.proto import event_pb2

    out = []
    gdir = os.path.join(run_dir, ".guild")
    for name in sorted(n for n in os.listdir(gdir) if n.startswith("events.out.tfevents")):
        with open(os.path.join(gdir, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 12 <= len(data):
            (n,) = struct.unpack_from("<Q", data, pos)
            if pos + 16 + n > len(data):
                break
            ev = event_pb2.Event()
            ev.ParseFromString(data[pos + 12:pos + 12 + n])
            out += [(ev.step, v.tag, v.simple_value, ev.wall_time) for v in ev.summary.value
                    if v.HasField("simple_value")]
            pos += 16 + n
    return out


def by_tag(events, tag):
    return [(s, v) for s, t, v, _w in events if t == tag]


@pytest.fixture
def epochs_project(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "train.py").write_text(EPOCHS_PY)
    (d / "stepped.py").write_text("for s in range(3):\n    print(f'step: {s * 10}')\n    print(f'loss: {s}')\n")
    return d


def test_an_epoch_only_script_gets_one_point_per_epoch(epochs_project, guild_home):
    cli("run", "train.py", "lr=[0.1,0.2]", "--foreground", cwd=epochs_project, check=0)
    runs = api.runs()
    assert len(runs) == 2
    for r in runs:
        events = tbx_events(r.dir)
        lr = r.flags["lr"]
        assert by_tag(events, "epoch") == [(k, float(k + 1)) for k in range(4)]  # step k: the k-th value
        assert by_tag(events, "loss") == [(k, pytest.approx(round(lr / (k + 1), 6), rel=1e-6)) for k in range(4)]
        assert [s for s, _v in by_tag(events, "acc")] == [0, 1, 2, 3]
        # plot draws a line per run, one point per epoch, against step or against epoch
    fig = api.plot(scalar="loss", store=str(guild_home))
    assert sorted(len(line.get_xdata()) for line in fig.axes[0].get_lines()) == [4, 4]
    assert sorted(set(line.get_xdata()) == {0, 1, 2, 3} for line in fig.axes[0].get_lines()) == [True, True]
    fig = api.plot(scalar="loss", x="epoch", store=str(guild_home))
    assert fig.axes[0].get_xlabel() == "epoch"
    for line in fig.axes[0].get_lines():
        assert list(line.get_xdata()) == [1.0, 2.0, 3.0, 4.0]


def test_guild_compare_shows_the_same_last_values(epochs_project, guild_home):
    cli("run", "train.py", "lr=[0.1,0.3]", "--foreground", cwd=epochs_project, check=0)
    p = guild("compare", "--csv", "-", env={"GUILD_HOME": str(guild_home)})
    theirs = {row["run"]: row for row in csv.DictReader(io.StringIO(p.stdout))}
    ours = api.compare(store=str(guild_home))
    assert sorted(theirs) == sorted(r["id"][:8] for r in ours.rows)
    for row in ours.rows:
        g = theirs[row["id"][:8]]
        for tag in ("loss", "acc", "epoch"):
            assert float(g[tag]) == pytest.approx(row["scalars"][tag], rel=1e-6)
        assert row["scalars"]["epoch"] == 4.0 and row["steps"]["loss"] == 3


def test_a_step_line_keeps_guilds_rule(epochs_project, guild_home):
    cli("run", "stepped.py", "--foreground", cwd=epochs_project, check=0)
    (r,) = api.runs()
    assert by_tag(tbx_events(r.dir), "loss") == [(0, 0.0), (10, 1.0), (20, 2.0)]


def test_values_before_a_step_line_keep_their_steps(tmp_path):
    """Documented: a ``step:`` after values switches to Guild's rule from
    there on; what was logged before keeps the steps it was given."""
    gdir = tmp_path / "run" / ".guild"
    gdir.mkdir(parents=True)
    w = ScalarWriter(str(gdir), ignore={"lr"})
    w.feed(b"loss: 1\nloss: 2\nacc: 5\nlr: 0.1\nstep: 7\nloss: 3\nacc: 6\nloss: 4\nstep: -2\nloss: 5\n")
    w.close()
    events = tbx_events(str(tmp_path / "run"))
    assert by_tag(events, "loss") == [(0, 1.0), (1, 2.0), (7, 3.0), (7, 4.0), (-2, 5.0)]
    assert by_tag(events, "acc") == [(0, 5.0), (7, 6.0)]
    assert by_tag(events, "lr") == []  # a flag is no scalar


# -- the writer's index ---------------------------------------------------------------------------


def series_of(run_dir, since=None, tags=None):
    reading = SeriesRead(run_dir, since, tags)
    out = {}
    for tag, steps, values, walls in reading.chunks():
        out.setdefault(tag, []).extend(zip(steps.tolist(), values.tolist(), walls.tolist()))
    return out, reading


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_the_index_gives_what_an_independent_decoding_gives(tmp_path):
    rng = random.Random(22)
    run = tmp_path / "run"
    gdir = run / ".guild"
    gdir.mkdir(parents=True)
    w = ScalarWriter(str(gdir), ignore=set())
    lines = []
    for i in range(3000):
        tag = rng.choice(["loss", "acc", "val/loss", "a_very_long_tag_name_" + "x" * 150])
        value = rng.choice([rng.uniform(-1e6, 1e6), 0.0, float("nan"), float("inf"), -1e40, 1e-45])
        if rng.random() < 0.05:
            lines.append(f"step: {rng.randint(-5, 1 << 40)}")
        lines.append(f"{tag}: {value!r}")
    w.feed(("\n".join(lines) + "\n").encode())
    w.close()
    expected = tbx_events(str(run))
    got, reading = series_of(str(run))
    assert reading.indexed == len(expected) and reading.decoded == 0  # all of it from the index
    def key(item):  # NaN sorts as itself
        t, step, v = item
        return t, step, math.isnan(v), 0.0 if math.isnan(v) else v

    flat = sorted(((t, s, v) for t, pts in got.items() for s, v, _w in pts), key=key)
    want = sorted(((t, s, v) for s, t, v, _w in expected), key=key)
    assert len(flat) == len(want) and all(a[:2] == b[:2] and same(a[2], b[2]) for a, b in zip(flat, want))
    # The same again with the index gone: decoded from the events, the same points.
    for name in os.listdir(gdir):
        if name.startswith("scalar-series."):
            os.remove(gdir / name)
    again, reading = series_of(str(run))
    assert reading.decoded == len(expected) and reading.indexed == 0
    assert {t: [(s, v) for s, v, _w in p] for t, p in again.items()}.keys() == got.keys()
    for tag in got:
        assert all(a[0] == b[0] and same(a[1], b[1]) and a[2] == b[2] for a, b in zip(again[tag], got[tag]))


def test_reading_on_from_a_token_gives_only_what_was_appended(tmp_path):
    gdir = tmp_path / "run" / ".guild"
    gdir.mkdir(parents=True)
    w = ScalarWriter(str(gdir), ignore=set())
    w.feed(b"loss: 1\nloss: 2\n")
    w.flush()
    first, reading = series_of(str(tmp_path / "run"))
    assert [v for _s, v, _w in first["loss"]] == [1.0, 2.0]
    w.feed(b"loss: 3\nacc: 9\n")
    w.close()
    more, reading2 = series_of(str(tmp_path / "run"), reading.token)
    assert {t: [(s, v) for s, v, _w in p] for t, p in more.items()} == {"loss": [(2, 3.0)], "acc": [(0, 9.0)]}
    assert not reading2.reset and reading2.indexed == 2
    nothing, reading3 = series_of(str(tmp_path / "run"), reading2.token)
    assert nothing == {} and reading3.token == reading2.token


def test_a_replaced_or_copied_event_file_is_decoded_and_resets(tmp_path):
    run = tmp_path / "run"
    gdir = run / ".guild"
    gdir.mkdir(parents=True)
    w = ScalarWriter(str(gdir), ignore=set())
    w.feed(b"".join(b"loss: %d\n" % i for i in range(10)))
    w.close()
    _, reading = series_of(str(run))
    (name,) = [n for n in os.listdir(gdir) if n.startswith("events.out")]
    path = gdir / name
    data = path.read_bytes()
    # Keep the header and the first 4 scalars: a new file (another inode) of the same name.
    pos = 0
    for _ in range(5):
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 16 + n
    tmp = gdir / "tmp"
    tmp.write_bytes(data[:pos])
    os.replace(tmp, path)
    got, again = series_of(str(run), reading.token)
    assert again.reset and again.decoded == 4 and again.indexed == 0  # the index no longer matches: not used
    assert [v for _s, v, _w in got["loss"]] == [0.0, 1.0, 2.0, 3.0]
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    got, copied = series_of(str(copy))
    assert copied.indexed == 0 and [v for _s, v, _w in got["loss"]] == [0.0, 1.0, 2.0, 3.0]


def test_a_restart_in_the_same_second_appends_to_the_same_file(tmp_path, monkeypatch):
    """Two writers of one event file name (a run restarted within a second):
    the second's index covers what it wrote; what came before is decoded."""
    import time as time_mod

    gdir = tmp_path / "run" / ".guild"
    gdir.mkdir(parents=True)
    monkeypatch.setattr(time_mod, "time", lambda: 1_700_000_000.5)
    for values in ((b"loss: 1\nloss: 2\n"), (b"loss: 3\n")):
        w = ScalarWriter(str(gdir), ignore=set())
        w.feed(values)
        w.close()
    assert len([n for n in os.listdir(gdir) if n.startswith("events.out")]) == 1
    got, reading = series_of(str(tmp_path / "run"))
    assert [(s, v) for s, v, _w in got["loss"]] == [(0, 1.0), (1, 2.0), (0, 3.0)]
    assert reading.indexed == 1 and reading.decoded == 2
    assert [(s, v) for s, t, v, _w in tbx_events(str(tmp_path / "run"))] == [(0, 1.0), (1, 2.0), (0, 3.0)]


def overview_run(tmp_path, n: int, seed: int):
    """A run whose writer logged ``n`` rounds of loss (a spike and NaNs among
    them), acc and a rarer lr: enough for an overview."""
    rng = random.Random(seed)
    run = tmp_path / f"run{seed}"
    gdir = run / ".guild"
    gdir.mkdir(parents=True)
    w = ScalarWriter(str(gdir), ignore=set())
    lines = []
    for i in range(n):
        loss = float("nan") if rng.random() < 0.01 else 1 / (1 + i) + rng.random() * 0.01
        lines.append(f"loss: {9.5 if i == n // 3 else loss!r}")
        lines.append(f"acc: {rng.choice([rng.random(), float('inf')]) if rng.random() < 0.02 else rng.random()!r}")
        if i % 7 == 0:
            lines.append(f"lr: {rng.random()!r}")
    w.feed(("\n".join(lines) + "\n").encode())
    w.flush()
    return run, w


def summaries_of(events) -> dict:
    """Per tag (count, last step, last, lowest and highest finite value) of an independent decoding."""
    out = {}
    for tag in {t for _s, t, _v, _w in events}:
        pts = by_tag(events, tag)
        finite = [v for _s, v in pts if math.isfinite(v)]
        out[tag] = (len(pts), pts[-1][0], pts[-1][1], min(finite), max(finite))
    return out


def test_the_writers_overview_stands_for_what_it_covers(tmp_path):
    """A file of many scalars gets the writer's overview: a summary made
    from it equals one of an independent decoding (tensorboardX's
    protobufs); a thinned read from it keeps the series' first and last
    point and its lowest and highest value, and every point it gives is
    one the run logged; what was logged after the overview was written is
    read from the index; a damaged overview is ignored."""
    run, w = overview_run(tmp_path, 12_000, 7)
    gdir = run / ".guild"
    assert any(n.startswith("scalar-overview.") for n in os.listdir(gdir))

    def check(expect_overview: bool):
        events = tbx_events(str(run))
        want = summaries_of(events)
        charts.forget_summaries()
        got, _errors = charts.summary(str(run))
        for tag, (count, last_step, last, low, high) in want.items():
            t = got[tag]
            assert (t.count, t.last_step, t.low, t.high) == (count, last_step, low, high) and same(t.last, last)
            assert [x for x in t.recent if not math.isnan(x)] == [v for _s, v in by_tag(events, tag)[-32:]
                                                                  if not math.isnan(v)]
        reading = SeriesRead(str(run), None, totals_only=True)
        list(reading.groups())
        assert (reading.overviewed > 0) == expect_overview
        charts.forget_summaries()
        read = charts.read_run(str(run), tags=["loss"], x="step", points=900)
        xs, ys = read.series["loss"]
        logged = by_tag(events, "loss")
        values = dict(logged)
        assert read.thinned and 400 <= len(xs) <= 900
        assert (xs[0], xs[-1]) == (logged[0][0], logged[-1][0])
        assert all(same(values[int(x)], y) for x, y in zip(xs.tolist(), ys.tolist()))  # only logged points
        finite = [v for _s, v in logged if math.isfinite(v)]
        assert 9.5 in ys.tolist() and min(finite) in ys.tolist()  # the spike and the lowest value kept
        assert all(b > a for a, b in zip(xs.tolist(), xs.tolist()[1:]))
        return read

    check(True)
    # More logged after the overview was written: read from the index, the overview still standing for its part.
    w.feed(b"".join(b"loss: 0.25\nacc: 0.5\n" for _ in range(100)))
    w.flush()
    read = check(True)
    assert read.series["loss"][0][-1] == 12_099 and read.series["loss"][1][-1] == 0.25
    # A series asked whole (or thinned finer than the overview keeps) is read from the index, every point.
    whole = charts.read_run(str(run), tags=["lr"], x="step", points=5000)
    assert len(whole.series["lr"][0]) == len(by_tag(tbx_events(str(run)), "lr")) and not whole.thinned
    # A damaged overview (cut short, or of another file) is not used: the same from the index.
    (name,) = [n for n in os.listdir(gdir) if n.startswith("scalar-overview.")]
    data = (gdir / name).read_bytes()
    (gdir / name).write_bytes(data[:len(data) // 2])
    check(False)
    (gdir / name).write_bytes(data[:8] + struct.pack("<Q", 12345) + data[16:])
    check(False)
    w.close()


# -- x axes and thinning ------------------------------------------------------------------------


def test_x_axes_pair_values_at_the_same_step(tmp_path):
    gdir = tmp_path / "run" / ".guild"
    gdir.mkdir(parents=True)
    w = ScalarWriter(str(gdir), ignore=set())
    # loss before epoch within a step, and a step the epoch tag skips
    w.feed(b"step: 0\nloss: 1\nepoch: 10\nstep: 1\nloss: 2\nstep: 2\nloss: 3\nepoch: 12\n")
    w.flush()
    read = charts.read_run(str(tmp_path / "run"), tags=["loss"], x="epoch")
    xs, ys = read.series["loss"]
    assert list(zip(xs.tolist(), ys.tolist())) == [(10.0, 1.0), (12.0, 3.0)]  # step 1 has no epoch: left out
    w.feed(b"step: 3\nloss: 4\n")  # its epoch comes later, in another read
    w.flush()
    more = charts.read_run(str(tmp_path / "run"), read.cursor, tags=["loss"], x="epoch")
    assert len(more.series.get("loss", ((), ()))[0]) == 0
    w.feed(b"epoch: 13\n")
    w.close()
    last = charts.read_run(str(tmp_path / "run"), more.cursor, tags=["loss"], x="epoch")
    assert list(zip(*[a.tolist() for a in last.series["loss"]])) == [(13.0, 4.0)]
    timed = charts.read_run(str(tmp_path / "run"), tags=["loss"], x="time", started_us=None)
    xs, _ys = timed.series["loss"]
    assert xs[0] == 0.0 and all(b >= a for a, b in zip(xs, xs[1:]))


def test_thinning_keeps_the_ends_and_the_extremes():
    import numpy as np

    y = np.sin(np.linspace(0, 20, 100_000))
    y[54_321] = 50.0  # a spike
    keep = charts.thin_indices(y, 1000)
    assert len(keep) <= 1000 and keep[0] == 0 and keep[-1] == len(y) - 1 and 54_321 in keep
    assert list(charts.thin_indices(y[:10], 1000)) == list(range(10))


def test_plot_x_must_be_step_time_or_a_logged_scalar(epochs_project, guild_home):
    cli("run", "train.py", "--foreground", cwd=epochs_project, check=0)
    before = run_dirs(guild_home)
    with pytest.raises(BadInput) as e:
        api.plot(scalar="loss", x="lr")
    assert str(e.value) == "x axis 'lr' is neither step, time nor a logged scalar; known scalars: acc, epoch, loss"
    p = cli("plot", "--x", "wall", "--output", epochs_project / "x.png")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "known scalars: acc, epoch, loss" in p.stderr
    assert not (epochs_project / "x.png").exists() and run_dirs(guild_home) == before
    fig = api.plot(scalar="acc", x="time")
    assert fig.axes[0].get_xlabel() == "time (s)"
