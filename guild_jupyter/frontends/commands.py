"""The verbs, declared once: name, help and arguments.

The command line (:mod:`.cli`), the magics (:mod:`.magics`), their help
(``guild-jupyter -h``, ``%guild?``, ``%guild run -h``) and tab completion
(:mod:`.completion`) are all generated from ``VERBS``. What differs between
the front ends is data here too: an argument or verb names the front ends
that take it (``fronts``) and says why the others do not (``why``).

A front end is ``CLI`` (``guild-jupyter``), ``LINE`` (``%guild``) or
``CELL`` (``%%guild run``: the cell body is the script).
"""

from __future__ import annotations

import argparse

from ..views import STATUSES

__all__ = [
    "CLI", "LINE", "CELL", "RUN", "SCRIPT", "FLAG", "QUEUE_FLAG", "PATH", "QUEUE_FLAGS", "QUEUE_ACTIONS",
    "Arg", "Verb", "VERBS", "STORE", "UsageProblem", "HelpShown", "verbs_for", "find_verb",
    "build_parser", "parse", "take_store", "usage", "help_text", "suggest",
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

#: Guild's queue flags (``guild run queue``), as ``%guild queue`` takes them.
QUEUE_FLAGS = ("gpus", "wait-for-running", "run-once", "poll-interval", "retries",
               "max-running", "per-gpu", "min-free-memory", "max-util", "dask")
#: What ``queue ACTION QUEUE`` asks of a running queue (``api.queue_control``).
QUEUE_ACTIONS = ("pause", "resume", "drain")

STOPPABLE = ("running", "pending", "staged")
FINISHED = ("completed", "error", "terminated")
DELETABLE = ("completed", "error", "terminated", "staged")
WITH_OUTPUT = ("running", "completed", "error", "terminated")


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
    type, choices, default, dest, switch, completes, states (RUN: the
    statuses the verb accepts), fronts, why (why the other front ends lack
    it)."""

    _fields = {"names": _REQUIRED, "help": "", "metavar": None, "nargs": None, "type": None, "choices": None,
               "default": None, "dest": None, "switch": False, "completes": None, "states": None,
               "fronts": EVERY, "why": ""}

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
    """A verb: name, help, args, fronts, why, and cell_help (the help of
    ``%%guild VERB``)."""

    _fields = {"name": _REQUIRED, "help": _REQUIRED, "args": _REQUIRED, "fronts": NOT_CELL, "why": "",
               "cell_help": ""}

    def args_for(self, front: str) -> tuple[Arg, ...]:
        return tuple(a for a in (*self.args, STORE) if front in a.fronts)

    def options(self, front: str) -> set[str]:
        """Every option string the front end takes (``-h`` aside)."""
        return {n for a in self.args_for(front) if not a.positional for n in a.names}

    def describe(self, front: str) -> str:
        return self.cell_help if front == CELL and self.cell_help else self.help


STORE = opt("--store", metavar="PATH", completes=PATH,
            help="Guild home holding runs/ (default $GUILD_HOME or ~/.guild)")
JSON = switch("--json", help="print JSON", fronts=frozenset({CLI}),
              why="a notebook gets the object: .to_json() gives the same")
RUN_REFS = "RUN is a run id, a unique id prefix, or an index (range: 2:4) in the latest listing"

VERBS: tuple[Verb, ...] = (
    Verb("run", "Stage or start runs of a Python script (default: start in the background).", (
        pos("script", completes=SCRIPT, fronts=NOT_CELL, why="the cell body is the script",
            help="a Python script, relative to the working directory"),
        pos("flags", "FLAG=VALUE", "*", default=[], completes=FLAG,
            help="flag values; brackets make a sweep (lr=[0.1,0.01])"),
        switch("--stage", "--stage-trials", dest="stage", help="initialize the runs for a queue, do not start them"),
        switch("--foreground", help="wait for each run, its output streaming here"),
        opt("--gpus", metavar="IDS", help="pin the runs to these GPUs, e.g. 0 or 0,1; auto or auto:N: "
                                          "N GPUs chosen by a gpus=auto queue"),
        opt("--retries", metavar="N", type=int,
            help="with --stage: a queue stages a run that failed again, up to N times"),
        opt("--label", metavar="TEXT", help="the runs' label"),
        opt("--max-trials", metavar="N", type=int, help="trials of a random search (default 20)"),
        opt("--random-seed", metavar="S", type=int, help="seed of a random search"),
        switch("--dry-run", help="show the trials, write nothing"),
        opt("--name", metavar="NAME", fronts=frozenset({CELL}), why="a script has its file name",
            help="the operation's name (default: from a leading comment, else cell-<hash of the body>)"),
    ), fronts=EVERY, cell_help="Stage or start runs of this cell's body as a script."),
    Verb("queue", "Start a queue that starts staged runs one at a time (in a notebook: a thread of the kernel; "
                  "on the command line: this process); queue pause|resume|drain QUEUE controls a running one.", (
        pos("flags", "FLAG=VALUE", "*", default=[], completes=QUEUE_FLAG,
            help="gpus=IDS|auto|auto:IDS wait-for-running=yes|no run-once=yes|no poll-interval=SECONDS retries=N "
                 "max-running=N per-gpu=K min-free-memory=SIZE max-util=PERCENT "
                 "dask=tcp://HOST:PORT|local[:N] (run them on a Dask cluster); "
                 "or pause|resume|drain QUEUE: a running queue starts nothing (pause), starts again "
                 "(resume), or starts nothing and stops once its runs have ended (drain)"),
        switch("--background", help="a detached process that outlives this one"),
    )),
    Verb("queues", "List queues.", (
        switch("--all", help="include finished queues"),
        JSON,
    )),
    Verb("runs", "List runs, newest first.", (
        *(switch(f"--{s}", help=f"only {s} runs") for s in STATUSES),
        opt("-n", metavar="N", type=int, dest="limit", help="at most N runs"),
        opt("--op", metavar="NAME", help="only runs whose op name contains NAME"),
        opt("--label", metavar="TEXT", help="only runs whose label contains TEXT"),
        opt("--scalar", metavar="NAME", help="the scalar shown per run (default loss, else its first)"),
        switch("-a", "--all", fronts=frozenset({LINE}), why="a terminal shows every run",
               help="show every run (default: the first 20)"),
        JSON,
    )),
    Verb("stop", "Stop running runs; a staged run is removed from the queue.", (
        pos("runs", "RUN", "*", default=[], completes=RUN, states=STOPPABLE),
        switch("--all", help="every running run and queue"),
        switch("--queues", help="every queue"),
        switch("--no-wait", help="return without waiting for the runs to end"),
    )),
    Verb("unstage", "Remove staged runs from the queue.", (
        pos("runs", "RUN", "+", completes=RUN, states=("staged",)),
    )),
    Verb("delete", "Move runs to Guild's trash.", (
        pos("runs", "RUN", "+", completes=RUN, states=DELETABLE),
    )),
    Verb("output", "A run's output.", (
        pos("run", "RUN", completes=RUN, states=WITH_OUTPUT),
        opt("--tail", metavar="N", type=int, help="only the last N lines"),
        switch("-f", "--follow", help="stream new output until the run ends (a staged run: wait for it to start)"),
    )),
    Verb("wait", "Wait until runs end (completed, error or terminated).", (
        pos("runs", "RUN", "+", completes=RUN, states=STOPPABLE),
        opt("--timeout", metavar="SECONDS", type=float, help="give up after this long (default: no limit)"),
    )),
    Verb("restart", "Run a finished run again in place (same id), like guild run --restart.", (
        pos("run", "RUN", completes=RUN, states=FINISHED),
        switch("--stage", help="stage it for a queue instead of starting it now"),
    )),
    Verb("restage", "Stage a copy of a run (its code, flags, pinned GPUs) with edited flags.", (
        pos("run", "RUN", completes=RUN),
        pos("flags", "FLAG=VALUE", "*", default=[], completes=FLAG, help="flags to change"),
    )),
    Verb("compare", "Flags and last scalar values per run, the best run marked (only the flags that differ).", (
        pos("runs", "RUN", "*", default=[], completes=RUN),
        opt("--op", metavar="NAME", help="only runs whose op name contains NAME"),
        opt("--label", metavar="TEXT", help="only runs whose label contains TEXT"),
        opt("--status", metavar="LIST", help="only runs with these statuses (comma-separated)"),
        opt("--sort", metavar="KEY", help="sort by a flag or scalar; -KEY descending, =NAME a flag named like "
                                          "a scalar"),
        opt("--scalar", metavar="NAME", help="the scalar that picks the best run (default loss, else the first)"),
        switch("--all-flags", help="every flag a column, not only those that differ"),
        JSON,
    )),
    Verb("plot", "One scalar of runs against step, one line per run (matplotlib).", (
        pos("runs", "RUN", "*", default=[], completes=RUN),
        opt("--scalar", metavar="NAME", default="loss", help="the scalar to plot (default loss)"),
        opt("--op", metavar="NAME", help="only runs whose op name contains NAME"),
        opt("--output", metavar="FILE", completes=PATH,
            help="save the figure to FILE (.png, .svg, .pdf); required on the command line"),
    )),
    Verb("panel", "A live panel of queues, runs and GPUs.", (
        opt("--refresh", metavar="SECONDS", type=float, default=1.0, help="seconds between refreshes (0: never)"),
    ), fronts=frozenset({LINE}), why="a panel is a notebook widget (the server's /guild page shows it too)"),
    Verb("autoload", "Load %guild in every IPython kernel (a startup file), or stop doing so.", (
        pos("state", choices=("on", "off", "status")),
        opt("--profile", metavar="NAME", default="default", help="IPython profile (default: default)"),
    ), fronts=frozenset({CLI}), why="it configures IPython from outside it"),
)

_BY_NAME = {v.name: v for v in VERBS}


def verbs_for(front: str) -> list[Verb]:
    return [v for v in VERBS if front in v.fronts]


def find_verb(name: str, front: str, prog: str) -> Verb:
    """The verb, or a ``UsageProblem`` that names the close ones."""
    if name.startswith("-"):  # an option before the subcommand: only --store (and -h) go there
        raise UsageProblem(f"unrecognized arguments: {name}{suggest(name, ['--store', '--help'])}", prog)
    verb = _BY_NAME.get(name)
    if verb is not None and front in verb.fronts:
        return verb
    names = [v.name for v in verbs_for(front)]
    if verb is not None:
        raise UsageProblem(f"{name!r} is not a subcommand here: {verb.why}", prog)
    raise UsageProblem(f"unknown subcommand {name!r}{suggest(name, names)}; expected one of: {', '.join(names)}",
                       prog)


# -- errors -------------------------------------------------------------------------------------


class UsageProblem(Exception):
    """The command line is wrong: a one-line message; ``prog`` names what was
    being parsed (``%guild run``), for front ends that show it."""

    def __init__(self, message: str, prog: str = ""):
        super().__init__(message)
        self.prog = prog


class HelpShown(Exception):
    """``-h`` printed the help: there is nothing more to do."""


def suggest(word: str, choices) -> str:
    """`` (did you mean 'runs'?)`` when a choice is close to ``word``."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- argparse --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageProblem(message, self.prog)

    def exit(self, status=0, message=None):
        if status:
            raise UsageProblem((message or "error").strip(), self.prog)
        raise HelpShown()


def build_parser(verb: Verb, front: str, prog: str) -> argparse.ArgumentParser:
    """The verb's parser for one front end."""
    p = _Parser(prog=prog, description=verb.describe(front), allow_abbrev=False,
                epilog=RUN_REFS + "." if any(a.completes == RUN for a in verb.args) else None)
    for a in verb.args_for(front):
        kw: dict = {"help": a.help or None}
        if a.switch:
            kw["action"] = "store_true"
        else:
            kw.update(metavar=a.metavar, type=a.type, choices=a.choices, default=a.default)
            if a.nargs is not None:
                kw["nargs"] = a.nargs
        if a.dest is not None and not a.positional:
            kw["dest"] = a.dest
        p.add_argument(*a.names, **kw)
    # argparse %-formats a given usage (parse_intermixed_args sets one), and a
    # magic's prog starts with '%'.
    p.usage = p.format_usage()[len("usage: "):].strip().replace("%", "%%")
    return p


def parse(parser: argparse.ArgumentParser, verb: Verb, front: str, words) -> argparse.Namespace:
    """Options and ``NAME=VALUE`` assignments mixed in any order; an unknown
    option names the close one, or says why this front end lacks it. An
    option's value may start with a dash (``--sort -loss``)."""
    args, extras = parser.parse_known_intermixed_args(_dash_values(parser, list(words)))
    if extras:
        raise UsageProblem(f"unrecognized arguments: {' '.join(extras)}{_hint(verb, front, extras)}", parser.prog)
    return args


def _dash_values(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """``--sort -loss`` as ``--sort=-loss``: argparse takes a word starting
    with a dash for an option, unless it is joined to the option's name."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        action = parser._option_string_actions.get(w)
        if (action is not None and action.nargs is None and action.option_strings[0].startswith("--")
                and i + 1 < len(words) and words[i + 1].startswith("-") and len(words[i + 1]) > 1
                and words[i + 1].partition("=")[0] not in parser._option_string_actions):
            out.append(f"{w}={words[i + 1]}")
            i += 2
            continue
        out.append(w)
        i += 1
    return out


def _hint(verb: Verb, front: str, extras) -> str:
    for word in extras:
        if not word.startswith("-"):
            continue
        name = word.partition("=")[0]
        elsewhere = [a for a in verb.args if name in a.names and front not in a.fronts]
        if elsewhere:
            return f" ({name}: {elsewhere[0].why})"
        hint = suggest(name, verb.options(front) | {"-h", "--help"})
        if hint:
            return hint
    return ""


def queue_action(args, prog: str):
    """``(action, queue)`` when ``queue``'s first word is an action
    (``queue pause QUEUE``), else None (``queue gpus=0`` starts a queue)."""
    words = list(args.flags)
    if not words or words[0] not in QUEUE_ACTIONS:
        return None
    action = words[0]
    if len(words) != 2:
        raise UsageProblem(f"{action} takes one QUEUE (its id or id prefix)"
                           + (f", not {' '.join(words[1:])!r}" if len(words) > 2 else ""), prog)
    if args.background:
        raise UsageProblem(f"--background starts a queue: it does not go with {action}", prog)
    return action, words[1]


def take_store(words: list[str], prog: str) -> tuple[str | None, list[str]]:
    """``--store PATH`` (or ``--store=PATH``) before the subcommand."""
    store = None
    while words and words[0].startswith("--store"):
        w = words.pop(0)
        if w.startswith("--store="):
            store = w[len("--store="):]
        elif w == "--store":
            if not words:
                raise UsageProblem("--store needs a PATH", prog)
            store = words.pop(0)
        else:
            raise UsageProblem(f"unknown option {w!r}{suggest(w, ['--store'])}", prog)
    return store, words


# -- help ------------------------------------------------------------------------------------------------


def usage(verb: Verb, front: str, prog: str) -> str:
    """``PROG VERB SCRIPT [FLAG=VALUE ...] [--stage] ...`` (``--store`` aside)."""
    parts = [prog, verb.name]
    for a in verb.args_for(front):
        if a is STORE:
            continue
        if a.positional:
            m = a.metavar or ("|".join(a.choices) if a.choices else a.names[0].upper())
            parts.append({"?": f"[{m}]", "*": f"[{m} ...]", "+": f"{m} [{m} ...]"}.get(a.nargs, m))
        else:
            name = "|".join(a.names) if len(a.names) > 1 and len(a.names[0]) == 2 else a.names[0]
            parts.append(f"[{name}]" if a.switch else f"[{name} {a.metavar}]")
    return " ".join(parts)


def help_text(front: str, prog: str) -> str:
    """The full help of a front end: every verb's usage and help."""
    lines = []
    for verb in verbs_for(front):
        lines.append(usage(verb, front, prog))
        if front == LINE and CELL in verb.fronts:
            lines.append(usage(verb, CELL, "%" + prog) + "   (the cell body is the script)")
        lines.append(f"    {verb.help}")
    lines += [
        "",
        f"Every subcommand takes --store PATH (a Guild home; default $GUILD_HOME or ~/.guild), also as "
        f"{prog} --store PATH SUBCOMMAND ... .",
        f"{RUN_REFS}. Options and FLAG=VALUE assignments mix in any order.",
        f"{prog} SUBCOMMAND -h shows a subcommand's options.",
    ]
    return "\n".join(lines)
