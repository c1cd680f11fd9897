"""The queue flags, declared once: name, kind, default, bounds and help.

Guild's four (``gpus``, ``wait-for-running``, ``run-once``,
``poll-interval``) and ours. Everything that names, checks or offers a
queue flag reads ``QUEUE_FLAG_TABLE``: ``config.parse_queue_flags`` (so
``api.queue``, ``%guild queue``, ``guild-jupyter queue`` and REST's
``POST /guild/api/queues``), the help and tab completion of ``queue``, the
fields REST and the server's configured queues accept, and the panel's
queue form (``queue_flag_table``).

Bounds. Every number has a range, so that no value can make an idle queue
busy or big: a ``poll-interval`` under 0.1 s would rescan the store
without pause, and the loop keeps memory and work per run going, never per
allowed slot, so ``max-running`` is bounded by what one machine (or one
Dask cluster) can sensibly keep going. A value past a bound is a
``BadInput`` of one line naming the range. This module imports nothing
heavy: the CLI reads it for ``queue``'s help.
"""

from __future__ import annotations

from ..errors import BadInput

__all__ = ["QueueFlag", "QUEUE_FLAG_TABLE", "QUEUE_FLAGS", "BY_NAME", "check_number", "queue_flag_table",
           "queue_flag_lines", "queue_form", "DASK_LOCAL_MAX", "GPU_AUTO_ONLY"]

#: Kinds of value: ``text`` (a spec parsed by its own parser), ``yes-no``,
#: ``seconds`` (a float), ``count`` (a whole number), ``size`` (bytes,
#: written 20GiB), ``percent`` (a whole number, ``50`` or ``50%``).
KINDS = ("text", "yes-no", "seconds", "count", "size", "percent")

TIB = 2**40


class QueueFlag:
    """One queue flag: ``name`` (as the command line writes it), ``kind``
    (one of ``KINDS``), ``default`` (None: unset), ``minimum``/``maximum``
    (numbers: inclusive bounds; ``dask``: of N in ``local:N``), ``metavar``,
    ``help``, ``choices`` (words the value may be, besides a spec), and
    ``auto_only`` (it applies to a ``gpus=auto`` queue only)."""

    __slots__ = ("name", "kind", "default", "minimum", "maximum", "metavar", "help", "choices", "auto_only")

    def __init__(self, name, kind, default, minimum, maximum, metavar, help, choices=None, auto_only=False):
        self.name, self.kind, self.default = name, kind, default
        self.minimum, self.maximum, self.metavar, self.help = minimum, maximum, metavar, help
        self.choices, self.auto_only = choices, auto_only

    @property
    def field(self) -> str:
        """The name as a keyword argument and a JSON field (``max_running``)."""
        return self.name.replace("-", "_")

    def range_text(self) -> str:
        """``from 0.1 to 86400`` (empty for flags without bounds)."""
        if self.minimum is None and self.maximum is None:
            return ""
        lo, hi = (_size_text(self.minimum), _size_text(self.maximum)) if self.kind == "size" else (
            f"{self.minimum:g}", f"{self.maximum:g}")
        return f"from {lo} to {hi}"

    def expected(self) -> str:
        """What a bad value's message says was expected."""
        what = {"yes-no": "yes or no", "seconds": "seconds", "count": "a whole number",
                "size": "a size like 20GiB, 512MiB or 8GB", "percent": "a percentage"}.get(self.kind, self.metavar)
        rng = self.range_text()
        return f"{what} {rng}" if rng else what

    def as_dict(self) -> dict:
        return {"name": self.name, "field": self.field, "type": self.kind, "default": self.default,
                "min": self.minimum, "max": self.maximum, "metavar": self.metavar, "choices": self.choices,
                "help": self.help, "range": self.range_text(), "auto_only": self.auto_only}

    def __repr__(self) -> str:
        return f"QueueFlag({self.name!r}, {self.kind!r})"


#: N of ``dask=local:N`` (worker processes on this machine) at most.
DASK_LOCAL_MAX = 128

