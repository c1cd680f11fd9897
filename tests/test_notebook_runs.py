"""Notebooks as operations (SPEC section 14): ``run nb.ipynb lr=0.3`` stages,
sweeps, queues and runs a whole notebook in a fresh, real IPython kernel
under the run's supervisor; the real ``guild`` CLI is the oracle for what
Guild sees of these runs."""

from __future__ import annotations

import csv
import io
import json
import os

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from conftest import cli, gone, guild, output_line, run_dirs, wait_for
from guild_jupyter import api, views
from guild_jupyter.errors import FlagError, ScriptError
from guild_jupyter.notebook_op import NotebookOp

PARAMS = "lr = 0.1\nepochs = 3\nname = 'base'\n"
TRAIN = (
    "for step in range(epochs):\n"
    "    print(f'step: {step}')\n"
    "    print(f'loss: {lr / (step + 1):.6f}')\n"
    "print('done', name)\n"
)


def write_nb(path, cells, kernel="python3", tag_first_code=False) -> str:
    """A version 4 notebook of ``cells`` (code, or ``("md", text)``); with
    ``tag_first_code`` its first code cell is tagged ``parameters``."""
    nb = new_notebook()
    if kernel:
        nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    tagged = False
    for c in cells:
        if isinstance(c, tuple):
            nb.cells.append(new_markdown_cell(c[1]))
            continue
        cell = new_code_cell(c)
        if tag_first_code and not tagged:
            cell.metadata["tags"] = ["parameters"]
            tagged = True
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return str(path)


@pytest.fixture
def nb_project(project):
    """The project, with ``train.ipynb``: a markdown cell, an import cell, a
    tagged parameters cell, the training loop, an expression."""
    write_nb(project / "train.ipynb", [("md", "# Train"), "import time"], tag_first_code=False)
    nb = nbformat.read(str(project / "train.ipynb"), as_version=4)
    params = new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells += [params, new_code_cell(TRAIN), new_code_cell("lr * 2")]
    nbformat.write(nb, str(project / "train.ipynb"))
    return project


def executed(run) -> nbformat.NotebookNode:
    path = views.run_row(run.refresh())["notebook"]
    assert path and os.path.dirname(path) == run.dir
    return nbformat.read(path, as_version=4)


