"""Who owns a run: the records the lifecycle keeps next to a run.

- A claim (the PENDING marker's content): the claimer's pid and start time,
  and the queue it serves. Guild writes PENDING empty; an empty one is
  never ours.
- The run's processes (``LOCK.procs``): the script and the descendants the
  supervisor saw, so that if the supervisor is killed they can be ended.
- The start record (``LOCK.start``): the pid LOCK names and its start time.
- The GPUs a run asked for (``gpus_requested``, recorded by a claim), which
  a copy of the run (a retry, a restage) asks for again.
- A run's priority (``priority``, an integer; absent: 0) and its dependency
  record (``after``): the runs it waits for.

Dependency records (SPEC 12). A run staged ``--after`` others is *held*: its
PENDING marker is empty, as Guild's own is (so Guild's queues never start
it, and our recovery, which never touches an ownerless PENDING, never
returns it to staged), and its ``after`` attr lists the runs it waits for,
``[{"run": ID, "any": false}, ...]`` (``any``: ``--after-any``, whatever
their outcome). Held = that PENDING and that record, and no outcome; a
PENDING without the record is Guild's. Our queues settle held runs
(``store.dependencies``): staged once every dependency has completed,
``error`` (the reason in ``after_failure`` and the output) once one failed.

Claims. A claim of ours is a record in the PENDING marker naming the
claimer (pid + start time, see :mod:`guild_jupyter.procs`). Guild writes
PENDING empty (while it resolves dependencies, possibly for minutes); an
empty PENDING is never touched by us, however old. A claim whose claimer is
dead is returned to staged (if the run was staged) or recorded as never
started. A PENDING whose record is unreadable cannot be Guild's (Guild's is
empty) and our writes are atomic, so it is a damaged claim of ours: it is
treated as a dead one, and the log says why.

Start records. ``LOCK.start`` holds ``{"pid", "start"}`` of the process
named in LOCK. It names its pid, so a record left by a killed supervisor
never applies to a LOCK written later by someone else (``guild run
--restart``); a LOCK without a matching record is Guild's, and its pid is
the run's only if that process started no later than the LOCK was written.

Reading these is for anyone. Claims and start records are written only by
:mod:`.transitions`, with the status change they belong to;
``record_processes`` (which the supervisor calls through ``transitions``)
writes ``LOCK.procs``, a record that changes no status.
"""

from __future__ import annotations

import json
import os

from ..procs import Identity
from . import attrs as attrlib
from .regular_file import read_small
from .run import LOCK_PROCS, PENDING, PENDING_MARKER, RUNNING, Run


class Claim:
    """Who claimed a pending run: the process, and the queue run it serves."""

    __slots__ = ("owner", "queue_id", "kind")

    def __init__(self, owner: Identity, queue_id: str | None = None, kind: str = "queue"):
        self.owner = owner
        self.queue_id = queue_id
        self.kind = kind

    @classmethod
    def by_this_process(cls, queue_id: str | None = None, kind: str = "queue") -> "Claim":
        return cls(Identity.current(), queue_id, kind)

    def encode(self) -> str:
        rec = self.owner.as_record()
        rec["kind"] = self.kind
        if self.queue_id:
            rec["queue"] = self.queue_id
        return json.dumps(rec) + "\n"


def read_claim(run: Run):
    """The claim in a run's PENDING marker: a ``Claim``; ``None`` for an
    ownerless (Guild's) PENDING or no PENDING; ``"damaged"`` for an
    unreadable record."""
    try:
        data = read_small(run.path(PENDING_MARKER), 4096)
    except FileNotFoundError:
        return None
    except OSError:
        return "damaged"
    if not data.strip():
        return None
    try:
        rec = json.loads(data.decode("utf-8"))
    except ValueError:
        return "damaged"
    owner = Identity.from_record(rec)
    if owner is None:
        return "damaged"
    queue_id = rec.get("queue") if isinstance(rec.get("queue"), str) else None
    kind = rec.get("kind") if isinstance(rec.get("kind"), str) else "queue"
    return Claim(owner, queue_id, kind)


