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
interpreter loaded at startup, except ``json``, the builtin ``_ast`` and
the flag engine -- how flags are found in a script (:mod:`.flagscan`) and
applied (:mod:`.flaginject`), which ``flags.py`` wraps as the public API
(``ScriptFlags``, errors) -- when there are flags to apply.
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
        flags = env_flags()
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
            code = compile_script(source, path)
        else:
            # lazy: the flag engine is loaded only by a run that has flags
            from .flaginject import encode_args, rewrite_tree
            from .flagscan import analyze, parse

            tree = parse(source, path)
            if dest != "globals":
                style, _defaults, options = analyze(tree)
                dest = dest or style
            if dest == "args":
                args = encode_args(options, flags)
            else:
                rewrite_tree(tree, flags)
            code = compile_script(tree, path)
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


def env_flags() -> dict:
    """The flag values our supervisor passed in ``GUILD_JUPYTER_FLAGS`` (a
    JSON object; none when unset); a ValueError says what is wrong."""
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


def compile_script(source_or_tree, path):
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
    # lazy: as in main, only a run with flags loads the flag engine
    from .flaginject import rewrite_tree
    from .flagscan import parse

    with open(path, "rb") as f:
        source = f.read()
    flags = env_flags()
    tree = parse(source, path)
    rewrite_tree(tree, flags)
    code = compile_script(tree, path)
    keep = {k: g[k] for k in ("__name__", "__builtins__", "__spec__") if k in g}
    g.clear()
    g.update(keep)
    g["__file__"] = path
    g["__cached__"] = None
    exec(code, g)


if __name__ == "__main__":
    sys.exit(main())
elif __name__ == "__mp_main__":
    _mp_main(globals())
