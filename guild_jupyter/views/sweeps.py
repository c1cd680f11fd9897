"""A sweep as a unit: its table of trials, as every viewer shows it (the
live sweep view in JupyterLab, REST's ``GET sweeps/<id>``, the notebook
fallback, the CLI's ``sweep``). The contract is ``coord/SWEEP.md``.

The runs of a sweep are the trials one ``run`` call made, their retries
and their restages. A retry belongs to the trial it retries: trials are
listed in the order they were made, each followed by its retries
(``trial``: the id of the run it retries first, ``attempt``: 0 for the run
itself). Columns are the flags that vary among the trials, then status,
progress, the main scalar now and the best value it reached. The best
trial is chosen among the runs of one op only (a sweep made by one call
has one), by the main scalar's last value, as ``compare`` chooses it:
lowest for a cost-like name (``lower_is_better``), highest otherwise.

Progress: the step the main scalar was last logged at, out of the number a
flag names when there is one (``epochs``, ``steps``, ``max_steps``, ...:
``epoch 4/10`` counts the ``epoch`` values logged), and the time it has
run. ``version`` moves when a trial's row changes (its status, flags,
label, a trial added or gone), not with scalars.
"""

from __future__ import annotations

import json
import math
import time
import zlib

from ..store.run import COMPLETED, ERROR, PENDING, RUNNING, STAGED, TERMINATED
from .actions import open_sweep_action
from .runs import DISPLAY_STATUSES, UNSTAGED, run_row, status_of
from .words import elapsed_text, flags_text, format_flag, format_value, jsonable, lower_is_better, plural, \
    varying_flags

__all__ = ["sweep_table", "sweep_brief", "sweep_entry", "main_tag_of", "TOTAL_FLAGS", "progress", "STATUS_ORDER"]

#: Flags whose value is how far a run goes, and the unit it counts.
TOTAL_FLAGS = (("epochs", "epoch"), ("num_epochs", "epoch"), ("n_epochs", "epoch"), ("max_epochs", "epoch"),
               ("steps", "step"), ("num_steps", "step"), ("max_steps", "step"), ("n_steps", "step"),
               ("train_steps", "step"), ("iterations", "step"), ("iters", "step"), ("max_iter", "step"),
               ("max_iters", "step"))
#: How a table sorts statuses: going first, then waiting, then ended.
STATUS_ORDER = {s: i for i, s in enumerate((RUNNING, PENDING, STAGED, ERROR, TERMINATED, COMPLETED, UNSTAGED))}
#: How a sweep's summary counts each status, in its order.
_COUNT_WORDS = ((RUNNING, "running"), (PENDING, "pending"), (STAGED, "staged"), (COMPLETED, "completed"),
                (ERROR, "failed"), (TERMINATED, "terminated"), (UNSTAGED, "unstaged"))


def _count(v):
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _chains(runs) -> list[list]:
    """The trials, in the order they were made, each as [the run, its
    retries by attempt]."""
    ids = {r.id for r in runs}
    chains: dict = {}
    for r in runs:
        origin = r.get("retry_origin") if _count(r.get("retry_attempt")) else None
        key = origin if isinstance(origin, str) and origin in ids else r.id
        chains.setdefault(key, []).append(r)
    out = []
    for key, members in chains.items():
        members.sort(key=lambda r: (0 if r.id == key else 1, _count(r.get("retry_attempt")) or 0, r.id))
        out.append(members)

    def made(members):
        first = members[0]
        t = first.get("initialized")
        return (t if isinstance(t, int) and not isinstance(t, bool) else first.timestamp, first.id)

    out.sort(key=made)
    return out


def main_tag_of(summaries, scalar: str | None = None) -> str | None:
    """The main scalar of runs of one op: ``scalar``, else ``loss`` when
    one logged it, else the first tag logged (in trial order)."""
    if scalar:
        return scalar
    tags = [t for s in summaries for t in s]
    return "loss" if "loss" in tags else (tags[0] if tags else None)


