"""GPUs: how runs and queues name them and what NVML reports of them.

- ``spec``: GPU affinity specs (``0,1``, ``GPU-8f3c...``, ``auto:2``),
  validation only, cheap to import; ``is_auto`` is the one test of an
  ``auto`` request;
- ``nvml``: the GPUs NVML reports, behind an injectable probe
  (``default_probe``);
- ``fake``: the fake NVML for machines without an NVIDIA GPU
  (``$GUILD_JUPYTER_FAKE_GPUS``: tests and demos).

Which GPUs a ``gpus=auto`` queue serves, and their state for its policy,
is the queue's: :mod:`guild_jupyter.queueing.gpu_slots`.
"""
