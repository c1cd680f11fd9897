"""``guild-jupyter`` / ``python -m guild_jupyter``: the API's verbs in a shell.

Parsers and help come from the verb table (:mod:`.commands`); each verb's
handler here calls its twin in :mod:`guild_jupyter.api` and prints what it
returns. Every user error prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import json
import signal
import sys

from .. import api
from ..errors import GuildJupyterError
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
        return HANDLERS[verb.name](args) or 0
    except (C.UsageProblem, GuildJupyterError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


def _json(value) -> str:
    return json.dumps(value, indent=2, default=str)


# -- the verbs ---------------------------------------------------------------------------------------


def _run(args) -> int:
    if args.foreground and not args.dry_run and not args.stage:
        return _run_foreground(args)
    result = api.run(
        args.script, *args.flags, gpus=args.gpus, label=args.label, stage=args.stage,
        max_trials=args.max_trials, random_seed=args.random_seed, dry_run=args.dry_run, store=args.store,
        retries=args.retries,
    )
    if args.dry_run:
        from ..display import Trials  # lazy: only --dry-run prints trials

        print(Trials(result))
    elif args.stage:
        print(result)  # numbered as `runs` numbers them
    else:
        for r in result:
            print(r.id)
    return 0


def _run_foreground(args) -> int:
    """Runs each trial in turn with its output on this terminal; the exit
    status is the last failing trial's (0 when all succeed). Ctrl-C stops the
    current trial and records the rest as never started."""
    try:
        done = api.run(
            args.script, *args.flags, gpus=args.gpus, label=args.label, foreground=True, echo=True,
            max_trials=args.max_trials, random_seed=args.random_seed, store=args.store, retries=args.retries,
        )
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    code = 0
    for r in done:
        es = r.exit_status
        if isinstance(es, int) and es:
            code = 128 - es if es < 0 else es
    return code


def _runs(args) -> int:
    statuses = [s for s in C.STATUSES if getattr(args, s)] or None
    rl = api.runs(statuses, op=args.op, label=args.label, limit=args.limit, store=args.store)
    rl.choose_scalar(args.scalar)
    print(_json(rl.to_json()) if args.json else rl)
    return 0


def _stop(args) -> int:
    stopped = api.stop(*args.runs, all=args.all, queues=args.queues, wait=not args.no_wait, store=args.store)
    for r in stopped:
        print(f"{r.id[:8]}  {r.op_name}  {r.status}")
    if not stopped:
        print("nothing to stop")
    return 0


def _output(args) -> int:
    if args.follow:
        # The output on stdout, what we say about it (waiting, the outcome)
        # on stderr: ``output -f RUN > file`` gets the run's output only.
        try:
            run = api.output(args.run, tail=args.tail, follow=True, stream=sys.stdout, note=sys.stderr,
                             store=args.store)
        except KeyboardInterrupt:
            return 128 + signal.SIGINT
        return 0 if run.status == "completed" else 1
    sys.stdout.write(api.output(args.run, tail=args.tail, store=args.store))
    return 0


def _wait(args) -> int:
    """Exit status 0 when every run completed, 1 when one did not."""
    done = api.wait(*args.runs, timeout=args.timeout, store=args.store)
    for r in done:
        print(f"{r.id[:8]}  {r.op_name}  {r.status}")
    return 0 if all(r.status == "completed" for r in done) else 1


def _removal(verb: str, word: str):
    def handler(args) -> int:
        for r in getattr(api, verb)(*args.runs, store=args.store):
            print(f"{word} {r.id[:8]}")
        return 0

    return handler


def _queue(args) -> int:
    control = C.queue_action(args, f"{PROG} queue")
    if control is not None:  # queue pause|resume|drain QUEUE
        done = api.queue_control(control[1], control[0], store=args.store)
        print(f"queue {done['id'][:8]} {done['state']}")
        return 0
    if args.background:
        print(api.queue(*args.flags, background=True, store=args.store).id)
        return 0
    # In the foreground the loop runs in this process (holding the queue
    # run's LOCK), its log on stdout; Ctrl-C, SIGHUP or SIGTERM stop it.
    status = api.serve_queue(*args.flags, echo=sys.stdout, store=args.store,
                             on_start=lambda qid: print(f"queue {qid} started; Ctrl-C stops it", flush=True))
    if status < 0:  # stopped by a signal, recorded as Guild records it
        return 128 - status
    return 0 if status == 0 else 1


def _queues(args) -> int:
    qs = api.queues(store=args.store, include_finished=args.all)
    print(_json(qs.to_json()) if args.json else qs)
    return 0


def _compare(args) -> int:
    table = api.compare(*args.runs, store=args.store, **compare_options(args))
    if args.json:  # one run a line: json's C encoder (indent= takes the Python one, 10x slower)
        rows = [json.dumps(row, default=str) for row in table.to_json()]
        print("[\n" + ",\n".join("  " + row for row in rows) + "\n]" if rows else "[]")
    else:
        print(table)
    return 0


def compare_options(args) -> dict:
    """The filters, sort and columns of ``compare`` (the magic's too)."""
    status = [s.strip() for s in args.status.split(",") if s.strip()] if args.status is not None else None
    return dict(op=args.op, label=args.label, status=status, sort=args.sort, scalar=args.scalar,
                all_flags=args.all_flags)


def _plot(args) -> int:
    """A terminal cannot show a figure: it is saved to ``--output``."""
    if not args.output:
        raise C.UsageProblem("plot needs --output FILE (.png, .svg or .pdf): a terminal cannot show a figure",
                             f"{PROG} plot")
    fig = api.plot(*args.runs, scalar=args.scalar, op=args.op, store=args.store)
    try:
        fig.savefig(args.output)
    except (OSError, ValueError) as e:
        raise C.UsageProblem(f"cannot save the figure to {args.output}: {e}", f"{PROG} plot") from None
    for w in fig.guild_errors:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    print(args.output)
    return 0


def _restart(args) -> int:
    for r in api.restart(args.run, stage=args.stage, store=args.store):
        print(f"{r.id}  {r.op_name}  {r.status}")
    return 0


def _restage(args) -> int:
    print(api.restage(args.run, *args.flags, store=args.store))  # numbered as `runs` numbers them
    return 0


def _autoload(args) -> int:
    from ..autoload import autoload, startup_file, status  # lazy: only the autoload verb needs IPython's profile paths

    if args.state == "status":
        print(("on" if status(args.profile) else "off") + f": {startup_file(args.profile)}")
    else:
        print(autoload(args.state == "on", args.profile))
    return 0


HANDLERS = {
    "run": _run, "runs": _runs, "stop": _stop, "output": _output, "wait": _wait,
    "unstage": _removal("unstage", "unstaged"), "delete": _removal("delete", "deleted"),
    "queue": _queue, "queues": _queues, "compare": _compare, "plot": _plot, "autoload": _autoload,
    "restart": _restart, "restage": _restage,
}


if __name__ == "__main__":
    sys.exit(main())
