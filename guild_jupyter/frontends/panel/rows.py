"""The panel's reusable rows: one line of HTML and the row's action buttons
(one per action of its ``views`` row: label, confirmation, verb), and the
groups (a title that opens and closes it, a pager, column headers, a fixed
pool of rows). Built on the kernel's main thread; the refresh thread only
assigns their traits (a hidden button is given the shared hidden layout).

Two guards stand between a click and an action: a row that switched to
another run a moment ago refuses the click (the user aimed at the run it
showed before), and an action whose row says ``confirm`` takes a second
click on "Confirm ..." within ``CONFIRM_SECONDS`` (the message line says
what it will do).
"""

from __future__ import annotations

import time

import ipywidgets as W
from ipywidgets.widgets.widget_string import HTMLStyle

from ... import views

__all__ = ["Shared", "Row", "GroupView", "REBIND_GUARD", "CONFIRM_SECONDS", "max_actions"]

# A row that switched from one run to another this recently refuses a click.
REBIND_GUARD = 0.6
CONFIRM_SECONDS = 5.0


def max_actions(group: str) -> int:
    """The most actions a run of ``group`` may carry (its row's buttons)."""
    statuses = views.group(group).statuses
    if views.PENDING in statuses:  # a pending run may be held for its dependencies: its own actions
        statuses = statuses + (views.HELD,)
    return max(len(views.RUN_ACTIONS.get(s, ())) for s in statuses)


class Shared:
    """Layouts and styles shared by every row of a panel: each one is a widget
    (a comm) of its own, and a panel has dozens of rows."""

    def __init__(self):
        self.html_layout = W.Layout(flex="1 1 auto", min_width="0")
        self.html_style = HTMLStyle()
        self.button_style = W.ButtonStyle()
        self.button_shown = W.Layout(width="auto", min_width="64px", height="24px", flex="0 0 auto")
        self.button_hidden = W.Layout(display="none")
        self.button_layouts: dict = {}

    def button_layout(self, width: str):
        if width not in self.button_layouts:
            self.button_layouts[width] = W.Layout(width=width, min_width=width, height="24px", flex="0 0 auto")
        return self.button_layouts[width]

    def widgets(self):
        return [self.html_layout, self.html_style, self.button_style, self.button_shown, self.button_hidden,
                *self.button_layouts.values()]


class Row:
    """One reusable line of a list: an HTML cell and up to ``n_buttons``
    action buttons. ``on_action(row, action)`` is called (main thread) for
    a click that passed both guards."""

    def __init__(self, group: str, n_buttons: int, on_action, shared: Shared):
        self.group = group
        self.shared = shared
        self.html = W.HTML(layout=shared.html_layout, style=shared.html_style)
        self.run_id: str | None = None
        self.bound_at = 0.0
        self.actions: list[dict] = []
        self.confirming: tuple | None = None  # (id, verb) a "Confirm ..." is armed for
        self.confirm_until = 0.0
        self._on_action = on_action
        self.buttons = []
        self._verb_classes = [""] * n_buttons
        for i in range(n_buttons):
            b = W.Button(layout=shared.button_hidden, style=shared.button_style)
            b.add_class("gj-action")
            b.on_click(lambda _b, i=i: self._clicked(i))
            self.buttons.append(b)
        self.box = W.HBox([self.html] + self.buttons,
                          layout=W.Layout(display="none", width="100%", align_items="center"))
        self.box.add_class("gj-run-row")
        self.box.add_class(f"gj-{group}-row")

    def widgets(self):
        return [self.html, self.box] + self.buttons

    def button(self, verb: str):
        """The button bound to ``verb`` now, or None."""
        for b, a in zip(self.buttons, self.actions):
            if a["verb"] == verb:
                return b
        return None

    def bind(self, run_id: str | None, text: str, actions=()) -> None:
        """Shows ``run_id`` (None: hides the row) with its actions."""
        if run_id != self.run_id:
            # Only a row that showed another run can mislead a click; a row
            # that just appeared cannot.
            self.bound_at = time.monotonic() if self.run_id else 0.0
            self.run_id = run_id
            self.confirming = None
        self.html.value = text
        actions = list(actions)[:len(self.buttons)]
        if self.confirming is not None and self.confirming[1] not in {a["verb"] for a in actions}:
            self.confirming = None  # the action it was armed for is no longer allowed
        self.actions = actions
        for i, b in enumerate(self.buttons):
            if i < len(actions):
                a = actions[i]
                armed = self.confirming == (run_id, a["verb"])
                b.description = f"Confirm {a['verb']}" if armed else a["label"]
                b.button_style = "danger" if armed else ("warning" if a["confirm"] else "")
                b.tooltip = a["confirm"] if armed else a.get("help", "")
                if b.layout is not self.shared.button_shown:
                    b.layout = self.shared.button_shown
                verb_class = f"gj-{a['verb']}"  # what a browser test finds the button by
                if self._verb_classes[i] != verb_class:
                    if self._verb_classes[i]:
                        b.remove_class(self._verb_classes[i])
                    b.add_class(verb_class)
                    self._verb_classes[i] = verb_class
            elif b.layout is not self.shared.button_hidden:
                b.layout = self.shared.button_hidden
        self.box.layout.display = "" if run_id else "none"

    def expire_confirmation(self) -> None:
        if self.confirming is not None and time.monotonic() >= self.confirm_until:
            self._arm(None)

    def _arm(self, target: tuple | None) -> None:
        self.confirming = target
        for b, a in zip(self.buttons, self.actions):
            armed = target == (self.run_id, a["verb"])
            b.description = f"Confirm {a['verb']}" if armed else a["label"]
            b.button_style = "danger" if armed else ("warning" if a["confirm"] else "")
            b.tooltip = a["confirm"] if armed else a.get("help", "")

    def _clicked(self, i: int) -> None:
        if i >= len(self.actions) or self.run_id is None:
            return
        self._on_action(self, self.actions[i])

    def check(self, action: dict, lock, say) -> bool:
        """Whether ``action`` goes ahead now: the row did not change a moment
        ago (said so), and a confirmation, if asked, was given (the first
        click arms "Confirm ..." and says what it will do)."""
        with lock:
            if self.run_id is None:
                return False
            if time.monotonic() - self.bound_at < REBIND_GUARD:
                say("the list just changed: check the row and click again", error=True)
                return False
            if not action.get("confirm"):
                return True
            target = (self.run_id, action["verb"])
            if self.confirming == target and time.monotonic() < self.confirm_until:
                self._arm(None)
                return True
            self.confirm_until = time.monotonic() + CONFIRM_SECONDS
            self._arm(target)
            say(f"{action['confirm']} Click \"Confirm {action['verb']}\" within {CONFIRM_SECONDS:g} s.")
            return False


