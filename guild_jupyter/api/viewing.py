"""For the viewers: the comparison table and the store monitor (panel,
``/guild`` page, REST)."""

from __future__ import annotations

from .. import validate, views
from ..display import CompareTable
from ..errors import BadInput
from ..store.scalars import reader as scalarlib
from .conflicts import refuse_conflicts
from .selection import resolve_all, resolve_store


def compare(*refs, store=None, listing=None, status=None, op: str | None = None, label: str | None = None,
            sort: str | None = None, all_flags: bool = False, scalar: str | None = None):
    """Flags and last scalar values per run, as a ``CompareTable``.

    Runs: those named (ids, prefixes, indices, ranges), else every non-queue
    run, newest first; kept when they match every filter given: ``status``
    (one or several), ``op`` and ``label`` (text contained, as ``runs``
    filters). ``sort``: a flag or scalar, ``-NAME`` for descending, ``=NAME``
    for a flag named like a scalar. ``all_flags``: every flag a column, not
    only the ones that differ. ``scalar``: the scalar that decides the best
    run when there is no sort key (default ``loss``, else the first one)."""
    validate.run_refs(refs)
    validate.store(store)
    validate.listing(listing)
    validate.statuses(status)
    validate.text("op", op)
    validate.text("label", label)
    validate.text("sort", sort)
    validate.text("scalar", scalar)
    validate.boolean("all_flags", all_flags)
    refuse_conflicts("compare", sort=sort, scalar=scalar)
    st = resolve_store(store)
    statuses = _statuses(status)
    targets = resolve_all(st, refs, listing) if refs else [r for r in st.runs() if not r.is_queue]
    targets = [r for r in targets
               if (statuses is None or views.status_of(r) in statuses or r.status in statuses)
               and (op is None or op in r.op_name) and (label is None or label in r.label)]
    return CompareTable.build(targets, sort=sort, all_flags=all_flags, scalar=scalar)


def _statuses(status):
    if status is None:
        return None
    wanted = {status} if isinstance(status, str) else set(status)
    bad = wanted - set(views.DISPLAY_STATUSES)
    if bad:
        raise BadInput(f"unknown status {sorted(bad)[0]!r} (expected one of {', '.join(views.DISPLAY_STATUSES)})")
    return wanted


def curves(*refs, scalar: str = "loss", op: str | None = None, store=None, listing=None) -> list[dict]:
    """Every value of one scalar per run, for plots: ``[{"id", "op",
    "flags", "varying", "steps", "values", "errors"}]`` for each run named
    (default: every non-queue run) that logged it. ``varying``: the flags
    that differ among those runs. No run logging it is a ``BadInput`` naming
    the scalars they did log."""
    validate.run_refs(refs)
    validate.store(store)
    validate.listing(listing)
    validate.text("scalar", scalar, optional=False)
    validate.text("op", op)
    if not scalar:
        raise BadInput("scalar must name a scalar, e.g. loss")
    st = resolve_store(store)
    targets = resolve_all(st, refs, listing) if refs else [r for r in st.runs() if not r.is_queue]
    targets = [r for r in targets if op is None or op in r.op_name]
    out = []
    for r in targets:
        data, errors = scalarlib.series(r.dir, tags=[scalar])  # only its points are kept
        points = data.get(scalar)
        if points:
            out.append({"id": r.id, "op": r.op_name, "flags": r.flags, "steps": [s for s, _v in points],
                        "values": [v for _s, v in points], "errors": errors})
    if not out:
        if not targets:
            raise BadInput("no runs to plot" + (f" with op {op!r}" if op else ""))
        known = {tag for r in targets for tag in scalarlib.read(r.dir).tags}
        raise BadInput(f"no run logged scalar {scalar!r}; known scalars: {', '.join(sorted(known)) or '(none)'}")
    varying = views.varying_flags([c["flags"] for c in out])
    for c in out:
        c["varying"] = [k for k in varying if k in c["flags"]]
    return out


def monitor(store=None, probe=None, page_size: int | None = None, scalar: str | None = None):
    """A ``StoreMonitor``: snapshots of what the store is doing (counts, queues,
    runs by group with waiting reasons, GPUs) as plain data, for the panel,
    the ``/guild`` page and the REST API. ``probe``: the GPU probe (default
    NVML, or the fake GPUs of ``$GUILD_JUPYTER_FAKE_GPUS``). ``scalar``: the
    scalar run rows show (default ``loss``, else each run's first)."""
    validate.store(store)
    validate.text("scalar", scalar)
    # lazy: the store monitor is the panel's and the page's, not compare's
    from ..monitor import DEFAULT_PAGE_SIZE, StoreMonitor
    from .queueing import queue_registry  # lazy: the queue machinery costs compare's start-up 30 ms

    return StoreMonitor(resolve_store(store), probe=probe, page_size=page_size or DEFAULT_PAGE_SIZE,
                        handles=queue_registry.list, scalar=scalar or None)
