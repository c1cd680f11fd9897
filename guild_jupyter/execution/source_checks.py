"""What a script's source says before it runs: names it uses but never
defines, and the scalar names it prints.

Free names. 
A ``%%guild run`` cell becomes a script that runs in a fresh process, so a
name it takes from the notebook (``print(len(data))`` with ``data`` made in
an earlier cell) would be a ``NameError`` minutes later, in the run. The
compiler's symbol tables say which names each scope reads from the module's
globals; those the module never binds (assignment, import, def, class,
``global`` in a function, ...) and that are not builtins are free.
"""

from __future__ import annotations

import builtins
import io
import re
import symtable
import tokenize

MODULE_NAMES = {"__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__",
                "__builtins__", "__annotations__", "__cached__", "__path__"}


def free_names(source: str, filename: str = "<cell>") -> list[str]:
    """Global names ``source`` reads and never binds, sorted; [] when it
    cannot be compiled (the syntax error is reported elsewhere)."""
    try:
        top = symtable.symtable(source, filename, "exec")
    except (SyntaxError, ValueError):
        return []
    bound = set()
    used = set()
    _walk(top, top, bound, used)
    known = set(dir(builtins)) | MODULE_NAMES
    return sorted(n for n in used - bound if n not in known)


def _walk(table, top, bound: set, used: set) -> None:
    is_top = table is top
    for sym in table.get_symbols():
        name = sym.get_name()
        if is_top:
            if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
                bound.add(name)
            if sym.is_referenced():
                used.add(name)
        elif sym.is_global():
            if sym.is_declared_global() and sym.is_assigned():
                bound.add(name)  # `global x; x = ...` in a function defines it
            if sym.is_referenced():
                used.add(name)
    for child in table.get_children():
        _walk(child, top, bound, used)


# ``print(f"loss: {x}")``, ``print("acc:", acc)``: a string that starts with
# ``name:`` is the start of an output scalar line.
_SCALAR_START = re.compile(r"^([A-Za-z_][A-Za-z0-9_./-]*):(\s|$|\{)")
_PREFIX = re.compile(r"^[rRbBuUfF]{0,2}")


def printed_scalar_names(source: str) -> set[str]:
    """Names of the ``name: value`` lines a script appears to print (string
    literals that start with ``name:``); a guess from the source, used only
    to warn."""
    names = set()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return names
    for tok in tokens:
        if tok.type != tokenize.STRING:
            continue
        body = _PREFIX.sub("", tok.string)
        quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
        m = _SCALAR_START.match(body[len(quote):len(body) - len(quote)])
        if m:
            names.add(m.group(1))
    return names
