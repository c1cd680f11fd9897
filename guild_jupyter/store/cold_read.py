"""Reading many runs the listing index knows nothing of: a store new to
this process with no listing file (its cache lost, or never made).

Each run is about ten small files, opened, ``fstat``'ed and read once
(``entry.read_new``): some fifty system calls and their Python around
them, ~0.13 ms a run when the files are in the OS's cache, so 10,000 runs
take over a second in one process. Two ways share that out:

- **A helper process** (``Helper``), when there are at least
  ``HELPER_MIN`` runs and a CPU is free (more than one, and the load
  average more than one under their count): the same ``read_new`` in a
  second interpreter started from this one's own package. The two share
  the runs as they go: this process takes them from the front of the list
  a batch at a time, telling the helper how far it got; the helper takes
  them from the back, a batch at a time, handing each batch back as it is
  read; each stops where the other got to (at most a batch is read by
  both). So a helper that gets no CPU (a busy machine) costs its start-up,
  not a wait. It hands back what the listing file would keep of each run
  (stamp, sort keys, status, markers, the values' JSON) and of its main
  scalars (``scalars.cache_file``'s entry): the index takes those as it
  takes the listing file's records, an ``Entry`` whose values stay
  encoded until asked for (a full listing decodes them in one parse).
  Only what the listing file could keep comes back (settled, readable, not
  running, no warnings): any other run, or any run of a helper that failed
  or did not answer in time, is read by this process the usual way, so a
  helper can make a listing faster, never different.
- **Threads** (``read_ahead``) when the files are not in the OS's cache:
  each read then waits on the disk, and the waits of a few threads
  overlap. Only when a timed probe shows it (wall time over twice the CPU
  time): with the files in memory, threads only contend for the
  interpreter.
"""

from __future__ import annotations

import gc
import marshal
import os
import struct
import subprocess
import sys
import threading
import time

from .gc_pause import paused
from .entry import STATUS_CODES, Entry, read_entry, read_new, stamp_of
from .scalars import cache_file as scalars_file
from .scalars import reader as scalarlib

__all__ = ["read_many", "read_ahead", "Helper", "HELPER_MIN", "BATCH", "READ_AHEAD_THREADS", "main"]

#: Runs never read before that a helper process shares: below this its
#: start-up (~30 ms) is not repaid.
HELPER_MIN = 1000
#: Runs read at a time by each side before it looks at how far the other got.
BATCH = 64
READ_AHEAD_THREADS = 8


def read_one(out: dict, runs_dir: str, run_id: str, prefetch: bool = False) -> None:
    """Stamps the run (a look at every file), reads it, and keeps both in
    ``out``; a run that is no readable run is left to the caller's check.
    ``prefetch`` (a read-ahead thread, waiting on the disk anyway): the
    run's event files are read into the OS's cache too, for the row that
    shows its main scalar next."""
    got = read_new(runs_dir, run_id, time.time_ns())
    if got is not None:
        out[run_id] = got
        if prefetch:
            scalarlib.prefetch(runs_dir + "/" + run_id)
        return
    st = stamp_of(run_id, None, runs_dir)
    e = read_entry(runs_dir + "/" + run_id, st, full_look=True) if st is not None else None
    if e is not None:
        out[run_id] = (st, e)


def read_many(runs_dir: str, ids: list, probe: int = 32, helper: bool = True, disk: bool | None = None) -> dict:
    """``{id: (stamp, entry)}`` of many runs never read: the first ``probe``
    in this thread, timed; the rest from several threads when those waited
    on the disk (``disk``: said instead of measured), else here and, when
    there are enough (``helper``), by a helper process too. A run not in
    the result (no run, or a helper's failure) is for the caller to check."""
    with paused():  # thousands of objects that all stay (gc_pause)
        return _read_many(runs_dir, ids, probe, helper, disk)


def _read_many(runs_dir: str, ids: list, probe: int, helper: bool, disk: bool | None) -> dict:
    out: dict = {}
    wall, cpu = time.perf_counter(), time.process_time()
    for run_id in ids[:probe]:
        read_one(out, runs_dir, run_id)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if disk is None:
        disk = wall > 2 * cpu
    rest = ids[probe:]
    if disk:
        out.update(read_ahead(runs_dir, rest))
        return out
    h = Helper.start(runs_dir, rest) if helper and len(rest) >= HELPER_MIN and _a_cpu_is_free() else None
    if h is None:
        for run_id in rest:
            read_one(out, runs_dir, run_id)
        return out
    try:
        at = 0
        while at < h.low:
            end = min(at + BATCH, h.low)
            h.claim(end)
            for run_id in rest[at:end]:
                read_one(out, runs_dir, run_id)
            at = end
            h.poll()
    finally:
        for run_id, got in h.collect().items():
            out.setdefault(run_id, got)
    return out


