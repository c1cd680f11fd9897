"""Options of a verb that cannot be given together, declared once.

Each group names options of one verb of which at most one may be given.
The verb's api function checks its groups (``refuse_conflicts``) before it reads or
writes anything, so the command line, the magics and REST refuse a
conflicting pair with the same one line and nothing changes; the verb
table (``frontends.commands``: ``Verb.conflicts``) shows the same groups to
the front ends. Names are the api's keyword names (``dry_run``); ``runs``
and ``run`` are the runs named, ``action`` a queue's pause|resume|drain.

Pairs that are not here were weighed and are allowed: ``run --stage
--dry-run`` (the trials a staging would make), ``--max-trials`` and
``--random-seed`` with a grid (as Guild: they bound and seed any sweep),
``stop --no-wait`` with anything, ``compare``'s and ``plot``'s filters
(``--sweep`` too) with runs named (they narrow them), ``runs --sweep`` with
the other filters, ``plot --x`` with anything, ``compare --all-flags`` with anything, ``runs -n`` with ``--all`` (``--all`` shows
every row of the ``-n`` runs), ``restart --stage``, ``--after`` with ``--after-any`` (each names its own
runs; the same run by both is refused), ``--after``/``--priority`` with
``--dry-run`` (the references are checked, nothing written), with
``--gpus``, ``--retries``, ``--label`` and a sweep (every trial waits, or
goes first). What one option needs of another (``--retries`` a staging,
``--gpus auto`` a staging, ``--after``, ``--after-any`` and ``--priority``
a staging: ``run --stage``, ``restart --stage``; ``per-gpu`` a
``gpus=auto`` queue) is checked by the verb with its own message.
"""

from __future__ import annotations

from ..errors import BadInput

__all__ = ["CONFLICTS", "refuse_conflicts", "option_name"]

CONFLICTS: dict[str, tuple[tuple[str, ...], ...]] = {
    # --foreground runs the trials here; --stage leaves them to a queue;
    # --dry-run runs nothing: each pair asks for two different things.
    # --after, --after-any and --priority order or hold runs for a queue:
    # runs in the foreground start here and now (they also need --stage).
    "run": (("foreground", "stage"), ("foreground", "dry_run"), ("foreground", "after"), ("foreground", "after_any"),
            ("foreground", "priority")),
    # runs named, every run and queue, every queue: which ones to stop.
    "stop": (("runs", "all", "queues"),),
    # the last N lines now, or everything as it comes.
    "output": (("tail", "follow"),),
    # `queue pause Q` asks a running queue; --background and flags start one.
    "queue": (("action", "background"), ("action", "flags")),
    # with a sort key the best run is the first by it: --scalar would choose nothing.
    "compare": (("sort", "scalar"),),
}

#: How a user names an option that is not ``--NAME``.
_SPOKEN = {"runs": "RUN", "run": "RUN", "action": "pause|resume|drain", "flags": "FLAG=VALUE"}


def option_name(name: str) -> str:
    """``--dry-run`` for ``dry_run``; ``RUN`` for the runs named."""
    return _SPOKEN.get(name) or "--" + name.replace("_", "-")


def given(value) -> bool:
    """Whether an option was given: a true switch, a value, a non-empty list."""
    if value is None or value is False:
        return False
    if isinstance(value, (list, tuple)):
        return bool(value)
    return True


def refuse_conflicts(verb: str, **values) -> None:
    """Raises ``BadInput`` (one line, e.g. ``stop: give RUN, --all or
    --queues, not two of them``) when two options of one of ``verb``'s
    groups are given."""
    for group in CONFLICTS.get(verb, ()):
        present = [n for n in group if n in values and given(values[n])]
        if len(present) > 1:
            names = [option_name(n) for n in group]
            listed = f"{names[0]} or {names[1]}" if len(names) == 2 else ", ".join(names[:-1]) + f" or {names[-1]}"
            raise BadInput(f"{verb}: give {listed}, not {'both' if len(names) == 2 else 'two of them'}")
