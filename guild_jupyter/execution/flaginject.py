"""The flag engine's injection: giving flag values to a script, as
command-line arguments of an argparse script or as the values of its
module-level assignments (the parsed source rewritten).

Private to the package: :mod:`.flags` is the public API, and the script
runner (:mod:`.runscript`) imports this only when a run has flags. Like
:mod:`.flagscan` it uses the builtin ``_ast`` rather than the ``ast``
module.
"""

from .flagscan import flag_assignments, literal, walk


class FlagValueError(ValueError):
    """A flag value that cannot be given to a script."""


def encode_args(options, flags):
    """Command-line arguments that give ``flags`` to an argparse script whose
    options are ``options`` (see ``flags.encode_args``)."""
    options = options or {}
    args = []
    for name, value in flags.items():
        if value is None:
            continue
        opt = options.get(name)
        if not isinstance(opt, dict) or "option" not in opt:
            opt = {"option": "--" + str(name), "action": "store"}
        args.extend(_encode_one(opt, value))
    return args


def _encode_one(opt, value):
    option = opt["option"]
    action = opt.get("action") or "store"
    if action == "store_true":
        return [option] if value else []
    if action == "store_false":
        return [] if value else [option]
    if action == "boolean_optional":
        return [option] if value else [opt.get("negative_option") or "--no-" + option[2:]]
    if action in ("store_const", "append_const"):
        return [option] if value else []
    if action == "count":
        n = value if isinstance(value, int) else 0
        return [option] * max(n, 0)
    if action == "append":
        items = value if isinstance(value, (list, tuple)) else [value]
        return [f"{option}={_arg_str(v)}" for v in items if v is not None]
    # store, extend, or a custom action
    if isinstance(value, str) and takes_list(opt):
        # A list flag's value as Guild stores it ("8 4", with arg-split):
        # split like Guild's queue does, one argument per item.
        import shlex

        return [option] + shlex.split(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return [option] if opt.get("nargs") in ("*", "?") else []
        return [option] + [_arg_str(v) for v in value]
    return [f"{option}={_arg_str(value)}"]


def takes_list(opt) -> bool:
    """An argparse option that takes several values (``nargs="+"``, ``"*"``,
    a count, or ``action="extend"``)."""
    if not isinstance(opt, dict):
        return False
    nargs = opt.get("nargs")
    if opt.get("action") == "extend":
        return True
    if opt.get("action") not in (None, "store"):
        return False
    return nargs in ("+", "*") or (isinstance(nargs, int) and not isinstance(nargs, bool) and nargs >= 1)


def _arg_str(v):
    if isinstance(v, (list, tuple, dict)):
        import json

        return json.dumps(v)
    return str(v)


def rewrite_tree(tree, flags):
    """Make the first module-level assignment of each flag in ``flags`` (of
    those the script assigns) assign the given value; line numbers stay the
    script's. Raises FlagValueError for a value no literal can spell."""
    import _ast

    if not flags:
        return
    assigns = flag_assignments(tree)
    changes = {}  # id(statement) -> {target index: (name, value)}
    for name, value in flags.items():
        if name in assigns:
            stmt, index, _default = assigns[name]
            changes.setdefault(id(stmt), {})[index] = (name, value)
    if not changes:
        return
    body = []
    for stmt in tree.body:
        change = changes.get(id(stmt))
        if not change:
            body.append(stmt)
        elif isinstance(stmt, _ast.AnnAssign) or len(stmt.targets) == 1:
            name, value = change[0]
            stmt.value = _value_node(name, value, stmt.value)
            body.append(stmt)
        else:
            # ``a = b = 1`` with only ``a`` given: one assignment per target,
            # on the same line, so that each name gets its own value.
            default = literal(stmt.value)
            for i, target in enumerate(stmt.targets):
                name, value = change.get(i, (None, default))
                new = _ast.Assign(targets=[target], value=_value_node(name, value, stmt.value))
                body.append(_locate(new, stmt))
    tree.body = body


def _value_node(name, value, old):
    import _ast

    return _locate(literal_node(name, value, isinstance(old, _ast.Tuple)), old)


def literal_node(name, v, as_tuple=False):
    import _ast

    if v is None or isinstance(v, (bool, int, float, str)):
        return _ast.Constant(value=v)
    if isinstance(v, (list, tuple)):
        elts = [literal_node(name, x) for x in v]
        if as_tuple or isinstance(v, tuple):
            return _ast.Tuple(elts=elts, ctx=_ast.Load())
        return _ast.List(elts=elts, ctx=_ast.Load())
    if isinstance(v, dict):
        return _ast.Dict(
            keys=[literal_node(name, k) for k in v],
            values=[literal_node(name, x) for x in v.values()],
        )
    raise FlagValueError(f"flag {name!r}: a {type(v).__name__} value cannot be given to a script")


_LOCATION = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def _locate(node, like):
    """Give ``node`` and everything under it the location of ``like`` (so
    tracebacks point at the user's line)."""
    where = [getattr(like, a, None) for a in _LOCATION]
    for n in walk(node):
        if "lineno" in n._attributes:
            for a, v in zip(_LOCATION, where):
                setattr(n, a, v)
    return node
