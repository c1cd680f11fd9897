"""The quickstart notebook, executed headless by scripts/quickstart.py (nbclient,
a real ipykernel of this venv's Python), and the shipped kernel config that
loads the magics without %load_ext."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import cli, TRAIN_PY
from guild_jupyter import api, views

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def quickstart():
    spec = importlib.util.spec_from_file_location("quickstart_script", os.path.join(ROOT, "scripts", "quickstart.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def cell_with(nb, text):
    return next(c for c in code_cells(nb) if text in c.source)


def streams(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def plain(cell) -> str:
    return "".join(o.get("data", {}).get("text/plain", "") for o in cell.outputs)


def test_the_kernel_is_this_venvs_python(quickstart):
    assert quickstart.kernel_manager().format_kernel_cmd()[0] == sys.executable


def test_quickstart_executes_headless_and_fills_the_default_store(quickstart, tmp_path, guild_home, capsys):
    out = tmp_path / "executed" / "quickstart.ipynb"
    rc = quickstart.main(["--output", str(out), "--timeout", "60"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert f"executed copy: {out}" in printed
    assert "runs the notebook made (12)" in printed and "quadratic-toy.py" in printed

    nb = nbformat.read(str(out), as_version=4)
    errors = [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert all(c.execution_count for c in code_cells(nb))
    fg = cell_with(nb, "--foreground")
    assert "loss: 3.240000" in streams(fg) and "completed" in plain(fg)  # streamed, then the run list
    assert "<table" in cell_with(nb, "%guild runs --staged").outputs[0]["data"]["text/html"]

    # The tour shows monitoring: why runs wait, an unstage, a readable queue, a stop.
    waits = [c for c in code_cells(nb) if c.source.strip() == "waiting()"]
    assert "no queue is running" in plain(cell_with(nb, "def waiting()"))
    assert "waiting for running runs to end (wait-for-running)" in plain(waits[-1])
    assert "unstaged" in plain(cell_with(nb, "%guild unstage"))
    queue_text = plain(cell_with(nb, "%guild queue"))
    assert queue_text.startswith("queue ") and "any GPU" in queue_text and "<" not in queue_text
    assert "terminated" in plain(cell_with(nb, "%guild stop"))
    # The saved copy keeps the panel: its view and the widget state behind it.
    (view,) = [o for o in cell_with(nb, "%guild panel").outputs if WIDGET_VIEW in o.get("data", {})]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state[view["data"][WIDGET_VIEW]["model_id"]]["model_name"] == "VBoxModel"
    html = [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]
    assert any(v.startswith("<b>Guild runs</b>") and "class='gj-summary'" in v for v in html)
    assert any("data-status='unstaged'" in v for v in html) and any("data-status='terminated'" in v for v in html)
    assert any("stopped by you" in v and "data-status='terminated'" in v for v in html)  # %guild stop: the user's

    runs = api.runs(store=str(guild_home))
    by_op: dict = {}
    for r in runs:
        by_op.setdefault(r.op_name, []).append(r)
    assert sorted(by_op) == ["quadratic-toy.py", "queue", "train.py"]
    statuses = {r.id: views.status_of(r) for r in runs}
    extra = [r for r in by_op["train.py"] if r.flags["lr"] == 5.0]
    slow = [r for r in by_op["train.py"] if r.flags["epochs"] == 6000]
    assert [statuses[r.id] for r in extra + slow] == ["unstaged", "terminated"]
    others = [r for r in runs if r not in extra + slow]
    assert all(statuses[r.id] == "completed" for r in others), [(r.op_name, statuses[r.id]) for r in others]
    grid = [r for r in by_op["train.py"] if r.label == "grid"]
    assert sorted((r.flags["lr"], r.flags["epochs"]) for r in grid) == [
        (0.03, 4), (0.03, 8), (0.1, 4), (0.1, 8), (0.3, 4), (0.3, 8)]
    assert len(by_op["train.py"]) == 9
    assert sorted(r.flags["lr"] for r in by_op["quadratic-toy.py"]) == [0.04, 0.4]
    assert all(r.flags["steps"] == 6 for r in by_op["quadratic-toy.py"])
    table = api.compare(store=str(guild_home))
    assert len(table) == 11
    assert all("loss" in row["scalars"] for row in table.rows if row["status"] == "completed")
    # The queue started the 8 staged runs, in the order they were staged.
    (queue_run,) = by_op["queue"]
    log = api.output(queue_run.id, store=str(guild_home))
    assert log.count("Starting staged run") == 8


def test_autoload_keeps_the_users_config_and_loads_the_magics(quickstart, tmp_path, guild_home, monkeypatch):
    ipython_dir = tmp_path / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    # The user's own config, with an extension of theirs: it must still load.
    user_config = 'c.InteractiveShellApp.extensions = ["autoreload"]\n'
    (profile / "ipython_kernel_config.py").write_text(user_config)
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    on = cli("autoload", "on", check=0)
    assert "on:" in on.stdout and cli("autoload", "status", check=0).stdout.startswith("on:")
    assert (profile / "ipython_kernel_config.py").read_text() == user_config
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN_PY)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%guild run train.py lr=[1,2] --stage"),  # no %load_ext
                nbformat.v4.new_code_cell("print(sorted(get_ipython().extension_manager.loaded))")]
    client = NotebookClient(nb, km=quickstart.kernel_manager(), timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(project)}})
    try:
        client.execute()
    finally:  # nbclient keeps a kernel it was handed running
        if client.km.has_kernel:
            client.km.shutdown_kernel(now=False)
    assert [o.output_type for o in nb.cells[0].outputs] == ["execute_result"]
    loaded = nb.cells[1].outputs[0]["text"]
    assert "IPython.extensions.autoreload" in loaded and "guild_jupyter" in loaded
    off = cli("autoload", "off", check=0)
    assert "removed" in off.stdout and not list((profile / "startup").iterdir())
    assert (profile / "ipython_kernel_config.py").read_text() == user_config
    assert sorted(r.flags["lr"] for r in api.runs("staged", store=str(guild_home))) == [1, 2]
