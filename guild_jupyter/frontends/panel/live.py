"""The panel's live parts: the output of the run a row opened (followed
while the run runs) and the notices: the events of the panel's own
``api.EventWatcher`` (runs, sweeps and queues that ended, queues paused,
retries staged), each with the sentence every viewer shows.

Both are built on the kernel's main thread with the rest of the panel;
``update``/``add`` run on the refresh thread and only assign traits. The
output view reads what is new since its offset (``api.output_since``) on
each refresh, and keeps the last ``MAX_CHARS`` characters, so a run that
writes gigabytes never fills the notebook.
"""

from __future__ import annotations

import threading

import ipywidgets as W

from ... import api
from ...errors import GuildJupyterError
from .markup import ERROR_TEXT, notice_html, output_html

__all__ = ["OutputView", "NoticeArea"]

MAX_CHARS = 64 * 1024
READ_LIMIT = 1 << 20  # bytes per read; a refresh reads at most READS_PER_UPDATE of them
READS_PER_UPDATE = 16
NOTICES_SHOWN = 4
NOTICES_KEPT = 50


class OutputView:
    """The output of one run: title, close button, and the text."""

    def __init__(self, store):
        self.store = store
        self.run_id: str | None = None
        self.offset = 0
        self.text = ""
        self.cut = False
        self.done = True
        self.status: str | None = None
        self._lock = threading.Lock()
        self.title = W.HTML(layout=W.Layout(flex="1 1 auto", min_width="0"))
        self.close_button = W.Button(description="close", tooltip="close the output",
                                     layout=W.Layout(width="64px", height="24px", flex="0 0 auto"))
        self.close_button.on_click(lambda _b: self.close_view())
        self.body = W.HTML()
        self.head = W.HBox([self.title, self.close_button], layout=W.Layout(align_items="center"))
        self.box = W.VBox([self.head, self.body], layout=W.Layout(display="none", width="100%"))
        self.box.add_class("gj-output-view")

    def widgets(self):
        return [self.title, self.close_button, self.body, self.head, self.box]

    def open(self, run_id: str) -> None:
        """Shows ``run_id``'s output from its start; follows it while it runs."""
        with self._lock:
            self.run_id, self.offset, self.text, self.cut, self.done, self.status = run_id, 0, "", False, False, None
            self.body.value = output_html("")
        self.update()
        self.box.layout.display = ""

    def close_view(self) -> None:
        with self._lock:
            self.run_id = None
            self.done = True
        self.box.layout.display = "none"

    def update(self) -> None:
        """Reads what the run wrote since the last look (any thread: traits only)."""
        with self._lock:
            if self.run_id is None or self.done:
                return
            grew = False
            try:
                for _ in range(READS_PER_UPDATE):
                    piece = api.output_since(self.run_id, self.offset, READ_LIMIT, store=self.store)
                    read = piece["offset"] - self.offset
                    self.offset, self.done, self.status = piece["offset"], piece["done"], piece["status"]
                    if piece["text"]:
                        grew = True
                        self.text += piece["text"]
                        if len(self.text) > MAX_CHARS:
                            self.text, self.cut = self.text[-MAX_CHARS:], True
                    if self.done or read < READ_LIMIT:
                        break
            except GuildJupyterError as e:
                self.done = True
                self.title.value = f"<b>output of run {self.run_id[:8]}</b> · <span style='color:{ERROR_TEXT}'>{e}</span>"
                return
            if grew or not self.body.value:
                self.body.value = output_html(self.text, self.cut)
            how = "following" if not self.done and self.status in ("running", "pending", "staged") else ""
            waiting = " (waiting for it to start)" if self.status in ("staged", "pending") else ""
            self.title.value = (f"<b>output of run {self.run_id[:8]}</b> · {self.status}{waiting}"
                                + (f" · <i>{how}</i>" if how else ""))


class NoticeArea:
    """The latest notices, newest first, each with a button that opens the
    output its event names (a failed run's, a sweep's first failed
    trial's)."""

    def __init__(self, on_view):
        self.notices: list[dict] = []
        self._on_view = on_view
        self.title = W.HTML(layout=W.Layout(flex="1 1 auto"))
        self.clear_button = W.Button(description="clear", tooltip="clear the notices",
                                     layout=W.Layout(width="64px", height="24px", flex="0 0 auto"))
        self.clear_button.on_click(lambda _b: self.clear())
        self.rows = []
        for _ in range(NOTICES_SHOWN):
            html = W.HTML(layout=W.Layout(flex="1 1 auto", min_width="0"))
            button = W.Button(description="Output", layout=W.Layout(width="auto", min_width="64px", height="24px",
                                                                    flex="0 0 auto"))
            button.add_class("gj-notice-output")
            row = W.HBox([html, button], layout=W.Layout(display="none", width="100%", align_items="flex-start"))
            row.run_id = None
            button.on_click(lambda _b, row=row: row.run_id and self._on_view(row.run_id))
            self.rows.append((row, html, button))
        self.head = W.HBox([self.title, self.clear_button], layout=W.Layout(align_items="center"))
        self.box = W.VBox([self.head] + [r for r, _, _ in self.rows], layout=W.Layout(display="none", width="100%"))
        self.box.add_class("gj-notices")

    def widgets(self):
        return [self.title, self.clear_button, self.head, self.box] + [w for row in self.rows for w in row]

    def add(self, events: list[dict]) -> None:
        if not events:
            return
        self.notices = (self.notices + list(events))[-NOTICES_KEPT:]
        self._render()

    def clear(self) -> None:
        self.notices = []
        self._render()

    def _render(self) -> None:
        shown = list(reversed(self.notices))[:NOTICES_SHOWN]
        self.box.layout.display = "" if shown else "none"
        self.title.value = f"<b>Notices</b> ({len(self.notices)})"
        for i, (row, html, button) in enumerate(self.rows):
            if i >= len(shown):
                row.run_id = None
                row.layout.display = "none"
                continue
            n = shown[i]
            output = next((a for a in n.get("actions") or () if a["verb"] == "output"), None)
            row.run_id = output["target"] if output else None
            html.value = notice_html(n)
            button.layout.visibility = "visible" if row.run_id else "hidden"
            button.tooltip = f"the output of run {row.run_id[:8]}" if row.run_id else ""
            row.layout.display = ""
