"""Queues: what they decide and how they run.

- ``policy``: the next-run decision, a pure function of plain values;
- ``config``: queue flags -> ``QueueConfig``, and the queue run itself;
- ``loop``: ``QueueLoop``, the scheduler (claims under Guild's lock, starts
  through a ``RunStarter`` -- ``starters`` -- one run per ``Slot``; its log
  is ``queue_log``);
- ``hosts``: the ``QueueHost`` protocol and its hosts (thread, detached,
  foreground; the Jupyter server's are threads recorded as ``server``);
  ``queue_main`` and ``sentinel`` are the processes they start;
- ``queue_status``: what every queue of a store is doing (``QueueInfo``),
  this process's handles (``QueueRegistry``: ``api.queue_registry``);
- ``gpuspec``, ``gpus``: GPU affinity specs and the GPUs NVML reports (the
  fake NVML for machines without one is ``guild_jupyter.gpus.fake``).
"""
