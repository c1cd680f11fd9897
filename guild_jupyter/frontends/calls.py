"""The verbs' glue, written once: parsed arguments -> one call of the verb's
twin in :mod:`guild_jupyter.api` -> its result.

The command line (:mod:`.cli`) prints what ``call`` returns, a magic
(:mod:`.magics`) returns it for the cell to render: each result type has one
text (see :mod:`guild_jupyter.display`), so a verb says the same sentence in a
terminal and in a notebook. Conflicting options are the api's to refuse
(``api.conflicts``), so the command line, the magics and REST refuse them
alike, before anything is written.

What differs between the front ends is the ``Door`` a verb is called
through: how its run references read (a notebook's indices are those of
the latest listing shown in it), where a foreground run's output goes, and,
for ``%%guild run``, the cell's body. Nothing here imports IPython.
"""

from __future__ import annotations

import os
import re
import sys

from .. import api
from ..errors import BadInput
from . import commands as C

__all__ = ["Door", "CALLS", "call", "already_shown", "cell_op_name", "compare_options"]


class Door:
    """The front end a verb is called through: ``front`` (``C.CLI``,
    ``C.LINE`` or ``C.CELL``); ``refs`` (run references as typed -> as the api
    takes them); ``stream`` (where a foreground run's and a followed run's
    output goes; default stdout), ``note`` (what is said about it: waiting,
    the outcome; default ``stream``), ``echo`` (runs write straight to this
    process's stdout: a terminal), ``cell`` (the body of ``%%guild run``)."""

    def __init__(self, front: str, refs=None, stream=None, note=None, echo: bool = False, cell: str | None = None):
        self.front, self.cell, self.echo = front, cell, echo
        self.refs = refs or list
        self.stream, self.note = stream, note


def call(verb: C.Verb, args, door: Door):
    """The verb's result for ``args`` (its parser's namespace)."""
    return CALLS[verb.name](args, door)


def already_shown(result) -> bool:
    """Whether the result was written as it came and has nothing left to
    show: a followed run's output (the api returns the ended run) or a
    foreground queue's log (it returns the queue's exit status)."""
    return result is None or isinstance(result, (int, api.Run))


# -- the verbs -------------------------------------------------------------------------------------


def _run(args, door: Door):
    cwd = os.getcwd()
    op, script = None, getattr(args, "script", None)
    if door.cell is not None:
        op = api.cell_op(door.cell, cell_op_name(door.cell, args.name), cwd)
        script = op.name
    live = args.foreground and not (args.stage or args.dry_run)  # the api refuses those pairs
    try:
        return api.run(script, *args.flags, gpus=args.gpus, label=args.label, stage=args.stage,
                       foreground=args.foreground, dry_run=args.dry_run, max_trials=args.max_trials,
                       random_seed=args.random_seed, retries=args.retries, store=args.store, cwd=cwd, op=op,
                       echo=door.echo and live, stream=None if door.echo or not live else door.stream,
                       **_waiting(args, door))
    except api.SweepInterrupted as e:  # Ctrl-C in the foreground: the trials stopped, and said so
        stopped = sum(r.status == "terminated" for r in e.runs)
        result = api.RunList(e.runs, store=api.resolve_store(args.store),
                             note=f"interrupted: stopped {stopped} run(s)")
        result.interrupted = True
        return result


def _queue(args, door: Door):
    words = list(args.flags)
    if words and words[0] in C.QUEUE_ACTIONS:  # queue pause|resume|drain QUEUE
        action, rest = words[0], words[1:]
        flags = [w for w in rest if "=" in w]
        api.refuse_conflicts("queue", action=action, background=args.background, flags=flags)
        if len(rest) != 1:
            raise BadInput(f"{action} takes one QUEUE (its id or id prefix)"
                           + (f", not {' '.join(rest)!r}" if rest else ""))
        (ref,) = door.refs(rest)
        return api.queue_control(ref, action, store=args.store)
    if door.front == C.CLI and not args.background:
        # In the foreground the loop runs in this process (holding the queue
        # run's LOCK), its log on the terminal; Ctrl-C, SIGHUP or SIGTERM stop it.
        return api.serve_queue(*words, echo=door.stream or sys.stdout, store=args.store,
                               on_start=lambda qid: print(f"queue {qid[:8]} started; Ctrl-C stops it", flush=True))
    return api.queue(*words, background=args.background, store=args.store)


def _runs(args, door: Door):
    listing = api.runs(args.status, op=args.op, label=args.label, limit=args.limit, scalar=args.scalar,
                       sweep=args.sweep, store=args.store)
    if door.front == C.CLI:
        return listing
    from ..display import DEFAULT_SHOWN, RunListing  # lazy: display (and comparison) load with the verbs that return them, not at CLI start-up

    return RunListing(listing, shown=None if args.all else DEFAULT_SHOWN)


