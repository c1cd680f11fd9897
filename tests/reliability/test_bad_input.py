"""Bad input, across every front end: a clear one-line error, and the store
exactly as it was (every file, its contents and its modification time).

CLI: exit status 2 and exactly one line on stderr. API: the package's
error, whose text is one line. Magics: an IPython ``UsageError`` from a
real shell. REST: a 4xx JSON ``{"error": ...}`` from a real Jupyter server.
"""

from __future__ import annotations

import os
import time
import subprocess
import sys
import textwrap

import pytest

from conftest import TRAIN_PY, cli
from guild_jupyter import api
from guild_jupyter.errors import GuildJupyterError
from support.store_state import diff, snapshot

pytestmark = pytest.mark.reliability

ARGS_PY = textwrap.dedent(
    """\
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--verbose", action="store_true")
    print(p.parse_args())
    """
)


class Store:
    """The shared store: a staged (S), a terminated (T) and a completed (C) run."""

    def __init__(self, home, project, ids, a_file):
        self.home, self.project, self.ids, self.a_file = home, project, ids, a_file

    def fill(self, text: str) -> str:
        return text.format(S=self.ids["S"], T=self.ids["T"], C=self.ids["C"], FILE=self.a_file,
                           RUNS=os.path.join(self.home, "runs"), HOME=self.home)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-input")
    home, project = tmp / "guild-home", tmp / "project"
    home.mkdir()
    project.mkdir()
    (project / "train.py").write_text(TRAIN_PY)
    (project / "args.py").write_text(ARGS_PY)
    (project / "notes.txt").write_text("not a script\n")
    (tmp / "a-file").write_text("a file, not a Guild home\n")
    env = dict(os.environ, GUILD_HOME=str(home))
    subprocess.run([sys.executable, "-m", "guild_jupyter", "run", "train.py", "--foreground", "lr=0.3"],
                   cwd=project, env=env, check=True, capture_output=True)
    (completed,) = api.runs(store=str(home))
    staged, terminated = api.run("train.py", "lr=[0.1,0.2]", stage=True, cwd=str(project), store=str(home))
    api.unstage(terminated.id, store=str(home))
    # Age the runs' stamps past the index's settling time, so the listing
    # below caches them for good: later listings then write nothing.
    past = time.time() - 60
    for run_id in os.listdir(home / "runs"):
        for rel in (".guild/attrs/label", ".guild/attrs", ".guild"):
            os.utime(home / "runs" / run_id / rel, (past, past))
    api.runs(store=str(home))
    return Store(str(home), str(project), {"S": staged.id, "T": terminated.id, "C": completed.id},
                 str(tmp / "a-file"))


@pytest.fixture(autouse=True)
def in_store(store, guild_home, monkeypatch):
    """Every front end's default store is the shared one; cwd is its project."""
    monkeypatch.setenv("GUILD_HOME", store.home)
    monkeypatch.chdir(store.project)
    before = snapshot(store.home)
    yield
    assert diff(before, snapshot(store.home)) == [], "bad input changed the store"


# -- CLI ---------------------------------------------------------------------------------------

