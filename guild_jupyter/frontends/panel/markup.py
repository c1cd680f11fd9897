"""The panel's HTML pieces: column headers, run rows, queue rows, GPUs,
notices, messages and a run's output.

Pure functions of ``views`` rows: every word comes from the row (its
``*_text`` fields), every sparkline from its ``spark_points``; the panel
only lays them out. Every row is a line of fixed-width cells and one
flexible flags cell (the flags that vary in the list first, in bold): when
the panel is narrow the flags cell wraps onto a line of its own, so no
value is ever cut off; a cell that may be long (an op name) carries its
full text on hover.

Colours follow JupyterLab's theme (``var(--jp-ui-font-color1)`` and
friends, with fallbacks for other front ends): text always has the theme's
own contrast, light or dark; status and level colours mark borders and
dots only, never the text a person reads.
"""

from __future__ import annotations

import html

from ... import views

__all__ = ["STATUS_COLORS", "LEVEL_COLORS", "COLUMNS", "QUEUE_COLUMNS", "header_html", "run_html", "queue_html",
           "queue_header_html", "gpus_html", "message_html", "spark_svg", "scalar_html", "notice_html", "output_html",
           "column_class", "TEXT", "TEXT2", "BACKGROUND", "BACKGROUND2"]

TEXT = "var(--jp-ui-font-color1, #1f1f1f)"
TEXT2 = "var(--jp-ui-font-color2, #595959)"
BACKGROUND = "var(--jp-layout-color1, #ffffff)"
BACKGROUND2 = "var(--jp-layout-color2, #eeeeee)"
BORDER = "var(--jp-border-color2, #dddddd)"
ERROR_TEXT = "var(--jp-error-color0, #c62828)"  # messages: JupyterLab's own error colour
OK_TEXT = "var(--jp-success-color0, #2e7d32)"

#: Status dots (never text): mid-tone colours that stand out on light and dark.
STATUS_COLORS = {
    "staged": "#1e88e5",
    "pending": "#fb8c00",
    "running": "#43a047",
    "completed": "#78909c",
    "error": "#e53935",
    "terminated": "#a1887f",
    "unstaged": "#ab47bc",
}
#: A notice's left border, by level.
LEVEL_COLORS = {"success": "#43a047", "error": "#e53935", "warning": "#fb8c00", "info": "#1e88e5"}
LEVEL_WORDS = {"success": "done", "error": "failed", "warning": "ended", "info": "note"}

_ROW = (f"display:flex;flex-wrap:wrap;align-items:baseline;column-gap:10px;row-gap:2px;color:{TEXT};"
        "font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:18px;padding:3px 0;")
_FIXED = "flex:0 0 {w};overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
_WRAP = "flex:1 1 {w};min-width:{w};white-space:normal;overflow-wrap:anywhere;"

#: Width of each view-model field as a column, and whether it wraps.
_WIDTHS = {"short_id": ("5.5em", False), "status_text": ("9em", False), "op": ("9em", False),
           "gpus_text": ("6em", False), "time_text": ("5.5em", False), "elapsed_text": ("4.5em", False),
           "scalar_text": ("14em", False), "flags_text": ("14em", True), "position_text": ("8.5em", False),
           "waiting_text": ("14em", True), "outcome_text": ("12em", True)}
#: Column titles the panel words its own way (the rest: the view model's).
_TITLES = {"flags_text": "flags (varying first) · label"}


def column_class(key: str) -> str:
    """``gj-col-status`` for ``status_text``, ``gj-col-id`` for ``short_id``."""
    name = "id" if key == "short_id" else key[:-5] if key.endswith("_text") else key
    return f"gj-col-{name}"


def _columns(group: views.Group) -> tuple:
    out = []
    for c in group.view()["columns"]:
        key, title = c["key"], c["title"]
        width, wraps = _WIDTHS.get(key, ("8em", True))
        title = _TITLES.get(key) or title
        out.append((key, title, width, wraps))
    return tuple(out)


#: (key, header, width, wraps) per group, from the view model's groups.
COLUMNS = {g.name: _columns(g) for g in views.GROUPS}
QUEUE_COLUMNS = (("short_id", "queue", "5.5em", False), ("host_text", "host", "11em", False),
                 ("gpus_text", "gpus", "8em", True), ("state_text", "state", "10em", True),
                 ("slots_text", "slots", "10em", True), ("current_short", "run", "5.5em", False),
                 ("options_text", "options", "10em", True))


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
    return (f"<div class='gj-columns' style='{_ROW}color:{TEXT2};font-weight:600;border-bottom:1px solid {BORDER}'>"
            f"{cells}</div>")


