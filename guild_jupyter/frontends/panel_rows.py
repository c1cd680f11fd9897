"""The panel's reusable rows: one line of HTML and, for runs and queues
that can be acted on, a button; the groups (title, pager, column headers,
a fixed pool of rows). Built on the kernel's main thread; the refresh
thread only assigns their traits.

Two guards stand between a click and an action: a row that switched to
another run a moment ago refuses the click (the user aimed at the run it
showed before), and a stop takes a second click on "confirm stop" within
``CONFIRM_SECONDS``.
"""

from __future__ import annotations

import time

import ipywidgets as W
from ipywidgets.widgets.widget_string import HTMLStyle

__all__ = ["Shared", "Row", "GroupView", "REBIND_GUARD", "CONFIRM_SECONDS", "VIEWABLE", "VIEW_WIDTH"]

# A row that switched from one run to another this recently refuses a click.
REBIND_GUARD = 0.6
CONFIRM_SECONDS = 5.0
ROW_ACTIONS = {"running": "stop", "pending": "stop", "staged": "unstage"}
CONFIRMED = ("stop", "stop queue")  # actions that ask for a second click
VIEWABLE = ("running", "pending", "finished")  # groups whose rows open the run's output
VIEW_WIDTH = "64px"


class Shared:
    """Layouts and styles shared by every row of a panel: each one is a widget
    (a comm) of its own, and a panel has dozens of rows."""

    def __init__(self):
        self.html_layout = W.Layout(flex="1 1 auto", min_width="0")
        self.html_style = HTMLStyle()
        self.button_style = W.ButtonStyle()
        self.button_layouts: dict = {}

    def button_layout(self, width: str):
        if width not in self.button_layouts:
            self.button_layouts[width] = W.Layout(width=width, min_width=width, height="24px", flex="0 0 auto")
        return self.button_layouts[width]

    def widgets(self):
        return [self.html_layout, self.html_style, self.button_style, *self.button_layouts.values()]


class Row:
    """One reusable line of a list: an HTML cell and, for actionable groups, a button."""

    def __init__(self, group: str, on_click, shared: Shared, action: str | None = None, width: str = "96px",
                 on_view=None):
        self.group = group
        self.html = W.HTML(layout=shared.html_layout, style=shared.html_style)
        self.run_id: str | None = None
        self.bound_at = 0.0
        self.confirming: str | None = None  # the run a "confirm stop" is armed for
        self.confirm_until = 0.0
        self.action = action or ROW_ACTIONS.get(group)
        children = [self.html]
        self.view_button = None
        if on_view is not None:  # opens the run's output (following it while it runs)
            self.view_button = W.Button(description="output", layout=shared.button_layout(VIEW_WIDTH),
                                        style=shared.button_style)
            self.view_button.add_class("gj-output-button")
            self.view_button.on_click(lambda _b: self.run_id and on_view(self.run_id))
            children.append(self.view_button)
        self.button = None
        if self.action:
            self.button = W.Button(description=self.action, button_style=self._style(False),
                                   layout=shared.button_layout(width), style=shared.button_style)
            self.button.add_class("gj-" + self.action.replace(" ", "-"))
            self.button.on_click(lambda _b: on_click(self))
            children.append(self.button)
        self.box = W.HBox(children, layout=W.Layout(display="none", width="100%", align_items="center"))
        self.box.add_class("gj-run-row")
        self.box.add_class(f"gj-{group}-row")

    def _style(self, confirming: bool) -> str:
        if confirming:
            return "danger"
        return "warning" if self.action in CONFIRMED else ""

    def widgets(self):
        return [w for w in (self.html, self.view_button, self.button, self.box) if w is not None]

    def bind(self, run_id: str | None, text: str, tooltip: str = "") -> None:
        if run_id != self.run_id:
            # Only a row that showed another run can mislead a click; a row
            # that just appeared cannot.
            self.bound_at = time.monotonic() if self.run_id else 0.0
            self.run_id = run_id
            self._disarm()
        self.html.value = text
        if self.button is not None and not self.confirming:
            self.button.tooltip = tooltip
        self.box.layout.display = "" if run_id else "none"

    def _disarm(self) -> None:
        if self.confirming is not None and self.button is not None:
            self.button.description = self.action
            self.button.button_style = self._style(False)
        self.confirming = None

    def expire_confirmation(self) -> None:
        if self.confirming is not None and time.monotonic() >= self.confirm_until:
            self._disarm()

    def clicked(self, lock, say) -> str | None:
        """The run to act on now, or None: the row changed a moment ago (said
        so), or this was a stop's first click (the button now asks to confirm)."""
        with lock:
            run_id, bound_at = self.run_id, self.bound_at
            if run_id is None:
                return None
            if time.monotonic() - bound_at < REBIND_GUARD:
                say("the list just changed: check the row and click again", error=True)
                return None
            if self.action not in CONFIRMED:
                return run_id
            if self.confirming == run_id and time.monotonic() < self.confirm_until:
                self._disarm()
                return run_id
            self.confirming = run_id
            self.confirm_until = time.monotonic() + CONFIRM_SECONDS
            self.button.description = "confirm stop"
            self.button.button_style = self._style(True)
            self.button.tooltip = f"click again within {CONFIRM_SECONDS:g} s to stop {run_id[:8]}"
            return None