# -- priorities and dependency records ------------------------------------------------

#: A run's priority (an int; absent: 0), its dependency record, and why a
#: held run was ended by its dependencies (one line, for the views).
PRIORITY, AFTER, AFTER_FAILURE = "priority", "after", "after_failure"
#: The bounds of a priority (the queue policy's): a value outside, or no
#: integer (a hand-edited attr), reads as 0.
PRIORITY_RANGE = (-1000, 1000)


def priority_of(value) -> int:
    """A priority attr's value as the queues use it: 0 unless an int in range."""
    if isinstance(value, int) and not isinstance(value, bool) and PRIORITY_RANGE[0] <= value <= PRIORITY_RANGE[1]:
        return value
    return 0


def after_record(deps) -> list[dict]:
    """The ``after`` attr for ``deps``: ``(run id, any outcome)`` pairs."""
    return [{"run": rid, "any": bool(any_outcome)} for rid, any_outcome in deps]


def read_after(run: Run):
    """The runs ``run`` waits for, ``[(id, any outcome), ...]``; None without
    a dependency record; ``"damaged"`` for one that cannot be read."""
    path = os.path.join(run.attrs_dir, AFTER)
    if not os.path.exists(path):
        return None
    try:
        rec = attrlib.read(path, None)
    except Exception:  # noqa: BLE001 - AttrReadError, YAML's errors: a record we cannot trust
        return "damaged"
    if not isinstance(rec, list):
        return "damaged"
    out = []
    for item in rec:
        rid = item.get("run") if isinstance(item, dict) else None
        if not isinstance(rid, str) or len(rid) != 32 or any(c not in "0123456789abcdef" for c in rid):
            return "damaged"
        out.append((rid, item.get("any") is True))
    return out


def is_held(run: Run) -> bool:
    """``run`` waits for its dependencies: an ownerless PENDING, a dependency
    record, no outcome. Not a claim: no process holds it."""
    return _held_marks(run) and not os.path.exists(os.path.join(run.attrs_dir, "exit_status"))


def ended_while_held(run: Run) -> bool:
    """``run`` was held and has its outcome, but its PENDING marker is still
    there: whoever ended it (a settler whose dependency failed, a stop) was
    killed between the two writes. It still reads pending; the next settling
    pass removes the markers (``transitions.fail_held``), writing nothing
    else."""
    return _held_marks(run) and os.path.exists(os.path.join(run.attrs_dir, "exit_status"))


def _held_marks(run: Run) -> bool:
    if not os.path.exists(run.path(PENDING_MARKER)) or not os.path.exists(os.path.join(run.attrs_dir, AFTER)):
        return False
    return read_claim(run) is None


def dependency_cycle(store, run_id: str, dep_ids) -> list[str] | None:
    """The cycle that ``run_id`` waiting for ``dep_ids`` would close,
    ``[run_id, ..., run_id]`` (``[run_id, run_id]``: it names itself),
    following the records of the runs held now; None when there is none.
    Only a held run waits, so only held runs' records are followed."""
    seen = set()
    stack = [(d, [run_id, d]) for d in reversed(list(dep_ids))]
    while stack:
        rid, path = stack.pop()
        if rid == run_id:
            return path
        if rid in seen:
            continue
        seen.add(rid)
        r = Run(os.path.join(store.runs_dir, rid))
        if not is_held(r):
            continue
        deps = read_after(r)
        if isinstance(deps, list):
            stack.extend((d, path + [d]) for d, _any in reversed(deps))
    return None


# -- small helpers --------------------------------------------------------------


def record_processes(run: Run, idents: list[Identity]) -> None:
    """Remembers the run's processes (its script and the descendants seen),
    so that if the supervisor is killed they can still be ended."""
    try:
        attrlib.write_atomic(run.path(LOCK_PROCS), json.dumps([i.as_record() for i in idents]))
    except OSError:
        pass


