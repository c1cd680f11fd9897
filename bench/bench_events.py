"""The server's events and state long-polls, in a real Jupyter server.

    .venv/bin/python bench/bench_events.py [--runs 200] [--n 200] [--changes 30] [--ends 15] [--idle 30] [--tick S]

The store: ``--runs`` finished runs, a few staged ones and a detached queue
waiting (what a sidebar usually watches).

(a) Latency of ``GET /guild/api/events`` answered at once (``timeout=0``:
    the newest events, and nothing new), p50/p95 over ``--n`` requests.
    Peer: ``GET /guild/api/state``, the request every viewer polled until
    now.
(b) Delay from a status change on disk to a long-polling client holding
    its event: a queue paused or resumed (``--changes``; from the moment
    the control file is written) and a run that ends (``--ends``; from the
    ``stopped`` time its supervisor records). Each change waits a random
    0-1 s first, so it lands at any phase of the watcher's tick. Peer: a
    client polling ``/guild/api/state`` every second, as the sidebar did
    (the queue's row shows the new state).
(c) The server's CPU (user+system of its process, % of one core) over
    ``--idle`` seconds with nothing changing: no client; a client holding
    an events long-poll and a state long-poll (what the sidebar does now);
    peer: a client polling ``/guild/api/state`` every second.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from common import clone_runs, fmt_lat, fresh_home, median, project, ratio  # noqa: E402
from support.jupyter import start_jupyter  # noqa: E402

from guild_jupyter import api  # noqa: E402

SCRIPT = "import time\nsecs = 0.0\nx = 0\nprint('loss: 0.5')\ntime.sleep(secs)\n"


def cpu_percent(server, seconds: float) -> float:
    proc = psutil.Process(server.proc.pid)
    c0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    return 100 * (sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0)


def request_times(server, path: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        st, _ = server.request(path)
        assert st == 200, (path, st)
        out.append(time.perf_counter() - t0)
    return out


class LongPoller:
    """A client that holds ``/guild/api/events`` long-polls and notes when
    each event reached it (``received``: seq -> (wall time, event))."""

    def __init__(self, server):
        self.server = server
        self.received: dict = {}
        self.stop = threading.Event()
        st, first = server.request("/guild/api/events?after=0&timeout=0")
        self.last = first["last"]
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            st, body = self.server.request(f"/guild/api/events?after={self.last}&timeout=5", timeout=20)
            now = time.time()
            if st != 200:
                continue
            for e in body["events"]:
                self.received.setdefault(e["seq"], (now, e))
            self.last = max(self.last, body["last"])

    def wait_for(self, match, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, e in list(self.received.values()):
                if match(e):
                    return t, e
            time.sleep(0.002)
        raise SystemExit("bench: an event never came")


class StatePoller:
    """The peer: ``/guild/api/state`` every second, noting when a queue's
    control first reads each value (``seen``: (queue, control) -> time)."""

    def __init__(self, server, interval: float = 1.0):
        self.server, self.interval = server, interval
        self.seen: dict = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            st, snap = self.server.request("/guild/api/state")
            now = time.time()
            if st == 200:
                for q in snap["queues"]:
                    self.seen.setdefault((q["id"], q["control"], snap["version"]), now)
            self.stop.wait(self.interval)

    def first_seen(self, queue_id: str, control: str, after: float, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            times = [t for (q, c, _v), t in list(self.seen.items()) if q == queue_id and c == control and t >= after]
            if times:
                return min(times)
            time.sleep(0.005)
        raise SystemExit("bench: the state poller never saw the change")


def control_delays(server, queue, n: int, poller: LongPoller, peer: StatePoller | None) -> tuple[list, list]:
    ours, theirs = [], []
    used: set = set()  # events already counted
    for i in range(n):
        time.sleep(random.uniform(0, 1.0))
        action = "pause" if i % 2 == 0 else "resume"
        kind = "queue-paused" if action == "pause" else "queue-resumed"
        t0 = time.time()
        api.queue_control(queue, action)
        t, event = poller.wait_for(lambda e: e["kind"] == kind and e["seq"] not in used
                                   and e.get("time", 0) / 1e6 >= t0 - 0.001)
        used.add(event["seq"])
        ours.append(t - t0)
        if peer is not None:
            theirs.append(peer.first_seen(queue.id, "paused" if action == "pause" else "running", t0) - t0)
    return ours, theirs


def end_delays(script: str, n: int, poller: LongPoller) -> list:
    out = []
    for _ in range(n):
        (run,) = api.run(script, f"secs={random.uniform(0, 1.0):.3f}")
        t, e = poller.wait_for(lambda e: e["kind"] == "run-ended" and e.get("run") == run.id)
        out.append(t - run.refresh().stopped / 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--changes", type=int, default=30)
    ap.add_argument("--ends", type=int, default=15)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--tick", type=float, default=None, help="the watcher's tick (c.GuildJupyter.watch_interval)")
    args = ap.parse_args()

    home = fresh_home()
    os.environ["GUILD_HOME"] = home
    proj = project(SCRIPT)
    script = os.path.join(proj, "tiny.py")
    (done,) = api.run(script, foreground=True, stream=io.StringIO())
    clone_runs(home, done.dir, args.runs)
    api.run(script, "x=[1,2,3]", stage=True, gpus="7")  # waiting for a GPU-7 queue that never comes
    queue = api.queue("gpus=5", poll_interval=60, background=True)  # a detached queue, waiting
    server = start_jupyter(tempfile.mkdtemp(prefix="gj-bench-events-"), env={"GUILD_HOME": home}, root_dir=proj,
                           extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}']
                           + ([f"--GuildJupyter.watch_interval={args.tick}"] if args.tick else []))
    try:
        time.sleep(2.0)  # the index warmed up, the watcher's first look taken
        print(f"store: {args.runs + 4} runs, 3 staged, 1 detached queue waiting; "
              f"{psutil.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

        # (a) the endpoint
        poller = LongPoller(server)
        for i, action in enumerate(("pause", "resume") * 3):  # a few events to answer with
            api.queue_control(queue, action)
            poller.wait_for(lambda e, n=poller.last + 1: e["seq"] >= n)
        time.sleep(0.5)
        st, ev = server.request("/guild/api/events?after=0&timeout=0")
        events_all = request_times(server, "/guild/api/events?after=0&timeout=0", args.n)
        events_none = request_times(server, f"/guild/api/events?after={ev['last']}&timeout=0", args.n)
        state = request_times(server, "/guild/api/state", args.n)
        print(f"(a) GET events, {len(ev['events'])} events:  {fmt_lat(events_all)}")
        print(f"    GET events, nothing new: {fmt_lat(events_none)}")
        print(f"    peer GET state:          {fmt_lat(state)}   ratio {ratio(median(state), median(events_all))}")

        # (b) status change on disk -> event in the client
        peer = StatePoller(server)
        ours, theirs = control_delays(server, queue, args.changes, poller, peer)
        peer.stop.set()
        print(f"(b) queue pause/resume -> event:      {fmt_lat(ours)}")
        print(f"    peer: state polled every 1 s:     {fmt_lat(theirs)}   ratio {ratio(median(theirs), median(ours))}")
        ends = end_delays(script, args.ends, poller)
        print(f"    run ended ('stopped') -> event:   {fmt_lat(ends)}")
        poller.stop.set()
        peer.thread.join(5)
        poller.thread.join(10)

        # (c) idle CPU
        time.sleep(2.0)
        none = cpu_percent(server, args.idle)
        stop = threading.Event()

        def long_polls():
            st, snap = server.request("/guild/api/state")
            last = server.request("/guild/api/events?after=0&timeout=0")[1]["last"]
            version = snap["version"]
            t = threading.Thread(target=lambda: [server.request(f"/guild/api/events?after={last}&timeout=25", timeout=40)
                                                 for _ in iter(stop.is_set, True)], daemon=True)
            t.start()
            while not stop.is_set():
                st, snap = server.request(f"/guild/api/state?after_version={version}&timeout=25", timeout=40)
                version = snap["version"]
            t.join(30)

        client = threading.Thread(target=long_polls, daemon=True)
        client.start()
        time.sleep(1.0)
        with_client = cpu_percent(server, args.idle)
        stop.set()
        client.join(60)
        peer = StatePoller(server)
        time.sleep(1.0)
        polled = cpu_percent(server, args.idle)
        peer.stop.set()
        print(f"(c) idle server CPU over {args.idle:g} s: no client {none:.2f} %   "
              f"long-poll client (events + state) {with_client:.2f} %   "
              f"peer: state polled every 1 s {polled:.2f} %")
    finally:
        server.stop()
        queue.stop(timeout=20)


if __name__ == "__main__":
    main()
