"""The panel in a real kernel (nbclient + ipykernel, the version we pin): it
renders as a widget view, its refresh thread's updates reach the front end
as widget state, and the thread never writes into a cell's output."""

from __future__ import annotations

import json
import sys

import nbformat
from nbclient import NotebookClient

SLEEP_PY = "import time\nsecs = 60.0\ndeadline = time.monotonic() + secs\nwhile time.monotonic() < deadline:\n    time.sleep(0.05)\n"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _views(cell) -> list[str]:
    return [o["data"][WIDGET_VIEW]["model_id"] for o in cell.outputs if WIDGET_VIEW in o.get("data", {})]


def _streams(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")


def test_notebook_shows_the_panel_and_the_thread_never_prints(tmp_path, guild_home):
    script = tmp_path / "sleep.py"
    script.write_text(SLEEP_PY)
    cells = [
        # 0: stage a run, show the panel refreshing every 0.2 s
        f"import sys, time\nfrom guild_jupyter import api\nfrom guild_jupyter.frontends.panel import panel\n"
        f"SCRIPT = {str(script)!r}\n"
        "first = api.run(SCRIPT, 'secs=1', stage=True)[0]\n"
        "p = panel(refresh=0.2)",
        # 1: change the store while this cell runs: the thread refreshes meanwhile
        "second = api.run(SCRIPT, 'secs=2', stage=True)[0]\n"
        "deadline = time.monotonic() + 10\n"
        "shown = lambda: any(row.run_id == second.id for row in p.groups['staged'].rows)\n"
        "while time.monotonic() < deadline and not shown():\n"
        "    time.sleep(0.05)\n"
        "time.sleep(0.6)  # a few more refreshes while this cell is running\n"
        "print('shown', shown())",
        # 2: panel() as the cell's value shows one view, not two; it replaces p
        "panel(refresh=0)",
        # 3: p's thread has stopped; report what it left
        "print(p.closed, p._thread.is_alive(), p.snapshot['counts']['staged'], sys.executable)",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    c0, c1, c2, c3 = nb.cells
    assert len(_views(c0)) == 1 and _streams(c0) == ""
    assert [o["output_type"] for o in c0.outputs] == ["display_data"]
    assert _streams(c1) == "shown True\n", c1.outputs  # nothing from the refresh thread
    assert len(_views(c2)) == 1 and _streams(c2) == ""
    closed, alive, staged, exe = _streams(c3).split()
    assert (closed, alive, staged) == ("True", "False", "2")
    assert exe == sys.executable  # the kernel is this venv's Python

    # The widget state the front end received: the thread's updates arrived.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    panel_id = _views(c0)[0]
    assert state[panel_id]["model_name"] == "VBoxModel"
    html_values = [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]
    header = [v for v in html_values if v.startswith("<b>Guild runs</b>") and "0 running · 2 staged" in v]
    assert header, json.dumps(html_values)[:2000]
    assert any("no queue is running" in v for v in html_values)


def test_guild_panel_magic_shows_one_view(tmp_path, guild_home):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext guild_jupyter\n%guild panel --refresh 0")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    (cell,) = nb.cells
    assert len(_views(cell)) == 1, cell.outputs  # the magic's result is the shown panel: not twice
    assert _streams(cell) == ""