def _number_cell(value) -> dict:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        return {"text": format_value(v), "sort": v if math.isfinite(v) else None}
    return {"text": "", "sort": None}


def _flag_cell(flags: dict, name: str) -> dict:
    if name not in flags:
        return {"text": "", "sort": None}
    v = flags[name]
    if isinstance(v, bool):
        sort = int(v)
    elif isinstance(v, (int, float)):
        sort = v if math.isfinite(v) else None
    else:
        sort = format_flag(v)
    return {"text": format_flag(v), "sort": sort}


def progress(flags: dict, summary: dict, tag: str | None, status: str, elapsed) -> dict:
    """The progress cell: ``step 40/100 · 1m12s``, ``epoch 4/10 · 12s``,
    ``step 40 · 5s``; ``sort`` the fraction done (or the step)."""
    if status in (STAGED, PENDING, UNSTAGED):
        return {"text": "", "sort": None}
    total = unit = None
    for name, u in TOTAL_FLAGS:
        v = flags.get(name)
        if _count(v):
            total, unit = v, u
            break
    now = None
    if unit == "epoch" and "epoch" in summary:
        now = summary["epoch"].count
    elif tag is not None and tag in summary and summary[tag].last_step is not None:
        now, unit = summary[tag].last_step, "step"
    parts = []
    if now is not None:
        parts.append(f"{unit} {now}/{total}" if total else f"{unit} {now}")
    took = elapsed_text(elapsed)
    if took:
        parts.append(took)
    sort = (now / total if total else float(now)) if now is not None else None
    return {"text": " · ".join(parts), "sort": sort}


def sweep_table(sweep_id: str, runs, summaries: dict, *, scalar: str | None = None, now_us: int | None = None,
                store: str = "") -> dict:
    """The sweep's table (``coord/SWEEP.md``): ``runs`` its runs (any
    order), ``summaries`` {run id: {tag: TagSummary}} (``charts.summary``),
    ``scalar``: the main scalar (default ``loss``, else the first logged)."""
    if now_us is None:
        now_us = time.time_ns() // 1000
    chains = _chains(runs)
    ordered = [r for members in chains for r in members]
    ops = list(dict.fromkeys(r.op_name for r in ordered))
    op = ops[0] if ops else ""
    varying = varying_flags([r.flags for r in ordered])
    tags = sorted({t for r in ordered for t in summaries.get(r.id, {})})
    main_runs = [r for r in ordered if r.op_name == op]
    tag = main_tag_of([summaries.get(r.id, {}) for r in main_runs], scalar)
    direction = None if tag is None else ("min" if lower_is_better(tag) else "max")
    best_id, best_value = None, None
    if tag is not None:
        for r in main_runs:
            t = summaries.get(r.id, {}).get(tag)
            v = None if t is None else t.last
            if v is None or not math.isfinite(v):
                continue
            if best_value is None or (v < best_value if direction == "min" else v > best_value):
                best_id, best_value = r.id, v
    counts: dict = {}
    trials = []
    points = []
    for members in chains:
        origin = members[0].id
        for r in members:
            summary = summaries.get(r.id, {})
            t = summary.get(tag) if tag is not None else None
            main = None if t is None else {"tag": tag, "value": jsonable(t.last), "step": t.last_step}
            # no sparkline: a trial's row shows its series in the view's charts, and
            # drawing 100 of them a second was a third of the table's time
            row = run_row(r, now_us=now_us, varying=varying, scalar=tag, scalar_values=(main, []))
            status = row["status"]
            counts[status] = counts.get(status, 0) + 1
            reached = None if t is None else (t.low if direction == "min" else t.high)
            flags = r.flags
            row.update({
                "sweep": sweep_id,
                "trial": origin,
                "attempt": 0 if r.id == origin else (_count(r.get("retry_attempt")) or 0),
                "retry_of": r.get("retry_of") if isinstance(r.get("retry_of"), str) else None,
                "is_best": r.id == best_id,
                "flags_hover": flags_text({k: flags[k] for k in varying if k in flags}) or flags_text(flags),
                "cells": {
                    **{f"flag:{k}": _flag_cell(flags, k) for k in varying},
                    "status": {"text": row["status_text"], "sort": STATUS_ORDER.get(status, 99)},
                    "progress": progress(flags, summary, tag, status, row["elapsed"]),
                    "scalar": _number_cell(None if t is None else t.last),
                    "best": _number_cell(reached),
                },
            })
            trials.append(row)
            points.append({"run": r.id, "flags": jsonable({k: flags[k] for k in varying if k in flags}),
                           "final": _finite(None if t is None else t.last), "best": _finite(reached)})
    ntrials = len(chains)
    retries = len(trials) - ntrials
    title = f"{op} · {plural(ntrials, 'trial')}" + (f" ({plural(retries, 'retry', 'retries')})" if retries else "")
    columns = ([{"key": f"flag:{k}", "title": k, "kind": "flag"} for k in varying]
               + [{"key": "status", "title": "status", "kind": "status"},
                  {"key": "progress", "title": "progress", "kind": "text"},
                  {"key": "scalar", "title": tag or "scalar", "kind": "number"},
                  {"key": "best", "title": f"best {tag}" if tag else "best", "kind": "number"}])
    version_key = json.dumps([[row["id"], row["status"], row["status_text"], row["label"], row["flags"],
                               row["exit_status"], row["retry_text"], row["is_best"]] for row in trials]
                             + [tag, tags], sort_keys=True, default=str)
    return {
        "id": sweep_id,
        "store": store,
        "title": title,
        "op": op,
        "ops": ops,
        "counts": counts,
        "summary_text": _summary_text(counts),
        "version": zlib.crc32(version_key.encode("utf-8")),
        "columns": columns,
        "flags": varying,
        "scalar": None if tag is None else {
            "tag": tag, "direction": direction, "best_text": f"{'lowest' if direction == 'min' else 'highest'} {tag}"},
        "best": best_id,
        "tags": tags,
        "x_axes": ["step", "time"] + [t for t in tags if t not in ("step", "time")],
        "statuses": [s for s in DISPLAY_STATUSES if s in counts],
        "trials": trials,
        "hparams": {"flags": varying, "points": points},
        "actions": [],
    }


