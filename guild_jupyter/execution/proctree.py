"""The supervisor's hold on the run's processes: reaping, recording, stopping.

The supervisor is a child subreaper, so every orphan of the run is its
descendant. The run's processes (pid + start time) are recorded when they
change, so that if the supervisor itself is killed outright, whoever looks
next can end them (:func:`transitions.settle_dead`). On a stop the script's
process group and every descendant get SIGTERM, and SIGKILL after the
grace; when the script's main process exits, what it left running gets
SIGTERM and SIGKILL after ``LEFTOVER_GRACE``.
"""

from __future__ import annotations

import os
import signal
import time

from .. import procs
from ..procs import Identity
from ..store import transitions

LEFTOVER_GRACE = 1.0  # the main process exited: its leftovers get SIGKILL after this


class ProcessTree:
    """The process half of :class:`.supervisor.Supervisor` (a mixin: the
    state -- ``run``, ``proc``, ``grace``, ``main_status``, ``_known``,
    ``_recorded``, ``_kill_at``, the stop flags -- is the supervisor's)."""

    def _reap(self) -> bool:
        """Collects every child that exited (orphans reparented to us
        included), keeping the main process's exit status. True while some
        child is still running."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            except InterruptedError:
                continue
            if pid == 0:
                return True
            if self.proc is not None and pid == self.proc.pid and self.main_status is None:
                self.main_status = os.waitstatus_to_exitcode(status)
                self.proc.returncode = self.main_status

    def _tree(self) -> list[Identity]:
        """Live descendants of this process: the run's processes (as a
        subreaper every orphan of the run is one)."""
        return _descendants(os.getpid())

    def _walk_and_record(self) -> None:
        idents = self._tree()
        for i in idents:
            self._known[i.pid] = i
        current = frozenset(idents)
        if current != self._recorded:
            self._record_processes(idents)
        if len(self._known) > 4 * len(idents) + 64:
            self._known = {i.pid: i for i in self._known.values() if i.alive()}

    def _record_processes(self, idents: list) -> None:
        self._recorded = frozenset(idents)
        transitions.record_processes(self.run, list(idents))

    def _known_alive(self) -> bool:
        """A process of the run seen earlier, alive but no longer our
        descendant (only where the subreaper could not be set)."""
        for pid, ident in list(self._known.items()):
            if ident.alive():
                return True
            del self._known[pid]
        return False

    def _signal_all(self, sig) -> None:
        """``sig`` to the script's process group and to every process of the
        run, escaped sessions included."""
        if self.proc is not None and self.main_status is None:  # a reaped group leader's pid may be reused
            try:
                os.killpg(self.proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        for ident in self._tree():
            self._known[ident.pid] = ident
        procs.signal_identities(list(self._known.values()), sig)

    def _begin_stop(self) -> None:
        self._stop_handled = True
        self._stopped_running = self.main_status is None
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        self._kill_at = deadline if self._kill_at is None else min(self._kill_at, deadline)

    def _main_exited(self, children_left: bool) -> None:
        """The script's main process exited: what it left running gets SIGTERM
        and SIGKILL after LEFTOVER_GRACE (after a stop: when its grace ends)."""
        if not children_left and not self._known_alive():
            return
        if self._stop_handled:
            return  # they had SIGTERM with the stop, and get SIGKILL when its grace ends
        self._signal_all(signal.SIGTERM)
        self._kill_at = time.monotonic() + LEFTOVER_GRACE

    def _abort(self) -> int:
        """After an error of ours: kill every process of the run, collect the
        main process's status."""
        try:
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                self._signal_all(signal.SIGKILL)
                if not self._reap() and not self._known_alive():
                    break
                time.sleep(0.01)
        except BaseException:  # noqa: BLE001 - still record the outcome
            pass
        return self.main_status if self.main_status is not None else -signal.SIGKILL


def _descendants(root: int) -> list[Identity]:
    """Live (not zombie) descendants of ``root`` as identities, from one
    pass over ``/proc`` (psutil where there is none)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return [Identity(p.pid, p.create_time()) for p in procs.descendants(root)]
    children: dict[int, list] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append((int(name), fields))
        except (OSError, IndexError, ValueError):
            continue
    out = []
    stack = [root]
    boot, ticks = procs._boot_time(), procs._TICKS
    while stack:
        for pid, fields in children.get(stack.pop(), ()):
            stack.append(pid)
            if fields[0] not in (b"Z", b"X", b"x"):
                out.append(Identity(pid, boot + int(fields[19]) / ticks))
    return out
