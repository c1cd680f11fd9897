"""Sweeps as units, and runs' series for charts: the table of a sweep, the
sweeps a store has, its view in a notebook, and the points logged since
what a viewer already has (REST's ``scalars``, the live sweep view).

Series answers (``scalars``, ``sweep_scalars``) are incremental: each
carries a ``token``, and asking with it gives only the points logged
since. Tokens name cursors this process keeps (``charts.Tokens``: short
strings, bounded); an unknown one (another process, too old) is answered
from the start with ``reset: true``, never with wrong points.
"""

from __future__ import annotations

import time

from .. import validate, views
from ..errors import BadInput
from ..store.run import FINISHED
from .selection import is_sweep_ref, resolve_all, resolve_store, sweep_runs

__all__ = ["sweep_table", "sweeps", "scalars", "sweep_scalars", "sweep_view", "newest_sweep"]

#: Sweeps a snapshot lists for the sidebar.
RECENT_SWEEPS = 10

_tokens = None


def _token_store():
    global _tokens
    if _tokens is None:
        from ..charts import Tokens  # lazy: numpy loads with a chart, never with a listing

        _tokens = Tokens()
    return _tokens


def _summaries(runs) -> dict:
    from .. import charts  # lazy: as above

    return {r.id: charts.summary(r.dir)[0] for r in runs}


def sweep_table(sweep: str, *, scalar: str | None = None, store=None, exact: bool = True) -> dict:
    """The sweep's table of trials, as every viewer shows it
    (``views.sweep_table``; ``coord/SWEEP.md``). ``sweep``: its id (or a
    unique prefix); ``scalar``: the main scalar (default ``loss``, else the
    first logged; one no trial logged is a ``BadInput``); ``exact``: every
    run stat'ed now (False: the listing index's own cadence, for viewers
    asking every second)."""
    validate.text("sweep", sweep, optional=False)
    validate.text("scalar", scalar)
    validate.store(store)
    st = resolve_store(store)
    runs = sweep_runs(st, sweep, exact=exact)
    summaries = _summaries(runs)
    if scalar is not None:
        known = {t for s in summaries.values() for t in s}
        if scalar not in known:
            raise BadInput(f"no trial of sweep {runs[0].sweep} logged scalar {scalar!r}; "
                           f"known scalars: {', '.join(sorted(known)) or '(none yet)'}")
    return views.sweep_table(runs[0].sweep, runs, summaries, scalar=scalar, store=st.home)


def sweeps(*, store=None, limit: int = RECENT_SWEEPS, min_trials: int = 2, exact: bool = True) -> list[dict]:
    """The newest sweeps of the store (by their newest run), at most
    ``limit``, of ``min_trials`` runs or more: ``views.sweep_entry`` each
    (id, title, summary_text, counts, open_action)."""
    validate.store(store)
    validate.count("limit", limit)
    st = resolve_store(store)
    return recent_sweeps(st.runs(include_queues=False) if exact else _indexed_runs(st), limit, min_trials)


def recent_sweeps(runs, limit: int = RECENT_SWEEPS, min_trials: int = 2) -> list[dict]:
    """``sweeps`` of a list of runs (a listing already made)."""
    by_sweep: dict = {}
    for r in runs:
        s = r.sweep
        if s is not None:
            by_sweep.setdefault(s, []).append(r)
    ranked = sorted(by_sweep.items(), key=lambda kv: max(r.timestamp for r in kv[1]), reverse=True)
    out = []
    for sweep_id, members in ranked:
        if len(members) >= min_trials:
            out.append(views.sweep_entry(sweep_id, members))
            if len(out) >= limit:
                break
    return out


def _indexed_runs(st):
    from ..store.index import RunIndex  # lazy: as in Store.runs

    index = RunIndex.for_store(st)
    index.update()
    with index.lock:
        return [e.run() for e in index.entries.values() if not e.is_queue and e.sweep is not None]


