"""The panel's HTML pieces: column headers, run rows, queue rows, GPUs.

Pure functions of ``views`` rows. Every row is a line of fixed-width cells
and one flexible flags cell (the flags that vary in the list first, in
bold): when the panel is narrow the flags cell wraps onto a line of its
own, so no value is ever cut off; a cell that may be long (an op name)
carries its full text on hover.
"""

from __future__ import annotations

import html
import math

from .. import views

__all__ = ["STATUS_COLORS", "COLUMNS", "header_html", "run_html", "queue_html", "queue_header_html", "gpus_html",
           "message_html", "spark_svg", "scalar_html", "notice_html", "output_html"]

STATUS_COLORS = {
    "staged": "#1565c0",
    "pending": "#ef6c00",
    "running": "#2e7d32",
    "completed": "#546e7a",
    "error": "#c62828",
    "terminated": "#8d6e63",
    "unstaged": "#7b1fa2",
}
_ROW = ("display:flex;flex-wrap:wrap;align-items:baseline;column-gap:10px;row-gap:2px;"
        "font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:18px;padding:3px 0;")
_FIXED = "flex:0 0 {w};overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
_WRAP = "flex:1 1 {w};min-width:{w};white-space:normal;overflow-wrap:anywhere;"

#: (key, header, width, wraps) per group; the header of the time column says
#: which time it is (views.run_row: the list's order decides).
COLUMNS = {
    "running": (("id", "run", "5.5em", False), ("status", "status", "6.5em", False), ("op", "op", "9em", False),
                ("gpus", "gpus", "5em", False), ("time", "started", "5.5em", False),
                ("elapsed", "elapsed", "4.5em", False), ("scalar", "scalar", "14em", False),
                ("flags", "flags (varying first) · label", "14em", True)),
    "pending": (("id", "run", "5.5em", False), ("status", "status", "6.5em", False), ("op", "op", "9em", False),
                ("gpus", "gpus", "5em", False), ("time", "staged", "5.5em", False),
                ("queue", "queue", "5.5em", False), ("flags", "flags (varying first) · label", "14em", True)),
    "staged": (("position", "#", "2em", False), ("id", "run", "5.5em", False), ("op", "op", "9em", False),
               ("gpus", "gpus", "5em", False), ("time", "staged", "5.5em", False),
               ("waiting", "why it waits", "14em", True), ("flags", "flags (varying first) · label", "14em", True)),
    "finished": (("id", "run", "5.5em", False), ("status", "status", "6.5em", False), ("op", "op", "9em", False),
                 ("gpus", "gpus", "5em", False), ("time", "ended", "5.5em", False),
                 ("elapsed", "took", "4.5em", False), ("scalar", "scalar", "14em", False),
                 ("flags", "flags (varying first) · label", "14em", True)),
}
QUEUE_COLUMNS = (("id", "queue", "5.5em", False), ("host", "host", "11em", False), ("gpus", "gpus", "5em", False),
                 ("state", "state", "5.5em", False), ("slots", "slots", "5.5em", True),
                 ("run", "run", "5.5em", False), ("options", "options", "10em", True))


def _e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _cell(inner: str, width: str, wraps: bool, style: str = "", title: str = "", cls: str = "") -> str:
    base = (_WRAP if wraps else _FIXED).format(w=width)
    t = f" title='{_e(title)}'" if title else ""
    c = f" class='{cls}'" if cls else ""
    return f"<span{c} style='{base}{style}'{t}>{inner}</span>"


def header_html(columns) -> str:
    """The column headers, in the same cells as the rows below them."""
    cells = "".join(_cell(_e(head), width, wraps) for _key, head, width, wraps in columns)
    return f"<div class='gj-columns' style='{_ROW}color:#666;font-weight:600;border-bottom:1px solid #ddd'>{cells}</div>"


def queue_header_html() -> str:
    return header_html(QUEUE_COLUMNS)


def _flags_cell(r: dict) -> str:
    flags = r["flags"]
    vary = r["varying"]
    parts = [f"<b>{_e(k)}={_e(views.format_flag(flags[k]))}</b>" for k in vary if k in flags]
    rest = [f"{_e(k)}={_e(views.format_flag(v))}" for k, v in flags.items() if k not in vary]
    text = " ".join(parts)
    if rest:
        text += (" " if text else "") + f"<span style='color:#666'>{' '.join(rest)}</span>"
    if r["label_text"]:
        text += f" <i style='color:#555'>· {_e(r['label_text'])}</i>"
    return text