def code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def texts(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", ""))
    return "".join(out)


# -- flags, before anything runs -----------------------------------------------------------------


def test_flags_are_the_parameters_cells_assignments_typed_as_a_scripts(nb_project):
    op = NotebookOp.from_path("train.ipynb", str(nb_project))
    assert op.defaults == {"lr": 0.1, "epochs": 3, "name": "base"}  # not `import time`'s cell, not the loop's
    assert api.flag_names("train.ipynb", str(nb_project)) == ["lr", "epochs", "name"]
    assert api.run("train.ipynb", "lr=[0.5,1]", "epochs=2", dry_run=True, cwd=str(nb_project)) == [
        {"lr": 0.5, "epochs": 2, "name": "base"}, {"lr": 1, "epochs": 2, "name": "base"}]
    with pytest.raises(FlagError, match=r"invalid value 'abc' for flag 'lr': expected a number"):
        api.run("train.ipynb", "lr=abc", dry_run=True, cwd=str(nb_project))
    with pytest.raises(FlagError, match=r"flag 'momentum' is not defined by the parameters cell of train.ipynb "
                                        r"\(flags: lr, epochs, name\)"):
        api.run("train.ipynb", "momentum=0.9", dry_run=True, cwd=str(nb_project))


def test_without_a_tagged_cell_the_first_code_cell_holds_the_flags(project):
    write_nb(project / "plain.ipynb", [("md", "intro"), "%matplotlib inline\nbatch = 32\nopt = 'sgd'", "x = 5"])
    op = NotebookOp.from_path("plain.ipynb", str(project))
    assert op.defaults == {"batch": 32, "opt": "sgd"}  # IPython syntax in the cell is fine
    with pytest.raises(FlagError, match="the first code cell of plain.ipynb, which has no cell tagged parameters"):
        op.check_flags({"x": 1})
    write_nb(project / "empty.ipynb", [("md", "only words")])
    assert NotebookOp.from_path("empty.ipynb", str(project)).defaults == {}


def test_a_flag_named_like_a_printed_scalar_is_warned_about(project):
    from guild_jupyter.errors import GuildJupyterWarning

    write_nb(project / "shadow.ipynb", ["loss = 1.0", "%matplotlib inline\nprint(f'loss: {loss / 2}')"])
    with pytest.warns(GuildJupyterWarning, match="flag loss also names scalar output"):
        api.run("shadow.ipynb", stage=True, cwd=str(project))


# -- bad input: one line, nothing written --------------------------------------------------------


@pytest.mark.parametrize("name, content, args, message", [
    ("notes.txt", "lr = 0.1\n", (), "not a Python script or notebook: notes.txt"),
    ("broken.ipynb", '{"cells": [', (), "broken.ipynb: not a notebook: invalid JSON"),
    ("list.ipynb", "[1, 2]", (), "list.ipynb: not a notebook: its JSON is not an object"),
    ("data.ipynb", '{"rows": []}', (), "data.ipynb: not a notebook: no nbformat 4 and list of cells"),
    ("old.ipynb", '{"nbformat": 3, "worksheets": []}', (), "old.ipynb: notebook format 3 is too old"),
    ("train.ipynb", None, ("momentum=0.9",), "flag 'momentum' is not defined by the parameters cell of train.ipynb"),
    ("train.ipynb", None, ("lr=fast",), "invalid value 'fast' for flag 'lr'"),
])
def test_bad_input_is_one_line_and_writes_nothing(nb_project, guild_home, name, content, args, message):
    if content is not None:
        (nb_project / name).write_text(content)
    for extra in ((), ("--stage",), ("--foreground",)):
        p = cli("run", name, *args, *extra, cwd=nb_project)
        assert p.returncode == 2, p
        assert p.stderr.strip().count("\n") == 0 and message in p.stderr and p.stdout == ""
    assert run_dirs(guild_home) == set()


def test_bad_input_in_the_magic_and_rest(nb_project, ipython, monkeypatch, guild_home, tmp_path, capsys):
    from IPython.core.error import UsageError

    monkeypatch.chdir(nb_project)
    ipython.extension_manager.load_extension("guild_jupyter")
    (nb_project / "broken.ipynb").write_text("{")
    for line in ("run broken.ipynb", "run train.ipynb momentum=1 --stage"):
        with pytest.raises(UsageError) as e:
            ipython.run_line_magic("guild", line)
        assert "\n" not in str(e.value) and ("invalid JSON" in str(e.value) or "'momentum'" in str(e.value))
    assert run_dirs(guild_home) == set()

    from support.jupyter import guild_server

    root = tmp_path / "root"
    root.mkdir()
    (root / "broken.ipynb").write_text("{")
    write_nb(root / "nb.ipynb", ["lr = 0.1", "print('loss:', lr)"], tag_first_code=True)
    with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server:
        for body, words in (({"script": "broken.ipynb", "stage": True}, "invalid JSON"),
                            ({"script": "nb.ipynb", "stage": True, "flags": {"momentum": 1}}, "'momentum'")):
            st, err = server.request("/guild/api/runs", "POST", body)
            assert st == 400 and words in err["error"] and "\n" not in err["error"]
        assert run_dirs(guild_home) == set()
        st, body = server.request("/guild/api/runs", "POST", {"script": "nb.ipynb", "assignments": ["lr=[0.3,0.4]"],
                                                              "stage": True, "label": "web", "retries": 2})
        assert st == 201 and [r["flags"]["lr"] for r in body["runs"]] == [0.4, 0.3]
        assert {r["op"] for r in body["runs"]} == {"nb.ipynb"} and {r["label"] for r in body["runs"]} == {"web"}
        assert {r["notebook"] for r in body["runs"]} == {None}  # staged: nothing executed yet
    staged = api.runs("staged")
    assert len(staged) == 2 and {r.get("retries") for r in staged} == {2}


# -- running in a real kernel --------------------------------------------------------------------


@pytest.mark.guild
def test_a_notebook_run_in_a_real_kernel_and_what_guild_sees_of_it(nb_project):
    source = (nb_project / "train.ipynb").read_bytes()
    p = cli("run", "train.ipynb", "lr=0.3", "--foreground", "--label", "nb", cwd=nb_project, check=0)
    assert "loss: 0.300000" in p.stdout and "done base" in p.stdout and "0.6" in p.stdout  # prints and results
    (run,) = api.runs()
    assert run.status == "completed" and run.op_name == "train.ipynb" and run.label == "nb"
    assert run.flags == {"lr": 0.3, "epochs": 3, "name": "base"}
    out = api.output(run.id)
    assert out.splitlines()[:2] == ["step: 0", "loss: 0.300000"] and "0.6\n" in out

    # The snapshot is the notebook as it was; the executed copy has the values and the outputs.
    assert open(os.path.join(run.dir, "train.ipynb"), "rb").read() == source
    nb = executed(run)
    codes = code_sources(nb)
    assert codes[1] == PARAMS and "parameters" in nb.cells[2].metadata["tags"]
    injected = nb.cells[3]
    assert injected.metadata["tags"] == ["injected-parameters"]  # right after the parameters cell
    assert injected.source == "# Parameters\nlr = 0.3\nepochs = 3\nname = 'base'\n"
    assert "loss: 0.100000" in texts(nb.cells[4]) and texts(nb.cells[5]) == "0.6"
    assert nb.metadata["language_info"]["name"] == "python"

    # The real guild CLI: listing, flags, scalars, output.
    line = next(ln for ln in guild("runs").stdout.splitlines() if run.id[:8] in ln)
    assert "train.ipynb" in line and "completed" in line
    info = guild("runs", "info", run.id).stdout
    assert "operation: train.ipynb" in info and "lr: 0.3" in info and "epochs: 3" in info and "name: base" in info
    assert "loss: 0.1" in info
    row = next(r for r in csv.DictReader(io.StringIO(guild("compare", "--csv", "-").stdout)) if r["run"] == run.id[:8])
    assert float(row["lr"]) == 0.3 and abs(float(row["loss"]) - 0.1) < 1e-6 and row["step"] == "2"
    assert guild("cat", "--output", run.id).stdout == out

    # A server whose root holds the store offers "Open notebook" on the row; one whose root does not, nothing.
    monitor = api.monitor()
    home = os.path.dirname(os.path.dirname(run.dir))
    for root, expected in ((os.path.dirname(home), True), (str(nb_project), False)):
        monitor.notebook_root = root
        (row,) = [r for g in monitor.snapshot()["groups"] for r in g["rows"] if r["id"] == run.id]
        opens = [a for a in row["actions"] if a["verb"] == "open"]
        if expected:
            rel = os.path.relpath(os.path.join(run.dir, "train.executed.ipynb"), root)
            assert opens == [{"verb": "open", "label": "Open notebook", "help": opens[0]["help"], "confirm": None,
                              "method": "GET", "path": "lab/tree/" + rel, "form": None, "target": run.id}]
            assert os.path.isfile(os.path.join(root, rel))
        else:
            assert opens == []


def test_cell_output_reaches_the_run_output_while_the_cell_runs(project, tmp_path):
    """The cell prints, then blocks until the test has seen its line in the
    run's output: the output streams, it is not written at the end."""
    release = tmp_path / "release"
    write_nb(project / "wait.ipynb", [
        f"release = {str(release)!r}",
        "import os, time\nprint('loss: 1.5', flush=True)\ndeadline = time.time() + 60\n"
        "while not os.path.exists(release) and time.time() < deadline:\n    time.sleep(0.05)\n"
        "print('released' if os.path.exists(release) else 'gave up')",
    ])
    (run,) = api.run("wait.ipynb", cwd=str(project))
    wait_for(lambda: "loss: 1.5" in api.output(run.id), timeout=60, message="the first line, while the cell runs")
    assert run.refresh().status == "running"
    release.write_text("go")
    (run,) = api.wait(run, timeout=60)
    assert run.status == "completed" and api.output(run.id).endswith("released\n")


def test_a_notebook_sweep_through_our_queue_and_guilds(nb_project):
    trials = api.run("train.ipynb", "lr=[0.2,0.4]", "epochs=1", stage=True, cwd=str(nb_project))
    assert [r.status for r in trials] == ["staged", "staged"]
    for r in trials:  # staged runs carry their snapshot, as scripts do
        assert os.path.isfile(os.path.join(r.dir, "train.ipynb")) and views.run_row(r)["notebook"] is None
    q = api.queue(run_once=True)
    assert q.join(120)
    for r in trials:
        assert r.refresh().status == "completed", api.output(r.id)
        lr = r.flags["lr"]
        assert f"loss: {lr:.6f}" in api.output(r.id)
        assert f"lr = {lr}\n" in executed(r).cells[3].source

    (staged,) = api.run("train.ipynb", "lr=0.7", "name=by-guild", stage=True, cwd=str(nb_project))
    guild("run", "queue", "run-once=yes", "-y", cwd=nb_project)
    assert staged.refresh().status == "completed", api.output(staged.id)
    out = api.output(staged.id)
    assert "loss: 0.700000" in out and "done by-guild" in out
    assert "name = 'by-guild'" in executed(staged).cells[3].source


def test_stop_while_a_cell_runs_ends_the_kernel_and_its_children(project):
    write_nb(project / "sleepy.ipynb", [
        "secs = 600",
        "import os, subprocess, time\nchild = subprocess.Popen(['sleep', str(secs)])\n"
        "print('pids', os.getpid(), child.pid, flush=True)\ntime.sleep(secs)",
        "print('never')",
    ])
    (run,) = api.run("sleepy.ipynb", cwd=str(project))
    line = wait_for(lambda: output_line(run.id, "pids "), timeout=60, message="the cell reports its pids")
    kernel_pid, child_pid = map(int, line.split()[1:])
    procs = [psutil.Process(kernel_pid), psutil.Process(child_pid)]
    assert "ipykernel" in " ".join(procs[0].cmdline()) and procs[1].cmdline()[0] == "sleep"
    api.stop(run.id)
    (run,) = api.wait(run, timeout=60)
    assert run.status == "terminated" and run.exit_status < 0
    for p in procs:
        assert gone(p), p
    nb = executed(run)  # saved as far as it got
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]  # every flag value, given or default
    assert "pids" in texts(nb.cells[2]) and not nb.cells[3].get("outputs")
    assert "never" not in api.output(run.id)