QUEUE_FLAG_TABLE: tuple[QueueFlag, ...] = (
    QueueFlag("gpus", "text", None, None, None, "IDS|auto|auto:IDS",
              "the GPUs it serves: IDS (0 or 0,1) starts runs pinned to them, and unpinned runs on them; "
              "auto (or auto:0,2) gives each run a free GPU; unset: only runs without GPUs",
              choices=("auto",)),
    QueueFlag("wait-for-running", "yes-no", False, None, None, "yes|no",
              "start nothing while a run other than its own is running", choices=("yes", "no")),
    QueueFlag("run-once", "yes-no", False, None, None, "yes|no",
              "start every staged run it serves, wait for the last one, then stop", choices=("yes", "no")),
    QueueFlag("poll-interval", "seconds", 10, 0.1, 86400, "SECONDS",
              "how long a change it is not told of (a run Guild staged) may go unseen"),
    QueueFlag("retries", "count", 0, 0, 100, "N", "stage a run it started that failed again, up to N times"),
    QueueFlag("max-running", "count", None, 1, 10000, "N",
              "runs it keeps going at once (default 1; with gpus=auto per-gpu times the GPUs; "
              "a Dask queue: the cluster's worker threads)"),
    QueueFlag("per-gpu", "count", 1, 1, 64, "K", "runs on each GPU at once (gpus=auto)", auto_only=True),
    QueueFlag("min-free-memory", "size", None, 0, TIB, "SIZE",
              "start a run on a GPU only while it has this much memory free (gpus=auto)", auto_only=True),
    QueueFlag("max-util", "percent", None, 0, 100, "PERCENT",
              "start a run on a GPU only while it is at most this busy (gpus=auto)", auto_only=True),
    QueueFlag("dask", "text", None, 1, DASK_LOCAL_MAX, "local[:N]|tcp://HOST:PORT",
              f"run them on a Dask cluster: local:N an embedded one of N worker processes on 127.0.0.1 "
              f"(N from 1 to {DASK_LOCAL_MAX}, default the CPU count), or an existing scheduler's address",
              choices=("local",)),
)

BY_NAME = {f.name: f for f in QUEUE_FLAG_TABLE}
QUEUE_FLAGS = tuple(f.name for f in QUEUE_FLAG_TABLE)
#: Flags that apply to a ``gpus=auto`` queue only.
GPU_AUTO_ONLY = tuple(f.name for f in QUEUE_FLAG_TABLE if f.auto_only)


def _size_text(n: int) -> str:
    for unit, size in (("TiB", TIB), ("GiB", 2**30), ("MiB", 2**20)):
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def bad_value(flag: QueueFlag, value) -> BadInput:
    return BadInput(f"bad value for {flag.name}: {value!r} (expected {flag.expected()})")


def check_number(flag: QueueFlag, value, number):
    """``number`` (parsed from ``value``) if within the flag's bounds, else
    the one-line ``BadInput``. NaN is never within them."""
    if not (flag.minimum <= number <= flag.maximum):
        raise bad_value(flag, value)
    return number


def queue_flag_lines(width: int = 100) -> list[str]:
    """Each flag as ``NAME=METAVAR`` and its help, range and default, in
    lines of at most ``width`` characters: the help of ``queue``."""
    import textwrap

    out = []
    for f in QUEUE_FLAG_TABLE:
        notes = []
        if f.kind not in ("text", "yes-no") and f.range_text():
            notes.append(f.range_text())
        if f.default not in (None, False):
            notes.append(f"default {f.default}")
        text = f.help + (f" ({'; '.join(notes)})" if notes else "")
        out.append(f"  {f.name}={f.metavar}")
        out += textwrap.wrap(text, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return out


def queue_flag_table() -> list[dict]:
    """The table as plain data: what a form that starts a queue offers
    (``{"name", "field", "type", "default", "min", "max", "metavar",
    "choices", "help", "range", "auto_only"}`` per flag, in order)."""
    return [f.as_dict() for f in QUEUE_FLAG_TABLE]


def queue_form() -> dict:
    """What a viewer's "start a queue" form offers and where it sends it:
    ``{"fields": queue_flag_table(), "hosts": [...], "path": "queues",
    "method": "POST"}`` (the view model's ``queue_form``). The form POSTs
    ``{field: value, ..., "host": host}`` to ``/guild/api/queues``; values
    may be typed as text (``"20GiB"``, ``"yes"``): the server checks each as
    the table declares it and answers 400 with one line past a bound."""
    return {"fields": queue_flag_table(), "hosts": ["server", "detached"], "path": "queues", "method": "POST"}
