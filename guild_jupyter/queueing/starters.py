"""How a queue's loop (``loop.QueueLoop``) starts the runs it claims: the
``RunStarter`` protocol and its ``RunHandle``, and ``LocalStarter``, this
machine's (script runs through our supervisor, Guild's own operations
through ``guild run --restart``). Other hosts inject their own (a Dask
cluster's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Protocol

from ..errors import RunStartError
from ..execution import launch
from ..store.run import Run


class RunHandle(Protocol):
    """A started run, as its starter sees it."""

    def done(self) -> bool:
        """True once the run has ended (its outcome is recorded)."""

    # Optional: ``exit_fd() -> int | None``, a descriptor that becomes
    # readable when the run ends (the queue's wait then wakes at once).


class RunStarter(Protocol):
    """How a host starts the runs its loop claims (a pending run, claimed by
    this process for the queue). Every member the loop uses is declared
    here; a starter that subclasses the protocol inherits the defaults of
    the optional ones (``bind``, ``close``, the two flags)."""

    #: Whether the starter, not the queue's policy, decides where GPU runs
    #: go (the policy then sees every run as unpinned): a Dask cluster's
    #: resources do.
    places_gpus: bool = False

    @property
    def runs_end_with_queue(self) -> bool:
        """Whether runs going when the queue stops end with it (they run on
        a cluster the queue embeds); else they keep running."""
        return False

    def bind(self, loop) -> None:
        """Called once by the ``QueueLoop`` that uses this starter, before
        its first claim (a starter that logs or records in the queue run)."""

    def cannot_start(self, run: Run) -> str | None:
        """Why this starter can never start ``run`` (it is then skipped), or None."""

    def capacity(self) -> int | None:
        """How many more runs the starter can place now, counted before each
        pass's claims (a cluster's free workers): the queue claims no more
        than that. None: no bound of its own (the queue's slots decide)."""
        return None

    def wanted_slots(self) -> int | None:
        """How many slots the queue should have now (a cluster's worker
        threads, as workers come and go); None: as the queue was made."""
        return None

    def start(self, run: Run) -> RunHandle:
        """Starts ``run``; returns once it is running. Raises
        ``GuildJupyterError`` (or ``OSError``) when it cannot."""

    def close(self) -> None:
        """Lets go of what the starter holds (a Dask client, a local
        cluster) when the queue stops."""


class _ProcessHandle:
    __slots__ = ("proc", "_exit_fd")

    def __init__(self, proc):
        self.proc = proc
        try:  # readable once the process ends (Linux >= 5.3): the queue wakes at once, not at its next look
            self._exit_fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self._exit_fd = None

    def exit_fd(self) -> int | None:
        return self._exit_fd

    def done(self) -> bool:
        if self.proc.poll() is None:
            return False
        if self._exit_fd is not None:
            os.close(self._exit_fd)
            self._exit_fd = None
        return True

    def __del__(self, _close=os.close):  # a queue that stops while its runs go on (a kernel's) keeps no descriptor
        # (``_close`` bound now: at the interpreter's exit the module's ``os`` may already be None)
        if self._exit_fd is not None:
            try:
                _close(self._exit_fd)
            except OSError:
                pass


class LocalStarter(RunStarter):
    """Script runs: our supervisor, detached (``launch.start``). Guild's own
    operations: ``guild run --restart``, when the guild command is installed."""

    def __init__(self, store):
        self.store = store
        self.guild_exe = find_guild()

    def cannot_start(self, run: Run) -> str | None:
        if run.opref[0] == "script" or self.guild_exe:
            return None
        return f"{run.op_name} is a Guild operation and the guild command is not installed"

    def start(self, run: Run) -> RunHandle:
        if run.opref[0] == "script":
            return _ProcessHandle(launch.start(run, retry_disk_faults=True))
        return _ProcessHandle(self._start_with_guild(run))

    def _start_with_guild(self, run: Run) -> subprocess.Popen:
        env = dict(os.environ, GUILD_HOME=self.store.home, NO_RESTARTING_MSG="1")
        cmd = [self.guild_exe, "run", "--restart", run.id, "--yes"]
        if run.gpus:
            cmd += ["--gpus", run.gpus]
        out = open(os.devnull, "wb")
        try:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        except OSError as e:
            raise RunStartError(f"cannot run guild: {e}") from e
        finally:
            out.close()
        return proc  # the loop's poll() collects it


def find_guild() -> str | None:
    exe = os.path.join(os.path.dirname(sys.executable), "guild")
    if os.access(exe, os.X_OK):
        return exe
    return shutil.which("guild")
