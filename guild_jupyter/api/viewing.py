"""For the viewers: the comparison table and the store monitor (panel,
``/guild`` page, REST)."""

from __future__ import annotations

from .. import validate, views
from ..display import CompareTable
from ..errors import BadInput
from .conflicts import refuse_conflicts
from .selection import resolve_all, resolve_store, sweep_runs


def compare(*refs, store=None, listing=None, status=None, op: str | None = None, label: str | None = None,
            sort: str | None = None, all_flags: bool = False, scalar: str | None = None, sweep: str | None = None):
    """Flags and last scalar values per run, as a ``CompareTable``; the
    best run marked per op.

    Runs: those named (ids, prefixes, indices, ranges, sweep ids), else
    every non-queue run, newest first; kept when they match every filter
    given: ``status`` (one or several), ``op`` and ``label`` (text
    contained, as ``runs`` and Guild filter), ``sweep`` (a sweep id: its
    runs). ``sort``: a flag or scalar, ``-NAME`` for descending, ``=NAME``
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
    validate.text("sweep", sweep)
    refuse_conflicts("compare", sort=sort, scalar=scalar)
    st = resolve_store(store)
    statuses = _statuses(status)
    targets = _targets(st, refs, listing, sweep)
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


def _targets(st, refs, listing, sweep):
    """The runs named (sweep ids included), else every non-queue run; with
    ``sweep``, only that sweep's (an unknown sweep is a ``BadInput``)."""
    if sweep is not None:
        members = sweep_runs(st, sweep)
        if not refs:
            return members
        ids = {r.id for r in members}
        return [r for r in resolve_all(st, refs, listing) if r.id in ids]
    return resolve_all(st, refs, listing) if refs else [r for r in st.runs() if not r.is_queue]


#: Points a plotted line keeps at most: a longer series is thinned to each
#: bucket's lowest and highest value (``charts.thin_indices``), more than a
#: 7-inch figure's pixel columns can show apart, so the curve looks the same.
PLOT_POINTS = 2_000


def curves(*refs, scalar: str = "loss", op: str | None = None, sweep: str | None = None, x: str = "step",
           store=None, listing=None) -> list[dict]:
    """Every value of one scalar per run, for plots: ``[{"id", "op",
    "flags", "varying", "x", "values", "errors"}]`` (``x`` and ``values``:
    numpy arrays) for each run named (default: every non-queue run; or a
    ``sweep``'s) that logged it. ``x``: ``step`` (default), ``time``
    (seconds since the run started) or a scalar logged alongside (its value
    at the same step). ``varying``: the flags that differ among those runs.
    No run logging the scalar, or an ``x`` that is neither, is a
    ``BadInput`` naming the scalars they did log."""
    validate.run_refs(refs)
    validate.store(store)
    validate.listing(listing)
    validate.text("scalar", scalar, optional=False)
    validate.text("op", op)
    validate.text("sweep", sweep)
    validate.text("x", x, optional=False)
    if not scalar:
        raise BadInput("scalar must name a scalar, e.g. loss")
    from .. import charts  # lazy: numpy loads with a chart, never with a listing

    st = resolve_store(store)
    targets = [r for r in _targets(st, refs, listing, sweep) if op is None or op in r.op_name]
    if not targets:
        raise BadInput("no runs to plot" + (f" with op {op!r}" if op else ""))
    known: set = set()
    out = []
    for r in targets:  # one pass: the names are checked against the tags met on the way
        read = charts.read_run(r.dir, tags=[scalar], x=x, points=PLOT_POINTS, started_us=r.started)
        known |= read.tags
        xs, ys = read.series.get(scalar, ((), ()))
        if len(xs):
            out.append({"id": r.id, "op": r.op_name, "flags": r.flags, "x": xs, "values": ys,
                        "errors": read.errors, "thinned": read.thinned})
    if scalar not in known:
        raise BadInput(f"no run logged scalar {scalar!r}; known scalars: {', '.join(sorted(known)) or '(none)'}")
    check_x_axis(x, known)
    if not out:  # logged, but never at a step the x tag was logged at
        raise BadInput(f"no value of {scalar!r} was logged at a step where {x!r} was")
    varying = views.varying_flags([c["flags"] for c in out])
    for c in out:
        c["varying"] = [k for k in varying if k in c["flags"]]
    return out


def check_x_axis(x: str, known) -> None:
    """``BadInput`` (one line naming the choices) unless ``x`` is ``step``,
    ``time`` or one of the ``known`` tags."""
    if x in ("step", "time") or x in known:
        return
    raise BadInput(f"x axis {x!r} is neither step, time nor a logged scalar; known scalars: "
                   f"{', '.join(sorted(known)) or '(none)'}")


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
