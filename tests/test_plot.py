"""Curves: ``guild_jupyter.plot`` / ``%guild plot`` / ``guild-jupyter plot
--output``. The figure's lines are checked against the event files read
back independently (tensorboardX's protobufs), its legend against the flags
that differ; an unknown scalar is one line naming the known ones."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest
from IPython.core.error import UsageError

import guild_jupyter
from conftest import cli, run_dirs
from guild_jupyter import api
from guild_jupyter.errors import BadInput
from guild_jupyter.frontends.magics import GuildMagics


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plot")
    home, proj = tmp / "home", tmp / "proj"
    (home / "runs").mkdir(parents=True)
    proj.mkdir()
    (proj / "train.py").write_text(
        "lr = 0.1\nepochs = 4\nseed = 1\n"
        "for step in range(epochs):\n"
        "    print(f'step: {step * 10}')\n"
        "    print(f'loss: {lr * (seed + 1) / (step + 1)}')\n"
        "    print(f'acc: {1 - lr / (step + 1)}')\n")
    (proj / "quiet.py").write_text("x = 1\nprint('val: 3')\n")
    for lr in ("0.1", "0.4"):
        cli("run", "train.py", f"lr={lr}", "--foreground", "--store", home, cwd=proj, check=0)
    cli("run", "train.py", "lr=0.2", "epochs=6", "--foreground", "--store", home, cwd=proj, check=0)
    cli("run", "quiet.py", "--foreground", "--store", home, cwd=proj, check=0)
    return str(home)


def read_back(run_dir: str, tag: str) -> tuple[list[int], list[float]]:
    """Steps and values of ``tag`` from the run's event files, decoded with
    tensorboardX's protobufs (not the reader under test)."""
    from tensorboardX.proto import event_pb2

    steps, values = [], []
    gdir = os.path.join(run_dir, ".guild")
    for name in sorted(os.listdir(gdir)):
        if not name.startswith("events.out.tfevents"):
            continue
        with open(os.path.join(gdir, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 12 <= len(data):
            (n,) = struct.unpack_from("<Q", data, pos)
            ev = event_pb2.Event()
            ev.ParseFromString(data[pos + 12:pos + 12 + n])
            for v in ev.summary.value:
                if v.tag == tag and v.HasField("simple_value"):
                    steps.append(ev.step)
                    values.append(v.simple_value)
            pos += n + 16
    return steps, values


def lines_by_run(fig) -> dict:
    (ax,) = fig.axes
    return {line.get_label().split()[0]: line for line in ax.get_lines()}


def test_each_line_is_a_runs_event_file(store):
    fig = guild_jupyter.plot(scalar="loss", store=store)
    runs = [r for r in api.runs(store=store) if r.op_name == "train.py"]
    lines = lines_by_run(fig)
    assert sorted(lines) == sorted(r.id[:8] for r in runs)  # quiet.py logged no loss: no line
    for r in runs:
        steps, values = read_back(r.dir, "loss")
        assert len(steps) == r.flags["epochs"]
        assert list(lines[r.id[:8]].get_xdata()) == steps
        assert list(lines[r.id[:8]].get_ydata()) == values
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"


def test_legend_names_the_flags_that_differ(store):
    fig = api.plot(scalar="acc", store=store)
    labels = sorted(line.get_label() for line in fig.axes[0].get_lines())
    assert all("seed" not in lb for lb in labels)  # the same in every run
    assert sorted(lb.split(" ", 1)[1] for lb in labels) == ["lr=0.1 epochs=4", "lr=0.2 epochs=6", "lr=0.4 epochs=4"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_refs_and_op_choose_the_runs(store):
    newest = api.runs(store=store)[1]  # the lr=0.2 run (quiet.py is newest)
    fig = api.plot("2", scalar="loss", store=store)
    assert list(lines_by_run(fig)) == [newest.id[:8]]
    (line,) = fig.axes[0].get_lines()
    assert line.get_label() == newest.id[:8]  # one run: no flag differs
    fig = api.plot(scalar="val", op="quiet", store=store)
    assert len(fig.axes[0].get_lines()) == 1


def test_unknown_scalar_names_the_known_ones(store):
    before = run_dirs(store)
    with pytest.raises(BadInput) as e:
        api.plot(scalar="accuracy", store=store)
    assert str(e.value) == "no run logged scalar 'accuracy'; known scalars: acc, loss, val"
    with pytest.raises(BadInput, match="no runs to plot with op 'nothing'"):
        api.plot(op="nothing", store=store)
    assert run_dirs(store) == before


def test_the_magic_shows_the_figure_as_png(store, ipython):
    from matplotlib.figure import Figure

    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    fig = ipython.run_line_magic("guild", f"plot --scalar acc --op train --store {store}")
    assert isinstance(fig, Figure) and len(fig.axes[0].get_lines()) == 3
    data, _meta = ipython.display_formatter.format(fig)
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UsageError) as e:
        ipython.run_line_magic("guild", f"plot --scalar nope --store {store}")
    assert "\n" not in str(e.value) and "known scalars: acc, loss, val" in str(e.value)


def test_cli_saves_to_output_and_needs_it(store, tmp_path):
    out = tmp_path / "curves.png"
    p = cli("plot", "--scalar", "loss", "--output", out, "--store", store, check=0)
    assert p.stdout.strip() == str(out) and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = cli("plot", "--store", store)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--output" in p.stderr
    p = cli("plot", "--scalar", "nope", "--output", tmp_path / "x.png", "--store", store)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "known scalars" in p.stderr
    assert not (tmp_path / "x.png").exists()


def test_a_truncated_event_file_plots_what_could_be_read(store, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(store, home)
    r = next(r for r in api.runs(store=str(home)) if r.flags.get("epochs") == 6)
    gdir = os.path.join(r.dir, ".guild")
    (name,) = [n for n in os.listdir(gdir) if n.startswith("events.out")]
    path = os.path.join(gdir, name)
    steps, values = read_back(r.dir, "loss")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 7)  # the last record (an acc) cut short
    fig = api.plot(r.id, scalar="loss", store=str(home))
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == values


def test_matplotlib_is_imported_only_by_plot():
    code = ("import sys\nimport guild_jupyter\nfrom guild_jupyter import api\n"
            "from guild_jupyter.frontends import cli, magics\n"
            "api.compare; api.runs; api.monitor\n"
            "assert 'matplotlib' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
