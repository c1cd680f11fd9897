"""The live status panel (``%guild panel``, ``guild_jupyter.panel()``).

An ipywidgets view of one store that renders ``api.monitor()`` snapshots
and decides nothing: the store's summary, the queues (``queues``: their
actions, a form to start one), the runs in the view model's groups
(``views.GROUPS``: failed runs open, finished ones closed) under column
headers in bounded, paged lists, each row with the words and the actions
(``views.actions``) its view-model row carries: stop, unstage, output,
retry, restart, delete, and restage with a small flag form (``restage``);
the notices of the panel's own ``api.EventWatcher`` (``live``: the same
sentences the ``/guild`` page and the sidebar show), and the GPUs with the
runs on them. An action whose row asks for confirmation takes a second
click ("Confirm stop") within a few seconds. Messages show in a line of
fixed height and clear themselves, so nothing below them moves.

Threading, because output from a thread lands in whichever cell happens to
be running (ipykernel 7 routes it differently again):

- every widget is created up front, on the kernel's main thread; a fixed
  pool of row widgets per group is reused page after page;
- the refresh thread only assigns traits (values, descriptions, layout
  display); it never prints, never uses ``with output:``, and reports its
  own failures in the panel's status line;
- button handlers run on the main thread (the kernel dispatches comm
  messages there) and report success or errors in the message line;
- the thread ends when the panel is closed, when its comm goes away, or
  when the interpreter exits; a new ``panel()`` of the same store closes
  the previous one, so re-running a cell never piles up threads.
"""

from __future__ import annotations

import atexit
import html
import threading
import time
import weakref

import ipywidgets as W

from ... import api, views
from ...errors import GuildJupyterError
from .actions import ActionRunner
from .markup import COLUMNS, TEXT2, gpus_html, header_html, message_html, run_html
from .live import NoticeArea, OutputView
from .queues import QueueSection
from .restage import RestageForm
from .rows import GroupView, Row, Shared

__all__ = ["Panel", "panel"]

GROUPS = views.GROUP_NAMES
DEFAULT_PAGE_SIZE = 10
MESSAGE_SECONDS = 8.0  # a message clears itself after this long

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
        home = api.store_home(store)
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


