"""The panel's pause/resume and drain buttons, one pair per queue row.

Kept apart from the rows (``panel_rows.Row``: one HTML cell and one button)
so the panel gains them with three calls: build (after its queue rows),
``bind`` (as each row is bound to a queue) and ``widgets`` (closed with the
panel). A click goes to ``api.queue_control`` through the panel's ``act``
(the message line shows what happened); the row guard of ``panel_rows``
applies: a row bound to another queue a moment ago refuses the click.
"""

from __future__ import annotations

import time

import ipywidgets as W

from .. import api
from .panel_rows import REBIND_GUARD

__all__ = ["QueueControls"]

WIDTH = "72px"


class QueueControls:
    def __init__(self, rows, head, shared, act, say, store=None):
        """``rows``: the panel's queue rows; ``head``: their column header box
        (gets spacers, so columns stay aligned); ``act(describe, action)`` and
        ``say(message, error)``: the panel's."""
        self._act, self._say, self.store = act, say, store
        self._buttons: dict = {}  # id(row) -> (toggle, drain)
        self._rows = list(rows)
        for row in self._rows:
            toggle = W.Button(description="pause", layout=shared.button_layout(WIDTH), style=shared.button_style,
                              tooltip="start no staged run until resumed (its runs keep going)")
            toggle.add_class("gj-queue-toggle")
            drain = W.Button(description="drain", layout=shared.button_layout(WIDTH), style=shared.button_style,
                             tooltip="start nothing more; the queue stops once its runs have ended")
            drain.add_class("gj-queue-drain")
            toggle.on_click(lambda b, row=row: self._click(row, b.description))
            drain.on_click(lambda _b, row=row: self._click(row, "drain"))
            children = list(row.box.children)
            row.box.children = tuple(children[:-1] + [toggle, drain] + children[-1:])  # before "stop queue"
            self._buttons[id(row)] = (toggle, drain)
        self._spacers = [W.HTML(layout=shared.button_layout(WIDTH)) for _ in range(2)]
        cols = list(head.children)
        head.children = tuple(cols[:-1] + self._spacers + cols[-1:])

    def bind(self, row, q: dict | None) -> None:
        """Shows the actions ``q`` (a ``views.queue_row``) takes now."""
        toggle, drain = self._buttons[id(row)]
        ours = q is not None and q.get("host") != "guild"  # Guild's own queues do not obey them
        control = (q or {}).get("control", "running")
        toggle.description = "resume" if control == "paused" else "pause"
        toggle.disabled = not ours
        drain.disabled = not ours or control == "draining"

    def _click(self, row, action: str) -> None:
        queue_id = row.run_id
        if queue_id is None:
            return
        if row.bound_at and time.monotonic() - row.bound_at < REBIND_GUARD:
            self._say("the list just changed: check the row and click again", error=True)
            return
        short = queue_id[:8]
        said = {"pause": "paused (its runs keep going)", "resume": "resumed",
                "drain": "draining: it stops once its runs have ended"}[action]

        def control():
            api.queue_control(queue_id, action, store=self.store)
            return f"queue {short} {said}"

        self._act(f"cannot {action} queue {short}", control)

    def widgets(self) -> list:
        return [w for pair in self._buttons.values() for w in pair] + self._spacers
