"""What can be done to a row now: its ``actions``, decided here once.

Every front end renders these and decides nothing: a button per action
(``label``), a confirmation when ``confirm`` is set, and the REST call
(``method`` and ``path``, relative to ``/guild/api/``) or, in the panel,
the ``api`` function of the same verb. A restage action carries a small
form: the run's flags with their current values and types.

Which verbs a status allows:

    staged      prioritize, unstage
    held        prioritize, unstage      (pending, waiting for its dependencies: no output yet)
    pending     stop, output
    running     stop, output
    completed   output, restart, restage, delete
    error       output, retry, restart, restage, delete
    terminated  output, restart, restage, delete    (stopped by you, too)
    unstaged    restart, restage, delete             (it has no output)

``restart``, ``restage`` and ``retry`` copy or re-run a script's run: a
Guild operation (``guild run`` of a Guildfile op) gets none of them; a
failed run whose retry is staged already (``retried_as``) gets no retry. A
notebook run also gets ``open`` ("Open notebook") where a Jupyter server's
root holds its executed notebook (the monitor a server owns adds it). A
queue of ours takes ``pause`` or ``resume`` (whichever applies), ``drain``
(unless draining) and ``stop``; Guild's own queues only ``stop``.
"""

from __future__ import annotations

from ..store.run import COMPLETED, ERROR, PENDING, RUNNING, STAGED, TERMINATED
from .words import format_flag

__all__ = ["RUN_VERBS", "RUN_ACTIONS", "QUEUE_VERBS", "HELD", "run_actions", "queue_actions", "output_action",
           "restage_form", "priority_form", "flag_type", "action", "open_sweep_action", "open_notebook_action"]

UNSTAGED = "unstaged"

#: Every verb a run row may carry, in display order.
RUN_VERBS = ("stop", "output", "retry", "restart", "restage", "prioritize", "unstage", "delete")
#: A pending run held for its dependencies (SPEC 12): not started, not claimed.
HELD = "held"
#: The verbs each status allows (in ``RUN_VERBS`` order).
RUN_ACTIONS = {
    STAGED: ("prioritize", "unstage"),
    HELD: ("prioritize", "unstage"),
    PENDING: ("stop", "output"),
    RUNNING: ("stop", "output"),
    COMPLETED: ("output", "restart", "restage", "delete"),
    ERROR: ("output", "retry", "restart", "restage", "delete"),
    TERMINATED: ("output", "restart", "restage", "delete"),
    UNSTAGED: ("restart", "restage", "delete"),
}
#: Verbs that re-run or copy a script's run (not for Guild operations).
SCRIPT_ONLY = ("retry", "restart", "restage")
QUEUE_VERBS = ("pause", "resume", "drain", "stop")

_LABELS = {"stop": "Stop", "output": "Output", "retry": "Retry", "restart": "Restart", "restage": "Restage",
           "unstage": "Unstage", "delete": "Delete", "pause": "Pause", "resume": "Resume", "drain": "Drain",
           "prioritize": "Prioritize", "open-sweep": "Open", "open": "Open notebook"}
_HELP = {
    "stop": "stop the run (its processes get SIGTERM, then SIGKILL after the grace period)",
    "output": "show the run's output (followed while it runs)",
    "retry": "stage a copy of the failed run for a queue (same flags and source)",
    "restart": "run it again in place: same id, same flags, output appended",
    "restage": "stage a copy with edited flags",
    "prioritize": "change its priority: our queues start the highest priority first, then the oldest "
                  "(from -1000 to 1000; Guild's own queue ignores it)",
    "unstage": "take the run off the queue: it will not start",
    "delete": "move the run to Guild's trash (guild runs restore brings it back)",
    "pause": "start no staged run until resumed (runs going keep going)",
    "resume": "start staged runs again",
    "drain": "start nothing more; the queue stops once its runs have ended",
    "open-sweep": "open the sweep's live view: its trials and their curves",
    "open": "open the notebook as it ran: its parameters cell and outputs",
}


def action(verb: str, method: str, path: str, confirm: str | None = None, form: dict | None = None) -> dict:
    """One action as every front end gets it; ``target``: the id of the run
    or queue it acts on (the second part of ``path``)."""
    return {"verb": verb, "label": _LABELS[verb], "help": _HELP[verb], "confirm": confirm, "method": method,
            "path": path, "form": form, "target": path.split("/")[1]}


