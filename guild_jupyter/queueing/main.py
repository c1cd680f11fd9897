"""A detached queue process: ``python -m guild_jupyter.queueing.main RUN_DIR``.

It holds the queue run's LOCK (so ``guild stop`` and our stop signal it), runs
the scheduler loop in its main thread until stopped or done, and records its
outcome: ``hosts.ForegroundQueue`` in a process of its own.
"""

from __future__ import annotations

import os
import sys

from ..execution.ready import ready_fd_from, report_ready
from ..store.run import Run
from ..store.store import Store
from .config import config_of
from .dask.starter import loop_options
from .hosts import ForegroundQueue


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run_dir = os.path.abspath(argv[0])
    ready_fd = ready_fd_from(argv)
    store = Store(os.path.dirname(os.path.dirname(run_dir)))
    try:
        run = Run(run_dir)
        config = config_of(run)
        queue = ForegroundQueue(store, config, run=run, **loop_options(store, config))
    except Exception as e:
        report_ready(ready_fd, f"error: {e}")
        return 1
    return 0 if queue.serve(ready=lambda: report_ready(ready_fd, "ok")) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
