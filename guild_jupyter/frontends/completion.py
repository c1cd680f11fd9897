"""Tab completion of ``%guild`` and ``%%guild``, generated from the verb table.

``%guild <TAB>`` completes subcommands; ``-<TAB>`` the subcommand's
options; where the table says an argument is a RUN, the ids of runs in a
state the verb accepts (``%guild unstage <TAB>``: staged runs); a SCRIPT,
Python files; a SWEEP, the store's sweeps, newest first; after ``run
SCRIPT`` (or on a ``%%guild run`` line), the
script's (or the cell's) flags as ``name=``; after ``queue``, the queue
flags, and the words some of them take (``run-once=yes``). An IPython matcher (API v2) hooked in by ``install``; a failure here
completes nothing rather than showing a traceback at the prompt.
"""

from __future__ import annotations

import os
import re
import shlex

from IPython.core.completer import SimpleCompletion, context_matcher

from ..errors import GuildJupyterError
from . import commands as C

__all__ = ["install", "complete"]

# ``%guild ...`` (optionally ``x = %guild ...``) up to the cursor.
_MAGIC = re.compile(r"^\s*(?:[\w.,\s\[\]]+=\s*)?(%%?)guild\s+")
_MAX_RUNS = 200  # ids offered at most (completion must stay instant)


def install(shell) -> None:
    """Adds the matcher to the shell's completer (once)."""
    completer = getattr(shell, "Completer", None)
    if completer is None:
        return
    matchers = completer.custom_matchers
    if guild_matcher not in matchers:
        matchers.append(guild_matcher)


@context_matcher(priority=10, identifier="guild_jupyter.completion")
def guild_matcher(context):
    line = context.text_until_cursor
    m = _MAGIC.match(line)
    if m is None or (m.group(1) == "%%" and context.cursor_line != 0):
        return {"completions": [], "suppress": False}
    front = C.CELL if m.group(1) == "%%" else C.LINE
    cell = "\n".join(context.full_text.split("\n")[1:]) if front == C.CELL else None
    try:
        word, matches = complete(line[m.end():], front, cell=cell)
    except Exception:  # noqa: BLE001 - never a traceback at the prompt
        word, matches = "", []
    return {
        "completions": [SimpleCompletion(t, type="guild") for t in matches],
        "suppress": bool(matches),
        "matched_fragment": word,
        "ordered": True,
    }


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an open quote: complete on what there is
        return text.split()


def complete(text: str, front: str = C.LINE, cell: str | None = None, cwd: str | None = None):
    """``(word, completions)`` for the words after ``%guild`` up to the
    cursor: ``word`` is the one being completed, each completion replaces it."""
    words = _split(text)
    word = "" if not text or text[-1].isspace() or not words else words.pop()
    try:
        store, words = C.take_store(words, "")  # --store PATH or --store=PATH, as the verbs take it
    except C.UsageProblem:  # the path itself is being typed (IPython completes files there)
        return word, []
    if not words:  # the subcommand
        if word.startswith("-"):
            return word, _starting(["--store", "--help"], word)
        return word, _starting([v.name for v in C.verbs_for(front)], word)
    try:
        verb = C.find_verb(words[0], front, "")
    except C.UsageProblem:
        return word, []
    args = verb.args_for(front)
    given = words[1:]
    store = _option_value(given, "--store") or store
    by_name = {n: a for a in args if not a.positional for n in a.names}
    if given and given[-1] in by_name and not by_name[given[-1]].switch:
        a = by_name[given[-1]]  # the option's value
        if a.completes == C.SWEEP:
            return word, _sweep_ids(word, store)
        return word, _starting(list(a.choices), word) if a.choices else []
    if word.startswith("-"):
        used = {n for w in given for n in by_name.get(w, C.Arg(("",))).names}
        return word, _starting(sorted(n for n in by_name if n not in used) + ["-h"], word)
    positionals = _positionals(given, by_name)
    arg = _next_positional([a for a in args if a.positional], len(positionals))
    if arg is None:
        return word, []
    return word, _values(arg, word, positionals, store, cell, cwd)


def _starting(names, word: str) -> list[str]:
    return [n for n in names if n.startswith(word)]


def _option_value(given, option: str):
    for i, w in enumerate(given[:-1]):
        if w == option:
            return given[i + 1]
    return None


def _positionals(given, by_name) -> list[str]:
    out, skip = [], False
    for w in given:
        if skip:
            skip = False
        elif w in by_name:
            skip = not by_name[w].switch
        elif not w.startswith("-"):
            out.append(w)
    return out


