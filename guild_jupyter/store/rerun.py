"""A finished run run again: the transitions of a restart, and the source
snapshot a copy (a retry, a restage) is made from.

``restart`` is a status change, so it follows the rules of
:mod:`.transitions` (tests/test_ownership.py allows this module too)::

    restart(stage=False)  finished -> pending, claimed by ``owner`` (who starts it)
    restart(stage=True)   finished -> staged (a queue starts it)

As ``guild run --restart`` does, the run keeps its id, directory, flags and
output (the new output is appended); its outcome (``exit_status``,
``stopped``) is cleared first, and ``started`` is written anew when it
starts (a staged run's ``started`` is its staging time, as Guild orders
staged runs by it).
"""

from __future__ import annotations

import os

from ..errors import WrongState
from . import attrs as attrlib
from .records import Claim
from .run import FINISHED, LOCK, PENDING_MARKER, STAGED_MARKER, Run, now_us

#: What a restart clears: the outcome, the mark of a run unstaged before it
#: started, and the queue that started it last time (a queue shows the
#: active run naming it as its current run).
CLEARED = ("exit_status", "stopped", "unstaged", "queue_id")


def restart(store, run: Run, *, stage: bool, owner: Claim | None = None) -> None:
    """finished -> pending (claimed by ``owner``, default this process) or
    staged. Raises ``WrongState`` unless the run is finished and no process
    holds it; nothing is changed then."""
    from .transitions import _clear_lock, _note, _store_error, settle_dead

    if not stage and owner is None:
        owner = Claim.by_this_process(kind="launch")
    with store.lock():
        run.refresh()
        if run.get("exit_status") is None and os.path.exists(run.path(LOCK)) and run.lock_holder() is None:
            settle_dead(store, run)  # its supervisor died: end what it left, record it, first
            run.refresh()
        if run.status not in FINISHED:
            raise WrongState(f"run {run.id[:8]} is {run.status}: only a finished run can be restarted")
        if os.path.exists(run.path(LOCK)) and run.lock_holder() is not None:
            raise WrongState(f"run {run.id[:8]} is held by a running process: it cannot be restarted")
        try:
            # The outcome goes first: a failure past this point leaves a run
            # that reads ``error`` (no outcome, no live LOCK), never a PENDING
            # marker over an old outcome that no recovery would settle.
            for name in CLEARED:
                attrlib.remove(os.path.join(run.attrs_dir, name))
            _clear_lock(run)
            if stage:
                _give_back_gpus(run)  # a queue chooses again, as for a run returned to staged
                run.write_attr("started", now_us())
                attrlib.write_atomic(run.path(STAGED_MARKER), "")
            else:
                attrlib.write_atomic(run.path(PENDING_MARKER), owner.encode())
        except OSError as e:
            raise _store_error(e, f"restart run {run.id[:8]}") from e
        finally:
            run.refresh()
    _note(run, "restarted" + (" (staged)" if stage else ""))
    store.notify_change()


def source_snapshot(run: Run) -> dict:
    """The run's source snapshot as ``{relative path: bytes}``: the Python
    files and packages at the run directory's root, gathered by the rule
    that copied them there (``opdef.collect_sources``)."""
    from ..opdef import collect_sources

    return collect_sources(run.dir)


def requested_gpus(run: Run) -> str | None:
    """The GPUs the run asked for when staged (``"0"``, ``"auto:2"``, or None:
    any), not those a queue gave it: ``gpus_requested`` where a claim
    recorded it, else the GPUs its op was pinned to (its environment names
    them), else an ``auto`` request never claimed."""
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
    return g if g and g.lower().startswith("auto") else None


def _give_back_gpus(run: Run) -> None:
    """GPUs a queue's claim gave the run go back to what it asked for."""
    path = os.path.join(run.attrs_dir, "gpus_requested")
    if not os.path.exists(path):
        return
    params = run.get("run_params", {}) or {}
    params = dict(params) if isinstance(params, dict) else {}
    params["gpus"] = run.get("gpus_requested")
    run.write_attr("run_params", params)
    attrlib.remove(path)