def test_a_failing_cell_ends_the_run_error_with_its_traceback(project):
    write_nb(project / "fail.ipynb", [
        "threshold = 1",
        "print('before')\nraise ValueError(f'boom {threshold}')",
        "print('after')",
    ])
    (run,) = api.run("fail.ipynb", "threshold=7", cwd=str(project))
    (run,) = api.wait(run, timeout=60)
    assert run.status == "error" and run.exit_status == 1
    out = api.output(run.id)
    assert out.startswith("before\n") and "Traceback" in out and out.rstrip().endswith("ValueError: boom 7")
    assert "\x1b[" not in out and "after" not in out
    nb = executed(run)
    assert [o.output_type for o in nb.cells[2].outputs] == ["stream", "error"] and not nb.cells[3].outputs


def test_a_kernel_that_dies_fails_the_run_with_what_it_wrote(project):
    write_nb(project / "die.ipynb", ["print('bye')",  # a cell of its own: output sent before a crash can be lost
                                     "import os\nos.write(2, b'fatal: from the C side\\n')\nos._exit(3)",
                                     "print('never')"])
    (run,) = api.run("die.ipynb", cwd=str(project), foreground=True, stream=io.StringIO())
    assert run.status == "error" and run.exit_status == 1
    out = api.output(run.id)
    assert out.startswith("bye\n") and "guild_jupyter: die.ipynb: the kernel died" in out
    assert "fatal: from the C side" in out and "never" not in out  # the kernel's own stderr, shown on its death


