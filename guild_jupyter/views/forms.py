"""The 'start a queue' form as data (``queue_form``): what every front end
offers, from the one queue-flag table (``queueing.flags``: name, kind,
default, bounds, help), with where this viewer may host the queue."""

from __future__ import annotations

__all__ = ["queue_form", "QUEUE_HOSTS"]

#: Where ``POST /guild/api/queues`` may host a queue.
QUEUE_HOSTS = ("server", "detached")


def queue_form(hosts=QUEUE_HOSTS) -> dict:
    """``{"fields": [...], "hosts", "path", "method"}``: each queue flag as
    a form field (``queueing.flags.QueueFlag.as_dict``: ``name`` as
    ``%guild queue`` spells it, ``field`` the JSON field ``POST queues``
    takes, ``type`` its kind, ``default``, ``min``, ``max``, ``metavar``,
    ``choices``, ``help``, ``range``, ``auto_only``)."""
    from ..queueing.flags import queue_form as table_form  # lazy: a snapshot's only, not a CLI listing's

    return dict(table_form(), hosts=list(hosts))