class Panel(W.VBox):
    """The panel widget. Build it with ``panel()``."""

    def __init__(self, store=None, refresh: float | None = 1.0, probe=None, page_size: int = DEFAULT_PAGE_SIZE):
        self.monitor = api.monitor(store, probe=probe, page_size=page_size)
        self.store = self.monitor.store
        # The panel's own watcher (a kernel may have no server): the same
        # events, and the same sentences, as /guild/api/events serves.
        self.watcher = api.EventWatcher(self.monitor)
        self.monitor.events = self.watcher
        self.interval = float(refresh or 0)
        self.snapshot: dict | None = None
        self.last_error: str | None = None
        self._apply_lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown_in = None
        self._message_until = 0.0
        self._following: dict = {}  # id -> what to call it, for runs/queues being stopped
        self._build_widgets(page_size)
        super().__init__(self._sections, layout=W.Layout(width="100%", max_width="1200px"))
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
        self.header = W.HTML(value=f"<b>Guild runs</b> · {html.escape(self.store.home)} · loading…",
                             layout=W.Layout(flex="1 1 auto", min_width="0"))
        self.close_button = W.Button(description="close", tooltip="stop refreshing and close the panel",
                                     layout=W.Layout(width="64px", height="24px", flex="0 0 auto"))
        self.close_button.on_click(lambda _b: self.close())
        self.status_line = W.HTML()
        # Always there, one line high: a message never pushes the panel down.
        self.feedback = W.HTML(layout=W.Layout(height="22px", overflow="hidden"))
        self.feedback.add_class("gj-feedback")

        self._shared = shared = Shared()
        self.output_view = OutputView(self.store)
        self.restage_form = RestageForm(self.store, self._say, self._refresh_soon)
        self.actions = ActionRunner(self.store, self._act, self.output_view.open, self.restage_form.open,
                                    self._following)
        qs = self.queue_section = QueueSection(shared, self.store, self._act, self._say,
                                               lambda row, a: self._on_action(row, a, "queue"))
        # The section's widgets, as the panel's own attributes (p.queue_start...).
        self.queues_title, self.queue_columns, self.queue_rows = qs.queues_title, qs.queue_columns, qs.queue_rows
        self.queue_gpus, self.queue_run_once, self.queue_dask, self.queue_detached = (
            qs.queue_gpus, qs.queue_run_once, qs.queue_dask, qs.queue_detached)
        self.queue_fields = qs.queue_fields  # one per queue flag (the queue-flag table)
        self.queue_start, self.queue_form = qs.queue_start, qs.queue_form

        self.notice_area = NoticeArea(self.output_view.open)
        self.groups = {g: GroupView(g, page_size, self._on_action, self._on_page, shared, header_html(COLUMNS[g]))
                       for g in GROUPS}
        self.gpus_html = W.HTML()
        self.gpus_html.add_class("gj-gpus")
        self.warnings_html = W.HTML(layout=W.Layout(display="none"))

        top = W.HBox([self.header, self.close_button], layout=W.Layout(justify_content="space-between",
                                                                       align_items="center"))
        self._containers = [top]
        self._sections = [top, self.status_line, self.feedback, self.notice_area.box, self.restage_form.box,
                          self.output_view.box, qs.box] + [
            self.groups[g].box for g in GROUPS
        ] + [self.gpus_html, self.warnings_html]

    def _all_widgets(self):
        out = [self.header, self.close_button, self.status_line, self.feedback, self.gpus_html,
               self.warnings_html] + self._containers + self._shared.widgets()
        out += (self.notice_area.widgets() + self.output_view.widgets() + self.queue_section.widgets()
                + self.restage_form.widgets())
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
        snap = self.snapshot
        if snap is None:
            return f"Guild panel of {self.store.home} (a live ipywidgets view)"
        return (f"Guild panel of {self.store.home}{' (closed)' if self.closed else ''}: "
                f"{snap['summary_text']}; {views.plural(snap['counts']['queues'], 'queue')}")

    @property
    def closed(self) -> bool:
        return self._stop.is_set() or self.comm is None

    # -- refreshing -----------------------------------------------------------------------------

    def refresh(self) -> dict:
        """Rebuilds the snapshot and updates the widgets now; returns the snapshot."""
        with self._apply_lock:
            pages = {name: g.page for name, g in self.groups.items()}
        # Built outside the apply lock: a click never waits for a scan.
        snap = self.monitor.snapshot(pages=pages)
        notices = self.watcher.look(refresh=False)
        self.output_view.update()  # reads output (its own lock): not under the lock clicks wait on
        with self._apply_lock:
            if self.comm is None:  # closed meanwhile
                return snap
            self.notice_area.add(notices)
            for group in snap["groups"]:
                g = self.groups[group["name"]]
                if g.page == pages[group["name"]]:  # unless a pager click came in meanwhile
                    g.page = group["page"]
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
                    self.status_line.value = message_html(f"refresh failed: {self.last_error}", error=True)
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
        self.header.value = (
            f"<b>Guild runs</b> <span style='color:{TEXT2}'>{html.escape(snap['store'])}</span> · "
            f"<span class='gj-summary'>{html.escape(snap['summary_text'])}</span>"
            f" · {html.escape(views.plural(c['queues'], 'queue'))}"
        )
        self.queue_section.apply(snap["queues"])
        for group in snap["groups"]:
            name = group["name"]
            self.groups[name].apply(group, lambda r, g=name: run_html(r, g))
        self.gpus_html.value = gpus_html(snap["gpus"])
        warnings = snap["warnings"]
        self.warnings_html.value = (
            "<div class='gj-warnings' style='font-size:12px'>⚠ " + "<br>⚠ ".join(html.escape(w) for w in warnings)
            + "</div>" if warnings else ""
        )
        self.warnings_html.layout.display = "" if warnings else "none"
        self._report_stopped()
        for row in self.queue_rows + [r for g in self.groups.values() for r in g.rows]:
            row.expire_confirmation()
        if self._message_until and time.monotonic() >= self._message_until:
            self._message_until = 0.0
            self.feedback.value = ""

    def _report_stopped(self) -> None:
        """Completes "stopping run x" with its outcome once the store shows it."""
        for run_id, what in list(self._following.items()):
            status = self.monitor.status(run_id)
            if status is None or status in views.FINISHED or status == views.UNSTAGED:
                del self._following[run_id]
                self._say(f"{what} {run_id[:8]} {self.monitor.status_text(run_id) or 'is gone'}")

    # -- actions (main thread) ------------------------------------------------------------------

    def _say(self, message: str, error: bool = False) -> None:
        self.feedback.value = message_html(message, error)
        self._message_until = time.monotonic() + MESSAGE_SECONDS

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

    def _on_action(self, row: Row, action: dict, kind: str = "run") -> None:
        """A click on one of a row's actions: the row's guards, then the action."""
        if not row.check(action, self._apply_lock, self._say):
            return
        self.actions.run(action, kind)

    def _on_page(self, view: GroupView, step: int) -> None:
        with self._apply_lock:
            view.page = max(0, view.page + step)
        self._refresh_soon()


@atexit.register
def _stop_all_panels() -> None:
    """Kernel shutdown: stop every refresh thread before the interpreter
    tears down the modules it uses."""
    for p in list(_live_panels):
        p._stop.set()
        p._wake.set()