class GroupView:
    """A group of runs: a title that opens and closes it, a pager, column
    headers and a pool of rows; open or closed at first as the view model
    says (``views.GROUPS``)."""

    def __init__(self, name: str, page_size: int, on_action, on_page, shared: Shared, columns_html: str):
        spec = views.group(name)
        self.name = name
        self.title_text = spec.title
        self.open = spec.open
        self.page = 0
        self.total = 0
        self.toggle = W.Button(tooltip=f"show or hide {spec.title.lower()} runs",
                               layout=W.Layout(width="auto", height="24px"))
        self.toggle.add_class("gj-group-toggle")
        self.toggle.on_click(lambda _b: self.set_open(not self.open))
        self.prev = W.Button(description="◀", tooltip="previous page", layout=W.Layout(width="36px", height="24px"))
        self.next = W.Button(description="▶", tooltip="next page", layout=W.Layout(width="36px", height="24px"))
        self.page_label = W.HTML()
        self.prev.on_click(lambda _b: on_page(self, -1))
        self.next.on_click(lambda _b: on_page(self, +1))
        self.pager = W.HBox([self.prev, self.page_label, self.next], layout=W.Layout(display="none", align_items="center"))
        self.rows = [Row(name, max_actions(name), on_action, shared) for _ in range(page_size)]
        self.columns = W.HTML(columns_html, layout=W.Layout(flex="1 1 auto", min_width="0"))
        self.empty = W.HTML(f"<span style='font-size:12px'>{spec.empty_text}</span>")
        self.column_box = W.HBox([self.columns], layout=W.Layout(width="100%", display="none"))
        self.body = W.VBox([self.column_box, self.empty] + [r.box for r in self.rows],
                           layout=W.Layout(display="" if self.open else "none"))
        self.header = W.HBox([self.toggle, self.pager], layout=W.Layout(justify_content="space-between",
                                                                         align_items="center"))
        self.box = W.VBox([self.header, self.body])
        self.box.add_class(f"gj-group-{name}")
        self._title()

    def widgets(self):
        out = [self.toggle, self.prev, self.next, self.page_label, self.pager, self.columns, self.empty,
               self.column_box, self.body, self.header, self.box]
        for r in self.rows:
            out += r.widgets()
        return out

    def set_open(self, open_: bool) -> None:
        self.open = bool(open_)
        self.body.layout.display = "" if self.open else "none"
        self._title()

    def _title(self) -> None:
        self.toggle.description = f"{'▾' if self.open else '▸'} {self.title_text} ({self.total})"

    def apply(self, g: dict, render) -> None:
        """Shows one group of a snapshot; ``render(row) -> html``."""
        self.total = g["total"]
        self._title()
        multi = g["pages"] > 1
        self.pager.layout.display = "" if multi else "none"
        if multi:
            last = g["first"] + len(g["rows"]) - 1
            self.page_label.value = f"&nbsp;{g['first']}–{last} of {g['total']}&nbsp;"
            self.prev.disabled = g["page"] == 0
            self.next.disabled = g["page"] >= g["pages"] - 1
        rows = g["rows"]
        self.column_box.layout.display = "" if rows else "none"
        self.empty.layout.display = "none" if rows else ""
        for i, row in enumerate(self.rows):
            if i < len(rows):
                r = rows[i]
                row.bind(r["id"], render(r), r.get("actions", ()))
            else:
                row.bind(None, "")
