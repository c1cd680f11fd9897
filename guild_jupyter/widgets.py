"""The live status panel (``%guild panel``, ``guild_jupyter.widgets.panel()``).

An ipywidgets view of one store: counts per status, the queues (with stop
buttons and a form to start one), the runs grouped by status in bounded,
paged lists (stop a running run, unstage a staged one, see why it waits),
and the GPUs with the runs on them.

Threading, because output from a thread lands in whichever cell happens to
be running (ipykernel 7 routes it differently again):

- every widget is created up front, on the kernel's main thread; a
  fixed pool of row widgets per group is reused page after page;
- the refresh thread only assigns traits (values, descriptions, layout
  display); it never prints, never uses ``with output:``, and reports its
  own failures in the panel's status line;
- button handlers run on the main thread (the kernel dispatches comm
  messages there) and report success or errors in the panel's feedback
  line: never a traceback;
- the thread ends when the panel is closed, when its comm goes away, or
  when the interpreter exits; a new ``panel()`` of the same store closes
  the previous one, so re-running a cell never piles up threads.
"""

from __future__ import annotations

import atexit
import datetime
import html
import threading
import time
import weakref

import ipywidgets as W
from ipywidgets.widgets.widget_string import HTMLStyle

from . import api
from .errors import GuildJupyterError
from .panel_state import DEFAULT_PAGE_SIZE, GROUPS, PanelState
from .store.run import FINISHED

__all__ = ["Panel", "panel"]

QUEUE_ROWS = 6
# A row that switched from one run to another this recently refuses a click:
# the user may have aimed at the run it showed a moment ago.
REBIND_GUARD = 0.6

GROUP_TITLES = {"running": "Running", "pending": "Pending", "staged": "Staged", "finished": "Recent finished"}
ROW_ACTIONS = {"running": "stop", "pending": "stop", "staged": "unstage"}
STATUS_COLORS = {
    "staged": "#1565c0",
    "pending": "#ef6c00",
    "running": "#2e7d32",
    "completed": "#616161",
    "error": "#c62828",
    "terminated": "#8d6e63",
}
_CELL = "display:inline-block;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom;white-space:nowrap;"
_ROW_STYLE = "font-family:var(--jp-code-font-family,monospace);font-size:12px;line-height:26px;white-space:nowrap;overflow:hidden;"

_live_panels: "weakref.WeakSet[Panel]" = weakref.WeakSet()


def panel(store=None, refresh: float | None = 1.0, probe=None, page_size: int = DEFAULT_PAGE_SIZE,
          display: bool = True, replace: bool = True) -> "Panel":
    """Shows a live panel of the store's queues, runs and GPUs.

    ``refresh``: seconds between refreshes by a background thread (``0`` or
    ``None``: no thread; call ``Panel.refresh()``). ``probe``: the GPU probe
    (default NVML, or ``$GUILD_JUPYTER_FAKE_GPUS``). ``replace``: close
    this kernel's earlier panels of the same store, so that re-running a
    cell never piles up refresh threads. Returns the ``Panel``; ``close()``
    it to stop its thread.
    """
    if replace:
        home = api.resolve_store(store).home
        for old in list(_live_panels):
            if old.store.home == home:
                old.close()
    p = Panel(store=store, refresh=refresh, probe=probe, page_size=page_size)
    if display:
        p.show()
    return p


def _execution_count():
    try:
        from IPython import get_ipython

        ip = get_ipython()
        return None if ip is None else ip.execution_count
    except Exception:  # noqa: BLE001
        return None


class _Shared:
    """Layouts and styles shared by every row of a panel: each one is a widget
    (a comm) of its own, and a panel has dozens of rows."""

    def __init__(self):
        self.html_layout = W.Layout(flex="1 1 auto", overflow="hidden")
        self.html_style = HTMLStyle()
        self.button_style = W.ButtonStyle()
        self.button_layouts: dict = {}

    def button_layout(self, width: str):
        if width not in self.button_layouts:
            self.button_layouts[width] = W.Layout(width=width, height="24px", flex="0 0 auto")
        return self.button_layouts[width]

    def widgets(self):
        return [self.html_layout, self.html_style, self.button_style, *self.button_layouts.values()]