def newest_sweep(store=None) -> str:
    """The sweep of this process's newest ``run`` call in that store, else
    the store's newest sweep; a store without sweeps is a ``BadInput``."""
    from .starting import LAST_SWEEP  # lazy: starting brings the run machinery, which viewers never need

    st = resolve_store(store)
    last = LAST_SWEEP.get(st.home)
    if last is not None:
        return last
    found = recent_sweeps(st.runs(include_queues=False), 1, 1)
    if not found:
        raise BadInput(f"no sweep in {st.home} yet: run a script (every run call makes a sweep)")
    return found[0]["id"]


def sweep_view(sweep: str | None = None, *, scalar: str | None = None, store=None):
    """A sweep's view (default: the newest ``run`` call's): in JupyterLab
    the live sweep view (the MIME type ``application/vnd.guild-jupyter.
    sweep+json``, rendered by the Guild extension from the server's REST
    API, so it keeps working after a kernel restart); elsewhere its table
    and a plot of the main scalar (``text/html``); as text, its table."""
    validate.text("sweep", sweep)
    st = resolve_store(store)
    sweep = sweep or newest_sweep(st)
    table = sweep_table(sweep, scalar=scalar, store=st)
    from ..sweep_display import SweepView  # lazy: a display object, as display's are for their verbs

    return SweepView(table, st.home, scalar=scalar)


# -- series ------------------------------------------------------------------------------------


def _main_tag(runs) -> str | None:
    """The main scalar as ``sweep_table`` picks it: ``loss`` when an index
    names it (no point read), else from the runs' summaries (what the
    table reads anyway)."""
    from .. import charts  # lazy: as above

    if charts.indexes_name([r.dir for r in runs], "loss"):
        return "loss"
    return views.main_tag_of([charts.summary(r.dir)[0] for r in runs])


def _series_args(tags, x, points):
    if tags is not None:
        if isinstance(tags, str):
            tags = [t for t in tags.split(",") if t]
        if not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) and t for t in tags):
            raise BadInput("tags must be a list of scalar names")
        tags = tuple(dict.fromkeys(tags)) or None
    validate.text("x", x)
    from ..charts import DEFAULT_POINTS, MAX_POINTS, MIN_POINTS  # lazy: numpy loads with a chart

    if points is None:
        points = DEFAULT_POINTS
    validate.count("points", points)
    if not MIN_POINTS <= points <= MAX_POINTS:
        raise BadInput(f"points must be from {MIN_POINTS} to {MAX_POINTS}, not {points}")
    return tags, x, points


def _check_names(tags, x, known: set, what: str) -> None:
    known_text = ", ".join(sorted(known)) or "(none yet)"
    for t in tags or ():
        if t not in known:
            raise BadInput(f"{what} logged scalar {t!r}; known scalars: {known_text}")
    if x is not None and x not in ("step", "time") and x not in known:
        raise BadInput(f"x axis {x!r} is neither step, time nor a logged scalar; known scalars: {known_text}")


def _read(runs, since, tags, x, points, what: str) -> dict:
    """The points of ``runs`` since token ``since`` (see the module docstring)."""
    from .. import charts  # lazy: numpy loads with a chart

    tokens = _token_store()
    state = tokens.get(since) if since else None
    if state is not None and (state["x"] != x or state["tags"] != tags):
        state = None
    reset = bool(since) and state is None
    known_tags = set()
    cursors = {} if state is None else state["runs"]
    ended = all(views.status_of(r) in FINISHED + (views.UNSTAGED,) for r in runs)  # before reading: all of it is read
    series, errors, new_cursors = {}, [], {}
    thinned = False
    for r in runs:
        read = charts.read_run(r.dir, cursors.get(r.id), tags=tags, x=x, points=points, started_us=r.started)
        if read.reset and r.id in cursors:
            reset = True
        new_cursors[r.id] = read.cursor
        known_tags |= read.tags
        errors += [f"run {r.id[:8]}: {e}" for e in read.errors]
        thinned = thinned or read.thinned
        got = {tag: charts.point_lists(px, py, read.times.get(tag) if x is None else None)
               for tag, (px, py) in read.series.items() if len(px)}
        if got:
            series[r.id] = got
    if reset and state is not None:  # a file replaced under one run: everything again, from the start
        return _read(runs, None, tags, x, points, what) | {"reset": True}
    if state is None:  # a first read (or a reset) read everything: the names are checked against it
        _check_names(tags, x, known_tags, what)
    else:
        known_tags |= state["known"]
    token = tokens.put({"x": x, "tags": tags, "runs": new_cursors, "known": known_tags}, since)
    return {"token": token, "x": x or "step", "tags": sorted(known_tags), "series": series, "reset": reset,
            "thinned": thinned, "done": ended, "errors": errors}


