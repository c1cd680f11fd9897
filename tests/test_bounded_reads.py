"""Hostile files in run directories, read for real: ``plot`` and ``compare``
(the real CLI, in a subprocess under an address-space limit) meet a FIFO, a
link to ``/dev/zero``, a sparse 64 GiB file, a record whose length field
says 4 GiB and a real 256 MiB file; each ends, in bounded memory, with one
warning per bad file. Outputs and attrs that are FIFOs or endless read as
what they are, never as a hang. The streaming record reader is checked
against the whole-buffer one, and the incremental series reader against
the files it reads."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys

import pytest

from conftest import cli
from guild_jupyter import api
from guild_jupyter.store.scalars.writer import ScalarWriter, _record_bytes
from guild_jupyter.store.scalars import reader as scalarlib
from guild_jupyter.store.scalars import tfrecord
from guild_jupyter.store.scalars.tfrecord import masked_crc32c

BIG_MIB = 256  # a real event file this big costs its size to a reader that reads it whole


def limited(args, limit_mib: int, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """``python -m guild_jupyter ARGS`` with its address space capped: a
    reader that holds a file whole (or reads one that never ends) dies of
    MemoryError; one that hangs on a FIFO runs into ``timeout``."""
    limit = limit_mib << 20

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")  # BLAS reserves memory per thread
    return subprocess.run([sys.executable, "-m", "guild_jupyter", *map(str, args)], preexec_fn=cap, env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _event(step: int, **values) -> bytes:
    from tensorboardX.proto import event_pb2, summary_pb2

    ev = event_pb2.Event(wall_time=1000.0 + step, step=step, summary=summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in values.items()]))
    return _record_bytes(ev.SerializeToString())


@pytest.fixture
def hostile_store(tmp_path, project):
    """Three real runs (each logs loss), then a hostile event file or more in each."""
    home = tmp_path / "hostile-home"
    (project / "fit.py").write_text("lr = 0.1\nfor step in range(3):\n    print(f'step: {step}')\n"
                                    "    print(f'loss: {lr / (step + 1)}')\n")
    for lr in ("0.1", "0.2", "0.3"):
        cli("run", "fit.py", f"lr={lr}", "--foreground", "--store", home, cwd=project, check=0)
    runs = {r.flags["lr"]: r for r in api.runs(store=str(home))}
    bad = {}
    fifo_run, zero_run, big_run = runs[0.1], runs[0.2], runs[0.3]
    path = fifo_run.path("events.out.tfevents.9.fifo")
    os.mkfifo(path)
    bad[fifo_run.id] = ["events.out.tfevents.9.fifo: not a regular file (a FIFO)"]
    os.symlink("/dev/zero", zero_run.path("events.out.tfevents.9.zero"))
    with open(zero_run.path("events.out.tfevents.8.sparse"), "wb") as f:
        f.truncate(64 << 30)  # 64 GiB of zeros, none of them on disk
    bad[zero_run.id] = ["events.out.tfevents.9.zero: not a regular file (a character device)",
                        "events.out.tfevents.8.sparse: corrupt record after byte 0"]
    header = struct.pack("<Q", 4 << 30)  # a well-checksummed header that says 4 GiB
    with open(big_run.path("events.out.tfevents.7.huge"), "wb") as f:
        f.write(_event(0, acc=0.5) + header + struct.pack("<I", masked_crc32c(header)) + b"\0" * 64)
    bad[big_run.id] = ["events.out.tfevents.7.huge: corrupt record after byte", "record length 4294967296"]
    # A real, well-formed 256 MiB file: 8 MiB records (Event.file_version), then a scalar.
    record = _record_bytes(b"\x1a\x80\x80\x80\x04" + b"v" * (8 << 20))
    with open(big_run.path("events.out.tfevents.6.big"), "wb") as f:
        for _ in range(BIG_MIB // 8):
            f.write(record)
        f.write(_event(99, big=7.0))
    return home, runs, bad


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line]


def _check_warnings(lines: list[str], bad: dict) -> None:
    """One line per bad file, naming the run and the file, nothing else."""
    expected = sum(len([w for w in words if w.startswith("events.")]) for words in bad.values())
    assert len(lines) == expected, lines
    for run_id, words in bad.items():
        for w in words:
            assert sum(run_id[:8] in line and w in line for line in lines) == 1, (w, lines)


@pytest.mark.timeout(300)
def test_plot_reads_hostile_event_files_in_bounded_memory(hostile_store, tmp_path):
    home, runs, bad = hostile_store
    png = tmp_path / "loss.png"
    p = limited(["plot", "--output", png, "--store", home], 384)
    assert p.returncode == 0, p.stderr[-3000:]
    assert png.stat().st_size > 0
    _check_warnings(_warnings(p.stderr), bad)
    # The well-formed scalar after 256 MiB of big records is read, in the same bounds.
    p = limited(["plot", "--scalar", "big", "--output", tmp_path / "big.png", "--store", home], 384)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (tmp_path / "big.png").stat().st_size > 0


@pytest.mark.timeout(300)
def test_compare_reads_hostile_event_files_in_bounded_memory(hostile_store):
    home, runs, bad = hostile_store
    p = limited(["compare", "--json", "--store", home], 192)
    assert p.returncode == 0, p.stderr[-3000:]
    import json

    rows = {r["id"]: r for r in json.loads(p.stdout)}
    for lr, r in runs.items():
        assert rows[r.id]["scalars"]["loss"] == pytest.approx(lr / 3, rel=1e-6)
    assert rows[runs[0.3].id]["scalars"]["big"] == 7.0 and rows[runs[0.3].id]["scalars"]["acc"] == 0.5
    p = limited(["compare", "--store", home], 192)  # the table, then its warnings
    assert p.returncode == 0, p.stderr[-3000:]
    _check_warnings(_warnings(p.stdout + p.stderr), bad)


def test_an_output_or_attr_that_is_not_a_regular_file_never_hangs(project, guild_home):
    (project / "hello.py").write_text("print('hello')\n")
    (a,) = api.run(str(project / "hello.py"))
    api.wait(a, timeout=60)
    (b,) = api.run(str(project / "hello.py"))
    api.wait(b, timeout=60)
    os.unlink(a.path("output"))
    os.mkfifo(a.path("output"))
    os.unlink(b.path("output"))
    os.symlink("/dev/zero", b.path("output"))
    os.unlink(a.path("attrs", "label"))
    os.mkfifo(a.path("attrs", "label"))
    os.unlink(b.path("attrs", "flags"))
    os.symlink("/dev/zero", b.path("attrs", "flags"))
    for ref in (a.id, b.id):
        p = limited(["output", ref], 192, timeout=30)
        assert p.returncode == 0 and p.stdout == "", p.stderr
        p = limited(["output", ref, "--tail", "5"], 192, timeout=30)
        assert p.returncode == 0 and p.stdout == "", p.stderr
        p = limited(["output", ref, "--follow"], 192, timeout=30)  # ended: its outcome, no wait for a writer
        assert p.returncode == 0 and "completed" in p.stdout + p.stderr, p.stderr
    p = limited(["runs"], 192, timeout=30)
    assert p.returncode == 0, p.stderr
    assert a.id[:8] in p.stdout and b.id[:8] in p.stdout
    warned = [line for line in (p.stdout + p.stderr).splitlines() if "unreadable attr" in line]
    assert any(a.id[:8] in w and "label" in w and "FIFO" in w for w in warned), p.stderr
    assert any(b.id[:8] in w and "flags" in w and "character device" in w for w in warned), p.stderr


# -- the readers themselves -----------------------------------------------------------------------


def test_streaming_records_match_the_whole_buffer_reader(tmp_path):
    """Records that straddle chunks, one longer than a chunk, a cut last one."""
    events = [_event(i, loss=float(i)) for i in range(200)]
    long = _record_bytes(b"\x1a\xa0\x9c\x01" + b"x" * 20000)  # longer than the chunk below
    data = b"".join(events[:100]) + long + b"".join(events[100:]) + events[0][:-3]
    path = tmp_path / "events.out.tfevents.1.x"
    path.write_bytes(data)
    whole = list(tfrecord.records(data))
    fd = os.open(path, os.O_RDONLY)
    try:
        for chunk in (7, 64, 1000, 1 << 20):
            assert list(tfrecord.read_records(fd, 0, len(data), chunk)) == whole
        mid = whole[150][1]
        assert list(tfrecord.read_records(fd, mid, len(data), 64)) == whole[151:]
    finally:
        os.close(fd)
    assert whole[-1][1] == len(data) - len(events[0]) + 3  # the cut record is left for later


def test_a_length_past_the_bound_is_corruption_not_an_allocation(tmp_path):
    header = struct.pack("<Q", tfrecord.MAX_RECORD + 1)
    data = _event(1, loss=1.0) + header + struct.pack("<I", masked_crc32c(header))
    path = tmp_path / "events.out.tfevents.1.x"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    got = []
    try:
        with pytest.raises(tfrecord.Corrupt, match="record length"):
            for rec in tfrecord.read_records(fd, 0, len(data)):
                got.append(rec)
    finally:
        os.close(fd)
    assert len(got) == 1


def test_series_since_reads_what_was_appended(tmp_path):
    d = tmp_path / "run"
    (d / ".guild").mkdir(parents=True)
    w = ScalarWriter(str(d / ".guild"), set())
    for i in range(3):
        w.feed(f"step: {i}\nloss: {i / 10}\n".encode())
    w.flush()
    points, token, errors = scalarlib.series_since(str(d))
    assert errors == [] and [p[:2] for p in points["loss"]] == [[0, 0.0], [1, pytest.approx(0.1)],
                                                                  [2, pytest.approx(0.2)]]
    assert all(isinstance(p[2], float) and p[2] > 1e9 for p in points["loss"])  # wall time, seconds
    again, token2, _ = scalarlib.series_since(str(d), token)
    assert again == {} and token2 == token
    w.feed(b"step: 3\nloss: 0.3\nacc: 0.9\n")
    w.flush()
    w.close()
    more, token3, _ = scalarlib.series_since(str(d), token, tags=["loss"])
    assert [p[:2] for p in more["loss"]] == [[3, pytest.approx(0.3)]] and "acc" not in more
    name = next(iter(token3))
    with open(d / ".guild" / name, "wb") as f:  # replaced by a shorter file: read from its start
        f.write(_event(5, loss=5.0))
    fresh, _, _ = scalarlib.series_since(str(d), token3)
    assert [p[:2] for p in fresh["loss"]] == [[5, 5.0]]
    assert scalarlib.series_since(str(d), {"junk": "x"})[0]["loss"][0][:2] == [5, 5.0]  # a bad token: from the start

