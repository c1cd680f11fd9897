"""Building many long-lived objects without the cycle collector walking
them again and again.

CPython's cycle collector runs every few hundred container allocations and,
from time to time, walks every tracked object of the process. A listing of
100,000 runs makes millions of small dicts, lists and tuples (the listing
file's records, each run's decoded values, the scalars file, the rows),
none of them in a cycle: with the collector on, ``runs --json`` of 100,000
runs spent more than half its time collecting nothing (22 s against 10.5 s
with it off). Within ``paused()`` the collector is off; it is on again when
the outermost pause ends, if it was on before (other threads then pay one
ordinary collection, no more).
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_depth = 0
_was_on = False


class paused:
    """``with paused(): ...`` — the cycle collector off meanwhile (nests,
    and several threads may hold it: the last one out restores it)."""

    __slots__ = ()

    def __enter__(self):
        global _depth, _was_on
        with _lock:
            if _depth == 0:
                _was_on = gc.isenabled()
                gc.disable()
            _depth += 1
        return self

    def __exit__(self, *exc):
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_on:
                gc.enable()
        return False
