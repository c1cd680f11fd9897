"""Flags of a Python script, found and applied the way Guild AI does it.

Two styles, found by static analysis (the script is never executed):

``args``
    The script imports ``argparse`` and calls ``.add_argument(...)``. Every
    ``add_argument`` with a long option is a flag, named by its first long
    option without the leading dashes (``--batch-size`` -> ``batch-size``,
    whatever its ``dest``): the name Guild gives it, so that Guild and we
    pass the same ``--batch-size`` argument for a run's flag. Positionals
    and short-only options are not flags. Values reach the script as
    command-line arguments (:func:`encode_args`).

``globals``
    Otherwise every module-level ``NAME = <literal>`` or ``NAME: T =
    <literal>`` is a flag (a literal: None, bool, int, float or str, signed
    numbers, or a list/tuple of such). The first such assignment of a name
    gives its default and is the one the given value replaces
    (:func:`rewrite_globals`). Names starting with ``_`` are not flags;
    assignments inside ``if``/``def``/``class`` are not flags.

The engine itself lives in :mod:`.flagscan` (finding flags) and
:mod:`.flaginject` (applying them), which the per-run script runner
(:mod:`.runscript`) imports only when a run has flags; this module is its
public face.
"""

from __future__ import annotations

from ..errors import FlagError, ScriptError
from . import flaginject as _inject, flagscan as _scan
from .runscript import compile_script

__all__ = ["ScriptFlags", "inspect_script", "inspect_globals", "check_flags", "flag_types", "coerce_flag_values",
           "list_flag_names", "encode_args", "rewrite_globals", "assignments_source"]


class ScriptFlags:
    """What a script defines as flags.

    ``style``: ``"args"`` or ``"globals"``.
    ``defaults``: flag name -> default value, in source order (tuples as lists).
    ``options``: flag name -> dict. For ``args``: ``option`` (``"--lr"``),
    ``action`` (``store``, ``store_true``, ``store_false``,
    ``boolean_optional``, ``append``, ``extend``, ``count``, ``store_const``,
    ``append_const``), ``type`` (``"float"``, ``"int"``, ``"str"``,
    ``"bool"`` or None when not one of those names), ``nargs``, ``dest`` and,
    for ``boolean_optional``, ``negative_option``. For ``globals``: ``line``,
    the line of the assignment that defines the flag.
    """

    __slots__ = ("style", "defaults", "options")

    def __init__(self, style: str, defaults: dict, options: dict):
        object.__setattr__(self, "style", style)
        object.__setattr__(self, "defaults", defaults)
        object.__setattr__(self, "options", options)

    def __setattr__(self, name, value):
        raise AttributeError(f"ScriptFlags is immutable: cannot set {name!r}")

    def __eq__(self, other):
        if not isinstance(other, ScriptFlags):
            return NotImplemented
        return (self.style, self.defaults, self.options) == (other.style, other.defaults, other.options)

    __hash__ = None

    def __repr__(self) -> str:
        return f"ScriptFlags(style={self.style!r}, defaults={self.defaults!r}, options={self.options!r})"

    @property
    def names(self) -> list:
        return list(self.defaults)


def inspect_script(source, filename: str = "<script>") -> ScriptFlags:
    """The flags ``source`` (str, or bytes honouring a coding cookie)
    defines. Raises ``ScriptError`` when it does not parse."""
    return ScriptFlags(*_scan.analyze(_parse(source, filename)))


def inspect_globals(source, filename: str = "<cell>") -> ScriptFlags:
    """The ``globals``-style flags of ``source`` (its module-level
    assignments of literals), whether or not it uses ``argparse``: what a
    notebook's parameters cell defines. Raises ``ScriptError`` when it does
    not parse."""
    return ScriptFlags("globals", *_scan.globals_flags(_parse(source, filename)))


def check_flags(script_flags: ScriptFlags, given, script: str = "the script") -> None:
    """Raise ``FlagError`` naming, in one message, every flag in ``given``
    that the script (``script``: its name in the message) does not define;
    or for a value no script can be given (not None, bool, int, float, str,
    or a list/tuple/dict of such)."""
    unknown = [name for name in given if name not in script_flags.defaults]
    if unknown:
        names = ", ".join(repr(str(n)) for n in unknown)
        what = f"flag {names} is" if len(unknown) == 1 else f"flags {names} are"
        defined = list(script_flags.defaults)
        has = f"flags: {', '.join(defined)}" if defined else "it defines no flags"
        raise FlagError(f"{what} not defined by {script} ({has})")
    for name, value in given.items():
        if not _is_passable(value):
            raise FlagError(f"flag {name!r}: a {type(value).__name__} value cannot be given to a script")


