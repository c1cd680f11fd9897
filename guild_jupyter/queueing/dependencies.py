"""Runs held for their dependencies, settled (SPEC 12): the pass that
stages a held run whose dependencies have all completed and ends, ``error``,
one whose dependency failed -- and then the runs waiting on it, in the
same pass, so that no run is ever left waiting for a run that will never
complete.

Whoever sees a held run first settles it: every claim pass of our queues
(under the run-status lock, in the scan that then claims: a run released
here is started in that same pass), and every listing (``api.runs``), so
that a failure reaches the runs waiting on it even when no queue runs.
The verdict is the pure ``policy.after_verdict`` of the dependencies'
states (``store.dependencies``); each change is one transition
(``transitions.release_held``, ``transitions.fail_held``), idempotent, so
a settler killed half-way leaves what the next one completes.
"""

from __future__ import annotations

import dataclasses

from ..store import transitions
from ..store.dependencies import dependency_states
from . import policy

__all__ = ["HeldPass", "settle_held", "verdict_of"]

DAMAGED = "its dependency record cannot be read"


@dataclasses.dataclass
class HeldPass:
    """What one pass did: runs staged, runs ended (with the reason), and the
    runs still waiting with their verdicts."""

    released: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)  # (run, reason)
    waiting: list = dataclasses.field(default_factory=list)  # (run, policy.AfterVerdict)


def verdict_of(states) -> policy.AfterVerdict:
    """The policy's verdict for ``store.dependencies.dependency_states``'s
    answer (a damaged record fails the run: its dependencies are unknown)."""
    if not isinstance(states, list):
        return policy.AfterVerdict("failed", DAMAGED)
    return policy.after_verdict([policy.Dependency(i, s, a) for i, s, a in states])


def settle_held(store, pending, log=None, retry=None, settle=None) -> HeldPass:
    """Settles the held runs among ``pending`` (runs read pending by a scan):
    stages those whose dependencies all completed, ends those whose
    dependency failed, then looks again at the runs still waiting until a
    pass ends nothing more (a failure reaches its dependents' dependents at
    once). ``retry``, ``settle``: a settler's hooks for dependencies that
    failed (``store.dependencies``). Under the run-status lock (reentrant:
    a queue's claim pass holds it already)."""
    out = HeldPass()
    with store.lock():
        held = [r for r in pending if transitions.is_held(r.refresh()) or transitions.ended_while_held(r)]
        while held:
            seen: dict = {}
            still, ended_one = [], False
            for run in held:
                if run.get("exit_status") is not None:  # stopped, or ended by a settler killed half-way
                    transitions.fail_held(store, run, "")
                    continue
                verdict = verdict_of(dependency_states(store, run, retry, settle, seen))
                if verdict.kind == "ready":
                    if transitions.release_held(store, run):
                        out.released.append(run)
                        _say(log, f"Run {run.id} staged: its dependencies completed")
                elif verdict.kind == "failed":
                    if transitions.fail_held(store, run, verdict.reason):
                        out.failed.append((run, verdict.reason))
                        ended_one = True
                        _say(log, f"Run {run.id} not started: {verdict.reason}; recorded as error")
                else:
                    still.append((run, verdict))
            out.waiting = still
            if not ended_one:
                break
            held = [r for r, _v in still]
    return out


def _say(log, text: str) -> None:
    if log is not None:
        log(text)
