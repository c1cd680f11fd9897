"""A sweep started without ``--stage``: its trials run one after another.

How trials are held so that no queue can take or kill them: every trial is
created *pending*, claimed by the process that will start it (a claim of
ours: pid + start time in the PENDING marker, see
:mod:`guild_jupyter.store.transitions`). A queue starts only staged runs and
returns a claimed run to the queue only when its claimer is dead, so while
the sweep's host lives its trials wait their turn untouched, however long
the earlier trials take. If the host dies, the trials it never started are
recorded as never started (``error``, with the reason in their output).

Two hosts run the same :class:`TrialRunner`:

- the caller itself, in the foreground (``--foreground``: the cell or the
  terminal streams each trial's output);
- a *batch host* process (``python -m guild_jupyter.execution.batch``), in
  its own session, for a sweep in the background: the launcher hands its
  claims over to it and returns once the first trial runs.

Stopping the sweep (Ctrl-C in the foreground; SIGTERM, SIGINT or SIGHUP to
the batch host; or ``stop`` of its pending trials) stops the current trial
and records every trial not started as terminated and never started: no
trial is left half-written or pending.
"""

from __future__ import annotations

import os
import signal
import sys

from ..errors import GuildJupyterError
from ..procs import Identity
from ..store import transitions
from ..store.run import PENDING, Run
from ..store.store import Store
from . import control, launch
from .ready import ready_fd_from, report_ready

NOT_STARTED = "not started: its sweep was stopped"


class SweepStopped(Exception):
    """The batch host was asked to stop (a signal)."""


class SweepInterrupted(KeyboardInterrupt):
    """A foreground sweep was interrupted; ``runs`` are its trials as they
    ended (the current one stopped, the rest never started)."""

    def __init__(self, runs: list):
        super().__init__("interrupted")
        self.runs = runs


class TrialRunner:
    def __init__(self, store: Store, trials: list[Run], stream=None, echo: bool = False):
        self.store = store
        self.trials = trials
        self.stream = stream
        self.echo = echo
        self.current: Run | None = None

    def run(self, on_first_start=None) -> list[Run]:
        """Starts each trial in turn and waits for it. Returns the trials."""
        try:
            for n, trial in enumerate(self.trials):
                if trial.refresh().status != PENDING:
                    continue  # stopped (cancelled) before its turn
                self.current = trial
                try:
                    proc = launch.start(trial, echo=self.echo)
                except GuildJupyterError as e:
                    self._say(f"trial {n + 1} ({trial.id[:8]}) could not start: {e}\n")
                    continue
                if on_first_start is not None:
                    on_first_start()
                    on_first_start = None
                self._wait(trial, proc)
                self.current = None
        except SweepStopped:
            self.stop()
            raise
        except KeyboardInterrupt:
            self.stop()
            raise SweepInterrupted([t.refresh() for t in self.trials]) from None
        finally:
            if on_first_start is not None:
                on_first_start()
        return [t.refresh() for t in self.trials]

    def _wait(self, trial: Run, proc) -> None:
        if self.stream is not None:
            follow_output(trial, self.stream, lambda: proc.poll() is not None)
        proc.wait()

    def stop(self) -> int:
        """Stops the current trial and cancels the ones not started; returns
        how many runs it stopped."""
        left = [t for t in self.trials if t is not self.current and t.refresh().status == PENDING]
        n = sum(transitions.cancel_pending(self.store, t, NOT_STARTED) for t in left)
        cur = self.current
        if cur is not None and control.begin_stop(self.store, cur):
            control.finish_stop(self.store, [cur])
            n += 1
        return n

    def _say(self, text: str) -> None:
        out = self.stream if self.stream is not None else (sys.stderr if self.echo else None)
        if out is not None:
            out.write(text)
            out.flush()


def follow_output(run: Run, stream, done, interval: float = 0.01) -> None:
    """Copies a run's output to ``stream`` as it grows, until ``done()`` and
    the last bytes are read."""
    from ..store import output as outputlib  # lazy: only a sweep run in the foreground follows output

    def write(text: str) -> None:
        stream.write(text)
        if hasattr(stream, "flush"):
            stream.flush()

    outputlib.follow(run.path("output"), write, done, interval=interval, check_every=interval)


# -- the batch host -------------------------------------------------------------------


def start_in_background(store: Store, trials: list[Run], timeout: float = launch.READY_TIMEOUT):
    """Hands the trials (claimed by this process) to a new batch host and
    returns once the first trial is running."""
    me = Identity.current()
    cmd = [sys.executable, "-m", "guild_jupyter.execution.batch", store.home, f"{me.pid}:{me.start!r}"]
    cmd += [t.id for t in trials]
    try:
        return launch.start_process(trials[0], cmd, timeout=timeout)
    except GuildJupyterError as e:
        for t in trials[1:]:
            transitions.record_start_failure(store, t, f"not started: the sweep could not start ({e})")
        raise


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ready_fd = ready_fd_from(argv)
    if ready_fd is not None:
        i = argv.index("--ready-fd")
        del argv[i:i + 2]
    home, frm, *ids = argv
    store = Store(home)
    pid, _, start = frm.partition(":")
    launcher = Identity(int(pid), float(start))
    me = transitions.Claim.by_this_process(kind="sweep")
    trials = []
    try:
        for run_id in ids:
            t = store.run(run_id)
            transitions.transfer_claim(store, t, launcher, me)
            trials.append(t)
    except Exception as e:  # noqa: BLE001 - nothing started: say why
        report_ready(ready_fd, f"error: {e}")
        return 1

    def on_signal(_signum, _frame):
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # one stop at a time
        raise SweepStopped()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    runner = TrialRunner(store, trials)
    try:
        runner.run(on_first_start=lambda: report_ready(ready_fd, "ok"))
    except SweepStopped:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
