"""Flag assignments and sweeps: ``name=value`` text to trials.

Pure functions, no I/O. A value in brackets is a sweep:

* ``[a,b,c]`` -- a list of choices; several list flags make a full grid;
* ``range[a:b:step]`` (end inclusive), ``linspace[a:b:n]``,
  ``logspace[a:b:n]`` (powers of ten) -- grids too;
* ``uniform[a:b]``, ``loguniform[a:b]`` -- random search over
  ``max_trials`` trials (20 by default), reproducible with ``random_seed``.
"""

from __future__ import annotations

import itertools
import math
import re

from .errors import FlagError, SweepError

DEFAULT_RANDOM_TRIALS = 20
MAX_GRID_TRIALS = 100_000

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_FUNCTION = re.compile(r"^([A-Za-z_]+)\[(.*)\]$", re.S)
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_TRUE = {"yes", "true", "on"}
_FALSE = {"no", "false", "off"}


class _Spec:
    """Value semantics for the small spec classes below (no dataclasses
    import: it costs milliseconds on every CLI start)."""

    __slots__ = ()

    def _key(self):
        return tuple(getattr(self, n) for n in self.__slots__)

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(repr(v) for v in self._key()))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(repr(v) for v in self._key())})"


class Value(_Spec):
    """One value: not a sweep."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Choices(_Spec):
    """A finite set of values, tried in order."""

    __slots__ = ("values",)

    def __init__(self, values):
        self.values = tuple(values)


class Uniform(_Spec):
    """A continuous range sampled at random (log-uniformly if ``log``)."""

    __slots__ = ("low", "high", "log")

    def __init__(self, low: float, high: float, log: bool = False):
        self.low, self.high, self.log = low, high, log

    def sample(self, rng) -> float:
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        return float(f"{x:.6g}")


# -- scalar values --------------------------------------------------------------


def parse_flag_value(text: str):
    """A typed flag value from its text, the way Guild reads one: ints,
    floats (``1e-4`` too), ``yes``/``no``/``true``/``false`` as booleans,
    ``null`` as None, quotes for a literal string, anything else a string."""
    s = text.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    if _INT.match(s):
        return int(s)
    if _FLOAT.match(s):
        return float(s)
    low = s.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in ("null", "none", "~"):
        return None
    return s


def _split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise SweepError(f"unbalanced ']' in {text!r}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if quote or depth:
        raise SweepError(f"unclosed {'quote' if quote else 'bracket'} in {text!r}")
    parts.append(text[start:])
    return parts


def _parse_list(name: str, inner: str) -> tuple:
    if not inner.strip():
        raise SweepError(f"empty sweep for {name}: []")
    values = []
    for item in _split_top_level(inner, ","):
        item = item.strip()
        if not item:
            raise SweepError(f"empty item in sweep for {name}: [{inner}]")
        if item.startswith("["):
            if not item.endswith("]"):
                raise SweepError(f"malformed list in sweep for {name}: {item!r}")
            values.append(list(_parse_list(name, item[1:-1])))
        else:
            values.append(parse_flag_value(item))
    return tuple(values)


def _number(name: str, fn: str, text: str):
    v = parse_flag_value(text)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SweepError(f"{fn}[...] for {name} needs numbers, got {text.strip()!r}")
    return v


def _tidy(x: float) -> float:
    """Round away floating point noise (0.30000000000000004 -> 0.3)."""
    return float(f"{x:.12g}")


def _range(name, args):
    if len(args) not in (2, 3):
        raise SweepError(f"range for {name} takes [start:stop] or [start:stop:step]")
    start, stop = _number(name, "range", args[0]), _number(name, "range", args[1])
    step = _number(name, "range", args[2]) if len(args) == 3 else 1
    if step == 0:
        raise SweepError(f"range step for {name} must not be 0")
    if (stop - start) * step < 0:
        raise SweepError(f"range[{':'.join(a.strip() for a in args)}] for {name} yields no trials")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_GRID_TRIALS:
        raise SweepError(f"range for {name} has {count} values, more than {MAX_GRID_TRIALS}")
    as_int = all(isinstance(v, int) for v in (start, stop, step))
    return tuple(start + i * step if as_int else _tidy(start + i * step) for i in range(count))


def _space(name, fn, args):
    if len(args) != 3:
        raise SweepError(f"{fn} for {name} takes [start:stop:count]")
    start, stop = _number(name, fn, args[0]), _number(name, fn, args[1])
    n = _number(name, fn, args[2])
    if not isinstance(n, int) or n < 1:
        raise SweepError(f"{fn} count for {name} must be a whole number >= 1")
    if n > MAX_GRID_TRIALS:
        raise SweepError(f"{fn} for {name} has {n} values, more than {MAX_GRID_TRIALS}")
    if n == 1:
        points = [float(start)]
    else:
        points = [start + (stop - start) * i / (n - 1) for i in range(n)]
    if fn == "logspace":
        return tuple(_tidy(10.0 ** p) for p in points)
    return tuple(_tidy(p) for p in points)


def _uniform(name, fn, args):
    if len(args) != 2:
        raise SweepError(f"{fn} for {name} takes [low:high]")
    low, high = _number(name, fn, args[0]), _number(name, fn, args[1])
    if not low < high:
        raise SweepError(f"{fn}[{args[0].strip()}:{args[1].strip()}] for {name}: low must be less than high")
    if fn == "loguniform" and low <= 0:
        raise SweepError(f"loguniform for {name} needs a positive low bound")
    return Uniform(float(low), float(high), log=fn == "loguniform")


_FUNCTIONS = ("range", "linspace", "logspace", "uniform", "loguniform")


def parse_value_spec(name: str, text: str):
    """The spec (Value, Choices or Uniform) of one flag's value text."""
    s = text.strip()
    if s.startswith("["):
        if not s.endswith("]") or len(s) < 2:
            raise SweepError(f"malformed sweep for {name}: {s!r} (missing ']')")
        _split_top_level(s[1:-1], ",")
        return Choices(_parse_list(name, s[1:-1]))
    m = _FUNCTION.match(s)
    if m:
        fn, inner = m.group(1), m.group(2)
        if fn not in _FUNCTIONS:
            raise SweepError(
                f"unknown sweep {fn}[...] for {name} (use a list, {', '.join(_FUNCTIONS)}; quote a literal string)"
            )
        args = inner.split(":")
        if fn == "range":
            return Choices(_range(name, args))
        if fn in ("linspace", "logspace"):
            return Choices(_space(name, fn, args))
        return _uniform(name, fn, args)
    if re.match(r"^[A-Za-z_]+\[", s) and not s.endswith("]"):
        raise SweepError(f"malformed sweep for {name}: {s!r} (missing ']')")
    return Value(parse_flag_value(s))