# Guild 0.9's flag types. A ``globals`` flag's type follows its default
# (guild/plugins/flags_import_util.py: str -> string, bool -> boolean, int or
# float -> number, anything else none); an ``args`` flag's follows its
# argparse ``type`` (import_argparse_flags_main.py: str, float, int, bool),
# with no type when there is none, whatever the default. Switches
# (store_true/store_false/BooleanOptionalAction) only take yes or no.
_ARG_TYPES = {"str": "string", "float": "float", "int": "int", "bool": "boolean"}
_SWITCHES = ("store_true", "store_false", "boolean_optional")
_EXPECTED = {"number": "a number", "int": "an integer", "float": "a float", "string": "a string",
             "boolean": "yes or no", "switch": "yes or no",
             None: "a number, a string, yes or no, or a list of them"}


def flag_types(script_flags: ScriptFlags) -> dict:
    """Flag name -> the type Guild 0.9 gives it (``number``, ``int``,
    ``float``, ``string``, ``boolean``; ``switch`` for an argparse switch)
    or None (any value)."""
    out = {}
    if script_flags.style == "args":
        for name, opt in script_flags.options.items():
            opt = opt if isinstance(opt, dict) else {}
            if opt.get("action") in _SWITCHES:
                out[name] = "switch"
            else:
                out[name] = _ARG_TYPES.get(opt.get("type"))
        return out
    for name, default in script_flags.defaults.items():
        if isinstance(default, str):
            out[name] = "string"
        elif isinstance(default, bool):
            out[name] = "boolean"
        elif isinstance(default, (int, float)):
            out[name] = "number"
        else:
            out[name] = None
    return out


def list_flag_names(script_flags: ScriptFlags) -> set:
    """The flags that take a list as one value: a module-level list (``layers
    = [64, 32]``), an argparse option with a list default or one taking
    several values (``nargs``, ``extend``)."""
    out = {n for n, d in script_flags.defaults.items() if isinstance(d, list)}
    if script_flags.style == "args":
        out |= {n for n, opt in (script_flags.options or {}).items() if _inject.takes_list(opt)}
    return out


def coerce_flag_values(script_flags: ScriptFlags, flags: dict, types: dict | None = None) -> dict:
    """``flags`` with each value checked and converted to its flag's type as
    Guild 0.9 converts it (``op_util.coerce_flag_value``): ``lr=1`` stays 1
    for a number, becomes 1.0 for an argparse float; ``name=1`` becomes "1"
    for a string default; a boolean takes any value's truth.

    The one check of a value, whichever door it came through (``name=value``
    text, a Python or JSON value): what no ``name=value`` can say is refused
    the way the text nearest to it is. A value Guild refuses (``lr=abc`` for
    a number, ``epochs=1.5`` for an argparse int), yes/no (a bool) for a
    number, null (None) for a flag whose default is not null, a list for a
    flag that does not take one, a list of the wrong length for ``nargs``,
    and a mapping or any other object raise ``FlagError`` naming the flag,
    the value and what it takes. A list flag's value is checked item by
    item; given as text (``"8 4"``, as Guild stores it) it is split first.
    ``types``: ``flag_types(script_flags)``, when already known."""
    types = flag_types(script_flags) if types is None else types
    lists = list_flag_names(script_flags)
    out = {}
    for name, value in flags.items():
        kind = types.get(name)
        opt = script_flags.options.get(name) if script_flags.style == "args" else None
        try:
            out[name] = _checked(value, kind, script_flags.defaults.get(name), name in lists,
                                 opt if isinstance(opt, dict) else {})
        except _WrongCount as e:
            raise FlagError(f"invalid value {_show(value)} for flag {name!r}: expected {e}") from None
        except (ValueError, TypeError, OverflowError):
            raise FlagError(f"invalid value {_show(value)} for flag {name!r}: expected {_EXPECTED[kind]}") from None
    return out


class _WrongCount(ValueError):
    """A list of the wrong length for an ``nargs`` option; says what it takes."""


def _checked(value, kind, default, list_flag: bool, opt: dict):
    if value is None:
        if default is None:  # null is the flag's default: the script's own value applies
            return None
        raise ValueError(value)
    if list_flag:
        if isinstance(value, str) and opt and _inject.takes_list(opt):
            import shlex

            value = shlex.split(value)  # "8 4": one value per item, as Guild's queue splits it
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        nargs = opt.get("nargs")
        if nargs == "+" and not items:
            raise _WrongCount("one value or more (nargs='+')")
        if isinstance(nargs, int) and not isinstance(nargs, bool) and len(items) != nargs:
            raise _WrongCount(f"{nargs} value{'s' if nargs != 1 else ''} (nargs={nargs})")
        checked = [_checked_item(x, kind) for x in items]
        return checked if isinstance(value, (list, tuple)) else checked[0]
    if isinstance(value, (list, tuple)):
        if kind is not None:  # a list is a sweep of single values, never one value
            raise TypeError(value)
        return [_checked_item(x, None) for x in value]
    return _checked_item(value, kind)


