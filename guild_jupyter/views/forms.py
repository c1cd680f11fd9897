"""The 'start a queue' form as data (``queue_form``): what every front end
offers, derived from the queue flags the queue's parser takes
(``queueing.config.QUEUE_FLAGS``). One function, so that the one queue-flag
table (name, type, default, bounds, help) can replace the table below
without any front end changing."""

from __future__ import annotations

__all__ = ["queue_form", "QUEUE_HOSTS"]

#: Where ``POST /guild/api/queues`` may host a queue.
QUEUE_HOSTS = ("server", "detached")

# flag -> (type, default, help, min, max)
_FLAG_TABLE = {
    "gpus": ("str", None, "the GPUs it serves: 0, 0,1, auto (every GPU, one chosen per run) or auto:0,2; "
                          "empty: runs without GPUs pinned", None, None),
    "wait-for-running": ("bool", False, "wait for runs that are not the queue's own to end first", None, None),
    "run-once": ("bool", False, "stop once no staged run is left", None, None),
    "poll-interval": ("float", 10, "seconds between looks for staged runs", 0, None),
    "retries": ("int", 0, "stage a run that failed again, up to N times", 0, None),
    "max-running": ("int", None, "runs going at once (default 1; per-gpu x GPUs with gpus=auto)", 1, None),
    "per-gpu": ("int", 1, "runs on each GPU (gpus=auto)", 1, None),
    "min-free-memory": ("str", None, "start on a GPU only while this much memory is free, e.g. 20GiB (gpus=auto)",
                        None, None),
    "max-util": ("int", None, "start on a GPU only while it is at most this percent busy (gpus=auto)", 0, 100),
    "dask": ("str", None, "a Dask cluster to send runs to: tcp://host:8786 or local:N", None, None),
}


def queue_form(hosts=QUEUE_HOSTS) -> dict:
    """``{"fields": [...], "hosts", "path", "method"}``: each queue flag as
    a form field (``name`` is the JSON field ``POST queues`` takes, ``flag``
    how ``%guild queue`` spells it)."""
    from ..queueing.config import QUEUE_FLAGS  # lazy: the queue machinery, for a snapshot only

    fields = []
    for flag in QUEUE_FLAGS:
        kind, default, help_text, low, high = _FLAG_TABLE.get(flag, ("str", None, "", None, None))
        fields.append({"name": flag.replace("-", "_"), "flag": flag, "type": kind, "default": default,
                       "help": help_text, "min": low, "max": high, "choices": None})
    return {"fields": fields, "hosts": list(hosts), "path": "queues", "method": "POST"}
