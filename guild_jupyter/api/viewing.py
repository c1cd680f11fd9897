"""For the viewers: the comparison table and the store monitor (panel,
``/guild`` page, REST)."""

from __future__ import annotations

from .. import validate
from .queueing import queue_registry
from .selection import _resolve_all, resolve_store


def compare(*refs, store=None, listing=None, status=None):
    """Flags and last scalar values per run (default: every non-queue run)."""
    validate.run_refs(refs)
    validate.store(store)
    validate.listing(listing)
    validate.statuses(status)
    from ..display import CompareTable

    st = resolve_store(store)
    targets = _resolve_all(st, refs, listing) if refs else [r for r in st.runs(status=status) if not r.is_queue]
    return CompareTable.build(targets)


def monitor(store=None, probe=None, page_size: int | None = None):
    """A ``StoreMonitor``: snapshots of what the store is doing (counts, queues,
    runs by group with waiting reasons, GPUs) as plain data, for the panel,
    the ``/guild`` page and the REST API. ``probe``: the GPU probe (default
    NVML, or the fake GPUs of ``$GUILD_JUPYTER_FAKE_GPUS``)."""
    validate.store(store)
    from ..monitor import DEFAULT_PAGE_SIZE, StoreMonitor

    return StoreMonitor(resolve_store(store), probe=probe, page_size=page_size or DEFAULT_PAGE_SIZE,
                        handles=queue_registry.list)
