"""Watching runs as they go: following a run's output until it ends
(``follow``), the piece of output a viewer asks for next (``output_since``,
the REST API's ``?since=OFFSET``), and waiting on a condition
(``wait_until``, which ``wait`` and ``follow`` use). What a viewer shows
when runs, sweeps or queues end is in :mod:`guild_jupyter.events`
(``api.EventWatcher``)."""

from __future__ import annotations

import sys
import time

from .. import validate
from ..errors import BadInput, WaitTimeout
from ..store import output as outputlib
from ..store.run import FINISHED, PENDING, STAGED, Run
from ..views import STOPPED_BY_YOU, TERMINATED, UNSTAGED, status_of, stopped_by_user
from .selection import check_not_deleted, resolve_all, resolve_store

__all__ = ["follow", "output_since", "outcome_line", "wait_until"]


def outcome_line(run: Run) -> str:
    """``run 1a2b3c4d completed (exit status 0)``: how a followed run ended
    (``run 1a2b3c4d stopped by you`` for a run the user stopped: no signal
    number)."""
    status = status_of(run)
    if status == UNSTAGED:
        return f"run {run.id[:8]} was unstaged: it never started"
    if status == TERMINATED and stopped_by_user(run):
        return f"run {run.id[:8]} {STOPPED_BY_YOU}"
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
