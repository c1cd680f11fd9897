"""Watching runs as they go: following a run's output until it ends
(``follow``), the piece of output a viewer asks for next (``output_since``,
the REST API's ``?since=OFFSET``), and the notices a viewer shows when runs
or whole sweeps end (``EndWatcher``, the panel's); and waiting on a
condition (``wait_until``, which ``wait`` and ``follow`` use)."""

from __future__ import annotations

import sys
import time

from .. import validate, views
from ..errors import BadInput, WaitTimeout
from ..store import output as outputlib
from ..store.run import FINISHED, PENDING, STAGED, Run
from ..views import UNSTAGED, status_of
from .selection import check_not_deleted, resolve_all, resolve_store

__all__ = ["follow", "output_since", "outcome_line", "EndWatcher"]

TAIL_LINES = 8  # lines of a failed run's output a notice carries
MAX_NOTICES = 20
LOOK_MARGIN_US = 2_000_000  # a run recorded as ended this long before a look may show only after it
NOTICED_KEPT = 10_000


def outcome_line(run: Run) -> str:
    """``run 1a2b3c4d completed (exit status 0)``: how a followed run ended."""
    status = status_of(run)
    if status == UNSTAGED:
        return f"run {run.id[:8]} was unstaged: it never started"
    es = run.exit_status
    return f"run {run.id[:8]} {status}" + (f" (exit status {es})" if es is not None else "")


def wait_until(condition, timeout: float | None = 60.0, interval: float = 0.1, what: str = "the condition"):
    """Calls ``condition()`` every ``interval`` seconds until it returns a
    truthy value, and returns that value; past ``timeout`` (None: no limit)
    raises ``WaitTimeout`` (a ``TimeoutError``) naming ``what``."""
    if not callable(condition):
        raise BadInput(f"wait_until needs a callable, not {type(condition).__name__}")
    validate.seconds("timeout", timeout)
    validate.seconds("interval", interval)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(what, timeout)
        time.sleep(interval)


def follow(ref, stream=None, *, note=None, timeout: float | None = None, interval: float = outputlib.FOLLOW_INTERVAL,
           store=None, listing=None) -> Run:
    """Writes a run's output to ``stream`` (default ``sys.stdout``) as the
    run writes it, until the run ends, then its outcome line; returns the
    run, ended. A staged or pending run is waited for (``note`` says so; it
    defaults to ``stream``; ``timeout`` bounds that wait only); a finished
    run's output is written whole. Ctrl-C stops following, not the run:
    the note says so and the ``KeyboardInterrupt`` goes on to the caller.
    A run deleted meanwhile (a staged one can be) raises ``RunDeleted``."""
    validate.run_ref(ref)
    validate.stream(stream)
    validate.stream(note)
    validate.seconds("timeout", timeout)
    validate.seconds("interval", interval)
    validate.store(store)
    validate.listing(listing)
    st = resolve_store(store)
    run = resolve_all(st, [ref], listing)[0]
    stream = sys.stdout if stream is None else stream
    note = stream if note is None else note

    def say(text: str, to=None) -> None:
        out = to or note
        out.write(text)
        if hasattr(out, "flush"):
            out.flush()

    try:
        if run.refresh().status in (STAGED, PENDING):
            say(f"waiting for run {run.id[:8]} to start (it is {run.status})\n")
            wait_until(lambda: run.deleted or run.refresh().status not in (STAGED, PENDING), timeout,
                       interval=0.05, what=f"run {run.id[:8]} to start")
            check_not_deleted(st, run)  # a staged run deleted meanwhile never starts: say so
        outputlib.follow(run.path("output"), lambda text: say(text, stream),
                         lambda: run.deleted or run.refresh().status in FINISHED, interval=interval)
    except KeyboardInterrupt:
        say(f"\nstopped following run {run.id[:8]}; it is {run.refresh().status}\n")
        raise
    check_not_deleted(st, run)
    say(outcome_line(run.refresh()) + "\n")
    return run


def output_since(ref, offset: int = 0, limit: int | None = None, store=None) -> dict:
    """``{"text", "offset", "status", "done"}``: the output from byte
    ``offset`` (at most ``limit`` bytes), the offset to ask for next, the
    run's status, and whether that was all it will ever write (the run has
    ended and nothing is left to read). A staged or pending run has no
    output yet: empty text, not done."""
    validate.run_ref(ref)
    validate.count("offset", offset)
    validate.count("limit", limit)
    validate.store(store)
    if offset < 0:
        raise BadInput(f"offset must be a byte offset >= 0, not {offset}")
    if limit is not None and limit < 1:
        raise BadInput("limit must be at least 1 byte")
    run = resolve_all(resolve_store(store), [ref])[0]
    status = status_of(run.refresh())  # read before the output: what ended before is all read below
    if run.status in (STAGED, PENDING):
        return {"text": "", "offset": offset, "status": status, "done": False}
    ended = run.status in FINISHED
    data, next_offset = outputlib.read_from(run.path("output"), offset, limit, whole_chars=not ended)
    done = ended and (limit is None or len(data) < limit)
    return {"text": outputlib.decode(data), "offset": next_offset, "status": status, "done": done}