def _checked_item(v, kind):
    if v is None or not isinstance(v, (bool, int, float, str)):  # what no name=value text gives
        raise TypeError(v)
    if kind is None:
        return v
    if isinstance(v, bool) and kind in ("number", "int", "float"):  # yes/no is no number
        raise ValueError(v)
    return _coerce(v, kind)


def _coerce(v, kind):
    if v is None:
        return v
    if kind == "switch":
        # Guild's choices [yes, no]: any false value, or one equal to True/False.
        if not v or v == True or v == False:  # noqa: E712 - 1 == True counts, as in Guild
            return v
        raise ValueError(v)
    if kind == "string":
        return str(v)
    if kind == "boolean":
        return bool(v)
    if isinstance(v, (dict, list, tuple)):
        raise TypeError(v)
    if kind == "number":
        if isinstance(v, (int, float)):
            return v
        return _parse_number(v, int_first=True)
    if kind == "int":
        if isinstance(v, float):
            raise ValueError(v)
        if isinstance(v, int):
            return int(v)
        n = _parse_number(v, int_first=True)
        if isinstance(n, float):
            raise ValueError(v)
        return n
    # float
    if isinstance(v, (int, float)):
        return float(v)
    return float(_parse_number(v, int_first=False))


def _parse_number(text: str, int_first: bool):
    """A number from text as Guild reads it: Python's int or float (``1e-3``,
    ``1_000``, ``inf``, ``nan``), or YAML's hex, octal and binary ints."""
    s = str(text).strip()
    if int_first:
        try:
            return int(s)
        except ValueError:
            pass
    try:
        return float(s)
    except ValueError:
        pass
    if s and s[0] in "+-":
        sign, digits = s[0], s[1:]
    else:
        sign, digits = "", s
    if digits[:2].lower() in ("0x", "0o", "0b"):
        return int(sign + digits, 0)
    raise ValueError(text)


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_passable(v) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_is_passable(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_passable(x) for k, x in v.items())
    return False


def encode_args(script_flags: ScriptFlags, flags) -> list:
    """Command-line arguments that give ``flags`` to an argparse script.

    None values are left out (the script's default applies). A single value
    is ``--opt=VALUE`` (``str(value)``: ``0.1``, ``-3``, ``True``; the ``=``
    form lets a value that starts with ``-`` or is empty reach the option);
    a list is ``--opt V1 V2``. ``store_true`` gives ``--opt`` when the value
    is true, ``store_false`` when it is false, ``BooleanOptionalAction``
    ``--opt`` or ``--no-opt``; ``count`` repeats the option; ``append`` gives
    ``--opt=V`` per item. A name the script does not define is passed as
    ``--NAME=VALUE``, as Guild does."""
    return _inject.encode_args(script_flags.options, flags)


def rewrite_globals(source, flags, filename: str = "<script>"):
    """The script compiled with ``filename`` as its file name, the first
    module-level assignment of each flag in ``flags`` assigning the given
    value instead. Line numbers are the script's own. Names the script does
    not assign at module level are ignored (``check_flags`` rejects them
    earlier). Raises ``ScriptError`` when the source does not compile,
    ``FlagError`` for a value no literal can spell."""
    tree = _parse(source, filename)
    try:
        _inject.rewrite_tree(tree, flags)
    except _inject.FlagValueError as e:
        raise FlagError(str(e)) from None
    try:
        return compile_script(tree, filename)
    except SyntaxError as e:  # found past the parser, e.g. 'return' outside function
        raise ScriptError(_syntax_error_message(e, filename)) from e


def assignments_source(flags) -> str:
    """Python assignments that give each flag its value, one a line
    (``lr = 0.3``), in ``flags``' order: the cell injected into a notebook
    run. Raises ``FlagError`` for a value no literal can spell."""
    import ast

    lines = []
    for name, value in flags.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise FlagError(f"flag {name!r} is not a Python name")
        try:
            node = _inject.literal_node(name, value)
        except _inject.FlagValueError as e:
            raise FlagError(str(e)) from None
        lines.append(f"{name} = {ast.unparse(node)}\n")
    return "".join(lines)


def _parse(source, filename):
    try:
        return _scan.parse(source, filename)
    except SyntaxError as e:
        raise ScriptError(_syntax_error_message(e, filename)) from e
    except ValueError as e:  # null bytes (Python < 3.12)
        raise ScriptError(f"{filename}: cannot parse: {e}") from e


def _syntax_error_message(e: SyntaxError, filename: str) -> str:
    where = f" at line {e.lineno}" if e.lineno else ""
    return f"{filename}: syntax error{where}: {e.msg}"
