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

HOME_OF = "from guild_jupyter.store.store import default_guild_home; print(default_guild_home())"


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