def test_without_a_parameters_cell_the_values_follow_the_first_code_cell(project):
    write_nb(project / "plain.ipynb", [("md", "no tags"), "width = 4\nname = 'a'", "print('area', width * width, name)"])
    (run,) = api.run("plain.ipynb", "width=5", cwd=str(project), foreground=True, stream=io.StringIO())
    assert run.status == "completed" and "area 25 a" in api.output(run.id)
    nb = executed(run)
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"] and "width = 5" in nb.cells[2].source


def test_a_missing_kernel_fails_the_run_naming_it(project):
    write_nb(project / "julia.ipynb", ["x = 1"], kernel="julia-no-such-1.9")
    (run,) = api.run("julia.ipynb", cwd=str(project), foreground=True, stream=io.StringIO())
    assert run.status == "error"
    (line,) = api.output(run.id).splitlines()
    assert "no kernel named 'julia-no-such-1.9' is installed here" in line and "python3" in line


def test_gpus_and_the_run_environment_reach_the_kernel(project):
    write_nb(project / "env.ipynb", ["import os\nprint('cuda', os.environ.get('CUDA_VISIBLE_DEVICES'), "
                                     "os.environ['RUN_ID'], os.getcwd(), 'GUILD_JUPYTER_FLAGS' in os.environ)"])
    (run,) = api.run("env.ipynb", gpus="1", cwd=str(project), foreground=True, stream=io.StringIO())
    assert api.output(run.id).split() == ["cuda", "1", run.id, run.dir, "False"]


