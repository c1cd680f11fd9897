"""Argument checks for the public API: a wrong type is the caller's mistake.

``run(None)``, ``run("t.py", flags="lr=1")``, ``runs(limit="x")`` or
``stop(3.5)`` would otherwise fail deep inside with a ``TypeError`` or
``AttributeError``. Each checker raises ``BadInput`` with one line naming
the argument, what it takes and what it got, so every front end reports it
like any other bad input (a ``UsageError``, exit status 2, HTTP 400).
"""

from __future__ import annotations

import os

from .errors import BadInput
from .store.run import Run
from .store.store import Store


def _got(value) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}" if value is not None else "None"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def boolean(name: str, value) -> None:
    if not isinstance(value, bool):
        raise BadInput(f"{name} must be True or False, not {_got(value)}")


def text(name: str, value, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string, not {_got(value)}")


def path(name: str, value, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise BadInput(f"{name} must be a path, not {_got(value)}")
    if "\x00" in value:
        raise BadInput(f"{name} cannot contain NUL characters")


def script(value, op) -> None:
    """The script of ``run``: a path, unless ``op`` (a ScriptOp) says what runs."""
    if op is not None:
        from .opdef import ScriptOp  # lazy: opdef loads the flag engine: only a call that passes op= needs it

        if not isinstance(op, ScriptOp):
            raise BadInput(f"op must be a ScriptOp, not {_got(op)}")
        return
    path("script (a Python file or notebook)", value, optional=False)


def count(name: str, value, minimum: int | None = None) -> None:
    """None or a whole number (not a bool), at least ``minimum``."""
    if value is None:
        return
    if not _is_int(value):
        raise BadInput(f"{name} must be a whole number, not {_got(value)}")
    if minimum is not None and value < minimum:
        raise BadInput(f"{name} must be at least {minimum}, not {value}")


def seconds(name: str, value) -> None:
    if value is None:
        return
    if not _is_number(value) or not value >= 0:
        raise BadInput(f"{name} must be a number of seconds >= 0, not {_got(value)}")


def store(value) -> None:
    if value is None or isinstance(value, Store):
        return
    path("store (a Guild home)", value)


def assignments(values) -> None:
    for a in values:
        if not isinstance(a, str):
            raise BadInput(f"flag assignments must be NAME=VALUE strings, not {_got(a)}")


def flags(value) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise BadInput(f"flags must be a dict of flag values like {{'lr': 0.1}}, not {_got(value)}")
    for k in value:
        if not isinstance(k, str):
            raise BadInput(f"flag names must be strings, not {_got(k)}")


def gpus(value) -> None:
    """None, ``"0,1"``, ``0`` or ``[0, 1]`` (the spec itself is checked later)."""
    if value is None or isinstance(value, str) or _is_int(value):
        return
    if isinstance(value, (list, tuple)) and all(_is_int(g) or isinstance(g, str) for g in value):
        return
    raise BadInput(f"gpus must be a GPU id, a list of ids or a string like '0,1', not {_got(value)}")


def yes_no(name: str, value) -> None:
    """A queue flag that reads yes/no: None, a bool or its text."""
    if value is None or isinstance(value, (bool, str)):
        return
    raise BadInput(f"{name} must be True, False, 'yes' or 'no', not {_got(value)}")


def poll_interval(value) -> None:
    if value is None or isinstance(value, str) or _is_number(value):
        return
    raise BadInput(f"poll_interval must be a number of seconds, not {_got(value)}")


def stream(value) -> None:
    if value is not None and not callable(getattr(value, "write", None)):
        raise BadInput(f"stream must have a write() method, not {_got(value)}")


def statuses(value) -> None:
    """None, one status name or a collection of them (names checked later)."""
    if value is None or isinstance(value, str):
        return
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(s, str) for s in value):
        return
    raise BadInput(f"status must be a status name or a list of them, not {_got(value)}")


def run_ref(value) -> None:
    if isinstance(value, (str, Run)) or _is_int(value):
        return
    hint = " (pass several runs as separate arguments: f(*runs))" if isinstance(value, (list, tuple)) else ""
    raise BadInput(f"a run is an id, id prefix, listing index or Run, not {_got(value)}{hint}")


def run_refs(values, verb: str | None = None) -> None:
    """Each of ``values`` is a run reference; with ``verb``, at least one is given."""
    if verb is not None and not values:
        raise BadInput(f"{verb} needs a run (id, id prefix or index)")
    for v in values:
        run_ref(v)


def listing(value) -> None:
    if value is not None and not isinstance(value, list):
        raise BadInput(f"listing must be a run list, not {_got(value)}")


def priority(value, optional: bool = True) -> None:
    """A run's priority: a whole number in the documented range
    (``store.records.PRIORITY_RANGE``: -1000 to 1000; higher starts first)."""
    from .store.records import PRIORITY_RANGE  # lazy: records (procs) load only when a priority is given

    if value is None and optional:
        return
    lo, hi = PRIORITY_RANGE
    if not _is_int(value) or not lo <= value <= hi:
        raise BadInput(f"priority must be a whole number from {lo} to {hi}, not {_got(value) if not _is_int(value) else value}")
