"""A detached queue process: ``python -m guild_jupyter.engine.queue_main RUN_DIR``.

It holds the queue run's LOCK (so ``guild stop`` and our stop signal it), runs
the scheduler loop until stopped or done, and records its outcome.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..execution.launch import ready_fd_from, report_ready
    from ..procs import Identity
    from ..store import transitions
    from ..store.run import Run
    from ..store.store import Store
    from .queue import QueueLoop, parse_queue_flags

    run_dir = os.path.abspath(argv[0])
    ready_fd = ready_fd_from(argv)
    store = Store(os.path.dirname(os.path.dirname(run_dir)))
    run = Run(run_dir)
    try:
        flags = run.flags
        config = parse_queue_flags(**{k: v for k, v in flags.items() if v is not None})
        holder = Identity.current()
        transitions.acquire(store, run, holder)
    except Exception as e:
        report_ready(ready_fd, f"error: {e}")
        return 1
    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    loop = QueueLoop(store, config, run, stop)
    report_ready(ready_fd, "ok")
    status = 1
    try:
        status = loop.run_loop()
    finally:
        transitions.record_outcome(store, run, status, holder)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
