"""Output scalars: ``key: value`` lines recorded as TensorBoard events.

Guild 0.9 reads scalars from event files under the run's ``.guild`` dir, so
``guild compare`` and TensorBoard both show what we write there. tensorboardX
is imported on the first scalar only: runs that print none pay nothing.
"""

from __future__ import annotations

import re

_SCALAR_RE = re.compile(
    rb"^\s*([A-Za-z_][A-Za-z0-9_./-]*)\s*:\s*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf))\s*$"
)


def parse_line(line: bytes):
    """(key, value) for a scalar line, else None."""
    m = _SCALAR_RE.match(line)
    if not m:
        return None
    try:
        return m.group(1).decode("ascii"), float(m.group(2))
    except ValueError:
        return None


class ScalarWriter:
    def __init__(self, logdir: str, ignore: set[str]):
        self.logdir = logdir
        self.ignore = ignore
        self.step = 0
        self._writer = None
        self.count = 0

    def feed(self, line: bytes) -> None:
        parsed = parse_line(line)
        if parsed is None:
            return
        key, value = parsed
        if key == "step":
            self.step = int(value)
            return
        if key in self.ignore:
            return
        if self._writer is None:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(logdir=self.logdir, flush_secs=2)
        self._writer.add_scalar(key, value, self.step)
        self.count += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
