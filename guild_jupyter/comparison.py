"""The comparison table: runs side by side with their flags and last scalars.

``CompareTable.build`` takes the runs already selected (``api.compare``
filters them) and decides what a person needs to judge a sweep:

- only the flags that differ among the runs are columns (a single run shows
  all of its flags; ``all_flags`` shows every one);
- ``sort``: a flag or scalar name, ascending, or ``-NAME`` descending; a
  name that is both a flag and a scalar means the scalar, ``=NAME`` the flag
  (Guild's column spec for flags). Runs without a value sort last either
  way; an unknown name is a ``BadInput`` naming the known ones;
- the best run is marked **per op** (runs of different scripts never
  compete: their scalars mean different things): the first run of the op
  by the sort key when there is one, else by the op's main scalar
  (``scalar``, else ``loss``, else the first scalar its runs logged),
  lowest for names that read as a cost (:func:`lower_is_better`: loss,
  error, mse, perplexity, ...), highest otherwise; the table says which
  ("* best: ab12cd34 (lowest loss)", one line per op);
- what could be read of a truncated or corrupt event file is shown, with a
  warning line naming the file.
"""

from __future__ import annotations

import math

from . import views
from .errors import BadInput
from .views import lower_is_better  # re-exported: the sweep view uses the same rule
from .store.scalars import reader as scalarlib

__all__ = ["CompareTable", "lower_is_better", "parse_sort", "best_of", "main_scalar_of", "direction_text"]



def parse_sort(key: str) -> tuple[str, bool, bool]:
    """``(name, descending, flag)`` of ``loss``, ``-loss``, ``=lr``, ``-=lr``."""
    desc = key.startswith("-")
    name = key[1:] if desc else key
    flag = name.startswith("=")
    return (name[1:] if flag else name), desc, flag


def _order_key(v):
    """Numbers (bools as 0/1) before text; NaN counts as no value."""
    if isinstance(v, (int, float)):
        return (0, float(v))
    return (1, str(v))


