"""The listing index's file, ``cache/guild_jupyter/listing.json``: finished,
settled, readable runs kept under their stamp, so a new process lists
10,000 runs without opening 50,000 files. The file is untrusted like every
other file of the store: an entry of the wrong shape is dropped and the run
read from its own files."""

from __future__ import annotations

import json

from . import attrs as attrlib
from .entry import CACHED, Entry, settling
from .run import FINISHED

NAME = "listing.json"
VERSION = 3

_CACHED_SET = frozenset(CACHED)


def _valid_values(values) -> bool:
    """The shape ``saved_form`` writes: every listed attr and nothing else, the
    opref as five strings, a finished status and int sort keys (the other
    values are whatever the attr files hold: their readers check the types)."""
    if type(values) is not dict or values.keys() != _CACHED_SET:
        return False
    opref = values["_opref"]
    if type(opref) is not list or len(opref) != 5:
        return False
    for x in opref:
        if type(x) is not str:
            return False
    if values["status"] not in FINISHED:
        return False
    for k in ("started", "initialized", "stopped"):
        v = values[k]
        if v is not None and type(v) is not int:
            return False
    return True


def _dumpable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def load(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        return {}
    if isinstance(data, dict) and data.get("v") == VERSION and isinstance(data.get("runs"), dict):
        return data["runs"]
    return {}


def from_saved(run_dir: str, saved, stamp) -> Entry | None:
    """An entry from the listing file when it has the right shape and its
    stamp still holds; the values are the only keys it may set."""
    if type(saved) is not list or len(saved) != 2 or list(stamp) != saved[0] or not _valid_values(saved[1]):
        return None
    values = dict(saved[1])
    values["_opref"] = tuple(values["_opref"])
    return Entry(None, stamp, run_dir=run_dir, values=values)


def saved_form(entries, now_ns: int) -> dict:
    """id -> [stamp, values] of the entries worth keeping: finished, settled,
    readable runs."""
    out = {}
    for e in entries:
        if e.status in FINISHED and not e.damaged and not e.warnings and not settling(e.stamp, now_ns):
            values = {k: e.values.get(k) for k in CACHED}
            values["_opref"] = list(values["_opref"] or ("", "", "", "", ""))
            out[e.id] = [list(e.stamp), values]
    return out


def save(path: str, out: dict) -> None:
    """Writes ``saved_form``'s runs to the listing file at ``path``."""
    try:
        text = json.dumps({"v": VERSION, "runs": out}, separators=(",", ":"))
    except (TypeError, ValueError):  # a value YAML gave that JSON cannot hold (a date): leave that run out
        out = {k: v for k, v in out.items() if _dumpable(v)}
        text = json.dumps({"v": VERSION, "runs": out}, separators=(",", ":"))
    try:
        attrlib.write_atomic(path, text)
    except OSError:
        pass  # a read-only store still lists, just without the file
