"""A Dask queue's cluster as the panel shows it under the queue's row:
address, dashboard link, and each worker with its resources and the runs
it is running (``views.queue_row(q)["dask"]``; the page renders the same
data in its own script)."""

from __future__ import annotations

import html


def cluster_parts(dask: dict) -> list[str]:
    """Plain-text pieces: ``gpu0 [GPU=1]: 1a2b3c4d``, ``cpu0: idle``..."""
    parts = [dask["waiting"]] if dask.get("waiting") else []  # why it places no run now
    for w in dask.get("workers") or []:
        res = ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                       for k, v in sorted((w.get("resources") or {}).items()))
        runs = ", ".join(r[:8] for r in w.get("runs") or []) or "idle"
        parts.append(f"{w.get('name')}{' [' + res + ']' if res else ''}: {runs}")
    return parts


def cluster_html(dask: dict | None) -> str:
    if not dask:
        return ""
    e = lambda t: html.escape("" if t is None else str(t), quote=True)  # noqa: E731
    link = (f" · <a href='{e(dask['dashboard'])}' target='_blank' rel='noopener'>dashboard</a>"
            if dask.get("dashboard") else "")
    workers = " · ".join(e(p) for p in cluster_parts(dask)) or "no workers"
    return (f"<div class='gj-dask' style='font-size:12px;color:#555;padding:0 0 2px 1em'>"
            f"Dask <code>{e(dask.get('address'))}</code>{link} · {workers}</div>")