def read_ahead(runs_dir: str, ids: list) -> dict:
    """``{id: (stamp, entry)}`` of the runs ``ids``, each stamped then read
    by one of a few threads. A run not in the result (no run, or a thread's
    failure) is checked the usual way by the caller."""
    out: dict = {}
    it = iter(ids)
    take = threading.Lock()

    def work():
        while True:
            with take:
                batch = [i for _, i in zip(range(32), it)]
            if not batch:
                return
            for run_id in batch:
                read_one(out, runs_dir, run_id, prefetch=True)

    threads = [threading.Thread(target=work, name="guild-jupyter-read-ahead", daemon=True)
               for _ in range(READ_AHEAD_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _a_cpu_is_free() -> bool:
    """Whether a helper process would find a CPU of its own: more than one,
    and the load average of the last minute more than one under their
    count. On a busy machine a helper only competes with this process (and
    the others) for the same CPUs, and its own costs (start-up, the values
    handed over) make the listing slower (measured on 2 cores: slower at a
    load average of 2 and above)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return cpus > 1 and load < cpus - 1


# -- the helper process ----------------------------------------------------------------------

#: The package directory this module was imported from: the helper imports the same code, whatever
#: its working directory or PYTHONPATH would put first.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CHILD = ("import sys; sys.path.insert(0, {!r}); "
          "from guild_jupyter.store.cold_read import main; main()")
_LEN = struct.Struct("<I")


class Helper:
    """A helper process reading ``ids`` from the back (``start``): ``low``
    is the first id it has read or is reading (``len(ids)`` before its
    first batch, as ``poll`` last learnt it); ``claim(n)`` tells it that
    ids before ``n`` are taken here; ``collect`` waits for its last batch
    and returns what it read."""

    def __init__(self, proc: subprocess.Popen, runs_dir: str, ids: list):
        self.proc = proc
        self.runs_dir = runs_dir
        self.ids = ids
        self.low = len(ids)
        self.got: dict = {}
        self._asked = {i: i for i in ids}  # (each id as the caller's string: one string, not two, a run)
        self._buf = b""
        self._out = proc.stdout.fileno()
        self._dead = False

    @classmethod
    def start(cls, runs_dir: str, ids: list) -> "Helper | None":
        """A helper for ``ids`` under ``runs_dir`` (None when it cannot be
        started: the caller reads them itself)."""
        try:
            proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(_PACKAGE_PARENT)], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=runs_dir, bufsize=0)
        except (OSError, ValueError):
            return None
        h = cls(proc, runs_dir, ids)
        try:  # room for several batches: the helper goes on reading while this process reads its own
            import fcntl

            fcntl.fcntl(h._out, fcntl.F_SETPIPE_SZ, 1 << 20)
        except (ImportError, AttributeError, OSError):
            pass
        data = ("\n".join([runs_dir, str(len(ids))] + list(ids)) + "\n").encode("utf-8", "surrogateescape")
        # (a thread: the ids fill the pipe while the helper starts; this one reads its first batch meanwhile)
        h._feed = threading.Thread(target=h._send, args=(data,), name="guild-jupyter-helper-feed", daemon=True)
        h._feed.start()
        os.set_blocking(h._out, False)
        return h

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[self.proc.stdin.write(view):]  # (a raw pipe: a write may take part of it)
        except (OSError, ValueError, TypeError):
            self._dead = True

    def claim(self, n: int) -> None:
        """Ids before ``n`` are read here: the helper starts no batch below.
        (Until all its ids are sent it has not started a batch: the claim
        goes with the next one.)"""
        if self._dead or self._feed.is_alive():
            return
        try:
            self.proc.stdin.write(b"%d\n" % n)
        except (OSError, ValueError):
            self._dead = True

    def poll(self) -> None:
        """Takes in the batches the helper has handed back so far."""
        if self._dead:
            return
        try:
            while True:
                chunk = os.read(self._out, 1 << 20)
                if not chunk:
                    self._dead = True
                    break
                self._buf += chunk
        except BlockingIOError:
            pass
        except OSError:
            self._dead = True
        buf, pos = self._buf, 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if len(buf) - pos - 4 < n:
                break
            self._take(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
        self._buf = buf[pos:]

    def _take(self, frame: bytes) -> None:
        try:
            lo, records = marshal.loads(frame)
        except (EOFError, ValueError, TypeError):
            self._dead = True  # not what a helper writes: what it read is not trusted either
            self.got = {}
            return
        if type(lo) is not int or type(records) is not list:
            return
        self.low = min(self.low, max(lo, 0))
        asked = self._asked
        for rec in records:
            parsed = _parse(rec)
            if parsed is None or parsed[0] not in asked:
                continue
            run_id, stamp, keys, raw, scalars = parsed
            run_id = asked[run_id]
            run_dir = self.runs_dir + "/" + run_id
            self.got[run_id] = (stamp, Entry(None, stamp, run_dir=run_dir, raw=raw, keys=keys, run_id=run_id))
            if scalars is not None:
                scalarlib.seed(run_dir, scalars)

    def collect(self) -> dict:
        """``{id: (stamp, entry)}`` of what the helper handed back. Called
        once this process has read every id up to ``low``: nothing the
        helper is still reading is needed, so it is stopped (killed: it
        only reads) and waited for, never left behind."""
        proc = self.proc
        try:
            self.poll()
            return self.got
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self._feed.join()  # (its write fails once the helper is gone)
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass


def _record(run_id: str, stamp, e: Entry, scalars) -> tuple:
    """What the helper hands back of a run: as the listing file keeps it,
    and as the scalars' file keeps its event files (or None)."""
    return (run_id, tuple(stamp), e.status, e.started, e.stopped, e.timestamp, e.is_queue, e.markers, e.encoded(),
            scalars)


def _parse(rec):
    """``(id, stamp, keys, raw, scalars)`` of a record ``_record`` made, or
    None when it has not that shape (the run is then read here; scalars of
    the wrong shape are read from the files by ``scalars.cache_file.fill``)."""
    if type(rec) is not tuple or len(rec) != 10:
        return None
    run_id, stamp, status, started, stopped, timestamp, is_queue, markers, raw, scalars = rec
    if (type(run_id) is not str or type(stamp) is not tuple or len(stamp) != 8
            or not all(type(x) is int for x in stamp) or status not in STATUS_CODES
            or not all(x is None or type(x) is int for x in (started, stopped)) or type(timestamp) is not int
            or type(is_queue) is not bool or type(markers) is not int or type(raw) is not bytes):
        return None
    return run_id, stamp, (status, started, stopped, timestamp, is_queue, markers), raw, scalars


def main() -> None:
    """The helper: reads ``runs/``, a count and that many run ids from
    stdin (one a line), then reads the runs from the back a batch at a
    time, each batch handed back on stdout as it is read (``marshal`` of
    ``(first index, records)``, length first), each record with its main
    scalars' entry (the row that shows the run reads them next). Between
    batches it takes in the lines that followed (the caller's claims: how
    far from the front it has read) and starts no batch below them."""
    gc.disable()  # (a short-lived process whose objects all stay: gc_pause)
    fd = sys.stdin.fileno()
    data, lines = b"", 0
    while lines < 2 or lines < 2 + int(data.split(b"\n", 2)[1]):
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        data += chunk
        lines += chunk.count(b"\n")
    head = data.split(b"\n", 2)
    runs_dir, count = head[0].decode("utf-8", "surrogateescape"), int(head[1])
    *ids, pending = head[2].split(b"\n", count)
    ids = [i.decode("utf-8", "surrogateescape") for i in ids]
    os.set_blocking(fd, False)
    claimed, ended = 0, False
    out = sys.stdout.buffer
    hi = len(ids)
    while True:
        if not ended:
            try:
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        ended = True
                        break
                    pending += chunk
            except BlockingIOError:
                pass
            *claims, pending = pending.split(b"\n")
            for line in claims:
                claimed = max(claimed, int(line))
        lo = max(hi - BATCH, claimed)
        if lo >= hi:
            break
        got: dict = {}
        for run_id in ids[lo:hi]:
            read_one(got, runs_dir, run_id)
        now_ns = time.time_ns()
        records = []
        for run_id in ids[lo:hi]:
            r = got.get(run_id)
            if r is None or not r[1].persistable(now_ns):
                continue
            run_dir = runs_dir + "/" + run_id
            scalars = scalars_file.entry_of(scalarlib.read(run_dir), now_ns)
            scalarlib.forget(run_dir)  # (the cache would keep 5,000 runs, and save those it drops)
            try:
                records.append(_record(run_id, r[0], r[1], scalars))
            except (TypeError, ValueError):  # a value JSON cannot hold: read by the caller
                continue
        frame = marshal.dumps((lo, records))
        out.write(_LEN.pack(len(frame)) + frame)
        out.flush()
        hi = lo
