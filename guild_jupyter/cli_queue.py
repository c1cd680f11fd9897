"""CLI verbs of queues and comparisons: ``queue``, ``queues``, ``compare``."""

from __future__ import annotations

import signal
import sys
import threading


def add_verbs(verb) -> None:
    q = verb("queue", "start a queue that starts staged runs one at a time")
    q.add_argument("flags", nargs="*", metavar="FLAG=VALUE",
                   help="gpus=IDS wait-for-running=yes|no run-once=yes|no poll-interval=S")
    q.add_argument("--background", action="store_true", help="detach: run as a background process")
    q.set_defaults(handler=_queue)

    qs = verb("queues", "list queues")
    qs.add_argument("--all", action="store_true", help="include finished queues")
    qs.set_defaults(handler=_queues)

    c = verb("compare", "flags and last scalar values per run")
    c.add_argument("runs", nargs="*", metavar="RUN")
    c.set_defaults(handler=_compare)


def _queue(args) -> int:
    from . import api
    from .engine.queue import DetachedQueue, parse_queue_flags

    if args.background:
        q = api.queue(*args.flags, background=True, store=args.store)
        print(q.id)
        return 0
    # In the foreground the queue runs in this process, its log on stdout.
    config = parse_queue_flags(args.flags)
    st = api.resolve_store(args.store)
    st.ensure_writable()
    q = DetachedQueue.start(st, config)
    print(f"queue {q.id} started; Ctrl-C stops it", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        from .api import follow_output

        follow_output(q.run, sys.stdout, lambda: stop.is_set() or q.run.refresh().status != "running")
    except KeyboardInterrupt:
        pass
    if q.run.refresh().status == "running":
        q.stop()
    return 0


def _queues(args) -> int:
    from . import api

    print(api.queues(store=args.store, include_finished=args.all))
    return 0


def _compare(args) -> int:
    from . import api

    print(api.compare(*args.runs, store=args.store))
    return 0
