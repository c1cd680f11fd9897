"""The comparison table: runs side by side with their flags and last scalars.

``CompareTable.build`` takes the runs already selected (``api.compare``
filters them) and decides what a person needs to judge a sweep:

- only the flags that differ among the runs are columns (a single run shows
  all of its flags; ``all_flags`` shows every one);
- ``sort``: a flag or scalar name, ascending, or ``-NAME`` descending; a
  name that is both a flag and a scalar means the scalar, ``=NAME`` the flag
  (Guild's column spec for flags). Runs without a value sort last either
  way; an unknown name is a ``BadInput`` naming the known ones;
- the best run is marked: the first run by the sort key when there is one,
  else by the main scalar (``scalar``, else ``loss``, else the first scalar
  logged), lowest for names that read as a cost (:func:`lower_is_better`:
  loss, error, mse, perplexity, ...), highest otherwise;
- what could be read of a truncated or corrupt event file is shown, with a
  warning line naming the file.
"""

from __future__ import annotations

import math
import re

from . import views
from .errors import BadInput
from .store.scalars import reader as scalarlib

__all__ = ["CompareTable", "lower_is_better", "parse_sort"]

_COST_WORDS = re.compile(r"(^|[^a-z])(loss|error|err|mse|mae|rmse|nll|perplexity|ppl|wer|cer|regret|"
                         r"time|latency|duration|cost)($|[^a-z])")


def lower_is_better(name: str) -> bool:
    """Whether the best value of a scalar is its lowest: a name with a cost
    word in it (``loss``, ``val_loss``, ``error_rate``, ``train/mse``)."""
    return bool(_COST_WORDS.search(name.lower()))


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
    the runs; ``best``: ``(run id, column, "min"|"max")`` or None;
    ``warnings``: event files that could be read only in part."""

    def __init__(self, rows: list[dict], flag_names: list[str], scalar_names: list[str], best=None,
                 warnings=(), all_flag_names=None, sort: str | None = None):
        self.rows = rows
        self.flag_names = flag_names
        self.scalar_names = scalar_names
        self.best = best
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
        best = None
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
            if present:
                best = (present[0]["id"], name, "max" if desc else "min")
        else:
            main = scalar or ("loss" if "loss" in scalar_names else (scalar_names[0] if scalar_names else None))
            if main is not None:
                values = [row for row in rows if isinstance(row["scalars"].get(main), float)
                          and not math.isnan(row["scalars"][main])]
                if values:
                    low = lower_is_better(main)
                    pick = min if low else max
                    chosen = pick(values, key=lambda row: row["scalars"][main])
                    best = (chosen["id"], main, "min" if low else "max")
        if best is not None:
            for row in rows:
                row["best"] = row["id"] == best[0]
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

    def best_text(self) -> str:
        if self.best is None:
            return ""
        run_id, name, how = self.best
        word = {"min": "lowest", "max": "highest"}[how]
        return f"* best: {run_id[:8]} ({word} {name})"

    def _notes(self) -> list[str]:
        lines = [self.best_text()] if self.best else []
        return lines + [f"warning: {w}" for w in self.warnings]

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


def _known(flag_names, scalar_names, flags: bool = True) -> str:
    parts = [f"known scalars: {', '.join(sorted(scalar_names)) or '(none)'}"]
    if flags:
        parts.append(f"flags: {', '.join(sorted(flag_names)) or '(none)'} (=NAME for a flag named like a scalar)")
    return "; ".join(parts)
