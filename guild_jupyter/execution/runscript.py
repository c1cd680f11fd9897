"""Run a Python script with its flags, as ``python SCRIPT`` would run it.

    python -m guild_jupyter.execution.runscript SCRIPT [ARG ...]

Environment:

``GUILD_JUPYTER_FLAGS``
    JSON object of flag values (absent or empty: the script runs unmodified).
``GUILD_JUPYTER_FLAGS_DEST``
    ``args``: the flags become command-line arguments of an argparse script;
    ``globals``: they replace the script's module-level assignments. Absent:
    the style the script has (see ``flags.py``).

The script runs in this process (the run supervisor signals and waits on
it) as a fresh ``__main__`` module: its directory first on ``sys.path``,
``sys.argv[0]`` the script, ``SystemExit`` and its status untouched, an
uncaught exception shown as Python shows it (without this runner's frames)
with exit status 1.

This module is on every run's critical path, and the package is usually
run from source (no ``.pyc``): it imports nothing beyond what the
interpreter loaded at startup, except ``json`` and the builtin ``_ast`` when
there are flags to apply. So it also holds the flag engine -- how flags are
found in a script and applied -- that ``flags.py`` wraps as the public API
(``ScriptFlags``, errors); its functions here are private to the package.
"""

import os
import sys

FLAGS_ENV = "GUILD_JUPYTER_FLAGS"
DEST_ENV = "GUILD_JUPYTER_FLAGS_DEST"
#: Set while a globals-style script runs with flags, so that processes
#: started by multiprocessing's spawn/forkserver rebuild its ``__main__``
#: with the same flag values (see ``_mp_main``).
SCRIPT_ENV = "GUILD_JUPYTER_SCRIPT"

_MODULE = "guild_jupyter.execution.runscript"
_USAGE = "usage: python -m guild_jupyter.execution.runscript SCRIPT [ARG ...]"


# -- running ----------------------------------------------------------------------


def main(argv=None):
    """Run ``argv[0]`` (a script path) with the flags from the environment;
    ``argv[1:]`` go to the script's ``sys.argv``, before any encoded flags.
    Returns the exit status: 0, 1 after an uncaught exception (traceback on
    stderr), 2 for a usage error; ``SystemExit`` raised by the script
    propagates. With ``argv`` None (the ``-m`` entry) it uses ``sys.argv[1:]``
    and replaces the working directory that ``-m`` put first on
    ``sys.path`` with the script's directory. The script becomes
    ``sys.modules["__main__"]`` and stays so when this returns."""
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr)
        return 2
    script, extra = argv[0], argv[1:]
    path = os.path.abspath(script)
    try:
        flags = _env_flags()
    except ValueError as e:
        print(f"runscript: {e}", file=sys.stderr)
        return 2
    dest = os.environ.get(DEST_ENV) or None
    if dest not in (None, "args", "globals"):
        print(f"runscript: {DEST_ENV} must be 'args' or 'globals', not {dest!r}", file=sys.stderr)
        return 2
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        print(f"{sys.executable}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}", file=sys.stderr)
        return 2
    _set_sys_path(os.path.dirname(path), from_command_line)
    try:  # prepare: nothing of the script has run yet
        args = []
        if not flags:
            code = _compile(source, path)
        else:
            tree = _parse(source, path)
            if dest != "globals":
                style, _defaults, options = _analyze(tree)
                dest = dest or style
            if dest == "args":
                args = _encode_args(options, flags)
            else:
                _rewrite_tree(tree, flags)
            code = _compile(tree, path)
    except SyntaxError as e:
        _show(e, None)
        return 1
    except Exception as e:
        print(f"runscript: {script}: {e}", file=sys.stderr)
        return 1
    sys.argv = [script] + extra + args
    try:
        _run_main(code, path, spawn_with_flags=bool(flags) and dest != "args")
    except Exception as e:
        _show(e, _user_traceback(e, path))
        return 1
    return 0