class _Row:
    """One reusable line of a list: an HTML cell and, for actionable groups, a button."""

    def __init__(self, group: str, on_click, shared: _Shared, action: str | None = None, width: str = "76px"):
        self.group = group
        self.html = W.HTML(layout=shared.html_layout, style=shared.html_style)
        self.run_id: str | None = None
        self.bound_at = 0.0
        children = [self.html]
        self.button = None
        action = action or ROW_ACTIONS.get(group)
        if action:
            self.button = W.Button(
                description=action,
                button_style="warning" if action == "unstage" else "danger",
                layout=shared.button_layout(width),
                style=shared.button_style,
            )
            self.button.add_class("gj-" + action.replace(" ", "-"))
            self.button.on_click(lambda _b: on_click(self))
            children.append(self.button)
        self.box = W.HBox(children, layout=W.Layout(display="none", width="100%", align_items="center"))
        self.box.add_class("gj-run-row")
        self.box.add_class(f"gj-{group}-row")

    def widgets(self):
        return [w for w in (self.html, self.button, self.box) if w is not None]

    def bind(self, run_id: str | None, text: str, tooltip: str = "") -> None:
        if run_id != self.run_id:
            # Only a row that showed another run can mislead a click; a row
            # that just appeared cannot.
            self.bound_at = time.monotonic() if self.run_id else 0.0
            self.run_id = run_id
        self.html.value = text
        if self.button is not None:
            self.button.tooltip = tooltip
        self.box.layout.display = "" if run_id else "none"


class _GroupView:
    def __init__(self, name: str, page_size: int, on_row_click, on_page, shared: _Shared):
        self.name = name
        self.page = 0
        self.title = W.HTML()
        self.prev = W.Button(description="◀", tooltip="previous page", layout=W.Layout(width="36px", height="24px"))
        self.next = W.Button(description="▶", tooltip="next page", layout=W.Layout(width="36px", height="24px"))
        self.page_label = W.HTML()
        self.prev.on_click(lambda _b: on_page(self, -1))
        self.next.on_click(lambda _b: on_page(self, +1))
        self.pager = W.HBox([self.prev, self.page_label, self.next], layout=W.Layout(display="none", align_items="center"))
        self.rows = [_Row(name, on_row_click, shared) for _ in range(page_size)]
        header = W.HBox([self.title, self.pager], layout=W.Layout(justify_content="space-between", align_items="center"))
        self.box = W.VBox([header] + [r.box for r in self.rows])
        self.box.add_class(f"gj-group-{name}")

    def widgets(self):
        out = [self.title, self.prev, self.next, self.page_label, self.pager, self.box]
        out += self.box.children[:1]
        for r in self.rows:
            out += r.widgets()
        return out


