"""Tab completion of %guild and %%guild through a real IPython shell's
completer, as a notebook's <TAB> asks for it, over a real store."""

from __future__ import annotations

import os

import pytest
from IPython.core.completer import provisionalcompleter

from guild_jupyter import api
from guild_jupyter.frontends import commands as C


@pytest.fixture
def shell(ipython, project, monkeypatch):
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    return ipython


def complete(shell, text, cursor=None):
    """What <TAB> offers with the cursor at ``cursor`` (default: the end).
    Where ours has nothing to offer, IPython's other matchers (Python names)
    still answer: that is no business of ours, so their answer reads ``[]``."""
    cursor = len(text) if cursor is None else cursor
    with provisionalcompleter():
        found = list(shell.Completer.completions(text, cursor))
    if not any(c._origin == "guild_jupyter.completion" for c in found):
        return []
    assert {c._origin for c in found} == {"guild_jupyter.completion"}  # ours, and only ours
    return [c.text for c in found]


def test_the_matcher_is_installed_once(shell):
    shell.extension_manager.reload_extension("guild_jupyter")
    ours = [m for m in shell.Completer.custom_matchers if getattr(m, "matcher_identifier", "").startswith("guild")]
    assert len(ours) == 1


def test_subcommands(shell):
    assert complete(shell, "%guild ") == [v.name for v in C.verbs_for(C.LINE)]
    assert complete(shell, "%guild ru") == ["run", "runs"]
    assert complete(shell, "%guild qu") == ["queue", "queues"]
    assert complete(shell, "listing = %guild ru") == ["run", "runs"]
    assert complete(shell, "%%guild ") == ["run"]
    assert complete(shell, "%guild --st") == ["--store"]


def test_options_after_a_dash(shell):
    assert complete(shell, "%guild run train.py --max") == ["--max-trials"]
    assert complete(shell, "%guild runs --st") == ["--staged", "--store"]
    assert "-a" in complete(shell, "%guild runs -") and "--json" not in complete(shell, "%guild runs -")
    assert complete(shell, "%guild stop --all --") == ["--no-wait", "--queues", "--store"]  # --all is given
    assert "--name" in complete(shell, "%%guild run --") and "--name" not in complete(shell, "%guild run x.py --")


def test_scripts_where_a_script_goes(shell, project):
    (project / "models").mkdir()
    (project / "models" / "mlp.py").write_text("width = 8\n")
    (project / "notes.txt").write_text("")
    assert complete(shell, "%guild run ") == ["models/", "train.py"]
    assert complete(shell, "%guild run mo") == ["models/"]
    assert complete(shell, "%guild run models/") == ["models/mlp.py"]


def test_a_scripts_flags_after_the_script(shell, project):
    assert complete(shell, "%guild run train.py ") == ["lr=", "epochs=", "name=", "verbose=", "sleep="]
    assert complete(shell, "%guild run train.py lr=0.1 --stage e") == ["epochs="]
    assert complete(shell, "%guild run --label x train.py lr=0.1 ") == ["epochs=", "name=", "verbose=", "sleep="]
    assert complete(shell, "%guild run train.py lr=") == []  # a value: nothing of ours
    assert complete(shell, "%guild run missing.py ") == []


def test_a_cells_flags_on_its_first_line(shell):
    text = "%%guild run --stage \nwidth = 8\ndepth = 2\nprint(width * depth)\n"
    cursor = len("%%guild run --stage ")
    assert complete(shell, text, cursor) == ["width=", "depth="]
    text = "%%guild run width=4 d\nwidth = 8\ndepth = 2\n"
    assert complete(shell, text, len("%%guild run width=4 d")) == ["depth="]


def test_queue_flags(shell):
    assert complete(shell, "%guild queue ") == [f"{n}=" for n in C.QUEUE_FLAGS] + list(C.QUEUE_ACTIONS)
    assert complete(shell, "%guild queue run-once=yes --background p") == ["poll-interval=", "per-gpu="]
    # The words a flag takes come from the queue-flag table too.
    assert complete(shell, "%guild queue run-once=") == ["run-once=yes", "run-once=no"]
    assert complete(shell, "%guild queue gpus=a") == ["gpus=auto"]
    assert complete(shell, "%guild queue poll-interval=") == []  # a number: nothing to offer


def test_run_ids_of_runs_the_verb_accepts(shell, project, guild_home):
    (staged,) = api.run("train.py", stage=True, cwd=str(project))
    (done,) = api.run("train.py", "epochs=1", foreground=True, stream=open(os.devnull, "w"), cwd=str(project))
    short = {staged.id: staged.id[:8], done.id: done.id[:8]}
    assert complete(shell, "%guild stop ") == [short[staged.id]]  # a completed run cannot be stopped
    assert complete(shell, "%guild unstage ") == [short[staged.id]]
    assert complete(shell, "%guild output ") == [short[done.id]]  # a staged run has no output
    assert set(complete(shell, "%guild delete ")) == set(short.values())
    assert set(complete(shell, "%guild compare ")) == set(short.values())
    assert complete(shell, f"%guild delete {done.id[:3]}") == [short[done.id]]
    assert complete(shell, f"%guild delete {done.id[:9]}") == [done.id]  # past 8 characters: the full id
    assert complete(shell, f"%guild delete {short[staged.id]} ") == [short[done.id]]  # not twice
    assert complete(shell, "%guild output 1 ") == []  # one RUN only


def test_run_ids_of_the_store_given(shell, project, tmp_path):
    other = str(tmp_path / "other-home")
    (run,) = api.run("train.py", stage=True, cwd=str(project), store=other)
    assert complete(shell, "%guild unstage ") == []
    assert complete(shell, f"%guild --store {other} unstage ") == [run.id[:8]]
    assert complete(shell, f"%guild unstage --store {other} ") == [run.id[:8]]
    assert complete(shell, f"%guild --store={other} unstage ") == [run.id[:8]]


def test_other_code_completes_as_before(shell):
    shell.user_ns["guild_value"] = 1
    with provisionalcompleter():
        assert "guild_value" in [c.text for c in shell.Completer.completions("guild_v", 7)]
        assert "%guild" in [c.text for c in shell.Completer.completions("%gui", 4)]