def _stop(args, door: Door):
    return api.stop(*door.refs(args.runs), all=args.all, queues=args.queues, wait=args.wait, store=args.store)


def _output(args, door: Door):
    (ref,) = door.refs([args.run])
    if args.follow:  # the output streams as it comes; the api returns the ended run
        return api.output(ref, tail=args.tail, follow=True, stream=door.stream or sys.stdout, note=door.note,
                          store=args.store)
    from ..display import RunOutput  # lazy: as in _runs

    return RunOutput(api.output(ref, tail=args.tail, store=args.store))


def _plot(args, door: Door):
    """A terminal cannot show a figure: there it is saved to ``--output``."""
    if door.front == C.CLI and not args.output:
        raise BadInput("plot needs --output FILE (.png, .svg or .pdf): a terminal cannot show a figure")
    return api.plot(*door.refs(args.runs), scalar=args.scalar, op=args.op, sweep=args.sweep, x=args.x,
                    output=args.output, store=args.store)


def _compare(args, door: Door):
    return api.compare(*door.refs(args.runs), store=args.store, **compare_options(args))


def compare_options(args) -> dict:
    """The filters, sort and columns of ``compare``."""
    status = [s.strip() for s in args.status.split(",") if s.strip()] if args.status is not None else None
    return dict(op=args.op, label=args.label, status=status, sort=args.sort, scalar=args.scalar,
                all_flags=args.all_flags, sweep=args.sweep)


def _sweep(args, door: Door):
    """The sweep's view: in a notebook the live view (JupyterLab) or its
    table and plot; on the command line its table (``--json``: the view
    model)."""
    return api.sweep_view(args.sweep, scalar=args.scalar, store=args.store)


def _waiting(args, door: Door) -> dict:
    """``--priority``, ``--after`` and ``--after-any`` as the api takes them
    (a notebook's listing indices made ids, as for every run reference)."""
    return {"priority": args.priority, "after": door.refs(args.after or []),
            "after_any": door.refs(args.after_any or [])}


def _restart(args, door: Door):
    (ref,) = door.refs([args.run])
    return api.restart(ref, stage=args.stage, store=args.store, **_waiting(args, door))


def _restage(args, door: Door):
    (ref,) = door.refs([args.run])
    return api.restage(ref, *args.flags, store=args.store, **_waiting(args, door))


def _panel(args, door: Door):
    if args.refresh < 0:
        raise BadInput("--refresh must be 0 (never) or a number of seconds")
    try:
        from .panel import panel  # lazy: ipywidgets and the panel load on %guild panel only
    except ImportError as e:
        raise BadInput(f"panel not available ({e})") from None
    return panel(store=args.store, refresh=args.refresh or None)


def _autoload(args, door: Door):
    from ..autoload import autoload, startup_file, status  # lazy: only the autoload verb needs IPython's profile paths

    if args.state == "status":
        return ("on" if status(args.profile) else "off") + f": {startup_file(args.profile)}"
    return autoload(args.state == "on", args.profile)


CALLS = {
    "run": _run, "queue": _queue, "runs": _runs, "stop": _stop, "output": _output, "plot": _plot,
    "compare": _compare, "restart": _restart, "restage": _restage, "panel": _panel, "autoload": _autoload,
    "sweep": _sweep,
    "queues": lambda args, door: api.queues(store=args.store, include_finished=args.all),
    "unstage": lambda args, door: api.unstage(*door.refs(args.runs), store=args.store),
    "delete": lambda args, door: api.delete(*door.refs(args.runs), store=args.store),
    "wait": lambda args, door: api.wait(*door.refs(args.runs), timeout=args.timeout, store=args.store),
    "prioritize": lambda args, door: api.prioritize(*door.refs(args.runs), priority=args.priority, store=args.store),
}


# -- cell operations ----------------------------------------------------------------------------

_CODING = re.compile(r"^#.*coding[:=]")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-_")[:40].strip("-_")


def cell_op_name(body: str, name: str | None = None) -> str:
    """The script file name of a ``%%guild run`` cell.

    ``--name NAME`` gives ``NAME.py`` (made file- and module-safe); else a
    leading ``# comment`` gives its slug (``# Train a tiny MLP`` ->
    ``train-a-tiny-mlp.py``), stable while the code below it changes; else
    ``cell-<first 8 hex of the body's sha1>.py``.
    """
    if name is not None:
        base = name[:-3] if name.endswith(".py") else name
        slug = _slug(base)
        if not slug:
            raise BadInput(f"bad --name {name!r}: use letters, digits, - and _")
        return slug + ".py"
    for line in body.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#") and not line.startswith("#!") and not _CODING.match(line):
            slug = _slug(line.lstrip("#"))
            if slug:
                return slug + ".py"
        break
    import hashlib  # here: hashlib costs milliseconds of every command's start-up

    return "cell-" + hashlib.sha1(body.strip().encode("utf-8")).hexdigest()[:8] + ".py"
