"""Queues: what they decide and how they run.

(Named ``queueing``, not ``queue``: ``guild_jupyter.queue`` and
``guild_jupyter.queues`` are the API's functions, and a subpackage of the
same name would replace them on the package once imported.)

- ``policy``: the next-run decision, a pure function of plain values;
- ``flags``: the one table of queue flags (kind, default, bounds, help)
  that parsing, help, completion, REST and the panel's form read;
- ``config``: queue flags -> ``QueueConfig``, and the queue run itself;
- ``loop``: ``QueueLoop``, the scheduler (claims under Guild's lock, starts
  through a ``RunStarter`` -- ``starters`` -- one run per ``Slot`` taken of
  its ``Slots`` in ``slots``, a record per run going, none per slot free;
  ``gpu_slots``: the GPUs a ``gpus=auto`` queue serves; its log is ``log``);
- ``control``: what a person asked of a running queue (pause, resume,
  drain) as its loop obeys it, and retries of the runs it started;
- ``hosts``: the ``QueueHost`` protocol and its hosts (thread, detached,
  foreground; the Jupyter server's are threads recorded as ``server``);
  ``main`` and ``sentinel`` are the processes they start;
- ``status``: what every queue of a store is doing (``QueueInfo``),
  this process's handles (``QueueRegistry``: ``api.queue_registry``);
- ``dask``: a queue whose runs go to a Dask cluster (``config``: the
  ``dask=`` flag, read without importing Dask; ``starter``: the
  ``RunStarter``; ``runner``: what runs on a worker).

GPU specs and what NVML reports are :mod:`guild_jupyter.gpus`'.
"""
