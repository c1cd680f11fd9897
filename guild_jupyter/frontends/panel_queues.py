"""The panel's queues section: its title, column header, a fixed pool of
queue rows (stop, plus pause/resume and drain from
``panel_queue_control``) and the form that starts a queue (one field per
queue flag, from the queue-flag table).

Kept apart from :mod:`.panel`, which composes the sections and runs the
refresh thread, so that everything about queues reads in one place. The
panel's threading rules hold here too: every widget is built up front on
the kernel's main thread, ``apply`` (the refresh thread) only assigns
traits, and the click handlers (main thread) act through the panel's
``act`` and report with its ``say``.
"""

from __future__ import annotations

import ipywidgets as W

from .. import api, views
from .panel_html import queue_header_html, queue_html
from .panel_queue_control import QueueControls
from .panel_rows import Row

__all__ = ["QueueSection", "QUEUE_ROWS", "queue_field"]

QUEUE_ROWS = 6


class QueueSection:
    """The queues of one panel. ``act(describe, action)`` and
    ``say(message, error)`` are the panel's; ``apply_lock`` guards a row
    click against a refresh; ``following`` (id -> what to call it) is the
    panel's list of stops whose outcome it reports."""

    def __init__(self, shared, store, act, say, apply_lock, following: dict):
        self.store = store
        self._act, self._say, self._apply_lock, self._following = act, say, apply_lock, following
        self.queues_title = W.HTML("<b>Queues</b>")
        self.queue_columns = W.HTML(queue_header_html(), layout=W.Layout(flex="1 1 auto", min_width="0"))
        self.queue_head = W.HBox([self.queue_columns, W.HTML(layout=shared.button_layout("96px"))],
                                 layout=W.Layout(width="100%"))
        self.queue_rows = [Row("queue", self._on_queue_stop, shared, "stop queue", "96px") for _ in range(QUEUE_ROWS)]
        self.queue_controls = QueueControls(self.queue_rows, self.queue_head, shared, act, say, store)
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
        out += self.queue_controls.widgets()
        return list({id(w): w for w in out}.values())

    # -- rendering (any thread: traits only) ----------------------------------------------------

    def apply(self, queues: list) -> None:
        more = len(queues) - len(self.queue_rows)
        title = f"<b>Queues</b> ({len(queues)})" if queues else "<b>Queues</b> <span style='color:#888'>none running</span>"
        if more > 0:
            title += f" <span style='color:#888'>showing {len(self.queue_rows)}</span>"
        self.queues_title.value = title
        for i, row in enumerate(self.queue_rows):
            if i < len(queues):
                q = queues[i]
                row.bind(q["id"], queue_html(q), f"stop queue {q['short_id']}")
                self.queue_controls.bind(row, q)
            else:
                row.bind(None, "")

    # -- actions (main thread) ------------------------------------------------------------------

    def _on_queue_stop(self, row: Row) -> None:
        queue_id = row.clicked(self._apply_lock, self._say)
        if queue_id is None:
            return
        short = queue_id[:8]

        def stop():
            api.stop(queue_id, wait=False, store=self.store)
            self._following[queue_id] = "queue"
            return f"stopping queue {short} (the runs it started keep running)"

        self._act(f"cannot stop queue {short}", stop)

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
            return f"started queue {q.id[:8]} ({how}, {views.gpus_phrase(gpus)}{', run once' if run_once else ''})"

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