class Panel(W.VBox):
    """The panel widget. Build it with ``panel()``."""

    def __init__(self, store=None, refresh: float | None = 1.0, probe=None, page_size: int = DEFAULT_PAGE_SIZE):
        self.state = PanelState(store, probe=probe, page_size=page_size)
        self.store = self.state.store
        self.interval = float(refresh or 0)
        self.snapshot: dict | None = None
        self.last_error: str | None = None
        self._apply_lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown_in = None
        self._following: dict = {}  # id -> what to call it, for runs/queues being stopped
        self._build_widgets(page_size)
        super().__init__(self._sections, layout=W.Layout(width="100%", max_width="1100px"))
        self.add_class("guild-panel")
        _live_panels.add(self)
        if self.interval > 0:
            # The first snapshot of a big store takes a while (every run is
            # read once): the thread builds it, the cell returns at once.
            self._thread = threading.Thread(target=self._loop, name="guild-panel-refresh", daemon=True)
            self._thread.start()
        else:
            self._refresh_soon()

    # -- building (main thread only) ------------------------------------------------------------

    def _build_widgets(self, page_size: int) -> None:
        self.header = W.HTML(value=f"<b>Guild runs</b> · {html.escape(self.store.home)} · loading…")
        self.close_button = W.Button(description="close", tooltip="stop refreshing and close the panel",
                                     layout=W.Layout(width="64px", height="24px"))
        self.close_button.on_click(lambda _b: self.close())
        self.status_line = W.HTML()
        self.feedback = W.HTML(layout=W.Layout(display="none"))
        self.feedback.add_class("gj-feedback")

        self._shared = shared = _Shared()
        self.queues_title = W.HTML("<b>Queues</b>")
        self.queue_rows = [_Row("queue", self._on_queue_stop, shared, "stop queue", "96px") for _ in range(QUEUE_ROWS)]
        self.queue_gpus = W.Text(placeholder="none, or e.g. 0 or 0,1", description="gpus",
                                 layout=W.Layout(width="230px"))
        self.queue_run_once = W.Checkbox(description="run once", indent=False, layout=W.Layout(width="90px"))
        self.queue_detached = W.Checkbox(description="detached", indent=False, layout=W.Layout(width="90px"),
                                         tooltip="a background process that outlives this kernel")
        self.queue_start = W.Button(description="start queue", button_style="success",
                                    layout=W.Layout(width="110px", height="28px"))
        self.queue_start.add_class("gj-start-queue")
        self.queue_start.on_click(lambda _b: self._on_queue_start())
        self.queue_form = W.HBox([self.queue_gpus, self.queue_run_once, self.queue_detached, self.queue_start],
                                 layout=W.Layout(align_items="center"))

        self.groups = {g: _GroupView(g, page_size, self._on_row_action, self._on_page, shared) for g in GROUPS}
        self.gpus_html = W.HTML()
        self.gpus_html.add_class("gj-gpus")
        self.warnings_html = W.HTML(layout=W.Layout(display="none"))

        top = W.HBox([self.header, self.close_button], layout=W.Layout(justify_content="space-between",
                                                                       align_items="center"))
        queues_box = W.VBox([self.queues_title] + [r.box for r in self.queue_rows] + [self.queue_form])
        self._containers = [top, queues_box]
        self._sections = [top, self.status_line, self.feedback, queues_box] + [
            self.groups[g].box for g in GROUPS
        ] + [self.gpus_html, self.warnings_html]

    def _all_widgets(self):
        out = [self.header, self.close_button, self.status_line, self.feedback, self.queues_title,
               self.queue_gpus, self.queue_run_once, self.queue_detached, self.queue_start, self.queue_form,
               self.gpus_html, self.warnings_html] + self._containers + self._shared.widgets()
        for r in self.queue_rows:
            out += r.widgets()
        for g in self.groups.values():
            out += g.widgets()
        return out

    # -- display ------------------------------------------------------------------------------

    def show(self) -> None:
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
        self._shown_in = _execution_count()

    def _ipython_display_(self):
        # ``panel()`` already showed it; the same object as the cell's result
        # must not show a second copy in that cell.
        if self._shown_in is not None and self._shown_in == _execution_count():
            return
        if self.comm is None:
            return
        self.show()

    def __repr__(self):
        return f"<guild_jupyter Panel of {self.store.home}{' (closed)' if self.closed else ''}>"

    @property
    def closed(self) -> bool:
        return self._stop.is_set() or self.comm is None

    # -- refreshing -----------------------------------------------------------------------------

    def refresh(self) -> dict:
        """Rebuilds the snapshot and updates the widgets now; returns the snapshot."""
        with self._apply_lock:
            pages = {name: g.page for name, g in self.groups.items()}
        # Built outside the apply lock: a click never waits for a scan.
        snap = self.state.snapshot(pages=pages)
        with self._apply_lock:
            if self.comm is None:  # closed meanwhile
                return snap
            for name, g in self.groups.items():
                if g.page == pages[name]:  # unless a pager click came in meanwhile
                    g.page = snap["groups"][name]["page"]
            self.snapshot = snap
            self._apply(snap)
            return snap

    def _comm_gone(self) -> bool:
        comm = self.comm
        return comm is None or bool(getattr(comm, "_closed", False))

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._comm_gone():  # closed here or by the front end
                break
            try:
                self.refresh()
                if self.last_error:
                    self.last_error = None
                    self.status_line.value = ""
            except Exception as e:  # noqa: BLE001 - reported in the panel, never printed
                self.last_error = f"{type(e).__name__}: {e}"
                try:
                    self.status_line.value = _error_html(f"refresh failed: {self.last_error}")
                except Exception:  # noqa: BLE001
                    pass
            self._wake.wait(self.interval)
            self._wake.clear()

    def _refresh_soon(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
        else:
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001
                self._say(f"refresh failed: {type(e).__name__}: {e}", error=True)

    def stop_refreshing(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def close(self) -> None:
        """Stops the refresh thread and closes every widget of the panel."""
        if not hasattr(self, "_sections"):  # never fully built (garbage collected)
            return super().close()
        self.stop_refreshing()
        _live_panels.discard(self)
        with self._apply_lock:
            for w in self._all_widgets() + [self]:
                # Layouts and styles are widgets (comms) of their own.
                for part in (getattr(w, "layout", None), getattr(w, "style", None)):
                    if isinstance(part, W.Widget):
                        part.close()
                if w is not self:
                    w.close()
            super().close()

    # -- rendering (any thread: traits only) ----------------------------------------------------

    def _apply(self, snap: dict) -> None:
        c = snap["counts"]
        chips = " ".join(
            f"<span style='color:{STATUS_COLORS[s]}'>{s}&nbsp;<b>{c[s]}</b></span>"
            for s in ("staged", "pending", "running", "completed", "error", "terminated")
        )
        self.header.value = (
            f"<b>Guild runs</b> <span style='color:#888'>{html.escape(snap['store'])}</span> · {chips}"
            f" · queues&nbsp;<b>{c['queues']}</b>"
        )
        self._apply_queues(snap["queues"])
        for name in GROUPS:
            self._apply_group(self.groups[name], snap["groups"][name])
        self.gpus_html.value = _gpus_html(snap["gpus"])
        warnings = snap["warnings"]
        self.warnings_html.value = (
            "<div style='color:#b26a00;font-size:12px'>" + "<br>".join(html.escape(w) for w in warnings) + "</div>"
            if warnings else ""
        )
        self.warnings_html.layout.display = "" if warnings else "none"
        self._report_stopped()

    def _report_stopped(self) -> None:
        """Completes "stopping run x" with its outcome once the store shows it."""
        for run_id, what in list(self._following.items()):
            e = self.state.index.entries.get(run_id)
            if e is None or e.status in FINISHED:
                del self._following[run_id]
                self._say(f"{what} {run_id[:8]} {e.status if e else 'is gone'}")

    def _apply_queues(self, queues: list) -> None:
        more = len(queues) - len(self.queue_rows)
        title = f"<b>Queues</b> ({len(queues)})" if queues else "<b>Queues</b> <span style='color:#888'>none running</span>"
        if more > 0:
            title += f" <span style='color:#888'>showing {len(self.queue_rows)}</span>"
        self.queues_title.value = title
        for i, row in enumerate(self.queue_rows):
            if i < len(queues):
                q = queues[i]
                row.bind(q["id"], _queue_html(q), f"stop queue {q['short_id']}")
            else:
                row.bind(None, "")

    def _apply_group(self, view: _GroupView, g: dict) -> None:
        view.title.value = f"<b>{GROUP_TITLES[view.name]}</b> ({g['total']})"
        multi = g["pages"] > 1
        view.pager.layout.display = "" if multi else "none"
        if multi:
            last = g["first"] + len(g["rows"]) - 1
            view.page_label.value = f"&nbsp;{g['first']}–{last} of {g['total']}&nbsp;"
            view.prev.disabled = g["page"] == 0
            view.next.disabled = g["page"] >= g["pages"] - 1
        rows = g["rows"]
        for i, row in enumerate(view.rows):
            if i < len(rows):
                r = rows[i]
                row.bind(r["id"], _run_html(r), f"{ROW_ACTIONS.get(view.name, '')} run {r['short_id']}")
            else:
                row.bind(None, "")

    # -- actions (main thread) ------------------------------------------------------------------

    def _say(self, message: str, error: bool = False) -> None:
        color = "#c62828" if error else "#2e7d32"
        self.feedback.value = f"<div style='color:{color};font-size:12px'>{html.escape(message)}</div>"
        self.feedback.layout.display = ""

    def _bound(self, row: _Row) -> str | None:
        with self._apply_lock:
            run_id, bound_at = row.run_id, row.bound_at
        if run_id is None:
            return None
        if time.monotonic() - bound_at < REBIND_GUARD:
            self._say("the list just changed: check the row and click again", error=True)
            return None
        return run_id

    def _act(self, describe, action) -> None:
        try:
            message = action()
        except GuildJupyterError as e:
            self._say(f"{describe}: {e}", error=True)
        except Exception as e:  # noqa: BLE001 - the panel shows it; no traceback
            self._say(f"{describe}: {type(e).__name__}: {e}", error=True)
        else:
            self._say(message)
        self._refresh_soon()

    def _on_row_action(self, row: _Row) -> None:
        run_id = self._bound(row)
        if run_id is None:
            return
        short = run_id[:8]
        if row.group == "staged":
            def unstage():
                api.unstage(run_id, store=self.store)
                return f"unstaged run {short}"

            self._act(f"cannot unstage run {short}", unstage)
        else:
            def stop():
                api.stop(run_id, wait=False, store=self.store)
                self._following[run_id] = "run"
                return f"stopping run {short}"

            self._act(f"cannot stop run {short}", stop)

    def _on_queue_stop(self, row: _Row) -> None:
        queue_id = self._bound(row)
        if queue_id is None:
            return
        short = queue_id[:8]

        def stop():
            api.stop(queue_id, wait=False, store=self.store)
            self._following[queue_id] = "queue"
            return f"stopping queue {short}"

        self._act(f"cannot stop queue {short}", stop)

    def _on_queue_start(self) -> None:
        gpus = self.queue_gpus.value.strip() or None
        run_once = bool(self.queue_run_once.value)
        detached = bool(self.queue_detached.value)

        def start():
            q = api.queue(gpus=gpus, run_once=run_once, background=detached, store=self.store)
            how = "detached" if detached else "thread"
            return f"started queue {q.id[:8]} ({how}, gpus={gpus or 'none'}{', run once' if run_once else ''})"

        self._act("cannot start the queue", start)

    def _on_page(self, view: _GroupView, step: int) -> None:
        with self._apply_lock:
            view.page = max(0, view.page + step)
        self._refresh_soon()


# -- HTML pieces -------------------------------------------------------------------------------------


def _span(text: str, width: str, style: str = "", title: str = "") -> str:
    t = f" title='{html.escape(title, quote=True)}'" if title else ""
    return f"<span style='{_CELL}width:{width};{style}'{t}>{html.escape(text)}</span>"


def _run_html(r: dict) -> str:
    status = r["status"]
    flags = r["flags_text"]
    label = r["label"] if r["label"] and r["label"] != flags else ""
    exit_note = f" ({r['exit_status']})" if status == "error" and r.get("exit_status") not in (None, 0) else ""
    cells = [
        _span(r["short_id"], "6em", "font-weight:bold", r["id"]),
        _span(status + exit_note, "7.5em", f"color:{STATUS_COLORS.get(status, '#000')}"),
        _span(r["op"], "9em", "", r["op"]),
        _span(f"gpus {r['gpus']}" if r["gpus"] else "", "5.5em"),
    ]
    if r.get("waiting"):
        # Why it waits matters more than when it was staged.
        reason = f"#{r['position']} · {r['waiting']}"
        cells.append(_span(reason, "31em", "color:#1565c0", f"staged {_fmt_time(r['started'])}: {r['waiting']}"))
    else:
        cells.append(_span(_fmt_time(r["started"]), "8.5em"))
        cells.append(_span(_elapsed(r["elapsed"]), "5.5em"))
    cells.append(_span(flags, "16em", "", flags))
    if label:
        cells.append(_span(label, "10em", "color:#555", label))
    if r.get("queue") and status in ("pending", "running"):
        cells.append(_span(f"queue {r['queue'][:8]}", "10em", "color:#888"))
    return f"<div class='gj-run' data-run='{r['id']}' style='{_ROW_STYLE}'>" + "".join(cells) + "</div>"


def _queue_html(q: dict) -> str:
    host = q["host"] + (" (this kernel)" if q["this_process"] else "")
    gpus = f"gpus={q['gpus']}" if q["gpus"] else "gpus=none"
    flags = []
    if q["wait_for_running"]:
        flags.append("wait-for-running")
    if q["run_once"]:
        flags.append("run-once")
    cur = f"running {q['current_short']}" if q["current"] else ""
    return (
        f"<div class='gj-queue' data-queue='{q['id']}' style='{_ROW_STYLE}'>"
        + _span(q["short_id"], "6em", "font-weight:bold", q["id"])
        + _span(host, "13em")
        + _span(f"pid {q['pid']}" if q["pid"] else "", "7em")
        + _span(gpus, "8em")
        + _span(q["state"], "6em", "color:#2e7d32" if q["state"] == "running" else "")
        + _span(cur, "10em")
        + _span(" ".join(flags), "auto", "color:#888")
        + "</div>"
    )


def _gpus_html(g: dict) -> str:
    if not g["devices"]:
        why = g.get("error") or ""
        text = why if "no nvidia gpu found" in why.lower() else "no NVIDIA GPU found" + (f" ({why})" if why else "")
        return f"<div class='gj-no-gpu' style='font-size:12px'><b>GPUs</b> · {html.escape(text)}</div>"
    rows = []
    for d in g["devices"]:
        used, total = d["memory_used"], d["memory_total"]
        mem = f"{_mib(used)} / {_mib(total)}" if isinstance(used, (int, float)) and isinstance(total, (int, float)) else ""
        util = d["utilization"]
        util_s = f"{util}%" if isinstance(util, (int, float)) else ""
        runs = ", ".join(r["short_id"] + (f" ({r['op']})" if r.get("op") else "") for r in d["runs"]) or "—"
        rows.append(
            "<tr>" + "".join(
                f"<td style='padding:0 10px 0 0'>{html.escape(str(x))}</td>"
                for x in (d["index"], d["name"] or "", mem, util_s, runs)
            ) + "</tr>"
        )
    head = "".join(f"<th style='text-align:left;padding:0 10px 0 0'>{h}</th>"
                   for h in ("gpu", "name", "memory", "util", "runs"))
    return (
        "<div style='font-size:12px'><b>GPUs</b><table class='gj-gpu-table' style='font-size:12px'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _error_html(message: str) -> str:
    return f"<div style='color:#c62828;font-size:12px'>{html.escape(message)}</div>"


def _mib(v) -> str:
    """NVML reports bytes."""
    gib = v / 2**30
    return f"{gib:.1f} GiB" if gib >= 1 else f"{v / 2**20:.0f} MiB"


def _elapsed(seconds) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _fmt_time(us) -> str:
    if not isinstance(us, int):
        return ""
    t = datetime.datetime.fromtimestamp(us / 1e6)
    if t.date() == datetime.date.today():
        return t.strftime("%H:%M:%S")
    return t.strftime("%m-%d %H:%M")


@atexit.register
def _stop_all_panels() -> None:
    """Kernel shutdown: stop every refresh thread before the interpreter
    tears down the modules it uses."""
    for p in list(_live_panels):
        p._stop.set()
        p._wake.set()
