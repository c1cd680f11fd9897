"""The runner of one run on a Dask worker: ``main`` takes the run over from
the queue's claim and supervises it.

The task (:mod:`.task`) has it forked by the worker's launcher
(:mod:`.launcher`), else spawned as ``python -m
guild_jupyter.queueing.dask.runner``; either way its stdin and stdout lead
to the task, its own session. The runner takes the run
(``dask_records.take_dispatch``, under the run-status lock: refused unless
the run is still pending under the queue's claim, and refused to a second
execution of the same task, so a task Dask runs again never starts the run
twice; the queue keeps its claim, so no other queue's recovery touches the
run while the queue lives), records the placement and marks the run held
by this host, all in one hold of the lock, then is the run's supervisor
itself (``RunnerSupervisor``: a local start's supervisor, acquiring the
run, forking the script, teeing its output and recording its outcome, in
this process: no process more per run). If the worker dies, the runner's
stdin reaches EOF: before the start, the runner returns the run to staged;
after it, the runner ends the run's processes and records it ``error``
with "worker lost", so a run never stays ``running`` with no worker
behind it. Killed itself, it is a supervisor killed: the run's next
look (its queue, a listing) settles it, as for a local run.

Report lines (the runner's stdout, the task's result): ``ok`` (the run is
running), then ``exit N``; or ``skip: why`` (not started here: another
attempt has it) or ``error: why`` (could not start; recorded; or
``error: worker lost``)."""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

from ...errors import GuildJupyterError
from ...execution.supervisor import Supervisor
from ...procs import Identity
from ...store import dask_records, transitions
from ...store.dask_records import this_host
from ...store.run import Run
from ...store.store import Store


def _say(text: str) -> None:
    sys.stdout.write(text.replace("\n", " ") + "\n")
    sys.stdout.flush()


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_dir, owner, key, worker, host, gpus = argv[:6]
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
    sup = RunnerSupervisor(run.dir, worker, host)
    code = sup.main()
    if sup.ready != "ok":  # it never started the run: recorded, as a start that fails is
        reason = sup.ready[len("error: "):] if sup.ready.startswith("error: ") else (
            sup.ready or "the supervisor ended before starting the run")
        transitions.record_start_failure(store, run.refresh(), reason)
        _say(f"error: {reason}")
    elif sup.worker_lost:
        _say("error: worker lost")
    else:
        _say(f"exit {code}")
    return 0


class RunnerSupervisor(Supervisor):
    """The run's supervisor, in the runner's own process (no process more a
    run): it starts and tees the run as a local supervisor does, and also
    watches what the runner answers for -- the task's connection (this
    process's stdin: its EOF means the worker died, and the run's
    processes are ended and the run recorded ``error``, "worker lost"), a
    stop asked on another machine (the run's stop request file: a stop, as
    SIGTERM would be) and the machine's heartbeat on LOCK.remote."""

    TICK = 0.2

    def __init__(self, run_dir: str, worker: str, host: str):
        super().__init__(run_dir)
        self.worker, self.host = worker, host
        self.ready = ""
        self.worker_lost = False
        self._beat = time.monotonic()

    def _ready(self, msg: str) -> None:
        if self.ready:
            return
        self.ready = msg
        if msg == "ok":
            _say("ok")  # the run is running: the task's first report line

    def _watched_fds(self) -> list:
        return [sys.stdin.fileno()]

    def _on_watched(self, fd: int) -> bool:
        try:
            if os.read(fd, 4096):
                return False  # the task sends nothing after its request: ignored
        except OSError:
            pass
        self.worker_lost = True
        self._append_output(f"\nguild_jupyter: worker lost: Dask worker {self.worker} on {self.host} went away "
                            "while the run was running; the run's processes were ended\n".encode())
        self._signal_all(signal.SIGKILL)
        self._kill_at = time.monotonic()  # and again, for any process started meanwhile
        return True

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._beat > dask_records.HEARTBEAT:  # alive, for every machine to see
            dask_records.heartbeat(self.run)
            self._beat = now
        if not self.stop_requested and dask_records.stop_requested(self.run):  # asked on another machine
            self.stop_requested = True

    def _finish(self, exit_status: int) -> int:
        return super()._finish(1 if self.worker_lost else exit_status)


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


def _worker_gone(timeout: float) -> bool:
    """True once the task's end of our stdin is closed: the worker died."""
    ready, _, _ = select.select([sys.stdin.fileno()], [], [], timeout)
    return bool(ready) and not os.read(sys.stdin.fileno(), 4096)


if __name__ == "__main__":
    sys.exit(main())
