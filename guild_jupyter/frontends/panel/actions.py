"""What a click on a row's action does in the panel: the ``api`` function of
the action's verb (the REST API calls the same ones). Which actions a row
has, their labels and which ones ask for confirmation come from the view
model (``views.actions``); this only carries them out, on the kernel's main
thread, and says what happened in the panel's message line.
"""

from __future__ import annotations

from ... import api

__all__ = ["ActionRunner"]

_QUEUE_SAID = {"pause": "paused (its runs keep going)", "resume": "resumed",
               "drain": "draining: it stops once its runs have ended"}


class ActionRunner:
    """``act(describe, action)`` and ``say``: the panel's; ``open_output(id)``
    opens a run's output; ``open_restage(id, form, verb)`` the restage (or
    prioritize) form;
    ``following`` (id -> what to call it): stops whose outcome the panel
    reports once the store shows it."""

    def __init__(self, store, act, open_output, open_restage, following: dict):
        self.store = store
        self._act = act
        self._open_output = open_output
        self._open_restage = open_restage
        self._following = following

    def run(self, action: dict, kind: str = "run") -> None:
        """Carries out ``action`` (a ``views`` action) on its target, a run
        or (``kind="queue"``) a queue."""
        verb, target = action["verb"], action["target"]
        short = target[:8]
        if verb == "output":
            self._open_output(target)
            return
        if verb in ("restage", "prioritize"):  # a form first: the same small form, its fields the action's
            self._open_restage(target, action.get("form") or {}, verb)
            return
        store = self.store

        def stop():
            api.stop(target, wait=False, store=store)
            self._following[target] = kind
            return f"stopping {kind} {short}" + (" (the runs it started keep running)" if kind == "queue" else "")

        def unstage():
            api.unstage(target, store=store)
            return f"unstaged run {short}: it will not start"

        def delete():
            api.delete(target, store=store)
            return f"moved run {short} to Guild's trash"

        def retry():
            (copy,) = api.retry(target, store=store)
            return f"staged run {copy.id[:8]}: a retry of run {short}"

        def restart():
            api.restart(target, store=store)
            return f"restarted run {short}"

        def control():
            api.queue_control(target, verb, store=store)
            return f"queue {short} {_QUEUE_SAID[verb]}"

        do = {"stop": stop, "unstage": unstage, "delete": delete, "retry": retry, "restart": restart,
              "pause": control, "resume": control, "drain": control}.get(verb)
        if do is None:
            return
        self._act(f"cannot {verb} {kind} {short}", do)
