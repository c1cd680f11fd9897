"""Which store and which runs: the Guild home a call names, and run
references (ids, prefixes, listing indices and ranges) made runs."""

from __future__ import annotations

from ..display import RunList
from ..errors import BadInput, RunDeleted
from ..store.run import Run
from ..store.home import check_home
from ..store.store import Store, parse_index_range


def resolve_store(store=None) -> Store:
    """An explicit Guild home (a path or Store), else the one Guild 0.9 would
    use (``$GUILD_HOME``, an activated env's ``.guild``, the nearest
    ``.guild`` up from the working directory, ``~/.guild``). A path that is a
    ``runs/`` directory, a run, or a file is an error."""
    if isinstance(store, Store):
        return store
    if store is not None:
        st = Store(store)
        check_home(st.home)
        return st
    return Store()


def resolve_all(st: Store, refs, listing=None) -> list[Run]:
    """Runs by id, id prefix, listing index or index range (Guild's rules),
    or a sweep id (``s3f9a2c1d``: the sweep's runs, see ``sweep_runs``),
    each once, in the order named."""
    if isinstance(refs, (str, Run)):
        refs = [refs]
    out, seen = [], set()
    for ref in refs:
        if isinstance(ref, Run):
            found = [ref]
        elif is_sweep_ref(ref):
            found = sweep_runs(st, ref)
        else:
            found = st.select([ref], listing)
        for r in found:
            if r.id not in seen:
                seen.add(r.id)
                out.append(r)
    return out


#: The Run made of each index entry a sweep's viewer last listed: ``{run id:
#: (entry, Run)}``. The index keeps an entry while the run's stamp holds
#: (any attr created, or rewritten by us, gives a new one), so a Run made
#: of the same entry keeps what it read of attrs the index does not list
#: (the retry and Dask attrs a trial's row shows): a view asking every
#: second opens them once, not 400 times a second for 100 trials.
_entry_runs: dict = {}
_ENTRY_RUNS_MAX = 5_000  # (a sweep of more trials is served as before: its runs made anew)


def _run_of(entry) -> Run:
    kept = _entry_runs.get(entry.id)
    if kept is not None and kept[0] is entry:
        return kept[1]
    if len(_entry_runs) >= _ENTRY_RUNS_MAX:
        _entry_runs.clear()
    run = entry.run()
    _entry_runs[entry.id] = (entry, run)
    return run


def is_sweep_ref(ref) -> bool:
    """Whether ``ref`` names a sweep: its id, or a unique prefix of it of
    at least ``s`` and 4 hex digits (no run id or prefix starts with ``s``)."""
    return (isinstance(ref, str) and 5 <= len(ref) <= 9 and ref[0] == "s"
            and all(c in "0123456789abcdef" for c in ref[1:]))


def sweep_runs(st: Store, sweep: str, exact: bool = True) -> list[Run]:
    """The runs of a sweep (the trials one ``run`` call made, and the
    retries and restages of them), newest first. ``sweep``: its id or a
    unique prefix (``is_sweep_ref``). An unknown or ambiguous one is a
    ``BadInput`` of one line naming the newest sweeps there are.
    ``exact``: every run stat'ed now, as every listing is (False: the
    listing index as its own cadence keeps it, for viewers that ask every
    second; see ``store.index``)."""
    if not is_sweep_ref(sweep):
        raise BadInput(f"bad sweep id {sweep!r}: a sweep id is s and 8 hex digits, like s3f9a2c1d")
    if exact:
        listed = st.runs(include_queues=False)
    else:
        from ..store.index import RunIndex  # lazy: as in Store.runs, the index (threading, json) loads with a listing

        index = RunIndex.for_store(st)
        index.update()
        with index.lock:
            entries = [e for e in index.entries.values() if e.sweep is not None and not e.is_queue]
        entries.sort(key=lambda e: (e.timestamp, e.id), reverse=True)
        listed = [_run_of(e) for e in entries]
    runs = [r for r in listed if r.sweep is not None and r.sweep.startswith(sweep)]
    ids = list(dict.fromkeys(r.sweep for r in runs))
    if len(ids) > 1:
        raise BadInput(f"sweep {sweep!r} is ambiguous: it starts {', '.join(ids[:5])}"
                       + (" ..." if len(ids) > 5 else ""))
    if not runs:
        known = list(dict.fromkeys(r.sweep for r in listed if r.sweep is not None))
        raise BadInput(f"no sweep {sweep!r} in {st.home}" + (
            f"; newest sweeps: {', '.join(known[:5])}" if known else " (it has no sweeps)"))
    return runs


def check_not_deleted(st: Store, *runs: Run) -> None:
    """Raises ``RunDeleted`` for the first of ``runs`` whose directory is
    gone, saying whether Guild's trash holds it (``guild runs restore``)."""
    for r in runs:
        if r.deleted:
            raise RunDeleted(r.id, st.in_trash(r.id))


def with_listing_indices(st: Store, runs: list[Run]) -> RunList:
    """Runs just created (``transitions.create``), newest first, numbered as
    ``runs`` (the full listing) numbers them, so an index means the same run
    in every listing. Without listing the store (staging costs the same in
    a store of 100,000 runs as in an empty one): a run just created is
    among the newest, its ``started`` (or ``initialized``) being now, and
    the runs of one call are numbered in their order. (A run created at the
    same moment by another process, or one whose clock runs ahead, can
    still come first in the next listing.)"""
    ordered = sorted(runs, key=lambda r: (r.timestamp, r.id), reverse=True)
    return RunList(ordered, indices=list(range(1, len(ordered) + 1)), store=st)


def listing_refs(refs, listing) -> list[str]:
    """Run references with indices and ranges (``3``, ``2:4``) into
    ``listing`` (a run list shown earlier) made full ids, each checked to
    still exist; ids, prefixes and numbers outside the listing are kept as
    they are (Guild reads those as id prefixes)."""
    import os

    if listing is None:
        return list(refs)
    out = []
    for ref in refs:
        span = parse_index_range(ref) if isinstance(ref, str) else None
        if span is not None and span[0] >= 0 and (span[1] is None or span[1] <= len(listing)):
            for i, r in enumerate(listing[span[0]:span[1]], span[0] + 1):
                if not os.path.isdir(r.dir):
                    raise BadInput(f"run {r.id[:8]} (index {i} of the latest listing) no longer exists")
                out.append(r.id)
        else:
            out.append(ref)
    return out


def store_home(store=None) -> str:
    """The Guild home ``store`` names (see ``resolve_store``)."""
    return resolve_store(store).home
