"""A table of runs with their flags and last scalar values."""

from __future__ import annotations

import html

from .store.events import last_scalars
from .store.store import format_flag_value


class CompareTable:
    def __init__(self, rows: list[dict], flag_names: list[str], scalar_names: list[str]):
        self.rows = rows
        self.flag_names = flag_names
        self.scalar_names = scalar_names

    @classmethod
    def build(cls, runs) -> "CompareTable":
        rows, flag_names, scalar_names = [], [], []
        for r in runs:
            scalars = {k: v for k, (_step, v) in last_scalars(r.dir).items()}
            rows.append({"id": r.id, "op": r.op_name, "status": r.status, "flags": r.flags, "scalars": scalars})
            for k in r.flags:
                if k not in flag_names:
                    flag_names.append(k)
            for k in scalars:
                if k not in scalar_names:
                    scalar_names.append(k)
        return cls(rows, flag_names, scalar_names)

    def __len__(self):
        return len(self.rows)

    def _headers(self) -> tuple[list[str], list[str]]:
        """Column names; a name that is a flag of some runs and a scalar of
        others gets two columns that say which is which."""
        both = set(self.flag_names) & set(self.scalar_names)
        return ([f"{k} (flag)" if k in both else k for k in self.flag_names],
                [f"{k} (scalar)" if k in both else k for k in self.scalar_names])

    def table(self) -> tuple[list[str], list[list[str]]]:
        flag_heads, scalar_heads = self._headers()
        head = ["run", "op", "status"] + flag_heads + scalar_heads
        body = []
        for row in self.rows:
            body.append(
                [row["id"][:8], row["op"], row["status"]]
                + [format_flag_value(row["flags"][k]) if k in row["flags"] else "" for k in self.flag_names]
                + [f"{row['scalars'][k]:.6g}" if k in row["scalars"] else "" for k in self.scalar_names]
            )
        return head, body

    def __str__(self) -> str:
        if not self.rows:
            return "no runs to compare"
        head, body = self.table()
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + body]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<p>no runs to compare</p>"
        head, body = self.table()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
        return f"<table class='guild-compare'><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    def to_json(self) -> list[dict]:
        return [{"id": r["id"], "op": r["op"], "status": r["status"], "flags": r["flags"], "scalars": r["scalars"]}
                for r in self.rows]

    def to_dataframe(self):
        import pandas as pd

        flag_heads, scalar_heads = self._headers()
        return pd.DataFrame(
            [{"run": r["id"], "op": r["op"], "status": r["status"],
              **{h: r["flags"][k] for h, k in zip(flag_heads, self.flag_names) if k in r["flags"]},
              **{h: r["scalars"][k] for h, k in zip(scalar_heads, self.scalar_names) if k in r["scalars"]}}
             for r in self.rows]
        )
