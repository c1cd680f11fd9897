"""A queue's log (``QueueLog``): the lines a queue's loop (``loop.QueueLoop``)
writes to its run's output, and to a terminal when it has one."""

from __future__ import annotations

import datetime
import os

from ..store.run import Run


class QueueLog:
    """Lines in the queue run's output and on ``echo`` (a text stream that
    also gets the log: a terminal)."""

    def __init__(self, run: Run, echo=None):
        self.run = run
        self.echo = echo
        self._fd: int | None = None
        self._logged: set = set()  # keys of messages logged once

    def write(self, msg: str) -> None:
        """One line in the queue run's output (and on ``echo``). Never raises:
        a full disk loses the line, not the queue."""
        ts = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        line = f"INFO: [queue] {ts} {msg}\n"
        try:
            if self._fd is None:
                self._fd = os.open(self.run.path("output"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line.encode("utf-8", errors="replace"))
        except OSError:
            pass
        if self.echo is not None:
            try:
                self.echo.write(line)
                self.echo.flush()
            except (OSError, ValueError):
                self.echo = None  # the terminal is gone

    def once(self, key, msg: str) -> None:
        """``write``s ``msg`` the first time ``key`` is logged."""
        if key not in self._logged:
            self._logged.add(key)
            self.write(msg)

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