def run_html(r: dict, group: str) -> str:
    """One run row (``views.run_row``) as its group shows it."""
    status = r["status"]
    values = {
        "id": (_e(r["short_id"]), "font-weight:bold", r["id"]),
        "status": (_e(r["status_text"]), f"color:{STATUS_COLORS.get(status, '#000')}", r["status_text"]),
        "op": (_e(r["op"] + (f" @ {r['worker']}" if r.get("worker") else "")), "",  # a Dask run: its worker
               r["op"] + (f" on Dask worker {r['worker']} ({r.get('worker_host')})" if r.get("worker") else "")),
        "gpus": (_e(r["gpus_text"]), "" if r["gpus"] else "color:#888", r["gpus_text"]),
        "time": (_e(r["time_text"]), "", f"{r['time_kind']} {views.format_time(r['time'])}" if r["time"] else ""),
        "elapsed": (_e(r["elapsed_text"]), "", ""),
        "queue": (_e((r["queue"] or "")[:8]), "color:#888", r["queue"] or ""),
        "position": (_e(r["position"] or ""), "color:#888", ""),
        "waiting": (_e(r["waiting"] or ""), "color:#1565c0", ""),
        "flags": (_flags_cell(r), "", ""),
        "scalar": (scalar_html(r.get("scalar"), r.get("spark")), "", _scalar_title(r.get("scalar"))),
    }
    cells = []
    for key, _head, width, wraps in COLUMNS[group]:
        inner, style, title = values[key]
        cells.append(_cell(inner, width, wraps, style, title, cls=f"gj-col-{key}"))
    return f"<div class='gj-run' data-run='{_e(r['id'])}' data-status='{_e(status)}' style='{_ROW}'>{''.join(cells)}</div>"


def queue_html(q: dict) -> str:
    """One queue row (``views.queue_row``)."""
    values = {
        "id": (_e(q["short_id"]), "font-weight:bold", q["id"]),
        "host": (_e(q["host_text"]), "", q["host_text"] + (f", pid {q['pid']}" if q["pid"] else "")),
        "gpus": (_e(q["gpus_text"]), "" if q["gpus"] else "color:#888", q["gpus_text"]),
        "state": (_e(q["state"]), "color:#2e7d32" if q["state"] == "running" else "", ""),
        "slots": (_e(q.get("slots_text", "")), "", "runs going / slots; with GPU slots, runs per GPU"),
        "run": (_e(q["current_short"] or ""), "", q["current"] or ""),
        "options": (_e(q["options_text"]), "color:#888", ""),
    }
    cells = "".join(_cell(values[key][0], width, wraps, values[key][1], values[key][2], cls=f"gj-col-{key}")
                    for key, _head, width, wraps in QUEUE_COLUMNS)
    row = f"<div class='gj-queue' data-queue='{_e(q['id'])}' style='{_ROW}' title='{_e(q['description'])}'>{cells}</div>"
    if q.get("dask"):  # a Dask queue: its cluster under its row
        from .panel_dask import cluster_html  # lazy: only a Dask queue's row shows its cluster

        row += cluster_html(q["dask"])
    return row


def gpus_html(g: dict) -> str:
    if not g["devices"]:
        why = g.get("error") or ""
        text = why if "no nvidia gpu found" in why.lower() else "no NVIDIA GPU found" + (f" ({why})" if why else "")
        return f"<div class='gj-no-gpu' style='font-size:12px'><b>GPUs</b> · {_e(text)}</div>"
    rows = []
    for d in g["devices"]:
        used, total = d["memory_used"], d["memory_total"]
        mem = f"{_mib(used)} / {_mib(total)}" if isinstance(used, (int, float)) and isinstance(total, (int, float)) else ""
        util = d["utilization"]
        util_s = f"{util}%" if isinstance(util, (int, float)) else ""
        runs = ", ".join(r["short_id"] + (f" ({r['op']})" if r.get("op") else "") for r in d["runs"]) or "—"
        rows.append("<tr>" + "".join(f"<td style='padding:0 12px 0 0'>{_e(x)}</td>"
                                     for x in (d["index"], d["name"] or "", mem, util_s, runs)) + "</tr>")
    head = "".join(f"<th style='text-align:left;padding:0 12px 0 0'>{h}</th>"
                   for h in ("gpu", "name", "memory", "util", "runs"))
    return ("<div style='font-size:12px'><b>GPUs</b><table class='gj-gpu-table' style='font-size:12px'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def message_html(message: str, error: bool = False) -> str:
    color = "#c62828" if error else "#2e7d32"
    return f"<div style='color:{color};font-size:12px;line-height:20px;white-space:nowrap;overflow:hidden;" \
           f"text-overflow:ellipsis' title='{_e(message)}'>{_e(message)}</div>"


def _mib(v) -> str:
    """NVML reports bytes."""
    gib = v / 2**30
    return f"{gib:.1f} GiB" if gib >= 1 else f"{v / 2**20:.0f} MiB"


# -- scalars, notices, output ------------------------------------------------------------------


def _finite(values) -> list[float]:
    return [float(v) for v in values or () if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)]