def open_sweep_action(sweep_id: str) -> dict:
    """Open a sweep's view (a viewer's tab; ``GET sweeps/<id>`` is its table)."""
    return action("open-sweep", "GET", f"sweeps/{sweep_id}")


def open_notebook_action(run_id: str, tree_path: str) -> dict:
    """Open a notebook run's executed notebook in JupyterLab. ``tree_path``:
    its path under the Jupyter server's root (``notebook_tree_path``); the
    action's path is the server's ``lab/tree/...`` page, not a REST path."""
    from urllib.parse import quote

    out = action("open", "GET", "lab/tree/" + quote(tree_path))
    out["target"] = run_id
    return out


def output_action(run_id: str) -> dict:
    """Open the run's output (a viewer follows it while the run runs)."""
    return action("output", "GET", f"runs/{run_id}/output")


def flag_type(value) -> str:
    """``bool``, ``int``, ``float``, ``list`` or ``str``: how a form field
    reads a flag's value (the script's default decides in the end)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    return "str"


def restage_form(flags: dict) -> dict:
    """The restage form: each flag with its current value as text (how a
    command line would write it) and its type."""
    return {"flags": [{"name": str(k), "value": format_flag(v), "type": flag_type(v)} for k, v in flags.items()]}


def priority_form(priority: int) -> dict:
    """The prioritize form: one field, the run's priority now (the form
    posts ``{"flags": {"priority": "5"}}``, as every row form posts)."""
    return {"flags": [{"name": "priority", "value": str(priority), "type": "int"}]}


def run_actions(run_id: str, status: str, *, script: bool = True, flags: dict | None = None,
                retried: bool = False, held: bool = False, priority: int = 0) -> list[dict]:
    """The actions a run in ``status`` (a display status: ``unstaged``
    included) allows now. ``script``: the run is a script's or a cell's
    (restart, restage and retry need its source); ``flags``: its flag
    values, for the restage form; ``retried``: its failure's retry is
    staged already (by a queue or by hand): no second one; ``held``: a
    pending run waiting for its dependencies; ``priority``: its priority,
    for the prioritize form."""
    short = run_id[:8]
    out = []
    for verb in RUN_ACTIONS.get(HELD if held else status, ()):
        if verb in SCRIPT_ONLY and not script or verb == "retry" and retried:
            continue
        if verb == "stop":
            out.append(action("stop", "POST", f"runs/{run_id}/stop", f"Stop run {short}?"))
        elif verb == "output":
            out.append(output_action(run_id))
        elif verb == "retry":
            out.append(action("retry", "POST", f"runs/{run_id}/retry"))
        elif verb == "restart":
            out.append(action("restart", "POST", f"runs/{run_id}/restart",
                              f"Restart run {short} in place? Its outcome is replaced and its output appended to."))
        elif verb == "restage":
            out.append(action("restage", "POST", f"runs/{run_id}/restage", form=restage_form(flags or {})))
        elif verb == "prioritize":
            out.append(action("prioritize", "POST", f"runs/{run_id}/prioritize", form=priority_form(priority)))
        elif verb == "unstage":
            out.append(action("unstage", "DELETE", f"runs/{run_id}"))
        elif verb == "delete":
            out.append(action("delete", "DELETE", f"runs/{run_id}",
                              f"Delete run {short}? It moves to Guild's trash."))
    return out


def queue_actions(queue_id: str, *, ours: bool, running: bool, control: str) -> list[dict]:
    """The actions a queue allows now. ``ours``: started by guild_jupyter
    (Guild's own queues ignore pause and drain); ``running``: the queue run
    is still going; ``control``: what was asked of it (running, paused,
    draining)."""
    if not running:
        return []
    short = queue_id[:8]
    out = []
    if ours:
        if control == "running":
            out.append(action("pause", "POST", f"queues/{queue_id}/pause"))
        else:
            out.append(action("resume", "POST", f"queues/{queue_id}/resume"))
        if control != "draining":
            out.append(action("drain", "POST", f"queues/{queue_id}/drain"))
    out.append(action("stop", "DELETE", f"queues/{queue_id}",
                      f"Stop queue {short}? The runs it started keep running."))
    return out