def _next_positional(positionals, count: int):
    for a in positionals:
        if a.nargs in ("*", "+"):
            return a
        if count == 0:
            return a
        count -= 1
    return None


def _values(arg: C.Arg, word: str, positionals, store, cell, cwd) -> list[str]:
    if arg.choices:
        return _starting(list(arg.choices), word)
    if arg.completes == C.RUN:
        return _run_ids(word, arg.states, store, positionals)
    if arg.completes == C.SCRIPT:
        return _scripts(word, cwd)
    if arg.completes == C.SWEEP:
        return _sweep_ids(word, store)
    if arg.completes == C.QUEUE_FLAG and positionals and positionals[0] in C.QUEUE_ACTIONS:
        return _queue_ids(word, store) if len(positionals) == 1 else []  # queue pause QUEUE
    if arg.completes in (C.FLAG, C.QUEUE_FLAG):
        if "=" in word:  # a value: a queue flag's words (yes|no, auto, local) from the queue-flag table
            return _queue_flag_values(word) if arg.completes == C.QUEUE_FLAG else []
        if arg.completes == C.QUEUE_FLAG:
            names = list(C.QUEUE_FLAGS)
        else:
            names = _flag_names(positionals[0] if cell is None and positionals else None, cell, cwd, store)
        assigned = {p.partition("=")[0] for p in positionals if "=" in p}
        actions = list(C.QUEUE_ACTIONS) if arg.completes == C.QUEUE_FLAG and not positionals else []
        return [f"{n}=" for n in names if n.startswith(word) and n not in assigned] + _starting(actions, word)
    return []


def _queue_flag_values(word: str) -> list[str]:
    from .. import api  # lazy: as in _run_ids

    name, _, value = word.partition("=")
    for flag in api.queue_flag_table():
        if flag["name"] == name:
            return [f"{name}={c}" for c in flag["choices"] or () if c.startswith(value)]
    return []


def _run_ids(word: str, states, store, given) -> list[str]:
    from .. import api  # lazy: completion loads the api on its first use, not with the magics

    try:
        runs = api.runs(list(states) if states else None, store=store, limit=_MAX_RUNS)
    except GuildJupyterError:
        return []
    full = len(word) > 8
    ids = [r.id if full else r.id[:8] for r in runs if r.id.startswith(word)]
    return [i for i in ids if i not in given]


def _sweep_ids(word: str, store) -> list[str]:
    """The sweeps of the store, newest first (a single run's included)."""
    from .. import api  # lazy: as in _run_ids

    try:
        return [s["id"] for s in api.sweeps(store=store, limit=_MAX_RUNS, min_trials=1, exact=False)
                if s["id"].startswith(word)]
    except GuildJupyterError:
        return []


def _queue_ids(word: str, store) -> list[str]:
    """Running queues (their short ids), for ``queue pause|resume|drain``."""
    from .. import api  # lazy: as in _run_ids

    try:
        runs = api.runs(["running"], store=store, limit=_MAX_RUNS)
    except GuildJupyterError:
        return []
    full = len(word) > 8
    return [r.id if full else r.id[:8] for r in runs if r.is_queue and r.id.startswith(word)]


def _scripts(word: str, cwd: str | None) -> list[str]:
    prefix = word[:word.rfind("/") + 1]  # the directory typed so far, with its slash
    base = word[len(prefix):]
    root = os.path.join(cwd or os.getcwd(), os.path.expanduser(prefix) or ".")
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for e in entries:
        if not e.name.startswith(base) or (e.name.startswith(".") and not base.startswith(".")):
            continue
        if e.is_dir():
            out.append(prefix + e.name + "/")
        elif e.name.endswith(".py") or (e.name.endswith(".ipynb") and not e.name.endswith(".executed.ipynb")):
            out.append(prefix + e.name)
    return out


def _flag_names(script: str | None, cell: str | None, cwd: str | None, store=None) -> list[str]:
    """The flags of a script or cell; for a run (``restage RUN``), the run's."""
    from .. import api  # lazy: as in _run_ids

    try:
        if cell is not None:
            return api.flag_names(source=cell)
        if script and not script.endswith((".py", ".ipynb")):
            return list(api.resolve_store(store).resolve(script).flags)
        return api.flag_names(script, cwd) if script else []
    except GuildJupyterError:
        return []
