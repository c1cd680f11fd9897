"""The runner of one run on a Dask worker: ``main`` takes the run over from
the queue's claim and starts it.

The task (:mod:`.task`) has it forked by the worker's launcher
(:mod:`.launcher`), else spawned as ``python -m
guild_jupyter.queueing.dask.runner``; either way its stdin and stdout lead
to the task, its own session. The runner takes the run
(``dask_records.take_dispatch``, under the run-status lock: refused unless
the run is still pending under the queue's claim, and refused to a second
execution of the same task, so a task Dask runs again never starts the run
twice; the queue keeps its claim, so no other queue's recovery touches the
run while the queue lives), records the placement, starts the run's
supervisor exactly as a local start does (``launch.start``) and waits for
it. If the worker dies, the runner's stdin reaches EOF: before the start,
the runner returns the run to staged; after it, the runner ends the run's
process tree and records it ``error`` with "worker lost"
(``transitions.end_tree_and_record``), so a run never stays ``running``
with no worker behind it.

Report lines (the runner's stdout, the task's result): ``ok`` (the run is
running), then ``exit N``; or ``skip: why`` (not started here: another
attempt has it) or ``error: why`` (could not start; recorded)."""

from __future__ import annotations

import json
import os
import select
import signal
import sys

from ...errors import GuildJupyterError
from ...execution import launch
from ...execution.control import STOP_GRACE, retry_copy_spec, signal_run
from ...procs import Identity
from ...store import dask_records, transitions
from ...store.dask_records import this_host
from ...store.run import Run
from ...store.store import Store


def _say(text: str) -> None:
    sys.stdout.write(text.replace("\n", " ") + "\n")
    sys.stdout.flush()


def main(argv=None, prepared=None) -> int:
    """``prepared``: the run's supervisor, forked ahead by the spare runner
    this process was (``launch.prepare_supervisor``); else one is forked."""
    argv = list(sys.argv[1:] if argv is None else argv)
    run_dir, owner, key, worker, host, gpus = argv[:6]
    import time

    run_dir = os.path.abspath(run_dir)
    store = Store(os.path.dirname(os.path.dirname(run_dir)))
    run = Run(run_dir)
    queue_owner = Identity.from_record(json.loads(owner))
    me = Identity.current().as_record()
    # One hold of the run-status lock takes the run, records where it runs and
    # marks it held by this host (each step re-entering it): the queue's
    # claims and the other runs' starts wait for one hold a run, not two.
    with store.lock():
        why = _take(store, run, queue_owner, key, dict(me, host=host, at=time.time()), worker, host, gpus)
    if why:
        _say(why)
        return 0
    try:
        proc = launch.start(run, prepared=prepared)
    except (GuildJupyterError, OSError) as e:
        transitions.record_start_failure(store, run.refresh(), f"cannot start on Dask worker {worker}: {e}")
        _say(f"error: {e}")
        return 0
    _say("ok")
    stop_at = None
    beat = time.monotonic()
    ended = _exit_fd(proc)
    while True:
        if time.monotonic() - beat > dask_records.HEARTBEAT:  # alive, for every machine to see
            dask_records.heartbeat(run)
            beat = time.monotonic()
        if stop_at is None and dask_records.stop_requested(run):  # a stop asked on another machine
            stop_at = time.monotonic()
            signal_run(run.refresh(), signal.SIGTERM)
        elif stop_at is not None and time.monotonic() - stop_at > STOP_GRACE and proc.poll() is None:
            transitions.end_tree_and_record(
                store, run.refresh(), -9, "stop: the run did not end within its grace period; its processes were killed")
            stop_at = float("inf")
        if _worker_gone(0.2, ended):
            why = (f"worker lost: Dask worker {worker} on {host} went away while the run was running; "
                   "the run's processes were ended")
            transitions.end_tree_and_record(store, run.refresh(), 1, why, retry=retry_copy_spec)
            try:
                proc.wait(timeout=5)  # reaped: a zombie supervisor would still look alive
            except Exception:  # noqa: BLE001 - settled below all the same when it is gone
                pass
            transitions.settle_dead(store, run.refresh(), 1, why, retry=retry_copy_spec)
            _say("error: worker lost")
            return 0
        code = proc.poll()
        if code is not None:
            _say(f"exit {code}")
            return 0


def _take(store, run: Run, queue_owner, key: str, me: dict, worker: str, host: str, gpus: str) -> str | None:
    """Under the run-status lock: takes the run over from the queue's claim
    (refused to a second execution of the task), records its placement and
    marks it held by ``host``. None when the run is ours to start; else the
    report line saying why not (what needed recording is recorded)."""
    why = dask_records.take_dispatch(store, run, queue_owner, key, me)
    if why:
        return f"skip: {why}"
    try:
        dask_records.record_placement(run, worker, host, gpus or None)
    except OSError as e:
        transitions.record_start_failure(store, run, f"cannot record the Dask placement: {e}")
        return f"error: cannot record the Dask placement: {e}"
    if _worker_gone(0):  # the worker died before the run started: back to staged
        run.refresh()
        c = transitions.read_claim(run)
        if run.status == "pending" and isinstance(c, transitions.Claim) and c.owner == queue_owner:
            transitions.return_to_staged(store, run)
            dask_records.clear_dispatch(run)
        return "skip: worker lost before the run started"
    try:
        dask_records.clear_stop_request(run)  # one left by an earlier life of the run (a restart)
        # running on every machine; judged only on this one -- unless a stop
        # took the run off since the dispatch was taken: then it never starts
        if not transitions.mark_remote(store, run, host, queue_owner):
            return "skip: stopped before it started"
    except (GuildJupyterError, OSError) as e:
        transitions.record_start_failure(store, run.refresh(), f"cannot start on Dask worker {worker}: {e}")
        return f"error: {e}"
    return None


def _exit_fd(proc) -> int | None:
    """A descriptor that becomes readable when the supervisor exits (a
    pidfd, Linux >= 5.3), so the run's end is reported at once rather than
    at the next poll; None where there is none."""
    try:
        return os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return None


def _worker_gone(timeout: float, ended: int | None = None) -> bool:
    """True once the task's end of our stdin is closed: the worker died.
    Returns early (False) when ``ended`` (the supervisor's pidfd) is ready."""
    fds = [sys.stdin.fileno()] if ended is None else [sys.stdin.fileno(), ended]
    ready, _, _ = select.select(fds, [], [], timeout)
    return sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 4096)


if __name__ == "__main__":
    sys.exit(main())
