"""A sweep's view in a notebook and on a terminal (``api.sweep_view``,
``%guild sweep``, ``guild-jupyter sweep``).

In a notebook its display is a MIME bundle: ``application/vnd.guild-jupyter.
sweep+json`` (``{"sweep", "store", "title"}``), which the Guild JupyterLab
extension renders as the live sweep view -- a component talking to the
server's REST API, not to the kernel, so it keeps working after a kernel
restart -- and, for every other front end (classic Notebook, VS Code,
nbconvert), ``text/html``: the trial table and a PNG plot of the main
scalar, drawn once. As text (a terminal, ``print``) it is the trial table.
Everything it shows is the view model's (``views.sweep_table``).
"""

from __future__ import annotations

import html

from .errors import BadInput

__all__ = ["MIME_TYPE", "SweepView"]

MIME_TYPE = "application/vnd.guild-jupyter.sweep+json"


class SweepView:
    """One sweep: ``id``, ``store`` (its Guild home), ``table`` (the view
    model: ``to_json()``)."""

    def __init__(self, table: dict, store: str, scalar: str | None = None):
        self.table = table
        self.id = table["id"]
        self.store = store
        self.scalar = scalar

    def to_json(self) -> dict:
        return self.table

    def refresh(self) -> "SweepView":
        """The table as it is now."""
        from . import api  # lazy: a display object calls the api it was made by only when asked

        self.table = api.sweep_table(self.id, scalar=self.scalar, store=self.store)
        return self

    # -- text -------------------------------------------------------------------------------

    def rows(self) -> tuple[list[str], list[list[str]]]:
        t = self.table
        head = ["run"] + [c["title"] for c in t["columns"]]
        body = []
        for row in t["trials"]:
            ref = ("  ↳ " if row["attempt"] else "") + row["short_id"] + (" *" if row["is_best"] else "")
            body.append([ref] + [row["cells"][c["key"]]["text"] for c in t["columns"]])
        return head, body

    def heading(self) -> str:
        t = self.table
        best = ""
        if t["best"] and t["scalar"]:
            best = f" · * best: {t['best'][:8]} ({t['scalar']['best_text']})"
        return f"sweep {self.id} · {t['title']} · {t['summary_text']}{best}"

    def __str__(self) -> str:
        head, body = self.rows()
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + body]
        return "\n".join([self.heading()] + lines)

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    # -- a notebook ------------------------------------------------------------------------------

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {MIME_TYPE: {"sweep": self.id, "store": self.store, "title": self.table["title"]},
                "text/html": self._repr_html_(), "text/plain": self.heading()}

    def _repr_html_(self) -> str:
        head, body = self.rows()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join(
            ("<tr class='gj-best' style='font-weight:bold'>" if row["is_best"] else "<tr>")
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            for row, cells in zip(self.table["trials"], body))
        return (f"<div class='guild-sweep'><p>{html.escape(self.heading())}</p>"
                f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>{self._plot_html()}</div>")

    def _plot_html(self) -> str:
        """The main scalar of every trial against step, as a PNG (none
        when no trial logged it yet)."""
        scalar = self.table["scalar"]
        if scalar is None:
            return ""
        import base64

        from .plotting import plot, png_bytes  # lazy: matplotlib loads with a figure

        try:
            fig = plot(scalar=scalar["tag"], sweep=self.id, store=self.store, title=self.table["title"])
        except BadInput:
            return ""
        data = base64.b64encode(png_bytes(fig)).decode("ascii")
        return f"<img alt='{html.escape(scalar['tag'])} of sweep {self.id}' src='data:image/png;base64,{data}'/>"
