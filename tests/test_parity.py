"""Guild parity: the same store as ``guild``, checked against the real CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from conftest import GUILD, cli
from guild_jupyter import api

HOME_OF = "from guild_jupyter.store.home import default_guild_home; print(default_guild_home())"


def _env(home, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GUILD_HOME", "VIRTUAL_ENV", "CONDA_PREFIX")}
    env["HOME"] = str(home)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _guild_home(cwd, env) -> str:
    p = subprocess.run([GUILD, "check"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    for line in p.stdout.splitlines():
        if line.startswith("guild_home:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(p.stdout + p.stderr)


def _ours(cwd, env) -> str:
    p = subprocess.run([sys.executable, "-c", HOME_OF], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.mark.guild
def test_home_resolution_matches_guild_check(tmp_path):
    user = tmp_path / "user"
    nested = user / "proj" / "a" / "b"
    nested.mkdir(parents=True)
    venv, conda, outside = tmp_path / "venv", tmp_path / "conda", tmp_path / "elsewhere" / "x"
    for d in (venv, conda, outside):
        d.mkdir(parents=True)
    cases = []
    cases.append(("nothing: ~/.guild", nested, _env(user)))
    (user / "proj" / ".guild").mkdir()
    cases.append(("nearest .guild up from cwd", nested, _env(user)))
    cases.append(("venv without .guild: cwd rule", nested, _env(user, VIRTUAL_ENV=venv)))
    (venv / ".guild").mkdir()
    cases.append(("venv with .guild", nested, _env(user, VIRTUAL_ENV=venv)))
    (conda / ".guild").mkdir()
    cases.append(("conda before venv", nested, _env(user, VIRTUAL_ENV=venv, CONDA_PREFIX=conda)))
    (tmp_path / "elsewhere" / ".guild").mkdir()
    cases.append(("cwd outside the user's home", outside, _env(user)))
    (tmp_path / "gh").mkdir()
    cases.append(("GUILD_HOME wins", nested, _env(user, VIRTUAL_ENV=venv, GUILD_HOME=tmp_path / "gh")))
    for what, cwd, env in cases:
        assert _ours(cwd, env) == _guild_home(cwd, env), what


@pytest.mark.guild
def test_listing_in_a_venv_with_a_guild_dir_matches_guild(tmp_path, project):
    user, venv = tmp_path / "user", tmp_path / "venv"
    (venv / ".guild").mkdir(parents=True)
    user.mkdir()
    env = _env(user, VIRTUAL_ENV=venv)
    p = subprocess.run([sys.executable, "-m", "guild_jupyter", "run", str(project / "train.py"), "--stage"],
                       cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert os.listdir(venv / ".guild" / "runs")
    g = subprocess.run([GUILD, "runs", "--staged"], cwd=project, env=env, capture_output=True, text=True)
    assert "train.py" in g.stdout and "staged" in g.stdout


def test_store_that_is_not_a_guild_home_is_an_error(tmp_path, project, guild_home):
    cli("run", project / "train.py", "--stage", check=0)
    runs_dir = guild_home / "runs"
    (run_id,) = os.listdir(runs_dir)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for bad, word in ((runs_dir, "runs/ directory"), (a_file, "is a file"), (runs_dir / run_id, "run directory")):
        p = cli("runs", "--store", bad, check=2)
        assert p.stderr.count("\n") == 1 and word in p.stderr, p.stderr
        p = cli("run", project / "train.py", "--stage", "--store", bad, check=2)
        assert word in p.stderr
    assert os.listdir(runs_dir) == [run_id]
    assert not (runs_dir / "runs").exists()


def test_the_readme_venv_enables_the_server_extension():
    """The venv the README's set-up builds (this one, in CI from a fresh
    clone) serves /guild: Jupyter lists the extension as enabled and valid."""
    jupyter = os.path.join(os.path.dirname(sys.executable), "jupyter")
    p = subprocess.run([jupyter, "server", "extension", "list"], capture_output=True, text=True,
                       timeout=120, cwd="/")
    text = (p.stdout + p.stderr).replace("\x1b[32m", "").replace("\x1b[0m", "")
    lines = [line.strip() for line in text.splitlines()]
    assert "guild_jupyter enabled" in lines, text
    assert any(line.startswith("guild_jupyter ") and line.endswith(" OK") for line in lines), text


def test_autoload_never_replaces_a_file_it_did_not_write(tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path))
    startup = tmp_path / "profile_default" / "startup"
    startup.mkdir(parents=True)
    theirs = startup / "50-guild_jupyter.py"
    theirs.write_text("print('mine')\n")
    for state in ("on", "off"):
        p = cli("autoload", state, check=2)
        assert "not written by guild_jupyter" in p.stderr and p.stderr.count("\n") == 1
    assert theirs.read_text() == "print('mine')\n"
    assert cli("autoload", "status", check=0).stdout.startswith("off:")


def test_a_flag_named_like_a_printed_scalar_is_warned_about(project, tmp_path):
    (project / "shadow.py").write_text('loss = 2.0\nprint(f"loss: {loss / 2}")\nprint("acc: 0.5")\n')
    p = cli("run", project / "shadow.py", "--stage", check=0)
    assert p.stderr.count("\n") == 1 and "flag loss also names scalar output" in p.stderr
    quiet = cli("run", project / "train.py", "--stage", check=0)
    assert quiet.stderr == ""
    import warnings

    from guild_jupyter.errors import GuildJupyterWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (r,) = api.run(str(project / "shadow.py"), foreground=True, stream=io.StringIO())
    assert [w.category for w in caught] == [GuildJupyterWarning]
    # As in Guild, the flag's lines are not scalars; compare never shows two
    # columns of one name: the flag and the scalar say which is which.
    (project / "other.py").write_text('lr = 0.1\nprint(f"loss: {lr}")\n')
    (o,) = api.run(str(project / "other.py"), foreground=True, stream=io.StringIO())
    head, _ = api.compare(r.id, o.id).table()
    assert "loss (flag)" in head and "loss (scalar)" in head and "loss" not in head
    assert "acc" in head


NARGS = '''\
import argparse
p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, nargs="+", default=[64, 32])
p.add_argument("--names", nargs="*", default=["a b", "c"])
p.add_argument("--lr", type=float, default=0.1)
a = p.parse_args()
print("layers", a.layers, "names", a.names, "lr", a.lr)
'''
GLOBALS_LIST = 'sizes = [1, 2]\nprint("sizes", sizes, type(sizes[0]).__name__)\n'


@pytest.mark.guild
def test_list_flags_run_the_same_under_a_real_guild_queue(project):
    from conftest import guild

    (project / "nargs.py").write_text(NARGS)
    (project / "glist.py").write_text(GLOBALS_LIST)
    def stage_three():
        return [api.run(str(project / "nargs.py"), "layers=[8,4]", stage=True)[0],
                api.run(str(project / "nargs.py"), stage=True)[0],
                api.run(str(project / "glist.py"), "sizes=[3,4,5]", stage=True)[0]]

    by_guild = stage_three()
    assert by_guild[0].flags["layers"] == "8 4"  # as Guild stores it; its queue splits it
    guild("run", "queue", "run-once=yes", "-y", cwd=project)
    by_us = stage_three()
    q = api.queue(run_once=True)
    assert q.join(60)
    want = ["layers [8, 4] names ['a b', 'c'] lr 0.1", "layers [64, 32] names ['a b', 'c'] lr 0.1",
            "sizes [3, 4, 5] int"]
    for runs in (by_guild, by_us):
        assert [r.refresh().status for r in runs] == ["completed"] * 3
        assert [api.output(r.id).strip().splitlines()[-1] for r in runs] == want
    assert all(r.get("queue_id") == q.id for r in by_us)
    assert not any(r.get("queue_id") for r in by_guild)  # Guild's queue records none


def test_a_sweep_function_on_a_list_flag_is_an_error(project, guild_home):
    (project / "nargs.py").write_text(NARGS)
    for bad in ("layers=range[1:3]", "layers=linspace[1:2:2]", "layers=uniform[1:2]"):
        p = cli("run", project / "nargs.py", bad, "--stage", check=2)
        assert "takes a list" in p.stderr and p.stderr.count("\n") == 1
    assert not os.path.exists(guild_home / "runs") or not os.listdir(guild_home / "runs")


@pytest.mark.guild
def test_json_listing_and_run_selection_match_guild(project, guild_home):
    from conftest import guild

    api.run(str(project / "train.py"), "lr=0.5", foreground=True, stream=io.StringIO())
    api.run(str(project / "train.py"), "lr=[0.1,0.2,0.3]", stage=True)
    ours = json.loads(cli("runs", "--json", check=0).stdout)
    theirs = json.loads(guild("runs", "--json").stdout)
    assert [r["id"] for r in ours] == [r["id"] for r in theirs]
    for a, b in zip(ours, theirs):
        for field in ("run_dir", "opref", "exit_status", "label", "started", "status", "stopped"):
            assert a[field] == b[field], (field, a[field], b[field])
    assert [r["index"] for r in ours] == [1, 2, 3, 4]
    st = api.resolve_store()
    ids = [r["id"] for r in ours]
    # A number that is no index is an id prefix, as in Guild: find one.
    digit_prefix = next((i[:1] for i in ids if i[0].isdigit() and i[0] not in "1234"
                         and sum(j.startswith(i[0]) for j in ids) == 1), None)
    specs = ["1", "4", "2:3", ":2", "3:", "1:4"] + ([digit_prefix] if digit_prefix else [])
    for spec in specs:
        expected = guild("select", spec, "--all").stdout.split()
        assert [r.id for r in st.select([spec])] == expected, spec
    unused = next(d for d in "56789" if not any(i.startswith(d) for i in ids))
    p = cli("output", unused, check=2)  # no such index and no id starting with it
    assert p.stderr.count("\n") == 1 and "no run at index" in p.stderr
