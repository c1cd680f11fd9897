"""Flag values through every door get the one check the CLI gives their
text: a bool for a number flag (``lr=yes``), null for a flag whose default
is not null (``lr=null``), a mapping, a list where one value is wanted, a
list of the wrong length for ``nargs`` -- the same one line from the Python
API, the REST API (runs and restage) on a real Jupyter server, ``%guild``
in a real IPython shell and the CLI, and nothing written. An empty list is
one value of a list flag (``layers=[]``), end to end: staged, started by our
queue and by the real ``guild run queue``, as argparse ``nargs`` and as a
module-level list, and shown in listings."""

from __future__ import annotations

import os
import textwrap

import pytest
from IPython.core.error import UsageError

from conftest import cli, guild, run_dirs, wait_for
from guild_jupyter import api
from guild_jupyter.errors import FlagError
from guild_jupyter.frontends.magics import GuildMagics

GLOBALS_PY = "lr = 0.1\nname = 'x'\nlayers = [64, 32]\nseed = None\nprint('lr', lr, 'name', name, 'layers', layers)\n"
ARGS_PY = textwrap.dedent(
    """\
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--layers", type=int, nargs="*", default=[64, 32])
    p.add_argument("--sizes", type=int, nargs="+", default=[1])
    p.add_argument("--pair", type=float, nargs=2, default=[1.0, 2.0])
    a = p.parse_args()
    print("layers", a.layers, "sizes", a.sizes, "pair", a.pair)
    """
)

#: (assignment typed at the CLI, the same value as Python/JSON, the script) -> the words of the one error.
REFUSED = [
    ("lr=yes", {"lr": True}, "lists.py", "invalid value True for flag 'lr': expected a number"),
    ("lr=no", {"lr": False}, "nargs.py", "invalid value False for flag 'lr': expected a float"),
    ("lr=null", {"lr": None}, "lists.py", "invalid value None for flag 'lr': expected a number"),
    ("lr=null", {"lr": None}, "nargs.py", "invalid value None for flag 'lr': expected a float"),
    ("lr=[[1,2]]", {"lr": [[1, 2]]}, "lists.py", "invalid value [1, 2] for flag 'lr': expected a number"),
    ("sizes=[]", {"sizes": []}, "nargs.py", "invalid value [] for flag 'sizes': expected one value or more (nargs='+')"),
    ("pair=[1,2,3]", {"pair": [1, 2, 3]}, "nargs.py", "invalid value [1, 2, 3] for flag 'pair': expected 2 values (nargs=2)"),
]


@pytest.fixture
def scripts(project):
    (project / "lists.py").write_text(GLOBALS_PY)
    (project / "nargs.py").write_text(ARGS_PY)
    return project


@pytest.fixture
def shell(ipython, scripts, monkeypatch):
    monkeypatch.chdir(scripts)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    return ipython


@pytest.mark.parametrize("text, value, script, message", REFUSED, ids=[r[0] + " " + r[2] for r in REFUSED])
def test_cli_api_and_magic_refuse_a_value_alike(scripts, shell, guild_home, text, value, script, message):
    p = cli("run", script, text, "--stage", cwd=scripts)
    assert p.returncode == 2 and p.stderr.splitlines() == [f"guild-jupyter: error: {message}"], p.stderr
    with pytest.raises(FlagError) as e:
        api.run(script, flags=value, stage=True, cwd=str(scripts))
    assert str(e.value) == message
    with pytest.raises(FlagError) as e:
        api.run(script, text, stage=True, cwd=str(scripts))
    assert str(e.value) == message
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("guild", f"run {script} {text} --stage")
    assert str(e.value) == message
    assert run_dirs(guild_home) == set()


def test_what_no_text_can_say_is_refused(scripts, guild_home):
    for flags, message in (({"name": {"a": 1}}, "invalid value {'a': 1} for flag 'name': expected a string"),
                           ({"seed": {"a": 1}}, "for flag 'seed': expected a number, a string, yes or no"),
                           ({"name": object()}, "for flag 'name': expected a string"),
                           ({"layers": [[1], {"x": 2}]}, "for flag 'layers'")):
        with pytest.raises(FlagError, match="invalid value") as e:
            api.run("lists.py", flags=flags, stage=True, cwd=str(scripts))
        assert message in str(e.value) and "\n" not in str(e.value)
    # What the text says is kept as it says it, and the same values given as Python values alike.
    (a,) = api.run("lists.py", "lr=nan", "seed=null", "name=yes", dry_run=True, cwd=str(scripts))
    (b,) = api.run("lists.py", flags={"lr": float("nan"), "seed": None, "name": True}, dry_run=True, cwd=str(scripts))
    assert a["lr"] != a["lr"] and b["lr"] != b["lr"] and (a["seed"], a["name"]) == (b["seed"], b["name"]) == (None, "True")
    assert run_dirs(guild_home) == set()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from support.jupyter import module_server

    s = module_server(tmp_path_factory, GLOBALS_PY)
    yield s
    s.stop()