def recorded_processes(run: Run) -> list[Identity]:
    try:
        recs = json.loads(read_small(run.path(LOCK_PROCS)))
    except (OSError, ValueError):
        return []
    if not isinstance(recs, list):
        return []
    return [i for i in (Identity.from_record(r) for r in recs) if i is not None]


def has_our_start_record(run: Run) -> bool:
    """LOCK was written by a process of ours (its start record names it)."""
    rec = run._start_record()
    return rec is not None and rec.pid == run.lock_pid()


# -- GPU slots ------------------------------------------------------------------


def gpu_occupancy(pending: list[Run], locked: list[Run]) -> dict[str, int]:
    """How many of our runs hold each GPU now: pending runs (a claim, a start
    under way; not queues) and running ones, by the GPUs their ``run_params``
    record (``"0"``, ``"GPU-…"``: as named). A run still asking for GPUs to
    be chosen (``auto:2``, not claimed yet) holds none. ``pending`` and
    ``locked`` come from one ``Store.scan_waiting`` under the run-status lock,
    which is what makes the count a fair basis for a claim."""
    # lazy: every run's supervisor imports this module and never asks
    from ..gpus.spec import is_auto

    counts: dict[str, int] = {}
    for r in pending + locked:
        try:
            if r.is_queue or r.status not in (RUNNING, PENDING) or r.status == PENDING and is_held(r):
                continue  # a held run waits for its dependencies: it holds no GPU
            gpus = r.gpus
        except Exception:  # noqa: BLE001 - a damaged run holds no GPU we can name
            continue
        if not gpus or is_auto(gpus):
            continue
        for g in gpus.split(","):
            counts[g] = counts.get(g, 0) + 1
    return counts


def gpu_slot_full(store, gpus: str | None, per_gpu: int, held: dict | None = None) -> str | None:
    """Why one of ``gpus`` cannot take one more run (it has ``per_gpu`` of
    ours), or None. The caller holds the run-status lock (a claim).
    ``held``: ``gpu_occupancy`` of a scan made under that same lock (a
    queue's claim pass), else the store is scanned here."""
    if not gpus:
        return None
    if held is None:
        _staged, pending, locked = store.scan_waiting()
        held = gpu_occupancy(pending, locked)
    full = [g for g in gpus.split(",") if held.get(g, 0) >= per_gpu]
    return f"GPU {full[0]} has no free slot ({held[full[0]]} of {per_gpu} in use)" if full else None


#: What a run is started from: a start never makes these up.
START_ATTRS = ("flags", "op", "run_params")


def unreadable_start_attr(run: Run):
    """``(name, error)`` of the first of ``START_ATTRS`` that cannot be read,
    or None: checked by a queue before it claims a run and by ``acquire``."""
    import os

    for name in START_ATTRS:
        try:
            attrlib.read(os.path.join(run.attrs_dir, name), None)
        except Exception as e:  # noqa: BLE001 - AttrReadError; YAML's ValueError for a bad date
            return name, e
    return None


def requested_gpus(run: Run) -> str | None:
    """The GPUs the run asked for when staged (``"0"``, ``"auto:2"``, or None:
    any), not those a queue gave it: ``gpus_requested`` where a claim
    recorded it, else the GPUs its op was pinned to (its environment names
    them), else an ``auto`` request never claimed."""
    # lazy: as in gpu_occupancy, the supervisor never asks
    from ..gpus.spec import is_auto

    if os.path.exists(os.path.join(run.attrs_dir, "gpus_requested")):
        v = run.get("gpus_requested")
        return None if v in (None, "") else str(v)
    op = run.get("op")
    cmd = op.get("op-cmd") if isinstance(op, dict) else None
    env = cmd.get("cmd-env") if isinstance(cmd, dict) else None
    g = env.get("CUDA_VISIBLE_DEVICES") if isinstance(env, dict) else None
    if g not in (None, ""):
        return str(g)
    g = run.gpus
    return g if is_auto(g) else None
