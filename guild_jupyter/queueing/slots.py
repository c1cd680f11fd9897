"""A queue's slots, and what a claim pass reads from one scan of the store.

``QueueLoop`` (:mod:`.loop`) holds the control flow: when to reap, claim,
start, wait and back off. What it needs to know to fill a slot is kept
here, as plain functions of the runs one scan returned (read by the loop
under Guild's run-status lock), so the decision's inputs can be read and
tested apart from the loop's timing:

- ``Slot``: room for one run at a time, serving a set of GPUs;
- ``busy_others``: the runs that hold back a ``wait-for-running`` queue;
- ``gpus_held``: our runs on each GPU, for ``policy.next_run`` and the claim;
- ``unreadable_start_attrs``: why a chosen run cannot be started (a run is
  never started with made-up flags).
"""

from __future__ import annotations

import dataclasses
import os

from ..store import transitions
from ..store.run import PENDING_MARKER, RUNNING, Run
from .starters import RunHandle

__all__ = ["Slot", "START_ATTRS", "busy_others", "gpus_held", "unreadable_start_attrs"]

START_ATTRS = transitions.START_ATTRS  # what a run is started from (the store checks them)


@dataclasses.dataclass
class Slot:
    """Room for one run at a time, serving ``gpus`` (policy's rules for a
    queue with those GPUs). A queue has one; a slots host has one per GPU set."""

    gpus: str | None
    run: Run | None = None
    handle: RunHandle | None = None

    @property
    def busy(self) -> bool:
        return self.run is not None

    def done(self) -> bool:
        if self.handle is not None:
            return self.handle.done()
        return self.run.refresh().status != RUNNING


def gpus_held(pending: list[Run], locked: list[Run]) -> dict:
    """Our runs on each GPU, from this scan (runs the recovery just returned
    to staged hold no GPU): what the GPUs' states and the claim count from."""
    still = [r for r in pending if os.path.exists(r.path(PENDING_MARKER))]
    return transitions.gpu_occupancy(still, locked)


def busy_others(queue_id: str, pending: list[Run], locked: list[Run]) -> list[str]:
    """Runs that block a wait-for-running queue: running ones and pending
    ones (a claim is a start under way: Guild's or another queue's), but
    not queues and not the queue ``queue_id``'s own."""
    out = []
    for r in locked:
        if r.id == queue_id or r.is_queue or r.get("queue_id") == queue_id:
            continue
        if r.status == RUNNING:
            out.append(r.id)
    for r in pending:
        if not os.path.exists(r.path(PENDING_MARKER)):
            continue  # settled by the recovery before the scan was read
        if r.is_queue:
            continue
        c = transitions.read_claim(r)
        if isinstance(c, transitions.Claim) and c.queue_id == queue_id:
            continue
        out.append(r.id)
    return out


def unreadable_start_attrs(run: Run) -> str | None:
    """What the start would need and cannot read (a run is never started with
    made-up flags), or None."""
    bad = transitions.unreadable_start_attr(run)
    return f"attr {bad[0]} cannot be read ({bad[1]})" if bad else None