def test_rest_refuses_what_the_cli_refuses(server):
    def state():
        return sorted(run_dirs(server.home)), {r.id: r.status for r in api.runs(store=server.home)}

    root = os.path.dirname(server.home) + "/root"
    for text, value, message in (("lr=yes", {"lr": True}, "invalid value True for flag 'lr': expected a number"),
                                 ("lr=null", {"lr": None}, "invalid value None for flag 'lr': expected a number")):
        p = cli("run", "train.py", text, "--stage", "--store", server.home, cwd=root)
        assert p.returncode == 2 and p.stderr.strip() == f"guild-jupyter: error: {message}", p.stderr
        st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "flags": value, "stage": True})
        assert (st, body["error"]) == (400, message)
    assert state() == ([], {})
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "flags": {"lr": 0.5}, "stage": True})
    assert st == 201, body
    origin = body["runs"][0]["id"]
    before = state()
    for flags, message in (({"name": {"a": 1}}, "invalid value {'a': 1} for flag 'name': expected a string"),
                           ({"lr": True}, "invalid value True for flag 'lr': expected a number"),
                           ({"lr": None}, "invalid value None for flag 'lr': expected a number")):
        st, body = server.request(f"/guild/api/runs/{origin}/restage", "POST", {"flags": flags})
        assert (st, body["error"]) == (400, message)
        assert state() == before
    # The example, accepted before as the string "{'a': 1}", is refused; a list flag takes [].
    st, body = server.request(f"/guild/api/runs/{origin}/restage", "POST", {"flags": {"layers": []}})
    assert st == 200, body
    (copy,) = body["runs"]
    assert copy["flags"]["layers"] == [] and copy["flags"]["lr"] == 0.5 and copy["status"] == "staged"
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "flags": {"layers": []}, "stage": True})
    assert st == 201 and body["runs"][0]["flags"]["layers"] == []
    api.unstage(*[r.id for r in api.runs("staged", store=server.home)], store=server.home)


# -- an empty list, end to end ---------------------------------------------------------------------


def _printed_layers(run) -> str:
    line = [ln for ln in api.output(run.id).splitlines() if ln.startswith(("lr ", "layers "))]
    assert len(line) == 1, api.output(run.id)
    return line[0]


@pytest.mark.guild
@pytest.mark.timeout(240)
def test_an_empty_list_runs_under_our_queue_and_guilds(scripts, guild_home):
    # Staged by the CLI and the API, each style; nargs="+" cannot take [] (argparse would refuse it).
    cli("run", "lists.py", "layers=[]", "--stage", cwd=scripts, check=0)
    cli("run", "nargs.py", "layers=[]", "--stage", cwd=scripts, check=0)
    ours = sorted(api.runs("staged"), key=lambda r: r.op_name)
    assert [r.flags["layers"] for r in ours] == [[], ""]  # a module-level list; argparse's, as Guild stores it
    listed = cli("runs", "--staged", check=0).stdout
    assert "layers=[]" in listed and "layers=''" in listed  # Guild's way of showing each
    guild_listed = guild("runs", "--staged").stdout
    assert "layers=[]" in guild_listed and "layers=''" in guild_listed
    q = api.queue(run_once=True)
    assert q.join(60), "our run-once queue did not end"
    for r in ours:
        assert r.refresh().status == "completed", api.output(r.id)
    assert [_printed_layers(r) for r in ours] == ["lr 0.1 name x layers []", "layers [] sizes [1] pair [1.0, 2.0]"]

    # The same, staged again, started by the real guild queue.
    (g1,) = api.run("lists.py", "layers=[]", stage=True, cwd=str(scripts))
    (g2,) = api.run("nargs.py", flags={"layers": [], "pair": [3, 4]}, stage=True, cwd=str(scripts))
    guild("run", "queue", "run-once=yes", "-y", timeout=120)
    assert g1.refresh().status == "completed" and g2.refresh().status == "completed", guild("runs").stdout
    assert _printed_layers(g1) == "lr 0.1 name x layers []"
    assert _printed_layers(g2) == "layers [] sizes [1] pair [3.0, 4.0]"
    # Guild rewrites the op attr when it starts a run: a restart by Guild still passes [].
    started = g2.get("started")
    p = guild("run", "--restart", g2.id, "-y", timeout=120)
    assert "layers [] sizes [1] pair [3.0, 4.0]" in p.stdout
    assert g2.refresh().status == "completed" and g2.get("started") > started
    assert _printed_layers(g2) == "layers [] sizes [1] pair [3.0, 4.0]"
    # A restage keeps an empty list (and how Guild is to pass it); a non-empty one is split as before.
    (copy,) = api.restage(ours[1].id, "pair=[5,6]")
    assert (copy.flags["layers"], copy.flags["pair"]) == ("", "5.0 6.0")
    assert "--layers" in copy.get("op")["op-cmd"]["cmd-args"]
    (copy,) = api.restage(ours[1].id, "layers=[5,6]")
    assert copy.flags["layers"] == "5 6" and "--layers" not in copy.get("op")["op-cmd"]["cmd-args"]
