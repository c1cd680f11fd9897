"""The executed notebook of a notebook run: where it lives in the run
directory and how it is written.

A notebook run's directory holds the notebook twice. ``nb.ipynb`` at the
root is the source snapshot, copied at staging like a script's, unchanged
afterwards: restarts, retries, restages and Guild's own queue run from it.
``nb.executed.ipynb`` next to it is the notebook as it ran -- the injected
parameters cell and every output -- rewritten while the run goes (after
cells, at most once a second) and at its end, whatever the end, so a
stopped or failed run keeps what it did. Each write is atomic: a viewer
opening it mid-run never sees half a file.
"""

from __future__ import annotations

import os

from .attrs import write_atomic

NOTEBOOK_SUFFIX = ".ipynb"
EXECUTED_SUFFIX = ".executed.ipynb"


def is_notebook(name: str) -> bool:
    """Whether an operation name (a run's op, a path given to ``run``) is a notebook."""
    return name.endswith(NOTEBOOK_SUFFIX)


def executed_name(notebook: str) -> str:
    """``nb.ipynb`` -> ``nb.executed.ipynb`` (the base name only)."""
    base = os.path.basename(notebook)
    return base[: -len(NOTEBOOK_SUFFIX)] + EXECUTED_SUFFIX


def executed_path(run_dir: str, notebook: str) -> str:
    return os.path.join(run_dir, executed_name(notebook))


def write_executed(run_dir: str, notebook: str, text: str) -> str:
    """Writes the executed notebook's JSON text atomically; returns its path."""
    path = executed_path(run_dir, notebook)
    write_atomic(path, text)
    return path


def notebook_snapshot(run_dir: str, op: str) -> bytes | None:
    """The notebook a notebook run runs, as copied to its directory's root
    at staging (the executed copy is not it), or None: not a notebook op,
    or missing. Part of the run's source snapshot with its Python modules,
    which ``opdef.collect_sources`` gathers."""
    if not is_notebook(op) or os.path.basename(op) != op:
        return None
    try:
        with open(os.path.join(run_dir, op), "rb") as f:
            return f.read()
    except OSError:
        return None


def executed_notebook(run_dir: str, op: str) -> str | None:
    """The path of the executed notebook of the run in ``run_dir`` whose
    operation is ``op``, or None: not a notebook run, or none executed yet
    (staged, or its kernel never started)."""
    if not is_notebook(op):
        return None
    path = executed_path(run_dir, op)
    return path if os.path.isfile(path) else None
