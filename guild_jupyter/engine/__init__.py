"""Queues: what they decide and how they run.

- ``policy``: the next-run decision, a pure function of plain values;
- ``config``: queue flags -> ``QueueConfig``, and the queue run itself;
- ``loop``: ``QueueLoop``, the scheduler (claims under Guild's lock, starts
  through a ``RunStarter``, one run per ``Slot``);
- ``hosts``: the ``QueueHost`` protocol and its hosts (thread, detached,
  foreground); ``queue_main`` and ``sentinel`` are the processes they start;
- ``gpuspec``, ``gpus``: GPU affinity specs and the GPUs themselves.
"""
