"""The verbs, declared once: name, help and arguments.

The command line (:mod:`.cli`), the magics (:mod:`.magics`), their help
(``guild-jupyter -h``, ``%guild?``, ``%guild run -h``) and tab completion
(:mod:`.completion`) are all generated from ``VERBS``. What differs between
the front ends is data here too: an argument or verb names the front ends
that take it (``fronts``) and says why the others do not (``why``).

The records the table is written in (``Arg``, ``Verb``, ``pos``/``opt``/
``switch``) and the front-end names (``CLI``, ``LINE``, ``CELL``) live in
:mod:`.argspec`; they are re-exported here, where the front ends import them.
"""

from __future__ import annotations

import argparse

from .. import api
from ..views import STATUSES
from .argspec import (CELL, CLI, EVERY, FLAG, LINE, NOT_CELL, PATH, QUEUE_FLAG, RUN, SCRIPT, STORE, SWEEP, Arg,
                      Verb, opt, pos, switch)

__all__ = [
    "CLI", "LINE", "CELL", "RUN", "SCRIPT", "FLAG", "QUEUE_FLAG", "PATH", "QUEUE_FLAGS", "QUEUE_ACTIONS",
    "Arg", "Verb", "VERBS", "STORE", "UsageProblem", "HelpShown", "verbs_for", "find_verb",
    "build_parser", "parse", "take_store", "usage", "help_text", "suggest",
]

#: The queue flags (``api.QUEUE_FLAGS``: the one table of them, with kinds,
#: defaults, bounds and help), as ``%guild queue`` takes them.
QUEUE_FLAGS = api.QUEUE_FLAGS
#: What ``queue ACTION QUEUE`` asks of a running queue (``api.queue_control``).
QUEUE_ACTIONS = ("pause", "resume", "drain")

STOPPABLE = ("running", "pending", "staged")
FINISHED = ("completed", "error", "terminated")
DELETABLE = ("completed", "error", "terminated", "staged")
WITH_OUTPUT = ("running", "completed", "error", "terminated")


JSON = switch("--json", help="print JSON", fronts=frozenset({CLI}),
              why="a notebook gets the object: .to_json() gives the same")
RUN_REFS = "RUN is a run id, a unique id prefix, or an index (range: 2:4) in the latest listing"
WAITING = ("staged", "pending")  # what prioritize takes: staged runs and runs held for their dependencies

#: The options of a staging that order runs or make them wait (SPEC 12:
#: ``api.pipelines``), shared by run, restart and restage.
PRIORITY = opt("--priority", metavar="N", type=int,
               help="our queues start the highest priority first, then the oldest (from -1000 to 1000, default 0; "
                    "Guild's own queue ignores it)")
AFTER = opt("--after", metavar="RUN|SWEEP", repeat=True, default=[], completes=RUN,
            help="wait until these runs have completed (a run, a listing range like 1:6, or a sweep id like "
                 "s3f9a2c1d; repeatable); if one fails or is deleted, the run is recorded error and never starts")
AFTER_ANY = opt("--after-any", metavar="RUN|SWEEP", repeat=True, default=[], completes=RUN,
                help="wait until these runs have ended, whatever the outcome (repeatable)")

