"""``guild-jupyter`` / ``python -m guild_jupyter``: the API's verbs in a shell.

Parsers and help come from the verb table (:mod:`.commands`); every verb is
called through :mod:`.calls` (the glue the magics share) and its result
printed as its one text. Every user error prints one line on stderr and
exits with status 2.
"""

from __future__ import annotations

import json
import signal
import sys

from .. import api
from ..errors import GuildJupyterError
from . import calls
from . import commands as C

PROG = "guild-jupyter"

__all__ = ["main", "parse_args", "PROG"]


def parse_args(argv=None):
    """``(verb, args)`` for a command line; options and ``NAME=VALUE``
    assignments mix in any order (``run train.py lr=0.2 --stage epochs=3``).
    ``verb`` is None when the help was asked for (and printed)."""
    words = sys.argv[1:] if argv is None else [str(a) for a in argv]
    store, words = C.take_store(words, PROG)
    if not words or words[0] in ("-h", "--help", "help"):
        print(C.help_text(C.CLI, PROG))
        return None, (0 if words else 2)  # no verb at all is a usage error
    verb = C.find_verb(words[0], C.CLI, PROG)
    parser = C.build_parser(verb, C.CLI, f"{PROG} {verb.name}")
    try:
        args = C.parse(parser, verb, C.CLI, words[1:])
    except C.HelpShown:
        return None, 0
    if args.store is None:
        args.store = store
    return verb, args


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    import warnings

    warnings.showwarning = _show_warning
    try:
        verb, args = parse_args(argv)
        if verb is None:
            return args
        return run_verb(verb, args)
    except (C.UsageProblem, GuildJupyterError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def _json(value) -> str:
    return json.dumps(value, indent=2, default=str)


# -- the verbs ---------------------------------------------------------------------------------------

def _print(verb: C.Verb, args, result) -> None:
    """What the api returned, as its one text (``--json``: as JSON)."""
    if calls.already_shown(result):
        return
    if getattr(args, "json", False):
        if verb.name in ("compare", "runs"):  # one run a line: json's C encoder (indent= takes the Python one, 10x slower)
            rows = [json.dumps(row, default=str) for row in result.to_json()]
            print("[\n" + ",\n".join("  " + row for row in rows) + "\n]" if rows else "[]")
        else:
            print(_json(result.to_json()))
    elif verb.name == "plot":  # a terminal shows no figure: where it was saved
        for w in result.guild_errors:
            print(f"{PROG}: warning: {w}", file=sys.stderr)
        print(result.guild_output)
    elif isinstance(result, api.RunOutput):
        sys.stdout.write(result)  # a run's output, as it is
    elif verb.name == "run" and args.foreground:
        # What it ran, said after its output, on stderr as `output -f` says the
        # outcome: `run --foreground > file` gets the runs' output only.
        print(result, file=sys.stderr)
    else:
        print(result)


def _exit_status(verb: C.Verb, args, result) -> int:
    """0, or what a shell should see: the last failing trial's exit status
    (``run --foreground``; 130 when interrupted), 1 when a run waited for or
    followed did not complete, a foreground queue's outcome."""
    if result is None:
        return 0
    if getattr(result, "interrupted", False):
        return 128 + signal.SIGINT
    if isinstance(result, api.Run):  # output --follow: the run, ended
        return 0 if result.status == "completed" else 1
    if isinstance(result, int):  # a foreground queue's exit status; stopped by a signal: as Guild records it
        return 128 - result if result < 0 else (0 if result == 0 else 1)
    if verb.name == "wait":
        return 0 if all(r.status == "completed" for r in result) else 1
    if verb.name == "run" and args.foreground:
        code = 0
        for r in result:
            es = r.exit_status
            if isinstance(es, int) and es:
                code = 128 - es if es < 0 else es
        return code
    return 0


def run_verb(verb: C.Verb, args) -> int:
    """Calls the verb (``calls.call``), prints its result, says how it went."""
    # A foreground run's output and a followed run's go to stdout; what is
    # said about them (waiting, the outcome) to stderr: `output -f RUN > file`
    # gets the run's output only.
    door = calls.Door(C.CLI, stream=sys.stdout, note=sys.stderr, echo=True)
    try:
        result = calls.call(verb, args, door)
    except KeyboardInterrupt:  # following a run, or a foreground queue: it was said on the terminal
        return 128 + signal.SIGINT
    _print(verb, args, result)
    return _exit_status(verb, args, result)


if __name__ == "__main__":
    sys.exit(main())
