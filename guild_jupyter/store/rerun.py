"""What a finished run is run again from: the source snapshot a copy (a
retry, a restage) is made from, and the GPUs the run asked for. Restarting
in place is a status change: ``transitions.restart``.
"""

from __future__ import annotations

import os

from .run import Run


def source_snapshot(run: Run) -> dict:
    """The run's source snapshot as ``{relative path: bytes}``: the Python
    files and packages at the run directory's root, gathered by the rule
    that copied them there (``opdef.collect_sources``), and the notebook a
    notebook run runs (its executed copy is not part of it)."""
    from ..opdef import collect_sources
    from .notebooks import is_notebook

    sources = collect_sources(run.dir)
    op = run.opref[4]
    if op and op not in sources and is_notebook(op) and os.path.basename(op) == op:
        try:
            with open(os.path.join(run.dir, op), "rb") as f:
                sources[op] = f.read()
        except OSError:
            pass  # a missing notebook: the caller says the run lacks it
    return sources


def requested_gpus(run: Run) -> str | None:
    """The GPUs the run asked for when staged (``"0"``, ``"auto:2"``, or None:
    any), not those a queue gave it: ``gpus_requested`` where a claim
    recorded it, else the GPUs its op was pinned to (its environment names
    them), else an ``auto`` request never claimed."""
    if os.path.exists(os.path.join(run.attrs_dir, "gpus_requested")):
        v = run.get("gpus_requested")
        return None if v in (None, "") else str(v)
    op = run.get("op")
    cmd = op.get("op-cmd") if isinstance(op, dict) else None
    env = cmd.get("cmd-env") if isinstance(cmd, dict) else None
    g = env.get("CUDA_VISIBLE_DEVICES") if isinstance(env, dict) else None
    if g not in (None, ""):
        return str(g)
    g = run.gpus
    return g if g and g.lower().startswith("auto") else None