class GroupView:
    """A group of runs: title, pager, column headers and a pool of rows."""

    def __init__(self, name: str, page_size: int, on_row_click, on_page, shared: Shared, columns_html: str,
                 title: str, on_view=None):
        self.name = name
        self.title_text = title
        self.page = 0
        self.title = W.HTML()
        self.prev = W.Button(description="◀", tooltip="previous page", layout=W.Layout(width="36px", height="24px"))
        self.next = W.Button(description="▶", tooltip="next page", layout=W.Layout(width="36px", height="24px"))
        self.page_label = W.HTML()
        self.prev.on_click(lambda _b: on_page(self, -1))
        self.next.on_click(lambda _b: on_page(self, +1))
        self.pager = W.HBox([self.prev, self.page_label, self.next], layout=W.Layout(display="none", align_items="center"))
        viewer = on_view if name in VIEWABLE else None
        self.rows = [Row(name, on_row_click, shared, on_view=viewer) for _ in range(page_size)]
        self.columns = W.HTML(columns_html, layout=W.Layout(flex="1 1 auto", min_width="0"))
        spacers = ([W.HTML(layout=shared.button_layout(VIEW_WIDTH))] if viewer else []) + (
            [W.HTML(layout=shared.button_layout("96px"))] if self.rows[0].button is not None else [])
        self.column_box = W.HBox([self.columns] + spacers, layout=W.Layout(width="100%", display="none"))
        self.header = W.HBox([self.title, self.pager], layout=W.Layout(justify_content="space-between",
                                                                         align_items="center"))
        self.box = W.VBox([self.header, self.column_box] + [r.box for r in self.rows])
        self.box.add_class(f"gj-group-{name}")
        self._extra = [self.header, self.column_box] + spacers

    def widgets(self):
        out = [self.title, self.prev, self.next, self.page_label, self.pager, self.columns, self.box] + self._extra
        for r in self.rows:
            out += r.widgets()
        return out

    def apply(self, g: dict, render) -> None:
        """Shows one group of a snapshot; ``render(row) -> html``."""
        self.title.value = f"<b>{self.title_text}</b> ({g['total']})"
        multi = g["pages"] > 1
        self.pager.layout.display = "" if multi else "none"
        if multi:
            last = g["first"] + len(g["rows"]) - 1
            self.page_label.value = f"&nbsp;{g['first']}–{last} of {g['total']}&nbsp;"
            self.prev.disabled = g["page"] == 0
            self.next.disabled = g["page"] >= g["pages"] - 1
        rows = g["rows"]
        self.column_box.layout.display = "" if rows else "none"
        action = self.rows[0].action if self.rows else None
        for i, row in enumerate(self.rows):
            if i < len(rows):
                r = rows[i]
                row.bind(r["id"], render(r), f"{action or ''} run {r['short_id']}".strip())
            else:
                row.bind(None, "")