def scalars(ref, since: str | None = None, *, tags=None, x: str | None = None, points: int | None = None,
            store=None) -> dict:
    """A run's points logged since token ``since`` (None: every point):
    ``{"token", "x", "tags", "series": {tag: [[x, y], ...]}, "reset",
    "thinned", "done", "errors"}``. ``tags``: the tags wanted (None: every
    one); ``x``: ``step``, ``time`` (seconds since the run started) or a tag
    logged alongside (the value it has at the same step); None: points are
    ``[step, value, time]``. ``points``: at most this many per series (a
    longer one is thinned, keeping each stretch's extremes). A tag the run
    never logged, or an x axis that is none of those, is a ``BadInput``
    naming the tags it did log."""
    validate.run_ref(ref)
    validate.text("since", since)
    validate.store(store)
    tags, x, points = _series_args(tags, x, points)
    st = resolve_store(store)
    runs = resolve_all(st, [ref])
    if len(runs) != 1:
        raise BadInput(f"{ref!r} names {len(runs)} runs; give one run (sweep_scalars reads a sweep)")
    out = _read(runs, since, tags, x, points, f"run {runs[0].id[:8]} never")
    out["series"] = out["series"].get(runs[0].id, {})
    out["id"] = runs[0].id
    return out


def sweep_scalars(sweep: str, since: str | None = None, *, tags=None, x: str | None = None,
                  points: int | None = None, main: bool = False, store=None, exact: bool = True,
                  brief: bool = False) -> dict:
    """``scalars`` for every run of a sweep in one answer: ``series`` is
    ``{run id: {tag: [[x, y], ...]}}`` (runs with nothing new left out).
    ``main``: instead of ``tags``, the sweep's main scalar (the table's:
    ``loss`` when a trial logged it, else the first logged), named in the
    answer's ``main`` (None, and no series, while no trial logged one): a
    view asks for it along with the table, before it knows the table.
    ``brief``: the answer also carries ``table``, the sweep table's brief
    (``views.sweep_brief``) made from the same listing of its runs: a live
    view's second in one call, the store looked at once."""
    validate.text("sweep", sweep, optional=False)
    validate.text("since", since)
    validate.store(store)
    tags, x, points = _series_args(tags, x, points)
    if main and tags is not None:
        raise BadInput("give tags or main, not both")
    if not is_sweep_ref(sweep):
        raise BadInput(f"bad sweep id {sweep!r}: a sweep id is s and 8 hex digits, like s3f9a2c1d")
    st = resolve_store(store)
    runs = sweep_runs(st, sweep, exact=exact)
    t0, c0 = time.monotonic(), time.thread_time()
    main_tag = None
    if main:
        main_tag = _main_tag(runs)
        if main_tag is None:
            return {"token": None, "x": x or "step", "tags": [], "series": {}, "reset": False, "thinned": False,
                    "done": False, "errors": [], "main": None, "id": runs[0].sweep}
        tags = (main_tag,)
    out = _read(runs, since, tags, x, points, f"no trial of sweep {runs[0].sweep}")
    if main:
        out["main"] = main_tag
    out["id"] = runs[0].sweep
    if brief:
        out["table"] = views.sweep_brief(views.sweep_table(runs[0].sweep, runs, _summaries(runs), store=st.home))
    # what reading cost, wall and this thread's CPU (a loaded machine stretches the first, not the second)
    out["read_ms"] = round((time.monotonic() - t0) * 1000, 1)
    out["read_cpu_ms"] = round((time.thread_time() - c0) * 1000, 1)
    return out