def parse_assignment(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise FlagError(f"malformed flag assignment {text!r} (expected NAME=VALUE)")
    if not _NAME.match(name):
        raise FlagError(f"malformed flag name {name!r} in {text!r}")
    return name, value


def parse_assignments(args) -> dict:
    """``["lr=[0.1,0.01]", "epochs=5"]`` -> ``{"lr": Choices(...), "epochs": Value(5)}``."""
    specs: dict = {}
    for text in args:
        name, value = parse_assignment(text)
        if name in specs:
            raise FlagError(f"flag {name!r} given twice")
        specs[name] = parse_value_spec(name, value)
    return specs


# -- trials ---------------------------------------------------------------------


def expand(specs: dict, max_trials: int | None = None, random_seed: int | None = None) -> list[dict]:
    """Every trial's flag dict. A grid when all sweeps are finite (first
    flag varies slowest; ``max_trials`` keeps the first N); otherwise a
    random search of ``max_trials`` (default 20) trials."""
    if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1):
        raise SweepError("--max-trials must be at least 1")
    names = list(specs)
    if any(isinstance(s, Uniform) for s in specs.values()):
        import random

        rng = random.Random(random_seed)
        trials = []
        for _ in range(max_trials or DEFAULT_RANDOM_TRIALS):
            trial = {}
            for name in names:
                spec = specs[name]
                if isinstance(spec, Uniform):
                    trial[name] = spec.sample(rng)
                elif isinstance(spec, Choices):
                    trial[name] = rng.choice(spec.values)
                else:
                    trial[name] = spec.value
            trials.append(trial)
        return trials
    axes = []
    size = 1
    for name in names:
        spec = specs[name]
        values = spec.values if isinstance(spec, Choices) else (spec.value,)
        if not values:
            raise SweepError(f"empty sweep for {name}")
        size *= len(values)
        axes.append(values)
    if size > MAX_GRID_TRIALS and (max_trials is None or max_trials > MAX_GRID_TRIALS):
        raise SweepError(f"the sweep has {size} trials, more than {MAX_GRID_TRIALS}; narrow it or pass --max-trials")
    trials = []
    for combo in itertools.product(*axes):
        trials.append({n: (list(v) if isinstance(v, list) else v) for n, v in zip(names, combo)})
        if max_trials is not None and len(trials) >= max_trials:
            break
    return trials