def _has(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


class CompareTable:
    """Runs with their flags and last scalar values, one column each.
    ``flag_names``: the flag columns shown; ``all_flag_names``: every flag of
    the runs; ``best``: ``{op: (run id, column, "min"|"max")}``, the best run
    of each op that has one; ``warnings``: event files that could be read
    only in part."""

    def __init__(self, rows: list[dict], flag_names: list[str], scalar_names: list[str], best=None,
                 warnings=(), all_flag_names=None, sort: str | None = None):
        self.rows = rows
        self.flag_names = flag_names
        self.scalar_names = scalar_names
        self.best = dict(best or {})
        self.warnings = list(warnings)
        self.all_flag_names = list(all_flag_names if all_flag_names is not None else flag_names)
        self.sort = sort

    @classmethod
    def build(cls, runs, sort: str | None = None, all_flags: bool = False, scalar: str | None = None):
        rows, flag_names, scalar_names, warnings = [], [], [], []
        for r in runs:
            rs = scalarlib.read(r.dir)
            status = views.status_of(r)
            warnings += [f"run {r.id[:8]}: {e}" for e in rs.errors]
            if rs.partial and status != views.RUNNING:
                warnings.append(f"run {r.id[:8]}: an event file ends with an incomplete record (not read)")
            rows.append({"id": r.id, "op": r.op_name, "status": status, "label": r.label, "started": r.started,
                         "flags": r.flags, "scalars": rs.values(),
                         "steps": {k: s for k, (s, _v) in rs.last.items()}, "best": False})
            for k in r.flags:
                if k not in flag_names:
                    flag_names.append(k)
            for k in rs.tags:
                if k not in scalar_names:
                    scalar_names.append(k)
        scalarlib.save()  # the next process decodes only what changed
        varying = views.varying_flags([row["flags"] for row in rows])
        ordered = [k for k in varying if k in flag_names] + [k for k in flag_names if k not in varying]
        shown = ordered if all_flags or len(rows) < 2 else [k for k in ordered if k in varying]
        if rows and scalar is not None and scalar not in scalar_names:
            raise BadInput(f"unknown scalar {scalar!r}; {_known(flag_names, scalar_names, flags=False)}")
        best = {}
        if sort and rows:  # (no runs: nothing to sort, no names to check against)
            name, desc, is_flag = parse_sort(sort)
            if not name or (is_flag and name not in flag_names) or (
                    not is_flag and name not in scalar_names and name not in flag_names):
                raise BadInput(f"unknown sort key {sort!r}; {_known(flag_names, scalar_names)}")
            where = "scalars" if not is_flag and name in scalar_names else "flags"
            present = [row for row in rows if _has(row[where].get(name))]
            missing = [row for row in rows if not _has(row[where].get(name))]
            present.sort(key=lambda row: _order_key(row[where][name]), reverse=desc)
            rows = present + missing
            for row in present:  # the first of each op
                best.setdefault(row["op"], (row["id"], name, "max" if desc else "min"))
        else:
            for op, members in _by_op(rows).items():
                chosen = best_of(members, scalar)
                if chosen is not None:
                    best[op] = chosen
        chosen_ids = {b[0] for b in best.values()}
        for row in rows:
            row["best"] = row["id"] in chosen_ids
        return cls(rows, shown, scalar_names, best, warnings, ordered, sort)

    def __len__(self):
        return len(self.rows)

    def _headers(self) -> tuple[list[str], list[str]]:
        """Column names; a name that is a flag of some runs and a scalar of
        others gets two columns that say which is which."""
        both = set(self.all_flag_names) & set(self.scalar_names)
        return ([f"{k} (flag)" if k in both else k for k in self.flag_names],
                [f"{k} (scalar)" if k in both else k for k in self.scalar_names])

    def table(self) -> tuple[list[str], list[list[str]]]:
        flag_heads, scalar_heads = self._headers()
        head = ["run", "op", "status"] + flag_heads + scalar_heads
        body = []
        for row in self.rows:
            body.append(
                [row["id"][:8] + (" *" if row["best"] else ""), row["op"], row["status"]]
                + [views.format_flag(row["flags"][k]) if k in row["flags"] else "" for k in self.flag_names]
                + [views.format_value(row["scalars"][k]) if k in row["scalars"] else "" for k in self.scalar_names]
            )
        return head, body

    def best_lines(self) -> list[str]:
        """``* best: ab12cd34 (lowest loss)``; with runs of several ops one
        line each: ``* best of train.py: ab12cd34 (lowest loss)``."""
        several = len({row["op"] for row in self.rows}) > 1
        return [f"* best{' of ' + op if several else ''}: {run_id[:8]} ({direction_text(how, name)})"
                for op, (run_id, name, how) in self.best.items()]

    def best_text(self) -> str:
        return "\n".join(self.best_lines())

    def _notes(self) -> list[str]:
        return self.best_lines() + [f"warning: {w}" for w in self.warnings]

    def __str__(self) -> str:
        if not self.rows:
            return "no runs to compare"
        head, body = self.table()
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + body]
        return "\n".join(lines + self._notes())

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        import html

        if not self.rows:
            return "<p>no runs to compare</p>"
        head, body = self.table()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join(
            ("<tr class='gj-best' style='font-weight:bold'>" if row["best"] else "<tr>")
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            for row, cells in zip(self.rows, body))
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self._notes())
        return f"<table class='guild-compare'><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>{notes}"

    def to_json(self) -> list[dict]:
        """Every run in the table's order: its flags (all of them), last
        scalar values and their steps, and whether it is the best."""
        return [{"id": r["id"], "op": r["op"], "status": r["status"], "label": r["label"],
                 "flags": views.jsonable(r["flags"]), "scalars": views.jsonable(r["scalars"]),
                 "steps": r["steps"], "best": r["best"]} for r in self.rows]

    def to_dataframe(self):
        """The table's columns (the flags shown, every scalar) and ``best``,
        values as numbers."""
        import pandas as pd

        flag_heads, scalar_heads = self._headers()
        return pd.DataFrame(
            [{"run": r["id"], "op": r["op"], "status": r["status"],
              **{h: r["flags"].get(k) for h, k in zip(flag_heads, self.flag_names)},
              **{h: r["scalars"].get(k) for h, k in zip(scalar_heads, self.scalar_names)},
              "best": r["best"]}
             for r in self.rows],
            columns=["run", "op", "status", *flag_heads, *scalar_heads, "best"],
        )


def _by_op(rows) -> dict:
    out: dict = {}
    for row in rows:
        out.setdefault(row["op"], []).append(row)
    return out


def main_scalar_of(rows, scalar: str | None = None) -> str | None:
    """The scalar that picks the best of ``rows`` (runs of one op):
    ``scalar``, else ``loss`` when one of them logged it, else the first
    scalar they logged."""
    if scalar:
        return scalar
    names = [k for row in rows for k in row["scalars"]]
    return "loss" if "loss" in names else (names[0] if names else None)


def best_of(rows, scalar: str | None = None):
    """``(run id, scalar, "min"|"max")`` of the best of ``rows`` (runs of
    one op) by its main scalar's last value, or None when none has one."""
    main = main_scalar_of(rows, scalar)
    if main is None:
        return None
    values = [row for row in rows if isinstance(row["scalars"].get(main), float)
              and not math.isnan(row["scalars"][main])]
    if not values:
        return None
    low = lower_is_better(main)
    chosen = (min if low else max)(values, key=lambda row: row["scalars"][main])
    return chosen["id"], main, "min" if low else "max"


def direction_text(how: str, name: str) -> str:
    """``lowest loss`` / ``highest acc``."""
    return f"{'lowest' if how == 'min' else 'highest'} {name}"


def _known(flag_names, scalar_names, flags: bool = True) -> str:
    parts = [f"known scalars: {', '.join(sorted(scalar_names)) or '(none)'}"]
    if flags:
        parts.append(f"flags: {', '.join(sorted(flag_names)) or '(none)'} (=NAME for a flag named like a scalar)")
    return "; ".join(parts)
