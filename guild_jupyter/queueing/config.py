"""A queue's configuration: its flags parsed into a ``QueueConfig``, and the
queue run (op ``queue``) that records it in the store.

The flags are Guild's own (``gpus``, ``wait-for-running``, ``run-once``,
``poll-interval``), written the way ``guild run queue`` writes them, so the
real ``guild`` CLI lists, stops and compares our queues like its own.
"""

from __future__ import annotations

import os

from ..errors import BadInput
from ..gpus.spec import is_auto, parse_queue_gpus
from ..store import transitions
from ..store.new_run import RunSpec
from .dask.config import parse_dask
from .policy import QueueConfig

QUEUE_OPREF = "builtin:guildai 0.9.0 '' queue"
QUEUE_FLAGS = ("gpus", "wait-for-running", "run-once", "poll-interval", "retries",
               "max-running", "per-gpu", "min-free-memory", "max-util", "dask")
_BOOL = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def parse_queue_flags(assignments=(), **values) -> QueueConfig:
    """``gpus=0 wait-for-running=yes run-once=no poll-interval=10`` (strings or
    keyword values) -> QueueConfig. Raises BadInput for anything else."""
    given: dict = {}
    for a in assignments:
        name, eq, value = a.partition("=")
        if not eq:
            raise BadInput(f"malformed queue flag {a!r}: expected NAME=VALUE")
        given[name.strip()] = value.strip()
    for k, v in values.items():
        if v is not None:
            given[k.replace("_", "-")] = v
    unknown = [k for k in given if k not in QUEUE_FLAGS]
    if unknown:
        raise BadInput(f"unknown queue flag {unknown[0]!r} (queue flags: {', '.join(QUEUE_FLAGS)})")

    def boolean(name):
        v = given.get(name, False)
        if isinstance(v, bool):
            return v
        b = _BOOL.get(str(v).lower())
        if b is None:
            raise BadInput(f"bad value for {name}: {v!r} (expected yes or no)")
        return b

    interval = given.get("poll-interval", 10)
    try:
        interval = float(interval)
    except (TypeError, ValueError):
        raise BadInput(f"bad value for poll-interval: {interval!r} (expected seconds > 0)") from None
    if not interval > 0 or interval != interval:
        raise BadInput(f"bad value for poll-interval: {given.get('poll-interval')!r} (expected seconds > 0)")
    retries = _retries(given.get("retries", 0))
    gpus = given.get("gpus")
    if isinstance(gpus, (list, tuple)):
        gpus = ",".join(str(g) for g in gpus)
    gpus = parse_queue_gpus(None if gpus is None else str(gpus))
    slots = _slot_flags(given, gpus)
    dask = parse_dask(given.get("dask"))
    if dask and gpus is not None:
        raise BadInput("gpus does not apply to a Dask queue: runs go to the workers with the GPU resources they need")
    if dask:
        slots["dask"] = dask
    return QueueConfig(
        gpus=gpus,
        wait_for_running=boolean("wait-for-running"),
        run_once=boolean("run-once"),
        poll_interval=interval,
        retries=retries,
        **slots,
    )


def _slot_flags(given: dict, gpus: str | None) -> dict:
    """``max-running``, and for a ``gpus=auto`` queue ``per-gpu``,
    ``min-free-memory`` and ``max-util``: QueueConfig's keyword values."""
    out = {}
    for name, key in (("max-running", "max_running"), ("per-gpu", "per_gpu")):
        v = given.get(name)
        if v is None:
            continue
        text = str(v).strip()
        if isinstance(v, bool) or not text.isdigit() or int(text) < 1:
            raise BadInput(f"bad value for {name}: {v!r} (expected a whole number >= 1)")
        out[key] = int(text)
    if given.get("min-free-memory") is not None:
        out["min_free_memory"] = parse_size(given["min-free-memory"])
    v = given.get("max-util")
    if v is not None:
        text = str(v).strip().rstrip("%")
        if isinstance(v, bool) or not text.isdigit() or int(text) > 100:
            raise BadInput(f"bad value for max-util: {v!r} (expected a percentage 0-100)")
        out["max_util"] = int(text)
    gpu_only = [n for n, k in (("per-gpu", "per_gpu"), ("min-free-memory", "min_free_memory"),
                               ("max-util", "max_util")) if k in out]
    if gpu_only and not is_auto(gpus):
        raise BadInput(f"{gpu_only[0]} applies to a queue with gpus=auto (GPUs chosen per run)")
    return out


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def parse_size(value) -> int:
    """``20GiB``, ``20GB``, ``512M``, ``1.5g`` or bytes -> bytes (``G`` and
    ``GiB`` are 2**30, ``GB`` 10**9)."""
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = m and _UNITS.get(m.group(2).lower())
    if isinstance(value, bool) or not unit:
        raise BadInput(f"bad value for min-free-memory: {value!r} (expected a size like 20GiB, 512MiB or 8GB)")
    return int(float(m.group(1)) * unit)


