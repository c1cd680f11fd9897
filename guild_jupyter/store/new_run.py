"""A new run directory: what it is made of (``RunSpec``), its id, and its
files written whole in a scratch area before the lifecycle moves it into
``runs/`` (``transitions.create``, the only way runs come into being)."""

from __future__ import annotations

import os

from . import attrs as attrlib
from .flag_labels import flags_label


class RunSpec:
    """Everything needed to initialize a run directory.

    ``opref`` e.g. ``"script:/abs/project '' '' train.py"``; ``sources`` maps
    relative paths to bytes (the source snapshot). A plain class: the
    dataclasses module costs milliseconds on every CLI start."""

    __slots__ = ("opref", "flags", "user_flags", "op_attr", "sources", "gpus", "label", "extra_attrs", "run_params")

    def __init__(self, opref: str, flags: dict, user_flags: dict, op_attr: dict, sources: dict,
                 gpus: str | None = None, label: str | None = None, extra_attrs: dict | None = None,
                 run_params: dict | None = None):
        self.opref = opref
        self.flags = flags
        self.user_flags = user_flags
        self.op_attr = op_attr
        self.sources = sources
        self.gpus = gpus
        self.label = label
        self.extra_attrs = {} if extra_attrs is None else extra_attrs
        self.run_params = {} if run_params is None else run_params

    def __repr__(self) -> str:
        return f"RunSpec({self.opref!r}, flags={self.flags!r}, gpus={self.gpus!r}, label={self.label!r})"


def build_run_dir(scratch: str, run_id: str, spec: RunSpec, ts: int, staged: bool, marker: tuple) -> str:
    """Writes a whole run directory under ``scratch`` (no reader sees it
    yet); ``marker`` (name, content) goes last. Used by the lifecycle's
    ``create``, the only way runs come into being."""
    d = os.path.join(scratch, run_id)
    attrs_dir = os.path.join(d, ".guild", "attrs")
    os.makedirs(attrs_dir)
    for rel, data in spec.sources.items():
        dest = os.path.join(d, rel)
        parent = os.path.dirname(dest)
        if parent != d:
            os.makedirs(parent, exist_ok=True)
        attrlib.write_new(dest, data)
    attrlib.write_new(os.path.join(d, ".guild", "opref"), spec.opref + "\n")
    run_params = {"gpus": spec.gpus, "stage": staged, "label": spec.label}
    run_params.update(spec.run_params)
    values = {
        "id": run_id,
        "initialized": ts,
        "flags": spec.flags,
        "user_flags": spec.user_flags,
        "label": spec.label if spec.label is not None else flags_label(spec.flags),
        "op": spec.op_attr,
        "run_params": run_params,
    }
    if staged:
        values["started"] = ts  # Guild orders staged runs by it
    values.update(spec.extra_attrs)
    for name, value in values.items():
        attrlib.write_new(os.path.join(attrs_dir, name), attrlib.encode(value))
    # The marker goes last: a run is staged (or pending start) only once whole.
    attrlib.write_new(os.path.join(d, ".guild", marker[0]), marker[1])
    return d


def new_sweep_id() -> str:
    """The id the runs of one ``run`` call share (their ``sweep`` attr):
    ``s`` and 8 random hex digits. The ``s`` keeps it apart from run ids
    and their prefixes (hex only), so a sweep id given where runs are
    expected can never mean a run."""
    return "s" + os.urandom(4).hex()


def new_run_id() -> str:
    """A random (version 4) UUID in hex, like Guild's run ids, without
    importing uuid (it pulls in platform: milliseconds on every CLI start)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()