def test_a_failed_notebook_run_is_retried_from_its_snapshot(project):
    write_nb(project / "flaky.ipynb", ["attempt_ok = False", "import os\nassert os.path.exists('ok'), 'not yet'"])
    (run,) = api.run("flaky.ipynb", stage=True, retries=1, cwd=str(project))
    write_nb(project / "flaky.ipynb", ["changed = 1"])  # a copy runs the snapshot, not the project's file
    q = api.queue(run_once=True)
    assert q.join(120)
    runs = api.runs()
    copies = [r for r in runs if r.id != run.id and not r.is_queue]
    assert run.refresh().status == "error" and len(copies) == 1
    copy = copies[0]
    assert copy.op_name == "flaky.ipynb" and copy.status == "error" and copy.flags == {"attempt_ok": False}
    assert "AssertionError: not yet" in api.output(copy.id)


def test_restart_and_restage_run_the_snapshot_again(nb_project):
    (run,) = api.run("train.ipynb", "epochs=1", cwd=str(nb_project), foreground=True, stream=io.StringIO())
    write_nb(nb_project / "train.ipynb", ["other = 1"])  # the project's notebook changes; the runs keep theirs
    (copy,) = api.restage(run.id, "lr=0.9")
    assert copy.status == "staged" and copy.flags == {"lr": 0.9, "epochs": 1, "name": "base"}
    api.restart(run.id)
    (run,) = api.wait(run, timeout=60)
    assert run.status == "completed" and api.output(run.id).count("loss: 0.100000") == 2  # appended
    q = api.queue(run_once=True)
    assert q.join(120)
    assert copy.refresh().status == "completed" and "loss: 0.900000" in api.output(copy.id)
    assert "lr = 0.9\n" in executed(copy).cells[3].source


def test_the_magic_runs_a_notebook_and_cell_runs_are_unaffected(nb_project, ipython, monkeypatch, capsys):
    monkeypatch.chdir(nb_project)
    ipython.extension_manager.load_extension("guild_jupyter")
    listing = ipython.run_line_magic("guild", "run train.ipynb lr=0.5 epochs=1 --foreground")
    assert "loss: 0.500000" in capsys.readouterr().out
    run = api.runs()[0]
    assert run.status == "completed" and run.op_name == "train.ipynb" and listing is not None

    ipython.run_cell_magic("guild", "run steps=2 --foreground", "steps = 1\nfor i in range(steps):\n    print(f'i: {i}')\n")
    cell_run = api.runs()[0]
    assert cell_run.op_name.endswith(".py") and cell_run.get("guild_jupyter") == {"kind": "cell"}
    assert cell_run.status == "completed" and api.output(cell_run.id) == "i: 0\ni: 1\n"
    assert views.run_row(cell_run)["notebook"] is None
    ipython.run_line_magic("guild", "run train.ipynb name=m --stage")
    (staged,) = api.runs("staged")
    assert staged.flags["name"] == "m" and staged.get("guild_jupyter") == {"kind": "notebook"}


def test_the_op_attr_runs_our_runner_and_passes_no_flag_arguments(nb_project):
    (run,) = api.run("train.ipynb", stage=True, gpus="0", cwd=str(nb_project))
    op = run.get("op")["op-cmd"]
    assert op["cmd-args"] == ["${python_exe}", "-um", "guild_jupyter.execution.notebook", "train.ipynb"]
    assert op["cmd-flags"] == {n: {"arg-skip": True} for n in ("lr", "epochs", "name")}
    assert op["cmd-env"]["CUDA_VISIBLE_DEVICES"] == "0"
    with open(os.path.join(run.dir, ".guild", "attrs", "flags")) as f:
        assert json.loads(f.read()) == {"lr": 0.1, "epochs": 3, "name": "base"}


def test_a_row_links_the_executed_notebook_under_a_server_root(tmp_path):
    root = tmp_path / "root"
    nb = root / "home" / "runs" / "abc" / "nb.executed.ipynb"
    assert views.notebook_tree_path(str(nb), str(root)) == "home/runs/abc/nb.executed.ipynb"
    assert views.notebook_tree_path(str(tmp_path / "elsewhere.ipynb"), str(root)) is None
    assert views.notebook_tree_path(None, str(root)) is None


def test_reading_a_notebook_refuses_what_is_not_one():
    for text, words in (("{", "invalid JSON"), ('{"nbformat": 4, "cells": [3]}', "cell 1 is malformed"),
                        ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": 5}]}', "cell 1 is malformed")):
        with pytest.raises(ScriptError, match=words):
            NotebookOp("/tmp", "x.ipynb", text.encode())
