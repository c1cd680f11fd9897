"""The panel's restage form: a row's ``restage`` action opens it with the
run's flags as text fields (their current values, the type as a hint), and
"Stage copy" stages a copy with the fields that changed, each read as a
command line reads ``NAME=VALUE`` (``[0.1,0.2]`` makes a sweep). The api
checks every value before anything is written: a bad one shows its one-line
error in the form, and nothing is staged. A ``prioritize`` action opens the
same form with its one field (the run's priority): "Set priority" calls
``api.prioritize``.

Opened and submitted from click handlers (the kernel's main thread), so its
fields are made when it opens; the refresh thread never touches it.
"""

from __future__ import annotations

import ipywidgets as W

from ... import api
from ...errors import GuildJupyterError
from .markup import ERROR_TEXT, TEXT

__all__ = ["RestageForm"]


class RestageForm:
    """``say(message, error)``: the panel's message line; ``done()``: called
    after a copy was staged (the panel refreshes)."""

    def __init__(self, store, say, done):
        self.store = store
        self._say, self._done = say, done
        self.run_id: str | None = None
        self.verb = "restage"
        self.original: dict = {}
        self.fields: list = []
        self.title = W.HTML(layout=W.Layout(flex="1 1 auto", min_width="0"))
        self.error = W.HTML()
        self.error.add_class("gj-restage-error")
        self.field_box = W.VBox(layout=W.Layout(flex_flow="row wrap", width="100%"))
        self.submit_button = W.Button(description="Stage copy", button_style="success",
                                      tooltip="stage a copy of the run with these flags",
                                      layout=W.Layout(width="auto", height="28px"))
        self.submit_button.add_class("gj-restage-submit")
        self.submit_button.on_click(lambda _b: self.submit())
        self.cancel_button = W.Button(description="Cancel", layout=W.Layout(width="auto", height="28px"))
        self.cancel_button.on_click(lambda _b: self.close_form())
        self.buttons = W.HBox([self.submit_button, self.cancel_button])
        self.box = W.VBox([self.title, self.field_box, self.error, self.buttons],
                          layout=W.Layout(display="none", width="100%", border="1px solid var(--jp-border-color2, #ddd)",
                                          padding="4px"))
        self.box.add_class("gj-restage-form")

    def widgets(self) -> list:
        return [self.title, self.error, self.field_box, self.submit_button, self.cancel_button, self.buttons,
                self.box] + self.fields

    def open(self, run_id: str, form: dict, verb: str = "restage") -> None:
        """Shows the form for ``run_id`` with the fields of its action's
        ``form``; ``verb``: ``restage`` or ``prioritize``."""
        self._drop_fields()
        self.run_id = run_id
        self.verb = verb
        self.original = {f["name"]: f["value"] for f in form.get("flags", ())}
        for f in form.get("flags", ()):
            text = W.Text(value=f["value"], description=f["name"], placeholder=f["type"],
                          tooltip=f"{f['name']} ({f['type']})", layout=W.Layout(width="260px"),
                          style={"description_width": "initial"})
            text.flag_name = f["name"]
            self.fields.append(text)
        self.field_box.children = tuple(self.fields)
        if verb == "prioritize":
            self.title.value = (f"<span style='color:{TEXT};font-size:12px'><b>Prioritize run {run_id[:8]}</b>: "
                                f"our queues start the highest priority first, then the oldest "
                                f"(from -1000 to 1000)</span>")
            self.submit_button.description, self.submit_button.tooltip = "Set priority", "set the run's priority"
        else:
            self.title.value = (f"<span style='color:{TEXT};font-size:12px'><b>Restage run {run_id[:8]}</b>: "
                                f"stage a copy with these flags (brackets make a sweep)</span>")
            self.submit_button.description = "Stage copy"
            self.submit_button.tooltip = "stage a copy of the run with these flags"
        self.error.value = ""
        self.box.layout.display = ""

    def changed(self) -> dict:
        """The flags whose text differs from the run's, name -> text."""
        return {t.flag_name: t.value for t in self.fields if t.value != self.original.get(t.flag_name)}

    def submit(self) -> None:
        run_id = self.run_id
        if run_id is None:
            return
        assignments = [f"{k}={v}" for k, v in self.changed().items()]
        try:
            if self.verb == "prioritize":
                self._set_priority(run_id)
                return
            runs = api.restage(run_id, *assignments, store=self.store)
        except GuildJupyterError as e:
            self.error.value = (f"<div style='color:{ERROR_TEXT};font-size:12px' class='gj-error'>"
                                f"{_escape(str(e).splitlines()[0] if str(e) else type(e).__name__)}</div>")
            return
        except Exception as e:  # noqa: BLE001 - shown in the form, never a traceback
            self.error.value = f"<div style='color:{ERROR_TEXT};font-size:12px'>{_escape(f'{type(e).__name__}: {e}')}</div>"
            return
        ids = ", ".join(r.id[:8] for r in runs)
        self.close_form()
        self._say(f"staged {'a copy' if len(runs) == 1 else f'{len(runs)} copies'} of run {run_id[:8]}: {ids}")
        self._done()

    def _set_priority(self, run_id: str) -> None:
        text = next((t.value for t in self.fields if t.flag_name == "priority"), "").strip()
        try:
            priority = int(text)
        except ValueError:
            priority = text  # api.prioritize refuses it in one line
        api.prioritize(run_id, priority=priority, store=self.store)
        self.close_form()
        self._say(f"run {run_id[:8]} now has priority {priority}")
        self._done()

    def close_form(self) -> None:
        self.box.layout.display = "none"
        self.run_id = None
        self._drop_fields()

    def _drop_fields(self) -> None:
        old, self.fields = self.fields, []
        self.field_box.children = ()
        for t in old:  # its layout and style are widgets of their own
            for part in (t.layout, t.style):
                part.close()
            t.close()


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)