CLI_CASES = [
    ("run",),
    ("run", "missing.py"),
    ("run", "notes.txt"),
    ("run", "train.py", "nope=1"),
    ("run", "train.py", "lr=abc"),
    ("run", "train.py", "lr=]"),
    ("run", "train.py", "lr=[0.1,abc]"),
    ("run", "train.py", "lr=[0.1"),
    ("run", "train.py", "lr"),
    ("run", "train.py", "=1"),
    ("run", "train.py", "lr=[]"),
    ("run", "train.py", "lr=[1,2]", "--max-trials", "0"),
    ("run", "train.py", "--max-trials", "x"),
    ("run", "train.py", "--random-seed", "x"),
    ("run", "train.py", "--gpus", "a"),
    ("run", "train.py", "--gpus", "0,0"),
    ("run", "train.py", "--gpus", "-1"),
    ("run", "train.py", "--bogus"),
    ("run", "train.py", "lr=uniform[a:b]"),
    ("run", "args.py", "epochs=1.5"),
    ("run", "args.py", "verbose=2"),
    ("run", "train.py", "--stage", "--store", "{FILE}"),
    ("runs", "-n", "0"),
    ("runs", "-n", "x"),
    ("runs", "--bogus"),
    ("runs", "extra"),
    ("runs", "--op"),
    ("runs", "--store", "{FILE}"),
    ("stop",),
    ("stop", "zz"),
    ("stop", "ffffffff"),
    ("stop", "99"),
    ("stop", "{C}"),
    ("stop", "--bogus"),
    ("unstage",),
    ("unstage", "{C}"),
    ("unstage", "ffffffff"),
    ("unstage", "../x"),
    ("unstage", "{S}", "zz"),
    ("delete",),
    ("delete", "ffffffff"),
    ("delete", "{T}", "zz"),
    ("output",),
    ("output", "{S}"),
    ("output", "{C}", "--tail", "-1"),
    ("output", "{C}", "--tail", "x"),
    ("output", "ffffffff"),
    ("queue", "foo=1"),
    ("queue", "poll-interval=0"),
    ("queue", "poll-interval=x"),
    ("queue", "run-once=maybe"),
    ("queue", "gpus=a"),
    ("queue", "gpus"),
    ("queue", "retries=-1"),
    ("queue", "pause"),
    ("queue", "pause", "{C}"),
    ("queue", "drain", "ffffffff"),
    ("queue", "resume", "{C}", "--background"),
    ("run", "train.py", "--retries", "2"),
    ("run", "train.py", "--stage", "--retries", "-1"),
    ("restart", "{S}"),
    ("restart", "ffffffff"),
    ("restage", "{C}", "nope=1"),
    ("restage", "{C}", "lr=abc"),
    # priorities and dependencies (SPEC 12)
    ("run", "train.py", "--stage", "--priority", "x"),
    ("run", "train.py", "--stage", "--priority", "1.5"),
    ("run", "train.py", "--stage", "--priority", "1001"),
    ("run", "train.py", "--stage", "--priority", "-1001"),
    ("run", "train.py", "--priority", "3"),
    ("run", "train.py", "--stage", "--after", "ffffffff"),
    ("run", "train.py", "--stage", "--after", "zz"),
    ("run", "train.py", "--stage", "--after", "99999"),
    ("run", "train.py", "--after", "{C}"),
    ("run", "train.py", "--foreground", "--after", "{C}"),
    ("run", "train.py", "--foreground", "--priority", "1"),
    ("run", "train.py", "--stage", "--after", "{C}", "--after-any", "{C}"),
    ("run", "train.py", "--stage", "--after"),
    ("run", "train.py", "--stage", "--after", "{C}", "nope=1"),
    ("restart", "{C}", "--stage", "--after", "{C}"),
    ("restart", "{C}", "--after", "{S}"),
    ("restart", "{C}", "--priority", "2"),
    ("restage", "{C}", "--priority", "1001"),
    ("restage", "{C}", "--after", "ffffffff"),
    ("prioritize",),
    ("prioritize", "{S}"),
    ("prioritize", "{S}", "x"),
    ("prioritize", "{S}", "1001"),
    ("prioritize", "{C}", "5"),
    ("prioritize", "{S}", "{C}", "5"),
    ("prioritize", "ffffffff", "1"),
    ("queues", "--bogus"),
    ("compare", "ffffffff"),
    ("compare", "zz"),
    ("bogus",),
    ("--bogus",),
]


@pytest.mark.parametrize("args", CLI_CASES, ids=" ".join)
def test_cli(store, args):
    p = cli(*[store.fill(a) for a in args])
    assert p.returncode == 2, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("guild-jupyter: error: "), p.stderr
    assert "Traceback" not in p.stdout


# -- API ---------------------------------------------------------------------------------------