def spark_svg(values, width: int = 64, height: int = 16) -> str:
    """An inline SVG polyline of ``values`` (oldest first), scaled to the
    box; empty with fewer than two finite values."""
    pts = _finite(values)
    if len(pts) < 2:
        return ""
    lo, hi = min(pts), max(pts)
    span = (hi - lo) or 1.0
    step = (width - 2) / (len(pts) - 1)
    coords = " ".join(f"{1 + i * step:.1f},{height - 1 - (v - lo) / span * (height - 2):.1f}" for i, v in enumerate(pts))
    return (f"<svg class='gj-spark' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
            f"style='vertical-align:middle;margin-left:4px'><polyline points='{coords}' fill='none' "
            f"stroke='#1565c0' stroke-width='1.2'/></svg>")


def scalar_html(scalar, spark=None) -> str:
    """The main scalar (``views.run_row``'s ``scalar``: tag, value, step)
    and its sparkline; empty for a run that logged none."""
    if not scalar:
        return ""
    text = views.scalar_text(scalar)
    return f"<span class='gj-scalar-value'>{_e(text)}</span>{spark_svg(spark)}"


def _scalar_title(scalar) -> str:
    if not scalar:
        return ""
    step = scalar.get("step")
    return f"{scalar.get('tag', '')} = {scalar.get('value')}" + (f" at step {step}" if step is not None else "")


def notice_html(n: dict) -> str:
    """One notice (``api.EndWatcher``): a run or a whole sweep that ended;
    a failed run's last lines under it."""
    status = n["status"]
    color = STATUS_COLORS.get(status, "#000")
    if n["kind"] == "sweep":
        counts = ", ".join(f"{v} {k}" for k, v in sorted(n["counts"].items()))
        text = f"sweep of {len(n['ids'])} runs of {_e(n['op'])} finished: {_e(counts)}"
    else:
        es = n.get("exit_status")
        text = (f"run <b>{_e(n['short_id'])}</b> {_e(n['op'])} <span style='color:{color}'>{_e(status)}"
                f"{_e(f' (exit status {es})' if es not in (None, 0) else '')}</span>"
                + (f" <span style='color:#666'>{_e(n['flags_text'])}</span>" if n.get("flags_text") else ""))
    tail = n.get("tail") or ""
    pre = (f"<div style='display:flex;flex-direction:column-reverse;max-height:8em;overflow:auto;margin-top:2px'>"
           f"<pre class='gj-notice-tail' style='flex:none;margin:0;padding:2px 6px;background:#fbeaea;font-size:11px;"
           f"overflow:visible;white-space:pre-wrap'>{_e(tail.rstrip())}</pre></div>") if tail.strip() else ""
    return (f"<div class='gj-notice' data-kind='{_e(n['kind'])}' data-status='{_e(status)}' "
            f"data-run='{_e(n.get('id') or n['ids'][0])}' style='font-size:12px;border-left:4px solid {color};"
            f"padding:1px 6px'>{text}{pre}</div>")


def output_html(text: str, cut: bool = False) -> str:
    """A run's output in a box of bounded height that stays scrolled to its
    end (a reversed flex column), so following shows the newest lines. The
    text must not shrink (``flex: none``): JupyterLab gives a ``pre`` an
    overflow of its own, which would let it shrink to the box and hide the
    end."""
    more = "<div style='color:#888'>… (earlier output not shown)</div>" if cut else ""
    return ("<div class='gj-output' style='display:flex;flex-direction:column-reverse;max-height:320px;overflow:auto;"
            "border:1px solid #ddd;background:#fafafa'><pre style='flex:none;margin:0;padding:4px 6px;font-size:12px;"
            f"overflow:visible;white-space:pre-wrap;overflow-wrap:anywhere'>{more}{_e(text)}</pre></div>")
