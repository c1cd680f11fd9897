"""Fixtures shared by the whole suite: a private Guild home per test, a small
project with a training script, and helpers to run our CLI and the real
``guild`` CLI as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

VENV_BIN = os.path.dirname(sys.executable)
GUILD = os.path.join(VENV_BIN, "guild")

TRAIN_PY = textwrap.dedent(
    """\
    import os, sys, time
    lr = 0.1
    epochs = 2
    name = "base"
    verbose = False
    sleep = 0.0
    for step in range(epochs):
        time.sleep(sleep)
        print(f"step: {step}")
        print(f"loss: {lr / (step + 1):.6f}")
    print("done", name, verbose)
    log = os.environ.get("RUN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(os.environ["RUN_ID"] + "\\n")
    """
)


@pytest.fixture(autouse=True)
def guild_home(tmp_path, monkeypatch):
    """Every test gets its own default store: never the user's ~/.guild."""
    home = tmp_path / "guild-home"
    home.mkdir()
    monkeypatch.setenv("GUILD_HOME", str(home))
    monkeypatch.setenv("GUILD_JUPYTER_STOP_GRACE", "3")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return home


@pytest.fixture
def project(tmp_path):
    d = tmp_path / "project"
    d.mkdir()
    (d / "train.py").write_text(TRAIN_PY)
    return d


@pytest.fixture(params=["fork", "spawn"])
def launcher(request):
    """Run a test both ways a supervisor starts: a single-threaded launcher
    forks it; one with other threads (a kernel) spawns ``python -m
    ...supervisor``."""
    import threading

    if request.param == "fork":
        yield request.param
        return
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    yield request.param
    stop.set()
    t.join()


@pytest.fixture(scope="session")
def ipython(tmp_path_factory):
    """One real IPython shell for the suite (magics and completion tests)."""
    from IPython.core.interactiveshell import InteractiveShell

    if not InteractiveShell.initialized():
        os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        return InteractiveShell.instance(config=config)
    return InteractiveShell.instance()


def wait_for(predicate, timeout=30.0, interval=0.02, message="condition"):
    """Polls ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def shown_ids(text: str) -> list[str]:
    """The short ids of the runs a verb's text names (``[3:ab12cd34]``, or
    ``[ab12cd34]`` for a run no listing holds), in order."""
    import re

    return re.findall(r"^\[(?:\d+:)?([0-9a-f]{8})\]", text, re.M)


def shown_queue(text: str) -> str:
    """The short id of the queue a verb's text names (``queue ab12cd34 ...``)."""
    import re

    m = re.match(r"queue ([0-9a-f]{8})\b", text)
    assert m, text
    return m.group(1)


def cli(*args, cwd=None, env=None, check=None, timeout=120, input=None):
    """Runs ``python -m guild_jupyter ARGS``."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(
        [sys.executable, "-m", "guild_jupyter", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=input,
    )
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def guild(*args, cwd=None, env=None, check=0, timeout=180):
    """Runs the real ``guild`` CLI (guildai 0.9), the compatibility oracle."""
    full_env = dict(os.environ)
    full_env.setdefault("NO_IMPORT_FLAGS_PROGRESS", "1")
    if env:
        full_env.update(env)
    p = subprocess.run([GUILD, *map(str, args)], cwd=cwd, env=full_env, capture_output=True,
                       text=True, timeout=timeout)
    if check is not None:
        assert p.returncode == check, f"guild {args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def write_script(directory, text: str, name: str = "ticker.py") -> str:
    """Writes ``text`` as ``directory/name`` and returns its path (a str, as ``api.run`` takes)."""
    path = os.path.join(str(directory), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run_dirs(home) -> set:
    runs = os.path.join(str(home), "runs")
    if not os.path.isdir(runs):
        return set()
    return {n for n in os.listdir(runs) if not n.startswith(".")}
