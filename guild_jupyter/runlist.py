"""Run lists as objects: a table in a terminal, HTML in a notebook."""

from __future__ import annotations

import time

from .store.run import Run
from .store.store import format_flag_value


def fmt_time(us) -> str:
    if not isinstance(us, int):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us / 1e6))


def flags_text(flags: dict) -> str:
    return " ".join(f"{k}={format_flag_value(v)}" for k, v in flags.items())


class RunList(list):
    """A list of ``Run`` objects, newest first, with its listing indices:
    1, 2, ... by default, or the ones given (the runs' places in the full
    listing, e.g. for trials just staged)."""

    columns = ("#", "id", "op", "started", "status", "gpus", "label")

    def __init__(self, runs=(), indices=None):
        super().__init__(runs)
        self.indices = list(indices) if indices is not None else None

    def rows(self):
        numbers = self.indices if self.indices is not None and len(self.indices) == len(self) else None
        for n, r in enumerate(self):
            i = numbers[n] if numbers else n + 1
            yield (
                str(i),
                r.id[:8],
                r.op_name,
                fmt_time(r.started),
                r.status,
                r.gpus or "",
                r.label,
            )

    @property
    def warnings(self) -> list[str]:
        return [w for r in self for w in r.warnings]

    def __str__(self) -> str:
        if not self:
            return "no runs"
        lines = [f"[{i}:{rid}]  {op}  {started}  {status}{'  gpus=' + gpus if gpus else ''}  {label}".rstrip()
                 for i, rid, op, started, status, gpus, label in self.rows()]
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self) -> str:
        import html

        if not self:
            return "<p>no runs</p>"
        head = "".join(f"<th>{c}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in self.rows()
        )
        warn = "".join(f"<p>warning: {html.escape(w)}</p>" for w in self.warnings)
        return f"<table class='guild-runs'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{warn}"

    def to_json(self) -> list[dict]:
        """One dict per run: the fields ``guild runs --json`` gives, then ours
        (``index`` as numbered here, ``op``, ``flags``, ``gpus``, ``warnings``)."""
        numbers = [int(row[0]) for row in RunList.rows(self)]
        return [run_json(r, i) for r, i in zip(self, numbers)]

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "id": r.id, "op": r.op_name, "status": r.status,
                    "started": fmt_time(r.started), "gpus": r.gpus, "label": r.label,
                    **{f"flag:{k}": v for k, v in r.flags.items()},
                }
                for r in self
            ]
        )


def run_json(r: Run, index: int | None = None) -> dict:
    from .store import attrs as attrlib

    try:
        opref = attrlib.read_text(r.path("opref")).strip()
    except (OSError, ValueError):
        opref = None
    out = {
        "id": r.id, "run_dir": r.dir, "opref": opref, "exit_status": r.exit_status,
        "cmd": r.get("cmd"), "comments": r.get("comments"), "marked": r.get("marked"),
        "label": r.get("label"), "started": r.started, "status": r.status, "stopped": r.stopped,
        "tags": r.get("tags"),
    }
    out.update({"index": index, "op": r.op_name, "flags": r.flags, "gpus": r.gpus, "warnings": list(r.warnings)})
    return out
