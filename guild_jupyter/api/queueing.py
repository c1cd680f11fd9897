"""Queues: started here (a thread, a detached process, the calling
thread) or hosted for the Jupyter server, and listed."""

from __future__ import annotations

from .. import validate
from ..display import QueueList
from ..queueing.gpu_slots import check_queue_gpus
from ..queueing.config import parse_queue_flags
from ..queueing.dask.config import known_slots, with_slots
from ..queueing.status import QueueRegistry, list_queues
from .selection import resolve_store


#: This process's queue handles (threads, the Jupyter server's queues): they
#: know the run they wait for before the store shows it.
queue_registry = QueueRegistry()


def queue(
    *assignments: str,
    gpus=None,
    wait_for_running=None,
    run_once=None,
    poll_interval=None,
    retries=None,
    max_running=None,
    per_gpu=None,
    min_free_memory=None,
    max_util=None,
    dask=None,
    background: bool = False,
    store=None,
):
    """Starts a queue: a daemon thread in this process, or with ``background``
    a detached process that outlives it. ``queue("gpus=0", run_once=True)``;
    ``retries=N`` stages a run it started that failed again, up to N times.
    ``max_running=N`` keeps up to N runs going; ``gpus="auto"`` (or
    ``"auto:0,2"``) gives each run a GPU with a free slot (``per_gpu``
    slots each, optionally ``min_free_memory="20GiB"``, ``max_util=50``).
    ``dask="tcp://host:8786"`` (or ``"local:N"``: an embedded cluster of N
    worker processes) runs the staged runs on a Dask cluster.
    Returns a handle with ``.id``, ``.status``, ``.stop()`` and ``.join()``."""
    validate.boolean("background", background)
    config, st = _configured(assignments, store, gpus=gpus, wait_for_running=wait_for_running,
                             run_once=run_once, poll_interval=poll_interval, retries=retries,
                             max_running=max_running, per_gpu=per_gpu, min_free_memory=min_free_memory,
                             max_util=max_util, dask=dask)
    if background:
        from ..queueing.hosts import DetachedQueue  # lazy: the hosts (~30 ms) load to start a queue, not to list

        return DetachedQueue.start(st, known_slots(config))
    return _thread_queue(st, config, "thread")


def _configured(assignments, store, **values):
    """Validated queue flags and the store, writable: what every host needs."""
    validate.assignments(assignments)
    validate.gpus(values.get("gpus"))
    validate.yes_no("wait_for_running", values.get("wait_for_running"))
    validate.yes_no("run_once", values.get("run_once"))
    validate.poll_interval(values.get("poll_interval"))
    validate.store(store)
    from .starting import warn_unknown_gpus  # lazy: listing queues never needs the run-starting code

    config = parse_queue_flags(assignments, **values)
    warn_unknown_gpus(config.gpus)
    check_queue_gpus(config)  # gpus=auto:9 on a 2-GPU machine: one line, before anything is written
    st = resolve_store(store)
    st.ensure_writable()
    return config, st


def _thread_queue(st, config, host: str):
    # lazy: as in queue: starting a queue only
    from ..queueing.dask.starter import loop_options
    from ..queueing.hosts import ThreadQueue

    options = loop_options(st, config)  # a Dask queue's starter: connected before anything is written
    config = with_slots(config, options)
    try:
        q = ThreadQueue(st, config, host=host, **options)
    except BaseException:
        if "starter" in options:
            options["starter"].close()
        raise
    queue_registry.register(q)
    return q


def queues(store=None, include_finished: bool = False):
    """Queues in the store: this process's threads, detached processes, queues
    in other kernels and Guild's own; running ones unless ``include_finished``."""
    validate.store(store)
    validate.boolean("include_finished", include_finished)
    return QueueList(list_queues(resolve_store(store).runs(), queue_registry.list(), include_finished))


def serve_queue(*assignments: str, echo=None, on_start=None, store=None) -> int:
    """Runs a queue in the calling thread until it ends or a stop signal
    (SIGINT, SIGHUP, SIGTERM) comes, as ``guild run queue`` does: this
    process holds the queue run, its log also goes to ``echo``. Calls
    ``on_start(queue_id)`` once the signals are handled. Returns the queue
    run's exit status: 0 done, -N stopped by signal N, else failed."""
    validate.stream(echo)
    # lazy: as in queue: starting a queue only
    from ..queueing.hosts import ForegroundQueue
    from ..queueing.dask.starter import loop_options

    config, st = _configured(assignments, store)
    options = loop_options(st, config)
    q = ForegroundQueue(st, with_slots(config, options), echo=echo, **options)
    return q.serve(ready=None if on_start is None else (lambda: on_start(q.id)))


def host_queue(host: str, *assignments: str, gpus=None, wait_for_running=None, run_once=None, poll_interval=None,
               retries=None, max_running=None, per_gpu=None, min_free_memory=None, max_util=None, dask=None,
               store=None):
    """Starts a queue on a thread of this process recorded as hosted by
    ``host`` (the Jupyter server's queues: ``"server"``), registered in
    ``queue_registry``. Options as ``queue()``. Returns the ``QueueHost``."""
    validate.text("host", host, optional=False)
    config, st = _configured(assignments, store, gpus=gpus, wait_for_running=wait_for_running,
                             run_once=run_once, poll_interval=poll_interval, retries=retries,
                             max_running=max_running, per_gpu=per_gpu, min_free_memory=min_free_memory,
                             max_util=max_util, dask=dask)
    return _thread_queue(st, config, host)
