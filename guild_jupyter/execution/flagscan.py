"""The flag engine's analysis: which flags a script defines, found in its
parsed source (``argparse`` ``add_argument`` calls, or module-level
assignments of literals), with their defaults and options.

Private to the package: :mod:`.flags` is the public API, and the script
runner (:mod:`.runscript`) imports this only when a run has flags. It
imports nothing at module level, and uses the builtin ``_ast`` rather than
the ``ast`` module, whose import costs more than the rest of the runner.
"""

_NOT_FLAG_ACTIONS = {"help", "version", "parsers"}
_ACTIONS = {
    "store", "store_true", "store_false", "store_const", "append", "append_const",
    "extend", "count", "boolean_optional",
}
_TYPE_NAMES = {"float", "int", "str", "bool"}
_NO_VALUE = object()


def parse(source, filename):
    """The module AST of ``source`` (str or bytes). Raises SyntaxError, or
    ValueError for a source with null bytes."""
    import _ast

    return compile(source, filename, "exec", _ast.PyCF_ONLY_AST, dont_inherit=True)


def analyze(tree):
    """``(style, defaults, options)`` of a parsed script."""
    if _uses_argparse(tree):
        calls = _add_argument_calls(tree)
        if calls:
            return ("args",) + _argparse_flags(calls)
    return ("globals",) + globals_flags(tree)


def walk(tree):
    import _ast

    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for name in node._fields:
            v = getattr(node, name, None)
            if isinstance(v, _ast.AST):
                todo.append(v)
            elif isinstance(v, list):
                todo.extend(x for x in v if isinstance(x, _ast.AST))


def _uses_argparse(tree):
    import _ast

    for node in walk(tree):
        if isinstance(node, _ast.Import):
            if any(a.name == "argparse" or a.name.startswith("argparse.") for a in node.names):
                return True
        elif isinstance(node, _ast.ImportFrom):
            if node.module == "argparse" and not node.level:
                return True
    return False


def _add_argument_calls(tree):
    import _ast

    calls = [
        node
        for node in walk(tree)
        if isinstance(node, _ast.Call)
        and isinstance(node.func, _ast.Attribute)
        and node.func.attr == "add_argument"
    ]
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return calls


def _argparse_flags(calls):
    defaults = {}
    options = {}
    for call in calls:
        parsed = _parse_add_argument(call)
        if parsed is None:
            continue
        name, default, opt = parsed
        if name not in defaults:  # an option defined again (e.g. subparsers): first wins
            defaults[name] = default
            options[name] = opt
    return defaults, options


def _parse_add_argument(call):
    import _ast

    strings = []
    for arg in call.args:
        if not (isinstance(arg, _ast.Constant) and isinstance(arg.value, str)):
            return None  # *args or computed option names: unknown statically
        strings.append(arg.value)
    longs = [s for s in strings if s.startswith("--") and len(s) > 2]
    if not longs:
        return None  # a positional or a short-only option: not a flag (as in Guild)
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    action = _action_kind(kw.get("action"))
    if action in _NOT_FLAG_ACTIONS:
        return None
    option = longs[0]
    name = option[2:]
    dest = literal(kw.get("dest"))
    opt = {
        "option": option,
        "action": action,
        "type": _type_name(kw.get("type")),
        "nargs": literal(kw.get("nargs")),
        "dest": dest if isinstance(dest, str) else name.replace("-", "_"),
    }
    if action == "boolean_optional":
        opt["negative_option"] = "--no-" + name
    if "default" in kw:
        default = literal(kw["default"])
        if isinstance(default, str) and opt["type"] in ("float", "int"):
            default = _convert(default, opt["type"])  # as argparse does
    elif action == "store_true":
        default = False
    elif action == "store_false":
        default = True
    else:
        default = None
    return name, default, opt


def _action_kind(node):
    import _ast

    if node is None:
        return "store"
    if isinstance(node, _ast.Constant) and isinstance(node.value, str):
        v = node.value
        return v if v in _ACTIONS or v in _NOT_FLAG_ACTIONS else "store"
    if isinstance(node, _ast.Attribute):
        name = node.attr
    else:
        name = getattr(node, "id", None)
    if name == "BooleanOptionalAction":
        return "boolean_optional"
    return "store"  # a custom Action class: assume it takes a value


def _type_name(node):
    name = getattr(node, "id", None)
    return name if name in _TYPE_NAMES else None


def _convert(value, type_name):
    try:
        return float(value) if type_name == "float" else int(value)
    except ValueError:
        return value


def globals_flags(tree):
    defaults = {}
    options = {}
    for name, (stmt, _index, value) in flag_assignments(tree).items():
        defaults[name] = value
        options[name] = {"line": stmt.lineno}
    return defaults, options


def flag_assignments(tree):
    """name -> (statement, target index, value) of the first module-level
    assignment of a literal value to ``name``, in source order. Names
    starting with ``_`` are not flags."""
    import _ast

    found = {}
    for stmt in tree.body:
        if isinstance(stmt, _ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, _ast.AnnAssign) and stmt.value is not None and stmt.simple:
            targets = [stmt.target]
        else:
            continue
        names = [
            (i, t.id)
            for i, t in enumerate(targets)
            if isinstance(t, _ast.Name) and not t.id.startswith("_") and t.id not in found
        ]
        if not names:
            continue
        value = literal(stmt.value, _NO_VALUE)
        if value is _NO_VALUE:
            continue
        for i, name in names:
            found[name] = (stmt, i, value)
    return found


def literal(node, invalid=None):
    """The flag value ``node`` spells: None, a bool, int, float or str
    (numbers signed or not), or a list or tuple of such (as a list);
    ``invalid`` for anything else."""
    import _ast

    if isinstance(node, _ast.Constant):
        v = node.value
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        return invalid
    if isinstance(node, _ast.UnaryOp) and isinstance(node.op, (_ast.USub, _ast.UAdd)):
        operand = node.operand
        if isinstance(operand, _ast.Constant):
            v = operand.value
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return -v if isinstance(node.op, _ast.USub) else v
        return invalid
    if isinstance(node, (_ast.List, _ast.Tuple)):
        out = []
        for elt in node.elts:
            v = literal(elt, _NO_VALUE)
            if v is _NO_VALUE:
                return invalid
            out.append(v)
        return out
    return invalid
