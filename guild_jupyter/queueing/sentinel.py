"""The LOCK holder of a thread-hosted queue.

``python -m guild_jupyter.queueing.sentinel RUN_DIR`` takes the queue run's LOCK,
prints ``ok``, then waits: on EOF of its stdin (the queue's kernel ended or
closed it) or on SIGTERM (``guild stop``) it records the queue's end and
exits. The kernel's thread watches it and stops when it is gone.
"""

from __future__ import annotations

import os
import signal
import sys

from ..procs import Identity
from ..store import transitions
from ..store.run import Run
from ..store.store import Store


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_dir = os.path.abspath(argv[0])
    store = Store(os.path.dirname(os.path.dirname(run_dir)))
    run = Run(run_dir)
    holder = Identity.current()
    try:
        transitions.acquire(store, run, holder)
    except Exception as e:
        sys.stdout.write(f"error: {e}\n")
        sys.stdout.flush()
        return 1

    def finish(*_):
        transitions.record_outcome(store, run, -15, holder)
        os._exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGHUP, finish)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout.write("ok\n")
    sys.stdout.flush()
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