VERBS: tuple[Verb, ...] = (
    Verb("run", "Stage or start runs of a Python script or notebook (default: start in the background).", (
        pos("script", completes=SCRIPT, fronts=NOT_CELL, why="the cell body is the script",
            help="a Python script or notebook (.ipynb), relative to the working directory"),
        pos("flags", "FLAG=VALUE", "*", default=[], completes=FLAG,
            help="flag values; brackets make a sweep (lr=[0.1,0.01])"),
        switch("--stage", "--stage-trials", dest="stage", help="initialize the runs for a queue, do not start them"),
        switch("--foreground", help="wait for each run, its output streaming here"),
        opt("--gpus", metavar="IDS", help="pin the runs to these GPUs, e.g. 0 or 0,1; auto or auto:N: "
                                          "N GPUs chosen by a gpus=auto queue"),
        opt("--retries", metavar="N", type=int,
            help="with --stage: a queue stages a run that failed again, up to N times"),
        PRIORITY, AFTER, AFTER_ANY,
        opt("--label", metavar="TEXT", help="the runs' label"),
        opt("--max-trials", metavar="N", type=int, help="trials of a random search (default 20)"),
        opt("--random-seed", metavar="S", type=int, help="seed of a random search"),
        switch("--dry-run", help="show the trials, write nothing"),
        opt("--name", metavar="NAME", fronts=frozenset({CELL}), why="a script has its file name",
            help="the operation's name (default: from a leading comment, else cell-<hash of the body>)"),
    ), fronts=EVERY, cell_help="Stage or start runs of this cell's body as a script.", api="run"),
    Verb("queue", "Start a queue that starts staged runs one at a time (in a notebook: a thread of the kernel; "
                  "on the command line: this process); queue pause|resume|drain QUEUE controls a running one.", (
        pos("flags", "FLAG=VALUE", "*", default=[], completes=QUEUE_FLAG,
            help="queue flags (listed below); or pause|resume|drain QUEUE: a running queue starts nothing "
                 "(pause), starts again (resume), or starts nothing and stops once its runs have ended (drain)"),
        switch("--background", help="a detached process that outlives this one"),
    ), epilog=lambda: "queue flags (NAME=VALUE; a number past its range is refused):\n"
                      + "\n".join(api.queue_flag_lines()), api="queue"),
    Verb("queues", "List queues.", (
        switch("--all", help="include finished queues"),
        JSON,
    ), api="queues"),
    Verb("runs", "List runs, newest first.", (
        *(switch(f"--{s}", dest="status", stores=s, help=f"only {s} runs") for s in STATUSES),
        opt("-n", metavar="N", type=int, dest="limit", help="at most N runs"),
        opt("--op", metavar="NAME", help="only runs whose op name contains NAME"),
        opt("--label", metavar="TEXT", help="only runs whose label contains TEXT"),
        opt("--sweep", metavar="SWEEP", completes=SWEEP, help="only the runs of this sweep (its id: s and 8 hex digits)"),
        opt("--scalar", metavar="NAME", help="the scalar shown per run (default loss, else its first)"),
        switch("-a", "--all", fronts=frozenset({LINE}), why="a terminal shows every run",
               help="show every run (default: the first 20)"),
        JSON,
    ), api="runs"),
    Verb("stop", "Stop running runs; a staged run is removed from the queue.", (
        pos("runs", "RUN", "*", default=[], completes=RUN, states=STOPPABLE),
        switch("--all", help="every running run and queue"),
        switch("--queues", help="every queue"),
        switch("--no-wait", dest="wait", stores=False, help="return without waiting for the runs to end"),
    ), api="stop"),
    Verb("unstage", "Remove staged runs from the queue.", (
        pos("runs", "RUN", "+", completes=RUN, states=("staged",)),
    ), api="unstage"),
    Verb("delete", "Move runs to Guild's trash.", (
        pos("runs", "RUN", "+", completes=RUN, states=DELETABLE),
    ), api="delete"),
    Verb("output", "A run's output.", (
        pos("run", "RUN", completes=RUN, states=WITH_OUTPUT),
        opt("--tail", metavar="N", type=int, help="only the last N lines"),
        switch("-f", "--follow", help="stream new output until the run ends (a staged run: wait for it to start)"),
    ), api="output"),
    Verb("wait", "Wait until runs end (completed, error or terminated); a sweep id waits for the sweep's runs, "
                 "and the retries staged meanwhile.", (
        pos("runs", "RUN", "+", completes=RUN, states=STOPPABLE),
        opt("--timeout", metavar="SECONDS", type=float, help="give up after this long (default: no limit)"),
    ), api="wait"),
    Verb("restart", "Run a finished run again in place (same id), like guild run --restart.", (
        pos("run", "RUN", completes=RUN, states=FINISHED),
        switch("--stage", help="stage it for a queue instead of starting it now"),
        PRIORITY, AFTER, AFTER_ANY,
    ), api="restart"),
    Verb("restage", "Stage a copy of a run (its code, flags, pinned GPUs, priority) with edited flags.", (
        pos("run", "RUN", completes=RUN),
        pos("flags", "FLAG=VALUE", "*", default=[], completes=FLAG, help="flags to change"),
        PRIORITY, AFTER, AFTER_ANY,
    ), api="restage"),
    Verb("prioritize", "Set the priority of staged runs (and of runs waiting for their dependencies): our queues "
                       "start the highest priority first, then the oldest.", (
        pos("runs", "RUN", "+", completes=RUN, states=WAITING),
        pos("priority", "N", type=int, help="the new priority, from -1000 to 1000 (0: the default)"),
    ), api="prioritize"),
    Verb("compare", "Flags and last scalar values per run, the best run of each op marked (only the flags that "
                    "differ).", (
        pos("runs", "RUN", "*", default=[], completes=RUN),
        opt("--op", metavar="NAME", help="only runs whose op name contains NAME"),
        opt("--label", metavar="TEXT", help="only runs whose label contains TEXT (as guild compare)"),
        opt("--sweep", metavar="SWEEP", completes=SWEEP, help="only the runs of this sweep"),
        opt("--status", metavar="LIST", help="only runs with these statuses (comma-separated)"),
        opt("--sort", metavar="KEY", help="sort by a flag or scalar; -KEY descending, =NAME a flag named like "
                                          "a scalar"),
        opt("--scalar", metavar="NAME", help="the scalar that picks the best run (default loss, else the first)"),
        switch("--all-flags", help="every flag a column, not only those that differ"),
        JSON,
    ), api="compare"),
    Verb("plot", "One scalar of runs against step, time or another scalar, one line per run (matplotlib).", (
        pos("runs", "RUN", "*", default=[], completes=RUN),
        opt("--scalar", metavar="NAME", default="loss", help="the scalar to plot (default loss)"),
        opt("--x", metavar="AXIS", default="step",
            help="the x axis: step (default), time (seconds since the run started) or a scalar logged alongside "
                 "(e.g. epoch)"),
        opt("--op", metavar="NAME", help="only runs whose op name contains NAME"),
        opt("--sweep", metavar="SWEEP", completes=SWEEP, help="only the runs of this sweep"),
        opt("--output", metavar="FILE", completes=PATH,
            help="save the figure to FILE (.png, .svg, .pdf); required on the command line"),
    ), api="plot"),
    Verb("sweep", "A sweep as a unit: its trials (the varying flags, status, progress, the main scalar now and "
                  "best), live in JupyterLab.", (
        pos("sweep", "SWEEP", "?", completes=SWEEP, help="a sweep id (default: the newest run call's sweep)"),
        opt("--scalar", metavar="NAME", help="the main scalar (default loss, else the first logged)"),
        JSON,
    ), api="sweep_view"),
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
    more = verb.epilog() if callable(verb.epilog) else verb.epilog  # built when asked for
    epilog = "\n\n".join(t for t in (more, RUN_REFS + "." if any(a.completes == RUN for a in verb.args)
                                      else "") if t)
    p = _Parser(prog=prog, description=verb.describe(front), allow_abbrev=False, epilog=epilog or None,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    for a in verb.args_for(front):
        kw: dict = {"help": a.help or None}
        if a.switch and a.stores in (True, False):
            kw["action"] = "store_true" if a.stores else "store_false"
        elif a.switch:
            kw.update(action="append_const", const=a.stores)
        else:
            kw.update(metavar=a.metavar, type=a.type, choices=a.choices, default=a.default)
            if a.nargs is not None:
                kw["nargs"] = a.nargs
            if a.repeat:
                kw["action"] = "append"
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
            parts.append(f"[{name}]" if a.switch else f"[{name} {a.metavar}{' ...' if a.repeat else ''}]")
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