def format_size(n: int) -> str:
    """Bytes as the flag writes them back: ``20GiB``, ``512MiB``, or bytes."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _retries(value) -> int:
    """``retries=N``: how many times a failed run is staged again (N >= 0)."""
    text = str(value).strip()
    if isinstance(value, bool) or not (isinstance(value, int) or text.isdigit()) or int(text) < 0:
        raise BadInput(f"bad value for retries: {value!r} (expected a whole number >= 0)")
    return int(text)


def config_of(queue_run) -> QueueConfig:
    """The configuration a queue run records in its flags."""
    return parse_queue_flags(**{k: v for k, v in queue_run.flags.items() if v is not None})


def queue_flags(config: QueueConfig) -> dict:
    pi = config.poll_interval
    return {
        "gpus": config.gpus,
        "poll-interval": int(pi) if float(pi).is_integer() else pi,
        "run-once": config.run_once,
        "wait-for-running": config.wait_for_running,
        **({"retries": config.retries} if config.retries else {}),  # absent: the seed's queue run
        **_slot_values(config),
        **({"dask": config.dask} if getattr(config, "dask", None) else {}),
    }


def _slot_values(config: QueueConfig) -> dict:
    """The slot flags a queue was given, as its run records them (absent when
    unset: a seed queue's run keeps Guild's four flags)."""
    out = {}
    if config.max_running is not None:
        out["max-running"] = config.max_running
    if config.auto:
        out["per-gpu"] = config.per_gpu
    if config.min_free_memory is not None:
        out["min-free-memory"] = format_size(config.min_free_memory)
    if config.max_util is not None:
        out["max-util"] = config.max_util
    return out


def yes_no(v):
    return "yes" if v is True else "no" if v is False else v


def create_queue_run(store, config: QueueConfig, host: str):
    """A new queue run, pending (claimed by this process) until its host
    takes its LOCK with ``transitions.acquire``."""
    flags = queue_flags(config)
    op_attr = {
        "deps": [],
        "flag-null-labels": {"gpus": "unspecified"},
        "flags-extra": {},
        "label-template": None,
        "output-scalars": None,
        "python-requires": None,
        "op-cmd": {
            "cmd-args": ["${guild_python_exe}", "-um", "guild.plugins.queue_main", "__flag_args__"],
            "cmd-env": {},
            "cmd-flags": {"gpus": {}, "poll-interval": {}, "run-once": {"arg-switch": True},
                          "wait-for-running": {"arg-switch": True}},
            "flags-dest": "args",
        },
        "sourcecode": {"dest": "."},
    }
    spec = RunSpec(
        opref=QUEUE_OPREF,
        flags=flags,
        user_flags={k: v for k, v in flags.items() if v not in (None, False) and k != "poll-interval"},
        op_attr=op_attr,
        sources={},
        gpus=None,
        label=" ".join(f"{k}={yes_no(v)}" for k, v in flags.items() if v is not None),
        extra_attrs={"guild_jupyter": {"kind": "queue", "host": host, "queue_gpus": config.gpus}},
    )
    (run,) = transitions.create(store, [spec], staged=False)
    os.makedirs(run.path("proto"), exist_ok=True)  # Guild hides batch-like runs from compare
    return run


__all__ = ["QueueConfig", "QUEUE_OPREF", "QUEUE_FLAGS", "parse_queue_flags", "config_of", "queue_flags",
           "create_queue_run", "yes_no"]