API_CASES = {
    "run(None)": lambda s: api.run(None),
    "run(5)": lambda s: api.run(5),
    "run('')": lambda s: api.run(""),
    "run(missing)": lambda s: api.run("missing.py", stage=True),
    "run(assignment 5)": lambda s: api.run("train.py", 5, stage=True),
    "run(flags str)": lambda s: api.run("train.py", flags="lr=1", stage=True),
    "run(flags int keys)": lambda s: api.run("train.py", flags={1: 2}, stage=True),
    "run(flags unknown)": lambda s: api.run("train.py", flags={"nope": 1}, stage=True),
    "run(flags lr abc)": lambda s: api.run("train.py", flags={"lr": "abc"}, stage=True),
    "run(flags lr object)": lambda s: api.run("train.py", flags={"lr": object()}, stage=True),
    "run(lr=abc)": lambda s: api.run("train.py", "lr=abc", stage=True),
    "run(sweep with abc)": lambda s: api.run("train.py", flags={"lr": [0.1, "abc"]}, stage=True),
    "run(empty sweep)": lambda s: api.run("train.py", flags={"lr": []}, stage=True),
    "run(gpus 1.5)": lambda s: api.run("train.py", gpus=1.5, stage=True),
    "run(gpus True)": lambda s: api.run("train.py", gpus=True, stage=True),
    "run(gpus 'a')": lambda s: api.run("train.py", gpus="a", stage=True),
    "run(label 5)": lambda s: api.run("train.py", label=5, stage=True),
    "run(stage 'no')": lambda s: api.run("train.py", stage="no"),
    "run(max_trials '3')": lambda s: api.run("train.py", max_trials="3", stage=True),
    "run(max_trials 0)": lambda s: api.run("train.py", "lr=[1,2]", max_trials=0, stage=True),
    "run(random_seed 1.5)": lambda s: api.run("train.py", random_seed=1.5, stage=True),
    "run(store 5)": lambda s: api.run("train.py", store=5, stage=True),
    "run(store '')": lambda s: api.run("train.py", store="", stage=True),
    "run(store a file)": lambda s: api.run("train.py", store=s.a_file, stage=True),
    "run(cwd 5)": lambda s: api.run("train.py", cwd=5, stage=True),
    "run(stream 5)": lambda s: api.run("train.py", stream=5, foreground=True),
    "runs(limit 'x')": lambda s: api.runs(limit="x"),
    "runs(limit 0)": lambda s: api.runs(limit=0),
    "runs(status 5)": lambda s: api.runs(5),
    "runs(status bogus)": lambda s: api.runs("bogus"),
    "runs(op 5)": lambda s: api.runs(op=5),
    "stop(3.5)": lambda s: api.stop(3.5),
    "stop()": lambda s: api.stop(),
    "stop([id])": lambda s: api.stop([s.ids["S"]]),
    "stop(all 'yes')": lambda s: api.stop(all="yes"),
    "stop(timeout -1)": lambda s: api.stop(s.ids["S"], timeout=-1),
    "stop(completed)": lambda s: api.stop(s.ids["C"]),
    "stop(unknown)": lambda s: api.stop("ffffffff"),
    "unstage()": lambda s: api.unstage(),
    "unstage(completed)": lambda s: api.unstage(s.ids["C"]),
    "unstage(None)": lambda s: api.unstage(None),
    "delete()": lambda s: api.delete(),
    "delete(None)": lambda s: api.delete(None),
    "delete(good, bad)": lambda s: api.delete(s.ids["T"], "zz"),
    "output(None)": lambda s: api.output(None),
    "output(tail '3')": lambda s: api.output(s.ids["C"], tail="3"),
    "output(tail -1)": lambda s: api.output(s.ids["C"], tail=-1),
    "output(staged)": lambda s: api.output(s.ids["S"]),
    "queue(foo=1)": lambda s: api.queue("foo=1"),
    "queue(5)": lambda s: api.queue(5),
    "queue(background 'yes')": lambda s: api.queue(background="yes"),
    "queue(poll_interval True)": lambda s: api.queue(poll_interval=True),
    "queue(poll_interval 0)": lambda s: api.queue(poll_interval=0),
    "queue(run_once 5)": lambda s: api.queue(run_once=5),
    "queue(gpus 'a')": lambda s: api.queue(gpus="a"),
    "queues(include_finished 1)": lambda s: api.queues(include_finished=1),
    "queue(retries -1)": lambda s: api.queue(retries=-1),
    "pause_queue(not a queue)": lambda s: api.pause_queue(s.ids["C"]),
    "queue_control(bad action)": lambda s: api.queue_control(s.ids["C"], "halt"),
    "drain_queue(unknown)": lambda s: api.drain_queue("ffffffff"),
    "run(retries without stage)": lambda s: api.run("train.py", retries=1),
    "restart(staged)": lambda s: api.restart(s.ids["S"]),
    "restart(stage 'yes')": lambda s: api.restart(s.ids["C"], stage="yes"),
    "restage(unknown flag)": lambda s: api.restage(s.ids["C"], "nope=1"),
    "run(priority 'x')": lambda s: api.run("train.py", stage=True, priority="x"),
    "run(priority True)": lambda s: api.run("train.py", stage=True, priority=True),
    "run(priority 1.0)": lambda s: api.run("train.py", stage=True, priority=1.0),
    "run(priority 5000)": lambda s: api.run("train.py", stage=True, priority=5000),
    "run(priority without stage)": lambda s: api.run("train.py", priority=1),
    "run(after unknown)": lambda s: api.run("train.py", stage=True, after="ffffffff"),
    "run(after 5.5)": lambda s: api.run("train.py", stage=True, after=5.5),
    "run(after [None])": lambda s: api.run("train.py", stage=True, after=[None]),
    "run(after without stage)": lambda s: api.run("train.py", after=s.ids["C"]),
    "run(after foreground)": lambda s: api.run("train.py", foreground=True, after=s.ids["C"]),
    "run(after and after_any the same)": lambda s: api.run("train.py", stage=True, after=s.ids["C"],
                                                            after_any=[s.ids["C"]]),
    "restart(after itself)": lambda s: api.restart(s.ids["C"], stage=True, after=s.ids["C"]),
    "restart(after without stage)": lambda s: api.restart(s.ids["C"], after=s.ids["S"]),
    "restage(after unknown)": lambda s: api.restage(s.ids["C"], after="zz"),
    "prioritize()": lambda s: api.prioritize(priority=1),
    "prioritize(completed)": lambda s: api.prioritize(s.ids["C"], priority=1),
    "prioritize(staged and completed)": lambda s: api.prioritize(s.ids["S"], s.ids["C"], priority=1),
    "prioritize(priority None)": lambda s: api.prioritize(s.ids["S"], priority=None),
    "prioritize(priority '3')": lambda s: api.prioritize(s.ids["S"], priority="3"),
    "prioritize(priority -1001)": lambda s: api.prioritize(s.ids["S"], priority=-1001),
    "compare(3.5)": lambda s: api.compare(3.5),
    "compare(unknown)": lambda s: api.compare("ffffffff"),
    "compare(status 5)": lambda s: api.compare(status=5),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_api(store, case):
    with pytest.raises(GuildJupyterError) as e:
        API_CASES[case](store)
    assert str(e.value) and "\n" not in str(e.value)


# -- magics ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shell(ipython):
    ipython.extension_manager.load_extension("guild_jupyter")
    return ipython


MAGIC_CASES = [
    "run",
    "run missing.py",
    "run notes.txt",
    "run train.py nope=1",
    "run train.py lr=abc",
    "run train.py lr=[0.1,abc] --stage",
    "run train.py --max-trials 0 lr=[1,2]",
    "run train.py --gpus a",
    "run train.py 'lr=[0.1'",
    "run args.py epochs=1.5 --stage",
    "run train.py --foreground --stage",
    "bogus",
    "runs -n x",
    "runs -n 0",
    "runs --bogus",
    "stop",
    "stop zz",
    "stop {C}",
    "unstage {C}",
    "unstage",
    "delete ffffffff",
    "output {S}",
    "output {C} --tail x",
    "queue foo=1",
    "queue poll-interval=0",
    "queue retries=-1",
    "queue pause {C}",
    "restart {S}",
    "restage {C} nope=1",
    "compare zz",
    "run train.py --stage --after zz",
    "run train.py --stage --priority x",
    "run train.py --after {C}",
    "restart {C} --stage --after {C}",
    "prioritize {C} 1",
    "prioritize {S} 1001",
]
CELL_CASES = [
    ("run --stage", "   \n"),
    ("runs", "x = 1\n"),
    ("run lr=abc --stage", "lr = 0.1\n"),
    ("run nope=1 --stage", "lr = 0.1\n"),
]


@pytest.mark.parametrize("line", MAGIC_CASES)
def test_line_magic(store, shell, line):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as e:
        shell.run_line_magic("guild", store.fill(line))
    assert "\n" not in str(e.value).strip()


@pytest.mark.parametrize("line, cell", CELL_CASES)
def test_cell_magic(store, shell, line, cell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as e:
        shell.run_cell_magic("guild", store.fill(line), cell)
    assert "\n" not in str(e.value).strip()


# -- REST --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    from support.jupyter import start_jupyter

    s = start_jupyter(tmp_path_factory.mktemp("bad-input-server"), env={"GUILD_HOME": store.home},
                      root_dir=store.project,
                      extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    yield s
    s.stop()


REST_CASES = [
    ("POST", "/guild/api/runs", {}, 400),
    ("POST", "/guild/api/runs", {"script": 5}, 400),
    ("POST", "/guild/api/runs", [1], 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "bogus": 1}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "assignments": "lr=1"}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "assignments": [5]}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "flags": "lr=1"}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "assignments": ["lr=abc"], "stage": True}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "flags": {"lr": "abc"}, "stage": True}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "flags": {"nope": 1}, "stage": True}, 400),
    ("POST", "/guild/api/runs", {"script": "missing.py", "stage": True}, 400),
    ("POST", "/guild/api/runs", {"script": "../outside.py", "stage": True}, 403),
    ("POST", "/guild/api/runs", {"script": "{HOME}/x.py", "stage": True}, 403),
    ("POST", "/guild/api/runs", {"script": "train.py", "cwd": "..", "stage": True}, 403),
    ("POST", "/guild/api/runs", {"script": "train.py", "max_trials": "x"}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": "yes"}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "gpus": True}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "gpus": "a", "stage": True}, 400),
    ("GET", "/guild/api/runs?limit=0", None, 400),
    ("GET", "/guild/api/runs?limit=x", None, 400),
    ("GET", "/guild/api/runs?status=bogus", None, 400),
    ("GET", "/guild/api/runs?offset=-1", None, 400),
    ("GET", "/guild/api/runs/zz", None, 400),
    ("GET", "/guild/api/runs/ffffffff", None, 404),
    ("GET", "/guild/api/runs/{S}/output", None, 409),
    ("GET", "/guild/api/runs/{C}/output?tail=x", None, 400),
    ("GET", "/guild/api/runs/{C}/output?tail=1&offset=1", None, 400),
    ("POST", "/guild/api/runs/{C}/stop", {"bogus": 1}, 400),
    ("POST", "/guild/api/runs/{C}/stop", {"wait": "yes"}, 400),
    ("POST", "/guild/api/runs/{C}/stop", {}, 409),
    ("DELETE", "/guild/api/runs/ffffffff", None, 404),
    ("POST", "/guild/api/queues", {"host": "x"}, 400),
    ("POST", "/guild/api/queues", {"bogus": 1}, 400),
    ("POST", "/guild/api/queues", {"poll_interval": 0}, 400),
    ("DELETE", "/guild/api/queues/{C}", None, 400),
    ("POST", "/guild/api/queues/{C}/pause", {}, 400),
    ("POST", "/guild/api/queues/ffffffff/drain", {}, 404),
    ("POST", "/guild/api/runs/{S}/restart", {}, 409),
    ("POST", "/guild/api/runs/{C}/restart", {"stage": "yes"}, 400),
    ("POST", "/guild/api/runs/{C}/restage", {"flags": {"nope": 1}}, 400),
    ("POST", "/guild/api/runs/{C}/restage", {"bogus": 1}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "priority": "x"}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "priority": 1001}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "priority": 1}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "after": ["ffffffff"]}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "after": [5]}, 400),
    ("POST", "/guild/api/runs", {"script": "train.py", "after": ["{C}"]}, 400),
    ("POST", "/guild/api/runs/{C}/restart", {"stage": True, "after": ["{C}"]}, 400),
    ("POST", "/guild/api/runs/{C}/restage", {"after": ["zz"]}, 400),
    ("POST", "/guild/api/runs/{C}/prioritize", {"priority": 1}, 409),
    ("POST", "/guild/api/runs/{S}/prioritize", {"priority": "x"}, 400),
    ("POST", "/guild/api/runs/{S}/prioritize", {"priority": 1001}, 400),
    ("POST", "/guild/api/runs/{S}/prioritize", {"flags": {"priority": "x"}}, 400),
    ("POST", "/guild/api/runs/{S}/prioritize", {"flags": {"lr": "1"}}, 400),
    ("POST", "/guild/api/runs/{S}/prioritize", {}, 400),
    ("POST", "/guild/api/runs/ffffffff/prioritize", {"priority": 1}, 404),
    ("GET", "/guild/api/nope", None, 404),
]


@pytest.mark.parametrize("method, path, body, status", REST_CASES,
                         ids=[f"{m} {p} {b}" for m, p, b, _ in REST_CASES])
def test_rest(store, server, method, path, body, status):
    if isinstance(body, dict):
        body = {k: store.fill(v) if isinstance(v, str) else
                [store.fill(x) if isinstance(x, str) else x for x in v] if isinstance(v, list) else v
                for k, v in body.items()}
    got, reply = server.request(store.fill(path), method, body)
    assert got == status, reply
    assert isinstance(reply, dict) and reply["error"] and "\n" not in reply["error"]
