"""A queue's configuration: its flags parsed into a ``QueueConfig``, and the
queue run (op ``queue``) that records it in the store.

The flags are Guild's own (``gpus``, ``wait-for-running``, ``run-once``,
``poll-interval``), written the way ``guild run queue`` writes them, so the
real ``guild`` CLI lists, stops and compares our queues like its own.
"""

from __future__ import annotations

import os

from ..errors import BadInput
from .gpuspec import parse_gpu_spec
from .policy import QueueConfig

QUEUE_OPREF = "builtin:guildai 0.9.0 '' queue"
QUEUE_FLAGS = ("gpus", "wait-for-running", "run-once", "poll-interval")
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
    gpus = given.get("gpus")
    if isinstance(gpus, (list, tuple)):
        gpus = ",".join(str(g) for g in gpus)
    return QueueConfig(
        gpus=parse_gpu_spec(None if gpus is None else str(gpus)),
        wait_for_running=boolean("wait-for-running"),
        run_once=boolean("run-once"),
        poll_interval=interval,
    )


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
    }


def yes_no(v):
    return "yes" if v is True else "no" if v is False else v


def create_queue_run(store, config: QueueConfig, host: str):
    """A new queue run, pending (claimed by this process) until its host
    takes its LOCK with ``transitions.acquire``."""
    from ..store import transitions
    from ..store.store import RunSpec

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
