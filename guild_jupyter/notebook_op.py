"""Notebook operations: a whole ``.ipynb`` as what a run executes.

A notebook run is staged, swept, queued, pinned, retried and listed exactly
as a script run is -- ``NotebookOp`` is a ``ScriptOp`` whose flags come from
one cell and whose process is the notebook runner -- so every option of
``run`` (and every later one) applies to both by construction.

- Flags: the module-level literal assignments of the parameters cell (the
  cell tagged ``parameters``, else the first code cell; see
  :mod:`.execution.notebook_cells`), typed and checked as a script's
  ``globals`` flags are.
- Snapshot: the notebook file plus the project's Python modules, as for a
  script; the notebook at the run directory's root is the source.
- ``op`` attr: Guild's queue (``guild run queue``, which restarts a staged
  run from this attr without loading any opdef) runs our notebook runner
  module, ``python -um guild_jupyter.execution.notebook nb.ipynb``; the
  runner reads the run's flags from its directory, so no flag goes through
  the command line (every flag is ``arg-skip``). Guild 0.9's own notebook
  plugin is never involved.

Reading a notebook here costs a JSON parse: nbformat and nbclient are
imported only by the runner.
"""

from __future__ import annotations

import json
import os

from .errors import ScriptError
from .execution import flags as flaglib
from .execution.notebook_cells import cell_text, parameters_cell, python_text, without_magics
from .opdef import ScriptOp

RUNNER_MODULE = "guild_jupyter.execution.notebook"


class NotebookOp(ScriptOp):
    """A Jupyter notebook as an operation."""

    def __init__(self, project_dir: str, name: str, source: bytes):
        # Not ScriptOp.__init__: the source is JSON, not Python.
        self.project_dir = project_dir
        self.name = name
        self.source = source
        self.kind = "notebook"
        self._sources = None
        cells = read_cells(source, name)
        index, tagged = parameters_cell(cells)
        self.parameters_index = index
        self.parameters_tagged = tagged
        params = cell_text(cells[index]) if index is not None else ""
        self.flags_info = flaglib.inspect_globals(python_text(params), self._cell_words())
        self._code = "\n".join(without_magics(cell_text(c)) for c in cells
                               if isinstance(c, dict) and c.get("cell_type") == "code")

    @classmethod
    def from_path(cls, notebook: str, cwd: str | None = None) -> "NotebookOp":
        path = os.path.abspath(os.path.join(cwd or os.getcwd(), os.path.expanduser(notebook)))
        if not notebook or not os.path.isfile(path):
            raise ScriptError(f"notebook not found: {notebook}")
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as e:
            raise ScriptError(f"cannot read {notebook}: {e.strerror}") from e
        return cls(os.path.dirname(path), os.path.basename(path), source)

    def _cell_words(self) -> str:
        """The cell the flags come from, for messages."""
        if self.parameters_index is None:
            return f"{self.name}, which has no code cell"
        if self.parameters_tagged:
            return f"the parameters cell of {self.name}"
        return f"the first code cell of {self.name}, which has no cell tagged parameters"

    def check_flags(self, given: dict) -> None:
        flaglib.check_flags(self.flags_info, given, self._cell_words())

    def code_text(self) -> str:
        """Every code cell, as Python, for the checks made before a run."""
        return self._code

    def op_attr(self, gpus: str | None, flags: dict | None = None) -> dict:
        attr = super().op_attr(gpus, flags)
        cmd = attr["op-cmd"]
        cmd["cmd-args"] = ["${python_exe}", "-um", RUNNER_MODULE, self.name]
        cmd["cmd-flags"] = {name: {"arg-skip": True} for name in self.flags_info.defaults}
        cmd["flags-dest"] = "globals"
        cmd["cmd-env"]["FLAGS_DEST"] = "globals"
        return attr


def read_cells(source: bytes, name: str) -> list:
    """The cells of a notebook file's bytes. Raises ``ScriptError`` (one
    line) for what is not a version 4 notebook."""
    try:
        nb = json.loads(source)
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ScriptError(f"{name}: not a notebook: invalid JSON ({_one_line(e)})") from None
    if not isinstance(nb, dict):
        raise ScriptError(f"{name}: not a notebook: its JSON is not an object")
    major = nb.get("nbformat")
    if "worksheets" in nb or (isinstance(major, int) and not isinstance(major, bool) and major < 4):
        raise ScriptError(f"{name}: notebook format {major} is too old: open and save it in JupyterLab (format 4)")
    cells = nb.get("cells")
    if major != 4 or not isinstance(cells, list):
        raise ScriptError(f"{name}: not a notebook: no nbformat 4 and list of cells")
    for i, cell in enumerate(cells):
        src = cell.get("source", "") if isinstance(cell, dict) else None
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str) or not (
                isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            raise ScriptError(f"{name}: not a notebook: cell {i + 1} is malformed")
    return cells


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
