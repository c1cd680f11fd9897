"""How values read: flags, times, durations, GPUs, places in line, counts.

Every sentence a front end shows is built from these, so a value reads the
same in a terminal, a notebook, the panel, the ``/guild`` page and the
JupyterLab sidebar. Pure functions of plain values: no files are read.
"""

from __future__ import annotations

import math
import re
import time

from ..gpus.spec import ANY_GPU, gpus_phrase, queue_gpus_phrase
from ..store.flag_labels import flags_label, format_flag_value

__all__ = ["ANY_GPU", "format_flag", "flags_text", "varying_flags", "format_time", "elapsed_text", "gpus_text",
           "gpus_phrase", "queue_gpus_text", "label_text", "jsonable", "format_value", "scalar_text", "ordinal",
           "position_text", "priority_text", "plural", "size_text"]

format_flag = format_flag_value


def flags_text(flags: dict, first=()) -> str:
    """``k=v`` pairs; the names in ``first`` (e.g. the flags that vary in a
    listing) come first, in that order, then the rest in the run's order."""
    keys = [k for k in first if k in flags] + [k for k in flags if k not in first]
    return " ".join(f"{k}={format_flag(flags[k])}" for k in keys)


_MISSING = object()


def varying_flags(flag_dicts) -> list[str]:
    """The flag names whose values differ among ``flag_dicts`` (a name some
    runs lack counts as varying), in the order they first appear. One run:
    nothing varies."""
    dicts = [d for d in flag_dicts if isinstance(d, dict)]
    if len(dicts) < 2:
        return []
    names: list[str] = []
    for d in dicts:
        for k in d:
            if k not in names:
                names.append(k)
    out = []
    rest = dicts[1:]
    for k in names:
        first = dicts[0].get(k, _MISSING)
        kind = type(first)
        for d in rest:  # (a plain loop: a listing of 10,000 runs compares each name 10,000 times)
            v = d.get(k, _MISSING)
            if v != first or type(v) is not kind:
                out.append(k)
                break
    return out


def format_time(us, now: float | None = None, short: bool = False) -> str:
    """A timestamp in µs since the epoch, local time; ``short`` drops the
    date for today's times (panel rows)."""
    if not isinstance(us, int) or isinstance(us, bool):
        return ""
    t = time.localtime(us / 1e6)
    if short:
        today = time.localtime(now if now is not None else time.time())
        if (t.tm_year, t.tm_yday) == (today.tm_year, today.tm_yday):
            return time.strftime("%H:%M:%S", t)
        return time.strftime("%m-%d %H:%M", t)
    return time.strftime("%Y-%m-%d %H:%M:%S", t)


def elapsed_text(seconds) -> str:
    """``42s``, ``3m07s``, ``2h05m``, ``1d03h``; empty for None."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def gpus_text(gpus: str | None) -> str:
    """The GPUs of a run, one phrase everywhere: ``any GPU``, ``GPU 0``,
    ``GPUs 0,1``, ``2 GPUs, chosen by a gpus=auto queue``, ``GPU-8f3c…``."""
    return gpus_phrase(gpus)


def queue_gpus_text(gpus: str | None) -> str:
    """The GPUs a queue serves: ``any GPU`` (unpinned runs only), ``GPU 0``,
    ``every GPU, one chosen per run`` (``gpus=auto``), ``GPUs 0,2, chosen
    per run``."""
    return queue_gpus_phrase(gpus)


def label_text(label: str, flags: dict) -> str:
    """The label worth showing next to the flags: empty when it only repeats
    flag values (Guild's default label is ``k=v`` of the flags)."""
    if not label:
        return ""
    shown = {f"{k}={format_flag(v)}" for k, v in flags.items()}
    if all(word in shown for word in label.split()):
        return ""
    if label == flags_label(flags):  # values with spaces in them
        return ""
    return label


def jsonable(v):
    """Plain JSON values: non-finite floats become strings, unknown objects their str."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return str(v)


def format_value(value) -> str:
    """A scalar value as tables show it (6 significant digits)."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


_COST_WORDS = re.compile(r"(^|[^a-z])(loss|error|err|mse|mae|rmse|nll|perplexity|ppl|wer|cer|regret|"
                         r"time|latency|duration|cost)($|[^a-z])")


def lower_is_better(name: str) -> bool:
    """Whether the best value of a scalar is its lowest: a name with a cost
    word in it (``loss``, ``val_loss``, ``error_rate``, ``train/mse``)."""
    return bool(_COST_WORDS.search(name.lower()))


def scalar_text(scalar: dict | None) -> str:
    """``loss 0.125`` (empty without a scalar)."""
    return f"{scalar['tag']} {format_value(scalar['value'])}" if scalar else ""


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``22nd``."""
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def priority_text(priority) -> str:
    """``priority 5``, ``priority -2``; empty for the default (0)."""
    if not isinstance(priority, int) or isinstance(priority, bool) or priority == 0:
        return ""
    return f"priority {priority}"


def position_text(position: int | None, priority: int = 0) -> str:
    """Where a staged run is in the queues' order (highest priority first,
    then oldest), with its priority when it has one: ``next to start``,
    ``2nd in line``, ``next to start · priority 5``; a run with no place
    (one waiting for its dependencies) reads ``priority 5``; empty for
    neither. The one wording of every view. (A listing's ``[1:...]`` is the
    newest run, never the next to start: this wording keeps the two
    apart.)"""
    where = ""
    if isinstance(position, int) and not isinstance(position, bool) and position >= 1:
        where = "next to start" if position == 1 else f"{ordinal(position)} in line"
    return " · ".join(t for t in (where, priority_text(priority)) if t)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs``, ``0 runs``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def size_text(used, total) -> str:
    """``3.0/80 GiB`` (``512/1024 MiB`` under a GiB); empty unless both are
    byte counts."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (used, total)):
        return ""
    if total >= 2**30:
        t = total / 2**30
        return f"{used / 2**30:.1f}/{t:.0f} GiB" if abs(t - round(t)) < 0.05 else f"{used / 2**30:.1f}/{t:.1f} GiB"
    return f"{used / 2**20:.0f}/{total / 2**20:.0f} MiB"