class EndWatcher:
    """Notices of runs and sweeps that ended, found by comparing what a
    ``StoreMonitor`` showed at one look with the next.

    A run that was staged, pending or running and is now completed, error or
    terminated gets a notice (an unstaged run does not: the user did it);
    a failed one carries the last lines of its output. The trials of one
    sweep are created together, so their ``initialized`` times follow each
    other microsecond by microsecond: when the last of them ends, the sweep
    gets a notice of its own, with the count per status. The first look
    only learns what is active; each run is noticed once."""

    def __init__(self, monitor, tail_lines: int = TAIL_LINES):
        self.monitor = monitor
        self.tail_lines = tail_lines
        self._active: set | None = None
        self._since = 0  # µs: when the previous look was taken
        self._noticed: dict = {}  # ids already noticed (insertion-ordered, bounded)

    def poll(self) -> list[dict]:
        """The notices since the previous call (oldest first); call it after
        the monitor's snapshot. A run that started and ended between two
        looks is found among the runs that ended since the previous look."""
        index = self.monitor.index
        now = time.time_ns() // 1000
        with index.lock:
            groups, _ = self.monitor.grouped()
            active = {e.id for name in ("running", "pending", "staged") for e in groups[name]}
            before, self._active = self._active, active
            since, self._since = self._since, now
            if before is None:
                return []
            ids = list(before - active)
            for e in groups["finished"]:  # most recently ended first
                if (e.stopped or e.timestamp) < since - LOOK_MARGIN_US:
                    break
                ids.append(e.id)
            ended = []
            for i in dict.fromkeys(ids):
                e = index.entries.get(i)
                if (i not in self._noticed and e is not None and e.status in FINISHED and not e.is_queue
                        and e.values.get("unstaged") is not True and e.stopped is not None):
                    self._noticed[i] = None
                    ended.append(e)
            while len(self._noticed) > NOTICED_KEPT:
                del self._noticed[next(iter(self._noticed))]
            if not ended:
                return []
            sweeps = _sweeps_of(ended, index.entries.values())
        ended.sort(key=lambda e: (e.stopped or 0, e.id))
        notices = [self._run_notice(e) for e in ended]
        for members in sweeps:
            if not any(m.id in active for m in members):
                notices.append(_sweep_notice(members))
        return notices[-MAX_NOTICES:]

    def _run_notice(self, e) -> dict:
        exit_status = e.values.get("exit_status")
        tail = ""
        if e.status != "completed":
            tail = outputlib.decode(outputlib.tail(e.dir + "/.guild/output", self.tail_lines))
        return {"kind": "run", "id": e.id, "short_id": e.id[:8], "op": e.op, "status": e.status,
                "exit_status": views.jsonable(exit_status), "flags_text": views.flags_text(e.flags),
                "label": e.label, "tail": tail, "time": e.stopped}


def _sweeps_of(ended, entries) -> list[list]:
    """The sweeps (two trials or more) the ended runs belong to, each as the
    list of its trials' entries, in creation order."""
    wanted = {(e.op, e.values.get("initialized")) for e in ended if isinstance(e.values.get("initialized"), int)}
    if not wanted:
        return []
    ops = {op for op, _ in wanted}
    by_time: dict = {}
    for e in entries:
        t = e.values.get("initialized")
        if e.op in ops and isinstance(t, int) and not e.is_queue:
            by_time[(e.op, t)] = e
    out, seen = [], set()
    for op, t in sorted(wanted):
        if (op, t) in seen:
            continue
        lo = t
        while (op, lo - 1) in by_time:
            lo -= 1
        members = []
        while (op, lo) in by_time:
            seen.add((op, lo))
            members.append(by_time[(op, lo)])
            lo += 1
        if len(members) > 1:
            out.append(members)
    return out


def _sweep_notice(members: list) -> dict:
    counts: dict = {}
    for m in members:
        s = "unstaged" if m.values.get("unstaged") is True else m.status
        counts[s] = counts.get(s, 0) + 1
    status = "completed" if set(counts) <= {"completed", "unstaged"} else ("error" if "error" in counts else "terminated")
    return {"kind": "sweep", "ids": [m.id for m in members], "short_id": members[0].id[:8], "op": members[0].op,
            "status": status, "counts": counts, "time": max((m.stopped or 0) for m in members) or None,
            "failed": [m.id for m in members if m.status == "error"]}
