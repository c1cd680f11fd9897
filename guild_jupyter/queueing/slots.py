"""A queue's slots, and what a claim pass reads from one scan of the store.

``QueueLoop`` (:mod:`.loop`) holds the control flow: when to reap, claim,
start, wait and back off. What it needs to know to fill a slot is kept
here, as plain functions of the runs one scan returned (read by the loop
under Guild's run-status lock), so the decision's inputs can be read and
tested apart from the loop's timing:

- ``Slots``: how many runs a queue may keep going per GPU set, and a
  ``Slot`` for each run going (nothing per slot left free);
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

__all__ = ["Slot", "Slots", "START_ATTRS", "busy_others", "gpus_held", "unreadable_start_attrs"]

START_ATTRS = transitions.START_ATTRS  # what a run is started from (the store checks them)


@dataclasses.dataclass
class Slot:
    """One run going in a slot serving ``gpus`` (policy's rules for a queue
    with those GPUs)."""

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


class Slots:
    """A queue's room for runs: how many it may keep going for each GPU set
    it serves (``capacity``), and a ``Slot`` for each run going.

    Only runs going take memory, and every pass of the loop walks only them
    and the GPU sets: a queue allowed ``max-running=10000`` that has nothing
    to do costs what one allowed a single run costs. ``capacity``: a count
    (slots serving ``gpus``), a mapping GPU set -> count, or GPU sets, one per
    slot (a host with one slot per GPU set)."""

    def __init__(self, capacity, gpus: str | None = None):
        if isinstance(capacity, int):
            counts = {gpus: capacity}
        elif isinstance(capacity, dict):
            counts = dict(capacity)
        else:
            counts = {}
            for g in capacity:
                counts[g] = counts.get(g, 0) + 1
        if any(not isinstance(n, int) or n < 0 for n in counts.values()) or sum(counts.values()) < 1:
            raise ValueError(f"a queue needs at least one slot, not {capacity!r}")
        self.capacity = counts
        self.busy: list[Slot] = []

    def __len__(self) -> int:
        """Every slot, busy or not."""
        return sum(self.capacity.values())

    @property
    def gpu_sets(self) -> list:
        """The GPU sets served, in their declared order."""
        return list(self.capacity)

    def free_for(self, gpus) -> int:
        return self.capacity.get(gpus, 0) - sum(1 for s in self.busy if s.gpus == gpus)

    def any_free(self) -> bool:
        return len(self.busy) < len(self)

    def take(self, gpus, run: Run, handle: RunHandle | None) -> Slot:
        if self.free_for(gpus) <= 0:
            raise ValueError(f"no free slot for GPUs {gpus!r}")
        slot = Slot(gpus, run, handle)
        self.busy.append(slot)
        return slot

    def release(self, slot: Slot) -> None:
        self.busy.remove(slot)

    def first_run(self) -> Run | None:
        return self.busy[0].run if self.busy else None


def gpus_held(pending: list[Run], locked: list[Run]) -> dict:
    """Our runs on each GPU, from this scan (runs the recovery just returned
    to staged hold no GPU): what the GPUs' states and the claim count from."""
    still = [r for r in pending if os.path.exists(r.path(PENDING_MARKER))]
    return transitions.gpu_occupancy(still, locked)


def busy_others(queue_id: str, pending: list[Run], locked: list[Run]) -> list[str]:
    """Runs that block a wait-for-running queue: running ones and pending
    ones (a claim is a start under way: Guild's or another queue's), but
    not queues, not the queue ``queue_id``'s own, and not runs held for
    their dependencies (they wait; nothing of them runs)."""
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
        if c is None and transitions.is_held(r):
            continue
        out.append(r.id)
    return out


def unreadable_start_attrs(run: Run) -> str | None:
    """What the start would need and cannot read (a run is never started with
    made-up flags), or None."""
    bad = transitions.unreadable_start_attr(run)
    return f"attr {bad[0]} cannot be read ({bad[1]})" if bad else None
