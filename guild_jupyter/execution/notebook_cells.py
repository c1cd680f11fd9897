"""Which cell of a notebook holds its parameters, and how the run's flag
values go into it: the rules that staging (:mod:`guild_jupyter.notebook_op`,
which finds a notebook's flags) and the runner (:mod:`.notebook`, which
injects the run's values) must agree on.

papermill's convention, which notebooks written for it already follow: the
code cell tagged ``parameters`` holds the defaults, and the values of a run
go into a new cell right after it, tagged ``injected-parameters``, so later
assignments win and the executed notebook shows what was used. A notebook
with no tagged cell uses its first code cell the same way.

Works on plain JSON dicts (what ``json.load`` gives) as well as nbformat's
nodes, which are dicts too; imports nothing heavy.
"""

from __future__ import annotations

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def cell_text(cell) -> str:
    """A cell's source as one string (the file format allows a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def cell_tags(cell) -> list:
    meta = cell.get("metadata")
    tags = meta.get("tags") if isinstance(meta, dict) else None
    return tags if isinstance(tags, list) else []


def parameters_cell(cells) -> tuple[int | None, bool]:
    """``(index, tagged)`` of the cell that holds the parameters: the first
    code cell tagged ``parameters``, else the first code cell (``tagged``
    False), else ``(None, False)``. Cells tagged ``injected-parameters``
    (left by an earlier papermill or guild_jupyter run) never count."""
    first = None
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        tags = cell_tags(cell)
        if INJECTED_TAG in tags:
            continue
        if PARAMETERS_TAG in tags:
            return i, True
        if first is None:
            first = i
    return first, False


def python_text(source: str) -> str:
    """A code cell's source as plain Python: IPython syntax (``%magic``,
    ``!cmd``) turned into the calls IPython makes of it, so that the cell
    parses. IPython's transformer is imported only for such a cell."""
    try:
        import _ast  # builtin: cheaper than the ast module

        compile(source, "<cell>", "exec", _ast.PyCF_ONLY_AST, dont_inherit=True)
        return source
    except (SyntaxError, ValueError):
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython is a dependency
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - a cell IPython cannot read: let the parser report it
        return source


def without_magics(source: str) -> str:
    """``source`` with its IPython-only lines (``%magic``, ``!cmd``)
    commented out: cheap, for checks that only scan for strings (which
    scalars a notebook prints)."""
    if "%" not in source and "!" not in source:
        return source
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if line.lstrip()[:1] in ("%", "!"):
            lines[i] = "#" + line
    return "\n".join(lines)
