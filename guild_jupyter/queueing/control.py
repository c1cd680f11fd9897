"""What a person asks of a running queue, as its loop (``loop.QueueLoop``)
sees it: the requested state (pause, resume, drain) and retries of the runs
it started that failed.

The state is kept in the queue run's directory (``store.queue_state``), so a
queue hosted anywhere (a thread here, a detached process, another kernel)
obeys whoever asked; the loop reads it once per pass:

- ``running``: the queue starts staged runs as usual;
- ``paused``: it starts nothing (runs going keep going); each staged run it
  holds back is named once in its log;
- ``draining``: it starts nothing and, once the runs it started have ended,
  exits with status 0.

Retry: a run this queue started that failed (exit status > 0; a stopped or
terminated run is never retried) is staged again as a copy of itself, up to
N times: N is the run's own ``retries`` attr (``run --stage --retries N``),
else the queue's ``retries`` flag. The policy is recorded with the run when
the queue claims it (``transitions.claim(retries=...)``), so the copy is
staged by whoever settles the failure -- the run's supervisor, usually,
even when this queue was killed meanwhile; the queue, reaping the run,
stages it only if nobody has (``transitions.stage_retry`` is idempotent)
and logs what became of it. Each copy names its origin (``retry_of``: the
run it retries; ``retry_attempt``: 1, 2, ...).
"""

from __future__ import annotations

import os

from ..store import queue_state, transitions
from ..store.run import Run

__all__ = ["QueueControl"]


class QueueControl:
    """The loop's view of its queue's requested state, and its retries."""

    def __init__(self, store, queue_run: Run, log):
        self.store = store
        self.run = queue_run
        self._log = log  # a QueueLog
        self.state = queue_state.RUNNING
        self._pauses = 0  # each pause names the runs it holds back anew

    # -- the requested state -----------------------------------------------------------------

    def poll(self) -> str:
        """The requested state now; logs each change."""
        state = queue_state.read_control(self.run)
        if state != self.state:
            self.state = state
            if state == queue_state.PAUSED:
                self._pauses += 1
                self._log.write("Paused: no staged run is started until the queue is resumed "
                                "(runs already going keep going)")
            elif state == queue_state.DRAINING:
                self._log.write("Draining: no staged run is started; the queue stops once its runs have ended")
            else:
                self._log.write("Resumed: starting staged runs again")
        return state

    def note_held(self) -> None:
        """While paused: names, once per pause, each staged run held back (the
        queue's log then shows a pass saw it and started nothing)."""
        staged, _pending, _locked = self.store.scan_waiting()
        for r in staged:
            self._log.once(("paused", self._pauses, r.id), f"Paused: staged run {r.id} waits until the queue is resumed")

    # -- retries --------------------------------------------------------------------------------

    def after_run(self, run: Run) -> Run | None:
        """Called for each run this queue started, once it has ended: a
        failed one with retries left under the policy recorded at its claim
        has its copy staged (by its supervisor already, as a rule, else
        here). Logs what became of it; returns the copy. Never raises (a
        copy that cannot be made is logged)."""
        exit_status = run.exit_status
        if not isinstance(exit_status, int) or isinstance(exit_status, bool) or exit_status <= 0:
            return None
        policy = run.get(transitions.RETRY_POLICY)
        allowed = policy.get("retries") if isinstance(policy, dict) else None
        if not isinstance(allowed, int) or isinstance(allowed, bool) or allowed <= 0:
            return None
        attempt = run.get("retry_attempt")
        attempt = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt > 0 else 0
        if attempt >= allowed:
            self._log.write(f"Run {run.id} failed (exit status {exit_status}); no retry left "
                            f"({allowed} retr{'y' if allowed == 1 else 'ies'} done)")
            return None
        # lazy: a retry's copy needs opdef and the flag engine, which a queue without a failed run never loads
        from ..rerun import retry_spec

        try:
            copy_id, what = transitions.stage_retry(self.store, run, retry_spec)
        except Exception as e:  # noqa: BLE001 - a damaged run or a full disk: logged, the queue goes on
            copy_id, what = None, f"failed: {e}"
        if copy_id is None:
            why = what.partition("failed: ")[2] or what
            self._log.write(f"Run {run.id} failed (exit status {exit_status}); cannot stage a retry: {why}")
            return None
        self._log.write(f"Run {run.id} failed (exit status {exit_status}); staged retry {copy_id} "
                        f"(attempt {attempt + 1} of {allowed})")
        return Run(os.path.join(self.store.runs_dir, copy_id))
