"""The live sweep view's server side and ``plot``, at issue 22's scale.

    .venv/bin/python bench/bench_sweep_server.py [--trials 100] [--tags 5] [--points 10000]
                                                 [--updates 10] [--peer-runs 10] [--keep DIR]

A sweep of ``--trials`` runs, each logging ``--tags`` scalars ``--points``
times (an ``epoch:`` line and others per epoch), written by our own
``ScalarWriter`` (the supervisor's), so each event file has its index.

(a) the sweep's scalars, in a process (``api.sweep_scalars``) and over
    REST (``GET /guild/api/sweeps/ID/scalars`` of a real Jupyter server on
    loopback, JSON included): the first full load of one tag (``points=2000``
    per series, as the view asks), of every tag, and each 1 s update (every
    trial logs 10 more epochs; the view asks with its token): median and
    p95. Goal: an update <= 50 ms of server time.
(b) the sweep's table (``GET /guild/api/sweeps/ID``).
(c) ``plot`` of every trial's ``loss`` (trials x points) in this process,
    the figure and its PNG as a notebook shows it. Goal <= 1 s.
Peers, side by side on the same files: decoding the event files with
tensorboardX's protobufs (the obvious peer: what reading them without us
takes), and TensorBoard's own loading (``EventAccumulator``) on
``--peer-runs`` of the runs (it is too slow for all of them), with ours on
the same runs.

``--keep DIR`` leaves the store (``DIR/guild-home``) for the browser's bench.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from common import median, pct  # noqa: E402

TRAIN = "lr = 0.01\nepochs = 10000\n"
TAGS = ("loss", "acc", "val_loss", "grad_norm")


def lines(epoch_from: int, epoch_to: int, lr: float, tags: int) -> bytes:
    out = []
    for e in range(epoch_from, epoch_to):
        out.append(f"epoch: {e}")
        for i, tag in enumerate(TAGS[:tags - 1]):
            out.append(f"{tag}: {(lr * (i + 1)) / (1 + e * 0.01):.6f}")
    return ("\n".join(out) + "\n").encode()


def reopen(home: str):
    """A store ``build`` made (``--store``): its sweep, runs, and new writers
    (each a new event file, as a restarted supervisor's)."""
    from guild_jupyter import api
    from guild_jupyter.store.scalars.writer import ScalarWriter

    runs = [r for r in api.runs(store=home) if r.sweep]
    runs.sort(key=lambda r: r.flags["lr"])
    time.sleep(1.1)  # a new second: new event file names
    return runs[0].sweep, runs, {r.id: ScalarWriter(r.guild_dir, ignore={"lr", "epochs"}) for r in runs}


def build(home: str, trials: int, tags: int, points: int):
    """A staged sweep of ``trials`` runs whose event files (with indexes)
    hold ``points`` epochs of ``tags`` scalars; returns (sweep id, runs,
    open writers)."""
    from guild_jupyter import api
    from guild_jupyter.store.scalars.writer import ScalarWriter

    proj = tempfile.mkdtemp(prefix="gj-bench-sweep-proj-")
    with open(os.path.join(proj, "train.py"), "w") as f:
        f.write(TRAIN)
    runs = api.run("train.py", f"lr=linspace[0.001:0.1:{trials}]", stage=True, store=home, cwd=proj)
    writers = {}
    for r in runs:
        w = ScalarWriter(r.guild_dir, ignore={"lr", "epochs"})
        step = 2000
        for start in range(0, points, step):
            w.feed(lines(start, min(points, start + step), r.flags["lr"], tags))
        w.flush()
        writers[r.id] = w
    return runs[0].sweep, runs, writers


def log_more(writers, runs, at: int, n: int, tags: int) -> None:
    for r in runs:
        w = writers[r.id]
        w.feed(lines(at, at + n, r.flags["lr"], tags))
        w.flush()


def tbx_decode(run_dirs) -> int:
    """Every scalar of the runs' event files, decoded with tensorboardX's protobufs."""
    from tensorboardX.proto import event_pb2

    n = 0
    for d in run_dirs:
        gdir = os.path.join(d, ".guild")
        for name in sorted(x for x in os.listdir(gdir) if x.startswith("events.out.tfevents")):
            with open(os.path.join(gdir, name), "rb") as f:
                data = f.read()
            pos = 0
            ev = event_pb2.Event()
            while pos + 12 <= len(data):
                (size,) = struct.unpack_from("<Q", data, pos)
                ev.ParseFromString(data[pos + 12:pos + 12 + size])
                n += len(ev.summary.value)
                pos += 16 + size
    return n


def tb_accumulate(run_dirs) -> int:
    """TensorBoard's own loading of the runs (every event kept)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    n = 0
    for d in run_dirs:
        acc = EventAccumulator(os.path.join(d, ".guild"), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            n += len(acc.Scalars(tag))
    return n


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def cpu_timed(fn, *args, **kw):
    """(wall s, CPU s of this process, result): on a loaded machine CPU time
    is what the work costs; wall time is what it waited."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, time.process_time() - c0, out


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def get(server, path):
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"token {server.token}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        body = r.read()
    return time.perf_counter() - t0, json.loads(body), len(body)


def server_cpu(server) -> float:
    """The server process's CPU seconds so far (user + system, all threads):
    around a request, what it cost the server, which a loaded machine does
    not stretch as it stretches wall time (ticks of 10 ms: the mean of many
    requests is what to read)."""
    with open(f"/proc/{server.proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--tags", type=int, default=5)
    p.add_argument("--points", type=int, default=10000)
    p.add_argument("--updates", type=int, default=10)
    p.add_argument("--peer-runs", type=int, default=10)
    p.add_argument("--keep", default=None, help="build the store in DIR and leave it there")
    p.add_argument("--store", default=None, help="use the store a --keep run left in DIR (not built again)")
    a = p.parse_args()
    from guild_jupyter import api, charts
    from guild_jupyter.plotting import png_bytes
    from support.jupyter import start_jupyter

    base = a.store or a.keep or tempfile.mkdtemp(prefix="gj-bench-sweep-")
    home = os.path.join(base, "guild-home")
    os.makedirs(os.path.join(home, "runs"), exist_ok=True)
    if a.store:
        t, (sweep, runs, writers) = timed(reopen, home)
        a.trials, a.points = len(runs), a.points
    else:
        t, (sweep, runs, writers) = timed(build, home, a.trials, a.tags, a.points)
    size = sum(os.path.getsize(os.path.join(r.guild_dir, n)) for r in runs for n in os.listdir(r.guild_dir)
               if n.startswith("events.out"))
    print(f"store: {a.trials} trials x {a.tags} tags x {a.points} points = {a.trials * a.tags * a.points:,} "
          f"scalars, {size / 2**20:.0f} MiB of event files, written in {t:.0f} s; sweep {sweep}")
    dirs = [r.dir for r in runs]

    # (a) in a process
    print("\n(a) the sweep's scalars, in this process (api.sweep_scalars)")
    charts.forget_summaries()
    t, c, first = cpu_timed(api.sweep_scalars, sweep, tags=["loss"], x="step", points=2000, store=home)
    npts = sum(len(s["loss"]) for s in first["series"].values())
    print(f"  first load, loss, points=2000: {ms(t)} wall, {ms(c)} CPU ({npts:,} points of {a.trials * a.points:,}; "
          f"thinned={first['thinned']})")
    t_all, c, whole = cpu_timed(api.sweep_scalars, sweep, x="step", points=2000, store=home)
    print(f"  first load, every tag, points=2000: {ms(t_all)} wall, {ms(c)} CPU")
    t, c, by_epoch = cpu_timed(api.sweep_scalars, sweep, tags=["loss"], x="epoch", points=2000, store=home)
    print(f"  first load, loss against epoch: {ms(t)} wall, {ms(c)} CPU")
    t_tbx, c_tbx, n_tbx = cpu_timed(tbx_decode, dirs)
    print(f"  peer: decoding the same files with tensorboardX's protobufs: {t_tbx:.1f} s wall ({n_tbx:,} scalars); "
          f"ours, every tag: {ms(t_all)} -> {t_tbx / max(t_all, 1e-9):.0f}x")
    token = first["token"]
    at = a.points
    lat, json_lat, cpus = [], [], []
    for _ in range(a.updates):
        log_more(writers, runs, at, 10, a.tags)
        at += 10
        t, c, upd = cpu_timed(api.sweep_scalars, sweep, token, tags=["loss"], x="step", points=2000, store=home)
        t2, _ = timed(json.dumps, upd)
        token = upd["token"]
        assert sum(len(s["loss"]) for s in upd["series"].values()) == 10 * a.trials, "an update lost points"
        lat.append(t)
        json_lat.append(t + t2)
        cpus.append(c)
        time.sleep(max(0.0, 1.0 - t))
    print(f"  each 1 s update (10 new points per trial and tag): median {ms(median(lat))}, p95 {ms(pct(lat, 95))} "
          f"wall, median {ms(median(cpus))} CPU; with its JSON: median {ms(median(json_lat))} (goal <= 50 ms)")

    # peers on a subset
    k = min(a.peer_runs, len(dirs))
    sub = [r.id for r in runs[:k]]

    def ours_sub():
        charts.forget_summaries()  # nothing kept from before: every point read again
        return [api.scalars(i, x="step", points=charts.MAX_POINTS, store=home) for i in sub]

    t_ours, c_ours, _ = min(cpu_timed(ours_sub) for _ in range(3))
    t_tbx_sub, c_tbx_sub, _ = cpu_timed(tbx_decode, dirs[:k])
    t_tb, c_tb, n_tb = cpu_timed(tb_accumulate, dirs[:k])
    print(f"  {k} runs, every point of every tag ({n_tb:,} scalars), CPU: ours {ms(c_ours)}; tensorboardX "
          f"protobufs {c_tbx_sub:.1f} s ({c_tbx_sub / c_ours:.0f}x); TensorBoard's EventAccumulator {c_tb:.1f} s "
          f"({c_tb / c_ours:.0f}x)  [wall: {ms(t_ours)}, {t_tbx_sub:.1f} s, {t_tb:.1f} s]")

    # (a, b) over REST
    print("\n(a, b) over REST: a real Jupyter server on loopback, JSON included")
    server = start_jupyter(os.path.join(base, "jupyter"), env={"GUILD_HOME": home},
                           extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    try:
        time.sleep(2)  # the server's warm-up (its index, the charts' import) done
        for viewer in ("first", "another"):
            t, body, nbytes = get(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=step&points=2000")
            print(f"  {viewer} viewer's first load, loss, points=2000: {ms(t)} ({nbytes / 2**20:.1f} MiB of JSON; "
                  f"server read {body['read_ms']} ms, {body['read_cpu_ms']} ms CPU)")
        token = body["token"]
        t, table, nbytes = get(server, f"/guild/api/sweeps/{sweep}")
        t2, table, _ = get(server, f"/guild/api/sweeps/{sweep}")
        print(f"  the sweep's table: first {ms(t)}, again {ms(t2)} ({nbytes / 1024:.0f} KiB, "
              f"{len(table['trials'])} trials)")
        lat, reads, read_cpus = [], [], []
        for _ in range(a.updates):
            log_more(writers, runs, at, 10, a.tags)
            at += 10
            t, upd, _n = get(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=step&points=2000&since={token}")
            token = upd["token"]
            assert not upd["reset"] and sum(len(s["loss"]) for s in upd["series"].values()) == 10 * a.trials
            lat.append(t)
            reads.append(upd["read_ms"] / 1000)
            read_cpus.append(upd["read_cpu_ms"] / 1000)
            time.sleep(max(0.0, 1.0 - t))
        print(f"  each 1 s update: request median {ms(median(lat))}, p95 {ms(pct(lat, 95))}; its reading "
              f"median {ms(median(reads))}, {ms(median(read_cpus))} CPU (goal <= 50 ms of server time)")
        # The view's second: the series with the table's brief (brief=V, one request), against what it
        # asked before (the series, and the table's brief from its own poll: two requests).
        version = table["version"]
        both, pair, both_cpu, pair_cpu = [], [], [], []
        for _ in range(a.updates):
            log_more(writers, runs, at, 10, a.tags)
            at += 10
            c = server_cpu(server)
            t, upd, _n = get(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=step&points=2000&since={token}"
                                     f"&brief={version}")
            both_cpu.append(server_cpu(server) - c)
            token = upd["token"]
            assert upd["table"]["version"] == version and len(upd["table"]["trials"]) == len(table["trials"])
            both.append(t)
            log_more(writers, runs, at, 10, a.tags)
            at += 10
            c = server_cpu(server)
            t1, upd, _n = get(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=step&points=2000&since={token}")
            token = upd["token"]
            t2, brief, _n = get(server, f"/guild/api/sweeps/{sweep}?after_version={version}&timeout=0&brief=1")
            pair_cpu.append(server_cpu(server) - c)
            assert brief.get("brief")
            pair.append(t1 + t2)
            time.sleep(max(0.0, 1.0 - t - t1 - t2))
        print(f"  the view's second with its table's cells: one request (series + brief=V) median {ms(median(both))}, "
              f"p95 {ms(pct(both, 95))}, server CPU mean {ms(sum(both_cpu) / len(both_cpu))}; two requests (series, "
              f"then the table's brief) median {ms(median(pair))}, p95 {ms(pct(pair, 95))}, server CPU mean "
              f"{ms(sum(pair_cpu) / len(pair_cpu))}")
    finally:
        server.stop()

    # (c) plot
    print("\n(c) plot of every trial's loss (trials x points), the figure and its PNG")
    for w in writers.values():
        w.close()
    charts.forget_summaries()
    t_plot, c_plot, fig = cpu_timed(api.plot, sweep=sweep, scalar="loss", store=home)
    t_png, c_png, png = cpu_timed(png_bytes, fig)
    print(f"  ours, first (matplotlib imported): plot + PNG {ms(t_plot + t_png)} wall, {ms(c_plot + c_png)} CPU")
    again = []
    for _ in range(3):
        charts.forget_summaries()
        t_plot, c_plot, fig = cpu_timed(api.plot, sweep=sweep, scalar="loss", store=home)
        t_png, c_png, png = cpu_timed(png_bytes, fig)
        again.append((t_plot + t_png, c_plot + c_png, t_plot, t_png))
    best = min(again)
    lines_n = len(fig.axes[0].get_lines())
    pts = sum(len(line.get_xdata()) for line in fig.axes[0].get_lines())
    print(f"  ours, again (best of 3): plot {ms(best[2])} + PNG {ms(best[3])} = {ms(best[0])} wall, {ms(best[1])} CPU; "
          f"{lines_n} lines drawn from {a.trials * a.points:,} points ({pts:,} kept: each line thinned to "
          f"2,000, its extremes kept) (goal <= 1 s)")
    t_peer, c_peer = tbx_plot(dirs)
    print(f"  peer: tensorboardX protobufs + the same matplotlib figure: {t_peer:.1f} s wall, {c_peer:.1f} s CPU "
          f"({c_peer / best[1]:.0f}x ours in CPU)")
    if not a.keep and not a.store:  # a store made before (--store) is kept, as --keep made it
        shutil.rmtree(base, ignore_errors=True)


def tbx_plot(dirs) -> float:
    """What plotting the same curves takes without us: decode each run's
    events with tensorboardX's protobufs, keep the loss, one line per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from tensorboardX.proto import event_pb2

    from guild_jupyter.plotting import png_bytes

    t0, c0 = time.perf_counter(), time.process_time()
    fig = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for d in dirs:
        steps, values = [], []
        gdir = os.path.join(d, ".guild")
        for name in sorted(x for x in os.listdir(gdir) if x.startswith("events.out.tfevents")):
            with open(os.path.join(gdir, name), "rb") as f:
                data = f.read()
            pos = 0
            ev = event_pb2.Event()
            while pos + 12 <= len(data):
                (size,) = struct.unpack_from("<Q", data, pos)
                ev.ParseFromString(data[pos + 12:pos + 12 + size])
                for v in ev.summary.value:
                    if v.tag == "loss":
                        steps.append(ev.step)
                        values.append(v.simple_value)
                pos += 16 + size
        ax.plot(steps, values)
    png_bytes(fig)
    return time.perf_counter() - t0, time.process_time() - c0


if __name__ == "__main__":
    main()