def queue_header_html() -> str:
    return header_html(QUEUE_COLUMNS)


def _flags_cell(r: dict) -> str:
    flags = r["flags"]
    vary = r["varying"]
    parts = [f"<b>{_e(k)}={_e(views.format_flag(flags[k]))}</b>" for k in vary if k in flags]
    rest = [f"{_e(k)}={_e(views.format_flag(v))}" for k, v in flags.items() if k not in vary]
    text = " ".join(parts)
    if rest:
        text += (" " if text else "") + f"<span style='color:{TEXT2}'>{' '.join(rest)}</span>"
    for extra in (r.get("label_text"), r.get("retry_text")):
        if extra:
            text += f" <i>· {_e(extra)}</i>"
    return text


def _dot(status: str) -> str:
    color = STATUS_COLORS.get(status, "#9e9e9e")
    return f"<span aria-hidden='true' style='color:{color}'>●</span>&nbsp;"


def run_html(r: dict, group: str) -> str:
    """One run row (``views.run_row``) as its group shows it."""
    status = r["status"]
    op = r["op"] + (f" @ {r['worker']}" if r.get("worker") else "")  # a Dask run: its worker
    op_title = r["op"] + (f" on Dask worker {r['worker']} ({r.get('worker_host')})" if r.get("worker") else "")
    values = {
        "short_id": (_e(r["short_id"]), "font-weight:bold", r.get("subtitle", r["id"])),
        "status_text": (_dot(status) + _e(r["status_text"]), "", r.get("outcome_text") or r["status_text"]),
        "op": (_e(op), "", op_title),
        "gpus_text": (_e(r["gpus_text"]), "" if r["gpus"] else f"color:{TEXT2}", r["gpus_text"]),
        "time_text": (_e(r["time_text"]), "", f"{r['time_kind']} {views.format_time(r['time'])}" if r["time"] else ""),
        "elapsed_text": (_e(r["elapsed_text"]), "", r.get("outcome_text", "")),
        "position_text": (_e(r.get("position_text", "")), f"color:{TEXT2}", ""),
        "waiting_text": (_e(r.get("waiting_text", "")), "", ""),
        "outcome_text": (_e(r.get("outcome_text", "")), "", ""),
        "flags_text": (_flags_cell(r), "", ""),
        "scalar_text": (scalar_html(r.get("scalar"), r.get("spark_points", "")), "", _scalar_title(r.get("scalar"))),
    }
    cells = []
    for key, _head, width, wraps in COLUMNS[group]:
        inner, style, title = values.get(key, (_e(r.get(key, "")), "", ""))
        cells.append(_cell(inner, width, wraps, style, title, cls=column_class(key)))
    return (f"<div class='gj-run' data-run='{_e(r['id'])}' data-status='{_e(status)}' style='{_ROW}'>"
            f"{''.join(cells)}</div>")


def queue_html(q: dict) -> str:
    """One queue row (``views.queue_row``)."""
    titles = {"short_id": q["title"], "host_text": q["host_text"] + (f", pid {q['pid']}" if q["pid"] else ""),
              "gpus_text": q["gpus_text"], "current_short": q["current"] or ""}
    cells = "".join(_cell(_e(q.get(key, "")), width, wraps, "font-weight:bold" if key == "short_id" else "",
                          titles.get(key, ""), cls=column_class(key))
                    for key, _head, width, wraps in QUEUE_COLUMNS)
    row = (f"<div class='gj-queue' data-queue='{_e(q['id'])}' data-state='{_e(q['state'])}' style='{_ROW}' "
           f"title='{_e(q['description'])}'>{cells}</div>")
    if q.get("dask"):  # a Dask queue: its cluster under its row
        from .dask import cluster_html  # lazy: only a Dask queue's row shows its cluster

        row += cluster_html(q["dask"])
    return row


