"""Pausing, resuming and draining a running queue, wherever it is hosted.

The request is recorded in the queue run (``store.queue_state``); the
queue's loop obeys it at its next pass (at once when it is idle) and logs
it. Guild's own queues (``guild run queue``) do not read it, so they are
refused, as are finished queues and runs that are not queues.
"""

from __future__ import annotations

from .. import validate
from ..display import QueueControlled
from ..errors import BadInput, WrongState
from ..store import queue_state
from ..store.run import PENDING, RUNNING, Run
from .selection import resolve_store

#: The actions, and the state each one asks for.
ACTIONS = {"pause": queue_state.PAUSED, "resume": queue_state.RUNNING, "drain": queue_state.DRAINING}


def queue_control(queue, action: str, *, store=None) -> QueueControlled:
    """Asks ``queue`` (a handle from ``queue()``, a queue run, or its id,
    id prefix or listing index) to ``pause`` (start nothing; runs going keep
    going), ``resume`` or ``drain`` (start nothing, then exit once its runs
    have ended). Returns a ``QueueControlled``: ``{"id", "action", "state",
    "previous"}``, read as ``queue ab12cd34 paused``."""
    if action not in ACTIONS:
        raise BadInput(f"unknown queue action {action!r} (expected one of: {', '.join(ACTIONS)})")
    validate.store(store)
    st = resolve_store(store)
    run = _queue_run(st, queue)
    previous = queue_state.read_control(run)
    queue_state.write_control(st, run, ACTIONS[action])
    return QueueControlled(id=run.id, action=action, state=ACTIONS[action], previous=previous)


def pause_queue(queue, *, store=None) -> QueueControlled:
    """``queue_control(queue, "pause")``."""
    return queue_control(queue, "pause", store=store)


def resume_queue(queue, *, store=None) -> QueueControlled:
    """``queue_control(queue, "resume")``."""
    return queue_control(queue, "resume", store=store)


def drain_queue(queue, *, store=None) -> QueueControlled:
    """``queue_control(queue, "drain")``."""
    return queue_control(queue, "drain", store=store)


def _queue_run(st, queue):
    """The queue run ``queue`` names, checked to be ours and running."""
    handle_run = getattr(queue, "run", None)
    if isinstance(queue, Run):
        run = queue
    elif isinstance(handle_run, Run):
        run = handle_run
    elif isinstance(queue, (str, int)) and not isinstance(queue, bool):
        run = st.resolve(str(queue))
    else:
        raise BadInput(f"queue must be a queue handle, a queue run or its id, not {type(queue).__name__}")
    run.refresh()
    if not run.is_queue:
        raise BadInput(f"run {run.id[:8]} ({run.op_name}) is not a queue")
    info = run.get("guild_jupyter")
    if not (isinstance(info, dict) and info.get("kind") == "queue"):
        raise WrongState(f"queue {run.id[:8]} is Guild's own (guild run queue): it cannot be paused or drained; "
                         f"stop it instead")
    if run.status not in (RUNNING, PENDING):
        raise WrongState(f"queue {run.id[:8]} is {run.status}: only a running queue can be paused, "
                         f"resumed or drained")
    return run
