"""From a script, a cell or typed assignments to an operation and its
trials, validated before anything is written."""

from __future__ import annotations

from .. import sweeps as sweeplib
from .. import validate
from ..errors import BadInput, FlagError, SweepError
from ..execution import flags as flaglib
from ..opdef import ScriptOp
from ..store.notebooks import is_notebook


def plan_trials(op: ScriptOp, assignments=(), flags=None, max_trials=None, random_seed=None) -> list[dict]:
    """The user flag dicts of every trial, validated against the script.

    ``assignments`` are ``name=value`` strings as typed in a cell or shell
    (brackets make a sweep); ``flags`` maps names to Python values (a list is
    a sweep unless the flag takes a list: a list default, an argparse
    ``nargs``). Values from either get the one type check
    (``op.coerce_flags``). Raises a ``BadInput`` before anything is written.
    """
    if max_trials is not None and (not isinstance(max_trials, int) or max_trials < 1):
        raise SweepError("--max-trials must be at least 1")
    list_flags = op.list_flags
    specs: dict = {}
    for text in assignments:
        name, value = sweeplib.parse_assignment(text)
        if name in specs:
            raise FlagError(f"flag {name!r} given twice")
        # A list flag takes a list as one value ([] included); brackets sweep the others.
        specs[name] = _list_flag_spec(name, value) if name in list_flags else sweeplib.parse_value_spec(name, value)
    for name, value in (flags or {}).items():
        if name in specs:
            raise FlagError(f"flag {name!r} given twice")
        if isinstance(value, (list, tuple)) and name not in list_flags:
            if not value:
                raise SweepError(f"empty sweep for {name}")
            specs[name] = sweeplib.Choices(tuple(value))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
            specs[name] = sweeplib.Choices(tuple(list(v) for v in value))
        else:
            specs[name] = sweeplib.Value(list(value) if isinstance(value, tuple) else value)
    op.check_flags({k: None for k in specs})
    trials = sweeplib.expand(specs, max_trials=max_trials, random_seed=random_seed)
    return op.coerce_flags(trials)  # every trial type-checked, as Guild checks them


def _list_flag_spec(name, text):
    """A flag whose default is a list takes a list value: ``[1,2]`` is one
    value, ``[[1,2],[3]]`` a sweep over two lists."""
    import re

    import yaml

    fn = re.match(r"\s*(range|linspace|logspace|uniform|loguniform)\s*\[", text)
    if fn:
        raise SweepError(f"{name} takes a list: a sweep function ({fn.group(1)}[...]) cannot make its values; "
                         f"sweep over lists instead ({name}=[[1,2],[3]])")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise FlagError(f"malformed list value for {name}: {text!r}") from None
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return sweeplib.Choices(tuple(value))
    if not isinstance(value, list):
        value = [value]
    return sweeplib.Value(value)


def operation(script: str, cwd: str | None = None) -> ScriptOp:
    """What ``run`` runs for a path: a notebook (``.ipynb``) or a Python
    script, relative to ``cwd``. Raises ``ScriptError`` for a missing file,
    one of another kind, or one that cannot be read as its kind."""
    if is_notebook(script):
        # lazy: a script's run (the CLI's usual command) does not load the notebook reader
        from ..notebook_op import NotebookOp

        return NotebookOp.from_path(script, cwd)
    return ScriptOp.from_path(script, cwd)


def cell_op(source: str, name: str, cwd: str | None = None) -> ScriptOp:
    """A notebook cell's body as an operation named ``name`` (a ``.py`` file
    name) in ``cwd``, for ``run(name, op=...)``. Refuses an empty cell and
    one that uses names defined outside it (a run starts in a fresh
    process), before anything is written."""
    import os

    from ..execution.source_checks import free_names  # lazy: the source checks (tokenize) load for cells only

    validate.text("source", source, optional=False)
    validate.text("name", name, optional=False)
    validate.path("cwd", cwd)
    if not source.strip():
        raise BadInput("the cell is empty: there is nothing to run")
    if not source.endswith("\n"):
        source += "\n"
    free = free_names(source)
    if free:
        shown = ", ".join(free[:8]) + (f" (and {len(free) - 8} more)" if len(free) > 8 else "")
        raise BadInput(f"the cell uses {shown}, defined outside it: a run starts in a fresh process, "
                       f"so define or import {'them' if len(free) > 1 else 'it'} in the cell")
    return ScriptOp(cwd or os.getcwd(), name, source.encode("utf-8"), kind="cell")


def flag_names(script: str | None = None, cwd: str | None = None, source: str | None = None) -> list[str]:
    """The flags of a script or notebook (a path, relative to ``cwd``) or of ``source``
    (a cell body), in the script's order; raises ``ScriptError`` when it
    cannot be read or parsed."""
    if source is not None:
        return list(flaglib.inspect_script(source, "<cell>").defaults)
    validate.script(script, None)
    return list(operation(script, cwd).defaults)
