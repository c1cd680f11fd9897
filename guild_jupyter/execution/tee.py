"""The supervisor's output tee: the script's output, from its pipe into
``.guild/output`` (and the launcher's stdout with ``--echo``) as it comes,
fed to the output scalars.

Output is written whatever its shape and scanned for scalars in time linear
in its size. A write error on the output file (a full disk) drops the output
from then on, but the pipe keeps being drained, and the error is noted at
the end of the output.
"""

from __future__ import annotations

import os
import sys

READ_SIZE = 1 << 20


class OutputTee:
    """The output half of :class:`.supervisor.Supervisor` (a mixin: the
    state -- ``run``, ``proc``, ``echo``, ``scalars``, ``_pipe``, ``_out``,
    ``output_error`` -- is the supervisor's)."""

    # -- the pipe -------------------------------------------------------------

    def _read_output(self) -> bool:
        """Reads what the pipe has; False at end of file."""
        try:
            data = os.read(self._pipe, READ_SIZE)
        except InterruptedError:
            return True
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self._last_read = len(data)
        self._write_output(data)
        if self.echo:
            self._echo(data)
        try:
            self.scalars.feed(data)
        except Exception as e:  # noqa: BLE001 - scalars are a side show: never end the run
            self.scalars.error = self.scalars.error or f"{type(e).__name__}: {e}"
        return True

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            try:
                self.proc.stdout.close()
            except OSError:
                pass
            self._pipe = None

    # -- output ---------------------------------------------------------------

    def _open_output(self) -> None:
        try:
            self._out = os.open(self.run.path("output"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            self.output_error = e.strerror or str(e)

    def _write_output(self, data: bytes) -> None:
        """Writes every byte as it comes; after a write error (a full disk)
        the output is dropped from then on, and noted at the end."""
        if self._out is None:
            return
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._out, view):]
        except OSError as e:
            self.output_error = e.strerror or str(e)
            try:
                os.close(self._out)
            except OSError:
                pass
            self._out = None

    def _append_output(self, data: bytes, echo: bool = True) -> bool:
        """Best effort: a line of ours at the end of the output. True if it
        was written whole."""
        if self.echo and echo:
            self._echo(data)
        try:
            fd = os.open(self.run.path("output"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                return os.write(fd, data) == len(data)
            finally:
                os.close(fd)
        except OSError:
            return False

    def _echo(self, data: bytes) -> None:
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except (OSError, ValueError, AttributeError):
            self.echo = False  # the launcher went away; keep recording