def _env_flags():
    text = os.environ.get(FLAGS_ENV, "").strip()
    if not text or text == "{}":
        return {}
    import json

    try:
        flags = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{FLAGS_ENV} is not valid JSON: {e}") from None
    if not isinstance(flags, dict):
        raise ValueError(f"{FLAGS_ENV} must be a JSON object")
    return flags


def _set_sys_path(script_dir, from_command_line):
    """Like ``python SCRIPT``: the script's directory first on sys.path
    (nothing when Python runs with -P / PYTHONSAFEPATH)."""
    if getattr(sys.flags, "safe_path", False):
        return
    if from_command_line and sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path[0] = script_dir  # the working directory that -m put there
    elif not sys.path or sys.path[0] != script_dir:
        sys.path.insert(0, script_dir)


def _compile(source_or_tree, path):
    return compile(source_or_tree, path, "exec", dont_inherit=True)


def _run_main(code, path, spawn_with_flags=False):
    """Execute ``code`` as a fresh ``__main__`` module, as ``python SCRIPT``
    does (so that pickling the script's functions and classes works)."""
    import builtins
    import types

    module = types.ModuleType("__main__")
    d = module.__dict__
    d["__file__"] = path
    d["__cached__"] = None
    d["__builtins__"] = builtins
    try:
        from importlib.machinery import SourceFileLoader

        d["__loader__"] = SourceFileLoader("__main__", path)
    except ImportError:  # pragma: no cover
        pass
    if spawn_with_flags:
        # multiprocessing (spawn/forkserver) rebuilds a child's __main__
        # from __spec__.name when there is one: point it at this module,
        # which then runs the script with the same flags (``_mp_main``).
        # Otherwise the child runs the script file itself, as it does for
        # ``python SCRIPT`` (argparse flags are not needed there: the
        # ``if __name__ == "__main__"`` part does not run in a child).
        d["__spec__"] = _own_spec()
        os.environ[SCRIPT_ENV] = path
    sys.modules["__main__"] = module
    exec(code, d)


def _own_spec():
    spec = globals().get("__spec__")
    if spec is not None and spec.name == _MODULE:
        return spec
    from importlib.machinery import ModuleSpec

    return ModuleSpec(_MODULE, None)


def _show(e, tb):
    """Print ``e`` as Python prints an uncaught exception, with traceback ``tb``."""
    e.__traceback__ = tb  # the default hook prints the exception's own
    sys.excepthook(type(e), e, tb)


def _user_traceback(e, path):
    """The traceback from the script's first frame on (no runner frames), as
    ``python SCRIPT`` shows it. When no frame is the script's: none for a
    syntax error (the script did not compile), else the whole traceback."""
    tb = t = e.__traceback__
    while t is not None:
        if t.tb_frame.f_code.co_filename == path:
            return t
        t = t.tb_next
    return None if isinstance(e, SyntaxError) else tb


def _mp_main(g):
    """In a process started by multiprocessing's spawn or forkserver from a
    globals-style script run with flags, this module is run as
    ``__mp_main__`` in place of the parent's ``__main__``: run the script in
    this namespace with the parent's flags, so that the child sees the
    parent's functions and flag values."""
    path = os.environ.get(SCRIPT_ENV)
    if not path:
        return
    with open(path, "rb") as f:
        source = f.read()
    flags = _env_flags()
    tree = _parse(source, path)
    _rewrite_tree(tree, flags)
    code = _compile(tree, path)
    keep = {k: g[k] for k in ("__name__", "__builtins__", "__spec__") if k in g}
    g.clear()
    g.update(keep)
    g["__file__"] = path
    g["__cached__"] = None
    exec(code, g)


# -- flag engine (public API: flags.py) -------------------------------------------
#
# Uses the builtin ``_ast`` rather than the ``ast`` module, whose import
# costs more than the rest of the runner.


class FlagValueError(ValueError):
    """A flag value that cannot be given to a script."""


