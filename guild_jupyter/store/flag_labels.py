"""Flag values as Guild prints them: in a run's default label and in
listings."""

from __future__ import annotations


def format_flag_value(v) -> str:
    """A flag value the way Guild prints it in labels and listings."""
    if v is True:
        return "yes"
    if v is False:
        return "no"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_flag_value(x) for x in v) + "]"
    s = str(v)
    if s.split() != [s]:  # empty, or whitespace in it (what str.split splits at)
        return repr(s)
    return s


def flags_label(flags: dict) -> str:
    return " ".join(f"{k}={format_flag_value(v)}" for k, v in sorted(flags.items()))
