"""The panel's queues section: its title, column header, a fixed pool of
queue rows (their actions as the view model gives them: pause or resume,
drain, stop) and the form that starts a queue (one field per queue flag,
from the queue-flag table).

Kept apart from :mod:`.panel`, which composes the sections and runs the
refresh thread, so that everything about queues reads in one place. The
panel's threading rules hold here too: every widget is built up front on
the kernel's main thread, ``apply`` (the refresh thread) only assigns
traits, and the click handlers (main thread) act through the panel's
``ActionRunner`` (rows) or its ``act`` (the form) and report with its
``say``.
"""

from __future__ import annotations

import ipywidgets as W

from ... import api, views
from .markup import queue_header_html, queue_html
from .rows import Row

__all__ = ["QueueSection", "QUEUE_ROWS", "queue_field"]

QUEUE_ROWS = 6


class QueueSection:
    """The queues of one panel. ``act(describe, action)`` and
    ``say(message, error)`` are the panel's; ``on_action(row, action)``
    its handler of a row's action (guards, then the ``ActionRunner``)."""

    def __init__(self, shared, store, act, say, on_action):
        self.store = store
        self._act, self._say = act, say
        self.queues_title = W.HTML("<b>Queues</b>")
        self.queue_columns = W.HTML(queue_header_html(), layout=W.Layout(flex="1 1 auto", min_width="0"))
        self.queue_head = W.HBox([self.queue_columns], layout=W.Layout(width="100%"))
        n_buttons = 3  # pause or resume, drain, stop (views.queue_actions)
        self.queue_rows = [Row("queue", n_buttons, on_action, shared) for _ in range(QUEUE_ROWS)]
        # One field per queue flag, from the queue-flag table (what each takes, its range, its help).
        self.queue_fields = {f["name"]: queue_field(f) for f in api.queue_flag_table()}
        self.queue_gpus = self.queue_fields["gpus"]
        self.queue_run_once = self.queue_fields["run-once"]
        self.queue_dask = self.queue_fields["dask"]  # a Dask queue: runs go to that cluster
        self.queue_detached = W.Checkbox(description="detached", indent=False, layout=W.Layout(width="90px"),
                                         tooltip="a background process that outlives this kernel")
        self.queue_start = W.Button(description="start queue", button_style="success",
                                    layout=W.Layout(width="110px", height="28px"))
        self.queue_start.add_class("gj-start-queue")
        self.queue_start.on_click(lambda _b: self._on_queue_start())
        self.queue_form = W.HBox([*self.queue_fields.values(), self.queue_detached, self.queue_start],
                                 layout=W.Layout(align_items="center", flex_flow="row wrap"))
        self.box = W.VBox([self.queues_title, self.queue_head] + [r.box for r in self.queue_rows]
                          + [self.queue_form])

    def widgets(self) -> list:
        """Every widget of the section, each once: what the panel closes with it."""
        out = [self.queues_title, self.queue_columns, *self.queue_fields.values(), self.queue_detached,
               self.queue_start, self.queue_form, self.box,
               self.queue_head, *self.queue_head.children]
        for r in self.queue_rows:
            out += r.widgets()
        return list({id(w): w for w in out}.values())

    # -- rendering (any thread: traits only) ----------------------------------------------------

    def apply(self, queues: list) -> None:
        more = len(queues) - len(self.queue_rows)
        title = f"<b>Queues</b> ({len(queues)})" if queues else "<b>Queues</b> <span>none running</span>"
        if more > 0:
            title += f" <span>showing {len(self.queue_rows)}</span>"
        self.queues_title.value = title
        for i, row in enumerate(self.queue_rows):
            if i < len(queues):
                q = queues[i]
                row.bind(q["id"], queue_html(q), q["actions"])
            else:
                row.bind(None, "")

    # -- actions (main thread) ------------------------------------------------------------------

    def _on_queue_start(self) -> None:
        # What was filled in, as typed: the api checks each value as the table declares it.
        given = {}
        for name, w in self.queue_fields.items():
            value = w.value if isinstance(w.value, bool) else (w.value.strip() or None)
            if value not in (None, False):
                given[name.replace("-", "_")] = value
        gpus, run_once, dask = given.get("gpus"), bool(given.get("run_once")), given.get("dask")
        detached = bool(self.queue_detached.value)

        def start():
            q = api.queue(background=detached, store=self.store, **given)
            how = ("detached" if detached else "thread") + (f", Dask {dask}" if dask else "")
            return f"started queue {q.id[:8]} ({how}, {views.queue_gpus_text(gpus)}{', run once' if run_once else ''})"

        self._act("cannot start the queue", start)


def queue_field(flag: dict):
    """A widget for one queue flag of ``api.queue_flag_table()``: a checkbox
    for yes/no, else a text field whose hint says what it takes (its range,
    its default) and whose tooltip is its help. Numbers are typed as text:
    the api refuses a value past its range with one line, never clamps it."""
    if flag["type"] == "yes-no":
        return W.Checkbox(description=flag["name"].replace("-", " "), indent=False, tooltip=flag["help"],
                          layout=W.Layout(width="140px"))
    hint = flag["metavar"] if flag["type"] == "text" else " ".join(
        t for t in (flag["range"], f"(default {flag['default']})" if flag["default"] is not None else "") if t)
    if flag["name"] == "gpus":
        hint = f"{views.ANY_GPU}, or e.g. 0, 0,1, auto"
    return W.Text(placeholder=hint, description=flag["name"], tooltip=flag["help"],
                  style={"description_width": "initial"}, layout=W.Layout(width="250px"))
