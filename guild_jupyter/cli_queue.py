"""CLI verbs of queues and comparisons: ``queue``, ``queues``, ``compare``."""

from __future__ import annotations

import sys


def add_verbs(verb) -> None:
    q = verb("queue", "start a queue that starts staged runs one at a time")
    q.add_argument("flags", nargs="*", default=[], metavar="FLAG=VALUE",
                   help="gpus=IDS wait-for-running=yes|no run-once=yes|no poll-interval=S")
    q.add_argument("--background", action="store_true", help="detach: run as a background process")
    q.set_defaults(handler=_queue)

    qs = verb("queues", "list queues")
    qs.add_argument("--all", action="store_true", help="include finished queues")
    qs.add_argument("--json", action="store_true", help="print JSON")
    qs.set_defaults(handler=_queues)

    c = verb("compare", "flags and last scalar values per run")
    c.add_argument("runs", nargs="*", default=[], metavar="RUN")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=_compare)


def _queue(args) -> int:
    from . import api

    if args.background:
        q = api.queue(*args.flags, background=True, store=args.store)
        print(q.id)
        return 0
    # In the foreground the loop runs in this process (holding the queue
    # run's LOCK), its log on stdout; Ctrl-C, SIGHUP or SIGTERM stop it.
    from .engine.config import parse_queue_flags
    from .engine.hosts import ForegroundQueue

    config = parse_queue_flags(args.flags)
    api.warn_unknown_gpus(config.gpus)
    st = api.resolve_store(args.store)
    st.ensure_writable()
    q = ForegroundQueue(st, config, echo=sys.stdout)
    print(f"queue {q.id} started; Ctrl-C stops it", flush=True)
    status = q.serve()
    if q.signum is not None:
        return 128 + q.signum
    return 0 if status == 0 else 1


def _queues(args) -> int:
    from . import api

    from .cli import _json

    qs = api.queues(store=args.store, include_finished=args.all)
    print(_json(qs.to_json()) if args.json else qs)
    return 0


def _compare(args) -> int:
    from . import api

    from .cli import _json

    table = api.compare(*args.runs, store=args.store)
    print(_json(table.to_json()) if args.json else table)
    return 0
