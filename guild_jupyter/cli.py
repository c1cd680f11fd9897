"""``guild-jupyter`` / ``python -m guild_jupyter``: the API's verbs in a shell.

Every user error prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys

from .errors import GuildJupyterError

STATUS_FLAGS = ("staged", "pending", "running", "completed", "error", "terminated")


class UsageExit(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too)
        raise UsageExit(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="guild-jupyter", description="Guild AI staged runs and queues, from a shell.")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    def verb(name, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--store", metavar="PATH", help="Guild home holding runs/ (default $GUILD_HOME or ~/.guild)")
        return sp

    r = verb("run", "stage or start runs of a Python script")
    r.add_argument("script")
    r.add_argument("flags", nargs="*", default=[], metavar="FLAG=VALUE")  # default: not required
    r.add_argument("--gpus", metavar="IDS")
    r.add_argument("--label", metavar="TEXT")
    r.add_argument("--stage", "--stage-trials", action="store_true", dest="stage", help="initialize without starting")
    r.add_argument("--foreground", action="store_true", help="wait for the run, streaming its output")
    r.add_argument("--max-trials", type=int, metavar="N")
    r.add_argument("--random-seed", type=int, metavar="S")
    r.add_argument("--dry-run", action="store_true", help="print the trials, stage nothing")

    ls = verb("runs", "list runs, newest first")
    for s in STATUS_FLAGS:
        ls.add_argument(f"--{s}", action="store_true")
    ls.add_argument("-n", type=int, metavar="N", dest="limit")
    ls.add_argument("--op", metavar="NAME")
    ls.add_argument("--label", metavar="TEXT")
    ls.add_argument("--json", action="store_true", help="JSON: the fields of `guild runs --json`, and ours")

    s = verb("stop", "stop running runs (staged ones are unstaged)")
    s.add_argument("runs", nargs="*", default=[], metavar="RUN")
    s.add_argument("--all", action="store_true", help="every running run and queue")
    s.add_argument("--queues", action="store_true", help="every queue")
    s.add_argument("--no-wait", action="store_true")

    o = verb("output", "print a run's output")
    o.add_argument("run", metavar="RUN")
    o.add_argument("--tail", type=int, metavar="N")

    for name, help_ in (("delete", "move runs to Guild's trash"), ("unstage", "remove staged runs from the queue")):
        d = verb(name, help_)
        d.add_argument("runs", nargs="+", metavar="RUN")

    _add_more_verbs(verb)
    p.verb_parsers = sub.choices
    return p


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Options and ``NAME=VALUE`` assignments mix in any order, for every
    verb (``run train.py lr=0.2 --stage epochs=3``): the verb's own parser
    reads the rest intermixed (argparse cannot intermix through subparsers)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    verbs = getattr(parser, "verb_parsers", {})
    if argv and argv[0] in verbs:
        args = verbs[argv[0]].parse_intermixed_args(argv[1:])
        args.verb = argv[0]
        return args
    return parser.parse_args(argv)


def _add_more_verbs(verb) -> None:
    """Verbs of the queue and compare modules register here."""
    a = verb("autoload", "load %guild in every IPython kernel (a startup file), or stop doing so")
    a.add_argument("state", choices=("on", "off", "status"))
    a.add_argument("--profile", default="default", metavar="NAME", help="IPython profile (default: default)")
    a.set_defaults(handler=_autoload)
    try:
        from . import cli_queue
    except ImportError:
        return
    cli_queue.add_verbs(verb)


def _autoload(args) -> int:
    from .autoload import autoload, startup_file, status

    if args.state == "status":
        print(("on" if status(args.profile) else "off") + f": {startup_file(args.profile)}")
    else:
        print(autoload(args.state == "on", args.profile))
    return 0


def _json(value) -> str:
    import json

    return json.dumps(value, indent=2, default=str)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"guild-jupyter: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    import warnings

    warnings.showwarning = _show_warning
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
        if not args.verb:
            parser.print_help()
            return 2
        return _dispatch(args) or 0
    except UsageExit as e:
        print(f"guild-jupyter: error: {e}", file=sys.stderr)
        return 2
    except GuildJupyterError as e:
        print(f"guild-jupyter: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def _dispatch(args) -> int | None:
    from . import api

    store = args.store
    if args.verb == "run":
        return _run(args)
    if args.verb == "runs":
        statuses = [s for s in STATUS_FLAGS if getattr(args, s)] or None
        rl = api.runs(statuses, op=args.op, label=args.label, limit=args.limit, store=store)
        print(_json(rl.to_json()) if args.json else rl)
        return 0
    if args.verb == "stop":
        stopped = api.stop(*args.runs, all=args.all, queues=args.queues, wait=not args.no_wait, store=store)
        for r in stopped:
            print(f"{r.id[:8]}  {r.op_name}  {r.status}")
        if not stopped:
            print("nothing to stop")
        return 0
    if args.verb == "output":
        sys.stdout.write(api.output(args.run, tail=args.tail, store=store))
        return 0
    if args.verb in ("delete", "unstage"):
        done = getattr(api, args.verb)(*args.runs, store=store)
        word = "deleted" if args.verb == "delete" else "unstaged"
        for r in done:
            print(f"{word} {r.id[:8]}")
        return 0
    handler = getattr(args, "handler", None)
    if handler is not None:
        return handler(args)
    raise UsageExit(f"unknown verb {args.verb!r}")


def _run(args) -> int:
    from . import api

    if args.foreground and not args.dry_run and not args.stage:
        return _run_foreground(args)
    result = api.run(
        args.script, *args.flags, gpus=args.gpus, label=args.label, stage=args.stage,
        max_trials=args.max_trials, random_seed=args.random_seed, dry_run=args.dry_run, store=args.store,
    )
    if args.dry_run:
        from .runlist import flags_text

        for i, t in enumerate(result, 1):
            print(f"trial {i}: {flags_text(t)}")
        return 0
    if args.stage:
        print(result)  # numbered as `runs` numbers them
    else:
        for r in result:
            print(r.id)
    return 0


def _run_foreground(args) -> int:
    """Runs each trial in turn with its output on this terminal; the exit
    status is the last failing trial's (0 when all succeed). Ctrl-C stops the
    current trial and records the rest as never started."""
    from . import api

    try:
        done = api.run(
            args.script, *args.flags, gpus=args.gpus, label=args.label, foreground=True, echo=True,
            max_trials=args.max_trials, random_seed=args.random_seed, store=args.store,
        )
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    code = 0
    for r in done:
        es = r.exit_status
        if isinstance(es, int) and es:
            code = 128 - es if es < 0 else es
    return code


if __name__ == "__main__":
    sys.exit(main())
