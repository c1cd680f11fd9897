"""How a verb and its arguments are declared: the records ``VERBS`` (in
:mod:`.commands`) is written in, and the names of the front ends.

Kept apart from the verb table so that the table reads as data, and so
that the record machinery (a frozen record without the dataclasses
module, which costs ~7 ms of every command's start-up) has one home.

A front end is ``CLI`` (``guild-jupyter``), ``LINE`` (``%guild``) or
``CELL`` (``%%guild run``: the cell body is the script). An argument or
verb names the front ends that take it (``fronts``) and says why the
others do not (``why``).
"""

from __future__ import annotations

from ..api.conflicts import CONFLICTS, option_name

__all__ = [
    "CLI", "LINE", "CELL", "EVERY", "NOT_CELL", "RUN", "SCRIPT", "FLAG", "QUEUE_FLAG", "PATH", "SWEEP",
    "Arg", "Verb", "STORE", "pos", "opt", "switch",
]

CLI, LINE, CELL = "cli", "line", "cell"
EVERY = frozenset({CLI, LINE, CELL})
NOT_CELL = frozenset({CLI, LINE})

# What completes where an argument goes.
RUN = "RUN"  # a run id, id prefix or listing index (of runs in the argument's ``states``)
SCRIPT = "SCRIPT"  # a Python script
FLAG = "FLAG=VALUE"  # a flag of the script (or of the cell) as ``name=``
QUEUE_FLAG = "QUEUE_FLAG"  # a queue flag as ``name=``
PATH = "PATH"  # a file or directory (IPython's file completion)
SWEEP = "SWEEP"  # a sweep id (the newest sweeps first)


_REQUIRED = object()


class _Record:
    """A frozen record with keyword defaults, like a frozen dataclass (the
    dataclasses module costs ~7 ms of every command's start-up)."""

    _fields: dict = {}

    def __init__(self, *args, **kw):
        values = dict(self._fields)
        for name, value in zip(values, args):
            values[name] = value
        for name, value in kw.items():
            if name not in values:
                raise TypeError(f"{type(self).__name__}() got an unexpected argument {name!r}")
            values[name] = value
        missing = [n for n, v in values.items() if v is _REQUIRED]
        if missing:
            raise TypeError(f"{type(self).__name__}() missing {', '.join(missing)}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _values(self) -> tuple:
        return tuple(getattr(self, n) for n in self._fields)

    def __eq__(self, other):
        return type(other) is type(self) and other._values() == self._values()

    def __hash__(self):
        return hash(self._values())

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._fields)})"


class Arg(_Record):
    """One argument: a positional (``names[0]`` has no dash), an option that
    takes a value, or a switch (``switch=True``: present or not). Fields:
    names, help, metavar, nargs (positionals: None for one, "?", "*", "+"),
    type, choices, default, dest, switch, stores (what a switch stores in
    ``dest``: True; False for a ``--no-X`` switch of ``X``; any other value
    is added to the list ``dest`` holds, as ``--staged --running`` make
    ``status``), completes, states (RUN: the statuses the verb accepts),
    fronts, why (why the other front ends lack it), repeat (an option given
    once per value, ``--after A --after B``: a list in ``dest``)."""

    _fields = {"names": _REQUIRED, "help": "", "metavar": None, "nargs": None, "type": None, "choices": None,
               "default": None, "dest": None, "switch": False, "stores": True, "completes": None, "states": None,
               "fronts": EVERY, "why": "", "repeat": False}

    @property
    def positional(self) -> bool:
        return not self.names[0].startswith("-")

    @property
    def kind(self) -> str:
        return "positional" if self.positional else "switch" if self.switch else "option"

    @property
    def key(self) -> str:
        """The attribute the parsed namespace holds it in."""
        if self.dest or self.positional:
            return self.dest or self.names[0]
        long = [n for n in self.names if n.startswith("--")]
        return (long or self.names)[0].lstrip("-").replace("-", "_")

    @property
    def required(self) -> bool:
        return self.positional and self.nargs in (None, "+")


def pos(name, metavar=None, nargs=None, **kw) -> Arg:
    return Arg((name,), metavar=metavar, nargs=nargs, **kw)


def opt(*names, metavar, **kw) -> Arg:
    return Arg(tuple(names), metavar=metavar, **kw)


def switch(*names, **kw) -> Arg:
    return Arg(tuple(names), switch=True, **kw)


class Verb(_Record):
    """A verb: name, help, args, fronts, why, cell_help (the help of
    ``%%guild VERB``), epilog (more help, after the options), and api: its
    twin in ``guild_jupyter.api`` (``stop`` -> ``api.stop``), which refuses
    the verb's conflicting options (``conflicts``)."""

    _fields = {"name": _REQUIRED, "help": _REQUIRED, "args": _REQUIRED, "fronts": NOT_CELL, "why": "",
               "cell_help": "", "epilog": "", "api": None}

    @property
    def conflicts(self) -> tuple[tuple[str, ...], ...]:
        """Groups of options of which one at most may be given, as a user
        writes them (``("RUN", "--all", "--queues")``): the api's
        (``api.conflicts``), which refuses them for every front end."""
        return tuple(tuple(option_name(n) for n in group) for group in CONFLICTS.get(self.name, ()))

    def args_for(self, front: str) -> tuple[Arg, ...]:
        return tuple(a for a in (*self.args, STORE) if front in a.fronts)

    def options(self, front: str) -> set[str]:
        """Every option string the front end takes (``-h`` aside)."""
        return {n for a in self.args_for(front) if not a.positional for n in a.names}

    def describe(self, front: str) -> str:
        return self.cell_help if front == CELL and self.cell_help else self.help


#: The argument every verb takes (``Verb.args_for`` adds it).
STORE = opt("--store", metavar="PATH", completes=PATH,
            help="Guild home holding runs/ (default $GUILD_HOME or ~/.guild)")
