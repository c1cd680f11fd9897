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
from .flags import BY_NAME, GPU_AUTO_ONLY, QUEUE_FLAGS, bad_value, check_number
from .policy import QueueConfig

QUEUE_OPREF = "builtin:guildai 0.9.0 '' queue"
_BOOL = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def parse_queue_flags(assignments=(), **values) -> QueueConfig:
    """``gpus=0 wait-for-running=yes run-once=no poll-interval=10`` (strings or
    keyword values) -> QueueConfig, each value checked as ``QUEUE_FLAG_TABLE``
    declares it (kind and bounds). Raises BadInput for anything else."""
    given: dict = {}
    for a in assignments:
        name, eq, value = a.partition("=")
        if not eq:
            raise BadInput(f"malformed queue flag {a!r}: expected NAME=VALUE")
        given[name.strip()] = value.strip()
    for k, v in values.items():
        if v is not None:
            given[k.replace("_", "-")] = v
    unknown = [k for k in given if k not in BY_NAME]
    if unknown:
        raise BadInput(f"unknown queue flag {unknown[0]!r} (queue flags: {', '.join(QUEUE_FLAGS)})")
    parsed = {name: _parse_value(BY_NAME[name], v) for name, v in given.items() if v is not None}
    gpus = parsed.get("gpus")
    dask = parsed.get("dask")
    if dask and gpus is not None:
        raise BadInput("gpus does not apply to a Dask queue: runs go to the workers with the GPU resources they need")
    gpu_only = [n for n in GPU_AUTO_ONLY if n in parsed]
    if gpu_only and not is_auto(gpus):
        raise BadInput(f"{gpu_only[0]} applies to a queue with gpus=auto (GPUs chosen per run)")
    fields = {BY_NAME[n].field: v for n, v in parsed.items()}
    return QueueConfig(**{k: v for k, v in fields.items() if v is not None})


def _parse_value(flag, value):
    """One flag's value, as its kind reads it, within its bounds."""
    kind = flag.kind
    if kind == "yes-no":
        if isinstance(value, bool):
            return value
        b = _BOOL.get(str(value).lower())
        if b is None:
            raise bad_value(flag, value)
        return b
    if kind == "text":
        if flag.name == "gpus":
            if isinstance(value, (list, tuple)):
                value = ",".join(str(g) for g in value)
            return parse_queue_gpus(None if value is None else str(value))
        return parse_dask(value)
    if isinstance(value, bool):
        raise bad_value(flag, value)
    if kind == "seconds":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad_value(flag, value) from None
        return check_number(flag, value, number)
    if kind == "size":
        return check_number(flag, value, parse_size(value))
    text = str(value).strip()
    if kind == "percent":
        text = text.rstrip("%").strip()
    if not (isinstance(value, (int, str)) and text.isdigit()):  # 2.5, "2.0", "-1", "many"
        raise bad_value(flag, value)
    return check_number(flag, value, int(text))


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def parse_size(value) -> int:
    """``20GiB``, ``20GB``, ``512M``, ``1.5g`` or bytes -> bytes (``G`` and
    ``GiB`` are 2**30, ``GB`` 10**9)."""
    import re

    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = m and _UNITS.get(m.group(2).lower())
    if isinstance(value, bool) or not unit:
        raise bad_value(BY_NAME["min-free-memory"], value)
    return int(float(m.group(1)) * unit)


def format_size(n: int) -> str:
    """Bytes as the flag writes them back: ``20GiB``, ``512MiB``, or bytes."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


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