def gpus_html(g: dict) -> str:
    if not g["devices"]:
        return (f"<div class='gj-no-gpu' style='font-size:12px;color:{TEXT}'><b>GPUs</b> · "
                f"{_e(g.get('text') or g.get('error') or '')}</div>")
    rows = []
    for d in g["devices"]:
        rows.append("<tr>" + "".join(f"<td style='padding:0 12px 0 0'>{_e(x)}</td>"
                                     for x in (d["text"], d["memory_text"], d["utilization_text"], d["runs_text"]))
                    + "</tr>")
    head = "".join(f"<th style='text-align:left;padding:0 12px 0 0'>{h}</th>" for h in ("gpu", "memory", "util", "runs"))
    return (f"<div style='font-size:12px;color:{TEXT}'><b>GPUs</b><table class='gj-gpu-table' style='font-size:12px'>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def message_html(message: str, error: bool = False) -> str:
    color = ERROR_TEXT if error else OK_TEXT
    return (f"<div class='{'gj-error' if error else 'gj-ok'}' style='color:{color};font-size:12px;line-height:20px;"
            f"white-space:nowrap;overflow:hidden;text-overflow:ellipsis' title='{_e(message)}'>{_e(message)}</div>")


# -- scalars, notices, output ------------------------------------------------------------------


def spark_svg(points: str, width: int = views.SPARK_WIDTH, height: int = views.SPARK_HEIGHT) -> str:
    """An inline SVG of a row's ``spark_points`` (``views.spark_points``);
    empty without points."""
    if not points:
        return ""
    return (f"<svg class='gj-spark' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
            f"style='vertical-align:middle;margin-left:4px'><polyline points='{_e(points)}' fill='none' "
            f"stroke='{STATUS_COLORS['staged']}' stroke-width='1.2'/></svg>")


def scalar_html(scalar, points: str = "") -> str:
    """The main scalar (``views.run_row``'s ``scalar``: tag, value, step)
    and its sparkline; empty for a run that logged none."""
    if not scalar:
        return ""
    return f"<span class='gj-scalar-value'>{_e(views.scalar_text(scalar))}</span>{spark_svg(points)}"


def _scalar_title(scalar) -> str:
    if not scalar:
        return ""
    step = scalar.get("step")
    return f"{scalar.get('tag', '')} = {scalar.get('value')}" + (f" at step {step}" if step is not None else "")


def notice_html(n: dict) -> str:
    """One event (``events.EventWatcher``) as a notice: its ``text``, its
    level as a word and a coloured border, a failed run's last lines under
    it. Text in the theme's own colours: readable light and dark."""
    level = n.get("level", "info")
    tail = n.get("tail") or ""
    pre = (f"<div style='display:flex;flex-direction:column-reverse;max-height:8em;overflow:auto;margin-top:2px'>"
           f"<pre class='gj-notice-tail' style='flex:none;margin:0;padding:2px 6px;font-size:11px;"
           f"background:{BACKGROUND2};color:var(--jp-content-font-color1, {TEXT});overflow:visible;"
           f"white-space:pre-wrap'>{_e(tail.rstrip())}</pre></div>") if tail.strip() else ""
    return (f"<div class='gj-notice' data-kind='{_e(n['kind'])}' data-level='{_e(level)}' "
            f"data-run='{_e(n.get('run') or '')}' style='font-size:12px;color:{TEXT};background:{BACKGROUND};"
            f"border-left:4px solid {LEVEL_COLORS.get(level, '#9e9e9e')};padding:1px 6px'>"
            f"<b class='gj-notice-level'>{_e(LEVEL_WORDS.get(level, level))}</b> "
            f"<span class='gj-notice-text'>{_e(n['text'])}</span>{pre}</div>")


def output_html(text: str, cut: bool = False) -> str:
    """A run's output in a box of bounded height that stays scrolled to its
    end (a reversed flex column), so following shows the newest lines. The
    text must not shrink (``flex: none``): JupyterLab gives a ``pre`` an
    overflow of its own, which would let it shrink to the box and hide the
    end."""
    more = f"<div style='color:{TEXT2}'>… (earlier output not shown)</div>" if cut else ""
    return (f"<div class='gj-output' style='display:flex;flex-direction:column-reverse;max-height:320px;overflow:auto;"
            f"border:1px solid {BORDER};background:{BACKGROUND2};color:{TEXT}'><pre style='flex:none;margin:0;"
            f"padding:4px 6px;font-size:12px;overflow:visible;white-space:pre-wrap;overflow-wrap:anywhere'>"
            f"{more}{_e(text)}</pre></div>")