_NOT_FLAG_ACTIONS = {"help", "version", "parsers"}
_ACTIONS = {
    "store", "store_true", "store_false", "store_const", "append", "append_const",
    "extend", "count", "boolean_optional",
}
_TYPE_NAMES = {"float", "int", "str", "bool"}
_NO_VALUE = object()


def _parse(source, filename):
    """The module AST of ``source`` (str or bytes). Raises SyntaxError, or
    ValueError for a source with null bytes."""
    import _ast

    return compile(source, filename, "exec", _ast.PyCF_ONLY_AST, dont_inherit=True)


def _analyze(tree):
    """``(style, defaults, options)`` of a parsed script."""
    if _uses_argparse(tree):
        calls = _add_argument_calls(tree)
        if calls:
            return ("args",) + _argparse_flags(calls)
    return ("globals",) + _globals_flags(tree)


def _walk(tree):
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

    for node in _walk(tree):
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
        for node in _walk(tree)
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
    dest = _literal(kw.get("dest"))
    opt = {
        "option": option,
        "action": action,
        "type": _type_name(kw.get("type")),
        "nargs": _literal(kw.get("nargs")),
        "dest": dest if isinstance(dest, str) else name.replace("-", "_"),
    }
    if action == "boolean_optional":
        opt["negative_option"] = "--no-" + name
    if "default" in kw:
        default = _literal(kw["default"])
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


def _globals_flags(tree):
    defaults = {}
    options = {}
    for name, (stmt, _index, value) in _flag_assignments(tree).items():
        defaults[name] = value
        options[name] = {"line": stmt.lineno}
    return defaults, options


def _flag_assignments(tree):
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
        value = _literal(stmt.value, _NO_VALUE)
        if value is _NO_VALUE:
            continue
        for i, name in names:
            found[name] = (stmt, i, value)
    return found


def _literal(node, invalid=None):
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
            v = _literal(elt, _NO_VALUE)
            if v is _NO_VALUE:
                return invalid
            out.append(v)
        return out
    return invalid


def _encode_args(options, flags):
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


def _rewrite_tree(tree, flags):
    """Make the first module-level assignment of each flag in ``flags`` (of
    those the script assigns) assign the given value; line numbers stay the
    script's. Raises FlagValueError for a value no literal can spell."""
    import _ast

    if not flags:
        return
    assigns = _flag_assignments(tree)
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
            default = _literal(stmt.value)
            for i, target in enumerate(stmt.targets):
                name, value = change.get(i, (None, default))
                new = _ast.Assign(targets=[target], value=_value_node(name, value, stmt.value))
                body.append(_locate(new, stmt))
    tree.body = body


def _value_node(name, value, old):
    import _ast

    return _locate(_literal_node(name, value, isinstance(old, _ast.Tuple)), old)


def _literal_node(name, v, as_tuple=False):
    import _ast

    if v is None or isinstance(v, (bool, int, float, str)):
        return _ast.Constant(value=v)
    if isinstance(v, (list, tuple)):
        elts = [_literal_node(name, x) for x in v]
        if as_tuple or isinstance(v, tuple):
            return _ast.Tuple(elts=elts, ctx=_ast.Load())
        return _ast.List(elts=elts, ctx=_ast.Load())
    if isinstance(v, dict):
        return _ast.Dict(
            keys=[_literal_node(name, k) for k in v],
            values=[_literal_node(name, x) for x in v.values()],
        )
    raise FlagValueError(f"flag {name!r}: a {type(v).__name__} value cannot be given to a script")


_LOCATION = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def _locate(node, like):
    """Give ``node`` and everything under it the location of ``like`` (so
    tracebacks point at the user's line)."""
    where = [getattr(like, a, None) for a in _LOCATION]
    for n in _walk(node):
        if "lineno" in n._attributes:
            for a, v in zip(_LOCATION, where):
                setattr(n, a, v)
    return node


if __name__ == "__main__":
    sys.exit(main())
elif __name__ == "__mp_main__":
    _mp_main(globals())
