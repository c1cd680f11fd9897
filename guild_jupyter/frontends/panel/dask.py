"""A Dask queue's cluster as the panel shows it under the queue's row:
address, dashboard link, its workers in the view model's words
(``views.queue_row(q)["dask"]["workers_text"]``) and why it places no run
now; the page and the sidebar render the same fields."""

from __future__ import annotations

import html


def cluster_html(dask: dict | None) -> str:
    if not dask:
        return ""
    e = lambda t: html.escape("" if t is None else str(t), quote=True)  # noqa: E731
    link = (f" · <a href='{e(dask['dashboard'])}' target='_blank' rel='noopener'>{e(dask.get('dashboard_text'))}</a>"
            if dask.get("dashboard") else f" · {e(dask.get('dashboard_text'))}")
    waiting = f" · {e(dask['waiting'])}" if dask.get("waiting") else ""  # why it places no run now
    return (f"<div class='gj-dask' style='font-size:12px;color:#555;padding:0 0 2px 1em'>"
            f"Dask <code>{e(dask.get('address'))}</code>{link} · {e(dask.get('workers_text'))}{waiting}</div>")