def sweep_brief(table: dict) -> dict:
    """What of a sweep's table moves while its ``version`` does not (the
    trials' cells: progress, the main scalar now and its best; the
    flags-against-results points): a viewer polling every second that
    holds the table of that version needs only this (``brief``), a tenth
    of the whole for 100 trials."""
    return {"id": table["id"], "version": table["version"], "brief": True,
            "trials": [{"id": t["id"], "cells": t["cells"]} for t in table["trials"]],
            "hparams": table["hparams"]}


def _finite(v):
    return v if isinstance(v, float) and math.isfinite(v) else None


def _summary_text(counts: dict) -> str:
    """``2 running · 3 staged · 1 completed`` (the statuses it has)."""
    return " · ".join(f"{counts[s]} {word}" for s, word in _COUNT_WORDS if counts.get(s)) or "no runs"


def sweep_entry(sweep_id: str, runs) -> dict:
    """A sweep as the sidebar lists it (``sweeps`` of a snapshot): ``{id,
    title, summary_text, op, runs, counts, time, open_action}``. Read from
    what a listing knows (a snapshot lists it on every change): its runs,
    retries included, are counted, not its trials."""
    counts: dict = {}
    for r in runs:
        s = status_of(r)
        counts[s] = counts.get(s, 0) + 1
    first = min(runs, key=lambda r: (r.timestamp, r.id)) if runs else None
    op = first.op_name if first is not None else ""
    return {"id": sweep_id, "title": f"{op} · {plural(len(runs), 'run')}", "summary_text": _summary_text(counts),
            "op": op, "runs": len(runs), "counts": counts, "time": max((r.timestamp for r in runs), default=0),
            "open_action": open_sweep_action(sweep_id)}
