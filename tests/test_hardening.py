"""Hardening: damaged and read-only stores, huge outputs, flag types as Guild
checks them, options mixed with assignments, API misuse and REST paths.

Real stores on disk, the real CLI in subprocesses, a real read-only bind
mount, a real Jupyter server on 127.0.0.1.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import cli, guild, shown_queue, wait_for
from guild_jupyter import api
from guild_jupyter.errors import BadInput, FlagError, GuildJupyterError, StoreNotWritable
from guild_jupyter.execution import flags as flaglib
from guild_jupyter.store import output as outputlib
from guild_jupyter.store.index import RunIndex
from support import listing_cache
from support.store_state import diff, snapshot

ARGS_PY = textwrap.dedent(
    """\
    import argparse
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--name", default="base")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    print(a.lr, a.epochs, a.name, a.verbose)
    """
)


def one_error_line(p, *words):
    """The process failed as a user error: exit 2 and one stderr line."""
    assert p.returncode == 2, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def finished_runs(project, home, n=2):
    """``n`` staged runs taken off the queue (terminated): finished runs, no processes."""
    runs = api.run("train.py", f"lr=[{','.join(str(i / 10) for i in range(1, n + 1))}]", stage=True,
                   cwd=str(project), store=str(home))
    api.unstage(*[r.id for r in runs], store=str(home))
    past = time.time_ns() - 10_000_000_000  # settled: a listing trusts (and keeps) only stamps this old
    for r in runs:
        for root, _dirs, files in os.walk(os.path.join(r.dir, ".guild"), topdown=False):
            for name in files:
                os.utime(os.path.join(root, name), ns=(past, past))
            os.utime(root, ns=(past, past))
    return runs


# -- a damaged store ----------------------------------------------------------------------


def _values(fn):
    """A damage to one record's values (JSON): ``fn`` of the decoded values."""
    return lambda d, raw: (d, json.dumps(fn(json.loads(raw))).encode())


def _record(**changes):
    return lambda d, raw: (dict(d, **changes), raw)


BAD_ENTRIES = {
    "values an int": _values(lambda v: 5),
    "values null": _values(lambda v: None),
    "values a string": _values(lambda v: "x"),
    "empty values": _values(lambda v: {}),
    "values a list": _values(lambda v: [1, 2]),
    "values not JSON": lambda d, raw: (d, b"{oops"),
    "opref an int": _values(lambda v: dict(v, _opref=5)),
    "opref too short": _values(lambda v: dict(v, _opref=["script"])),
    "status unknown": _values(lambda v: dict(v, status="exploded")),
    "status not the record's": _values(lambda v: dict(v, status="running")),
    "started a string": _values(lambda v: dict(v, started="soon")),
    "started not the record's": _values(lambda v: dict(v, started=v["started"] + 1)),
    "planted attr": _values(lambda v: dict(v, planted=["rm", "-rf"])),  # (no attr a listing keeps)
    "flags not listed": _values(lambda v: {k: x for k, x in v.items() if k != "flags"}),
    "record status out of range": _record(status=200),
    "record of another version": _record(version=99),
    "record values past the end": _record(offset_override=1 << 40),
    "record values too long": _record(length_override=1 << 30),
    "record stamp not the run's": _record(g=5),
}


@pytest.mark.parametrize("shape", list(BAD_ENTRIES))
def test_a_cache_entry_of_the_wrong_shape_is_dropped_and_rebuilt(project, guild_home, shape):
    a, b = finished_runs(project, guild_home)
    expected = {r.id: (r.refresh().status, r.op_name, r.label) for r in (a, b)}
    lrs = {r.id: r.flags["lr"] for r in (a, b)}
    api.runs()
    head, entries = listing_cache.read(guild_home)
    assert set(entries) == {a.id, b.id}
    entries[a.id] = list(BAD_ENTRIES[shape](*entries[a.id]))
    listing_cache.write(guild_home, head, entries)
    RunIndex.forget()  # what a new process does: start from the file
    listing = api.runs()
    assert {r.id: (r.status, r.op_name, r.label) for r in listing} == expected
    assert {r.id: r.flags["lr"] for r in listing} == lrs
    assert not listing.warnings and all(r.get("planted") != ["rm", "-rf"] for r in listing)
    RunIndex.forget()
    newest = api.runs(limit=2)  # the -n path: decodes only what it shows
    assert {r.id: (r.status, r.op_name, r.label) for r in newest} == expected
    _head, rebuilt = listing_cache.read(guild_home)
    values = json.loads(rebuilt[a.id][1])
    assert values["status"] == "terminated" and len(values["_opref"]) == 5 and "planted" not in values
    p = cli("runs", check=0)
    assert a.id[:8] in p.stdout and b.id[:8] in p.stdout and not p.stderr


@pytest.mark.parametrize("content", [b"[]", b'{"v":2,"runs":[]}', b"[" * 100000, b"\xff\xfe garbage", b"",
                                     b'{"format": 4, "count": 100000000}\n',
                                     b'{"format": 4, "count": -1, "record": "<16s7qQ3qQI4B"}\n'])
def test_a_damaged_cache_file_is_ignored(project, guild_home, content):
    runs = finished_runs(project, guild_home)
    api.runs()
    with open(listing_cache.path_of(guild_home), "wb") as f:
        f.write(content)
    RunIndex.forget()
    assert {r.id for r in api.runs()} == {r.id for r in runs}


def _damage(run_dir, how):
    g = os.path.join(run_dir, ".guild")
    if how == "symlink loop":
        os.rename(g, g + ".orig")
        os.symlink(".guild", g)
    elif how == "dangling symlink":
        os.rename(g, g + ".orig")
        os.symlink("nowhere", g)
    elif how == "a file":
        os.rename(g, g + ".orig")
        with open(g, "w") as f:
            f.write("not a directory\n")
    elif how == "started a bad date":  # YAML's date parser raises ValueError
        path = os.path.join(g, "attrs", "started")
        with open(path + ".tmp", "w") as f:
            f.write("2001-02-30\n")
        os.replace(path + ".tmp", path)  # as every attr is written (moves the stamp)


@pytest.mark.parametrize("how", ["symlink loop", "dangling symlink", "a file", "started a bad date"])
def test_a_run_that_cannot_be_read_is_listed_with_a_warning(project, guild_home, how):
    bad, good = finished_runs(project, guild_home)
    api.runs()  # cached first: the damage must show through the cache
    _damage(bad.dir, how)
    listing = api.runs()
    assert {r.id for r in listing} == {bad.id, good.id}
    (damaged,) = [r for r in listing if r.id == bad.id]
    assert damaged.warnings and all(bad.id[:8] in w for w in damaged.warnings)
    if how != "started a bad date":
        assert damaged.status == "error"
    assert [r for r in listing if r.id == good.id][0].status == "terminated"
    p = cli("runs", check=0)
    assert bad.id[:8] in p.stdout and good.id[:8] in p.stdout and "warning:" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr


# -- a read-only store ---------------------------------------------------------------------


@pytest.fixture
def read_only_store(project, guild_home, tmp_path):
    """A store with a staged and a finished run, bind-mounted read-only."""
    (staged,) = api.run("train.py", "lr=0.5", stage=True, cwd=str(project))
    (done,) = finished_runs(project, guild_home, n=1)
    api.runs()
    mnt = tmp_path / "ro-store"
    mnt.mkdir()
    p = subprocess.run(["mount", "--bind", str(guild_home), str(mnt)], capture_output=True, text=True)
    if p.returncode:
        if "permission denied" in p.stderr.lower() or "not permitted" in p.stderr.lower():
            pytest.skip(f"cannot bind-mount here (EPERM): {p.stderr.strip()}")
        raise AssertionError(f"mount --bind failed: {p.stderr}")
    try:
        p = subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        with pytest.raises(OSError) as e:
            open(mnt / "probe", "w")
        assert e.value.errno == errno.EROFS
        yield str(mnt), staged, done
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("verb", ["unstage", "stop", "delete"])
def test_a_read_only_store_is_a_one_line_error(read_only_store, verb):
    mnt, staged, done = read_only_store
    before = snapshot(mnt)
    target = done if verb == "delete" else staged
    p = cli(verb, target.id, "--store", mnt)
    line = one_error_line(p, "store not writable")
    assert "Traceback" not in line and "Errno" not in line
    assert diff(before, snapshot(mnt)) == []
    with pytest.raises(StoreNotWritable) as e:
        getattr(api, verb)(target.id, store=mnt)
    assert e.value.http_status == 507 and "\n" not in str(e.value)
    assert diff(before, snapshot(mnt)) == []


# -- big outputs -------------------------------------------------------------------------------

LAST = b"step 99: 50%\r75%\r100%\nthe very last line\n"


def _big_output(run, mib):
    block = (b"y" * 99 + b"\n") * (1024 * 1024 // 100)
    with open(run.path("output"), "wb") as f:
        for _ in range(mib):
            f.write(block)
        f.write(LAST)


def test_tail_of_a_big_output_reads_from_the_end(project, guild_home):
    (run,) = finished_runs(project, guild_home, n=1)
    _big_output(run, 200)
    code = (
        "import resource, sys\n"
        "from guild_jupyter import api\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "out = api.output(sys.argv[1], tail=2, store=sys.argv[2])\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base\n"
        "print(repr(out)); print(grown)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, run.id, str(guild_home)], capture_output=True, text=True,
                       check=True)
    text, grown_kib = p.stdout.splitlines()
    assert text == repr(LAST.decode())
    assert int(grown_kib) < 16 * 1024, f"api.output(tail=2) grew the process by {grown_kib} KiB"
    # The CLI as a whole stays small too (peak RSS of the child process).
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "sys.stdout.buffer.write(p.stdout)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    p = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "guild_jupyter", "output", run.id,
                        "--tail", "2"], capture_output=True, check=True)
    out, _, rss = p.stdout.rpartition(b"\n")[0].rpartition(b"\n")
    assert out + b"\n" == LAST
    assert int(rss) < 80 * 1024, f"guild-jupyter output --tail 2 peaked at {int(rss)} KiB"


@pytest.mark.parametrize("data", [b"", b"a", b"a\n", b"a\nb", b"\n\n\n", b"x\r1%\r2%\ny\n", "é\nü\nz".encode()])
def test_tail_counts_newline_terminated_lines(tmp_path, data):
    path = str(tmp_path / "out")
    with open(path, "wb") as f:
        f.write(data)
    pieces = data.split(b"\n")
    lines = [x + b"\n" for x in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    for n in range(5):
        for block in (1, 2, 7, 65536):
            assert outputlib.tail(path, n, block) == b"".join(lines[-n:] if n else []), (n, block)


def test_read_from_keeps_a_cut_character_for_the_next_read(tmp_path):
    path = str(tmp_path / "out")
    with open(path, "wb") as f:
        f.write("aé€".encode())
    data, nxt = outputlib.read_from(path, 0, 2)
    assert (data, nxt) == (b"a", 1)
    data, nxt = outputlib.read_from(path, nxt, 4)
    assert data.decode() == "é" and nxt == 3
    assert outputlib.read_from(path, nxt)[0].decode() == "€"
    assert outputlib.read_from(str(tmp_path / "missing"), 5) == (b"", 5)


# -- flag types, as Guild 0.9 checks them ------------------------------------------------------


@pytest.mark.parametrize("assignment, words", [
    ("lr=abc", ["'lr'", "'abc'", "a number"]),
    ("lr=]", ["'lr'", "']'", "a number"]),
    ("epochs=ten", ["'epochs'", "'ten'", "a number"]),
    ("lr=[0.1,0.2,abc]", ["'lr'", "'abc'", "a number"]),
])
def test_a_value_of_the_wrong_type_is_refused(project, guild_home, assignment, words):
    p = cli("run", "train.py", assignment, "--stage", cwd=project)
    one_error_line(p, *words)
    assert not os.path.exists(guild_home / "runs") or not os.listdir(guild_home / "runs")
    with pytest.raises(FlagError) as e:
        api.run("train.py", assignment, stage=True, cwd=str(project))
    assert all(w in str(e.value) for w in words)
    with pytest.raises(FlagError):
        api.run("train.py", flags={assignment.split("=")[0]: "abc"}, stage=True, cwd=str(project))
    assert not os.path.exists(guild_home / "runs") or not os.listdir(guild_home / "runs")


def test_values_guild_accepts_are_coerced_as_guild_does(project):
    (project / "args.py").write_text(ARGS_PY)
    trials = api.run("train.py", "lr=1", "epochs=1.5", "name=7", "verbose=maybe", dry_run=True, cwd=str(project))
    assert trials[0]["lr"] == 1 and trials[0]["epochs"] == 1.5 and trials[0]["name"] == "7"
    assert trials[0]["verbose"] is True
    assert api.run("train.py", "lr=0x10", "epochs=inf", dry_run=True, cwd=str(project))[0]["lr"] == 16
    trials = api.run("args.py", "lr=1", "epochs=0x10", dry_run=True, cwd=str(project))
    assert trials[0]["lr"] == 1.0 and isinstance(trials[0]["lr"], float) and trials[0]["epochs"] == 16
    for bad in ("epochs=1.5", "epochs=1e3", "lr=abc", "verbose=2", "verbose=abc"):
        with pytest.raises(FlagError, match=bad.split("=")[0]):
            api.run("args.py", bad, dry_run=True, cwd=str(project))


def test_flag_types_follow_guild():
    f = flaglib.inspect_script("a = 1\nb = 0.5\nc = 'x'\nd = True\ne = None\nf = [1]\n")
    assert flaglib.flag_types(f) == {"a": "number", "b": "number", "c": "string", "d": "boolean", "e": None,
                                     "f": None}
    f = flaglib.inspect_script(ARGS_PY)
    assert flaglib.flag_types(f) == {"lr": "float", "epochs": "int", "name": None, "verbose": "switch"}


@pytest.mark.guild
def test_flag_type_decisions_match_the_guild_cli(project, tmp_path):
    """The real guild CLI is the oracle: same values refused, same accepted."""
    (project / "args.py").write_text(ARGS_PY)
    (tmp_path / "oracle-home").mkdir()
    env = {"GUILD_HOME": str(tmp_path / "oracle-home")}
    for script, assignment in (("train.py", "lr=abc"), ("train.py", "epochs=1.5"), ("args.py", "epochs=1.5"),
                               ("args.py", "lr=0x10")):
        g = guild("run", script, assignment, "--print-cmd", cwd=project, env=env, check=None)
        guild_refuses = "invalid value" in g.stdout + g.stderr
        ours = cli("run", script, assignment, "--dry-run", cwd=project)
        assert (ours.returncode == 2) == guild_refuses, (script, assignment, g.stdout, g.stderr, ours.stderr)


# -- options and assignments in any order ------------------------------------------------------


def test_options_mix_with_assignments(project, guild_home):
    p = cli("run", "train.py", "lr=0.2", "--stage", "epochs=3", cwd=project, check=0)
    (run,) = api.runs("staged")
    assert run.id[:8] in p.stdout and run.flags["lr"] == 0.2 and run.flags["epochs"] == 3
    p = cli("run", "--label", "mixed", "train.py", "--dry-run", "lr=[1,2]", "--max-trials", "1", cwd=project,
            check=0)
    assert p.stdout.count("trial ") == 1
    assert cli("runs", "--staged", "-n", "1", check=0).stdout.count(run.id[:8]) == 1
    store = str(guild_home)
    try:
        p = cli("queue", "run-once=yes", "--background", "poll-interval=1", "--store", store, check=0)
        qrun = api.resolve_store().resolve(shown_queue(p.stdout))
        assert qrun.is_queue and qrun.flags["run-once"] is True and qrun.flags["poll-interval"] == 1
        wait_for(lambda: run.refresh().status == "completed", message="the queue runs the staged run")
        wait_for(lambda: qrun.refresh().status != "running", message="a run-once queue ends")
    finally:
        cli("stop", "--queues", "--store", store, check=0)


# -- API misuse --------------------------------------------------------------------------------

MISUSE = {
    "run(None)": lambda s: api.run(None, store=s),
    "run(flags='lr=1')": lambda s: api.run("train.py", flags="lr=1", store=s),
    "run(5 as an assignment)": lambda s: api.run("train.py", 5, store=s),
    "run(stage='no')": lambda s: api.run("train.py", stage="no", store=s),
    "run(gpus=1.5)": lambda s: api.run("train.py", gpus=1.5, store=s),
    "run(max_trials='3')": lambda s: api.run("train.py", max_trials="3", store=s),
    "run(stream=5)": lambda s: api.run("train.py", stream=5, store=s),
    "run(store=5)": lambda s: api.run("train.py", store=5),
    "runs(limit='x')": lambda s: api.runs(limit="x", store=s),
    "runs(status=5)": lambda s: api.runs(5, store=s),
    "stop(3.5)": lambda s: api.stop(3.5, store=s),
    "stop([id])": lambda s: api.stop(["abc"], store=s),
    "stop(all='yes')": lambda s: api.stop(all="yes", store=s),
    "stop(timeout=-1)": lambda s: api.stop("abc", timeout=-1, store=s),
    "unstage()": lambda s: api.unstage(store=s),
    "delete(None)": lambda s: api.delete(None, store=s),
    "output(1, tail='3')": lambda s: api.output("1", tail="3", store=s),
    "queue(background='yes')": lambda s: api.queue(background="yes", store=s),
    "queue(poll_interval=True)": lambda s: api.queue(poll_interval=True, store=s),
    "queues(include_finished=1)": lambda s: api.queues(include_finished=1, store=s),
    "compare(3.5)": lambda s: api.compare(3.5, store=s),
}


@pytest.mark.parametrize("call", list(MISUSE))
def test_api_misuse_raises_the_packages_error(project, guild_home, monkeypatch, call):
    monkeypatch.chdir(project)
    finished_runs(project, guild_home, n=1)
    api.runs()
    before = snapshot(guild_home)
    with pytest.raises(GuildJupyterError) as e:
        MISUSE[call](str(guild_home))
    assert isinstance(e.value, BadInput) and "\n" not in str(e.value)
    assert diff(before, snapshot(guild_home)) == []


# -- REST: paths confined to the server's root ---------------------------------------------------


@pytest.fixture(scope="module")
def confined_server(tmp_path_factory):
    from support.jupyter import start_jupyter

    tmp = tmp_path_factory.mktemp("confined")
    home = tmp / "guild-home"
    home.mkdir()
    root = tmp / "root"
    (root / "sub").mkdir(parents=True)
    (root / "train.py").write_text("lr = 0.1\nprint('loss:', lr)\n")
    (root / "sub" / "inner.py").write_text("x = 1\n")
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "outside.py").write_text("x = 1\n")
    allowed = tmp / "allowed"
    allowed.mkdir()
    (allowed / "ok.py").write_text("x = 1\n")
    os.symlink(outside / "outside.py", root / "link.py")
    os.symlink(outside, root / "linkdir")
    config_dir = tmp / "jupyter" / "jupyter-config"  # start_jupyter's JUPYTER_CONFIG_DIR
    config_dir.mkdir(parents=True)
    (config_dir / "jupyter_server_config.py").write_text(f"c.GuildJupyter.allowed_roots = [{str(allowed)!r}]\n")
    s = start_jupyter(tmp / "jupyter", env={"GUILD_HOME": str(home)}, root_dir=root,
                      extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    s.home, s.outside, s.allowed = str(home), str(outside), str(allowed)
    yield s
    s.stop()


def test_rest_refuses_scripts_and_cwds_outside_the_root(confined_server):
    s = confined_server
    before = snapshot(s.home)
    for body in ({"script": "../outside/outside.py"}, {"script": os.path.join(s.outside, "outside.py")},
                 {"script": "link.py"}, {"script": "linkdir/outside.py"},
                 {"script": "outside.py", "cwd": "linkdir"}, {"script": "train.py", "cwd": ".."},
                 {"script": "outside.py", "cwd": s.outside}, {"script": "~/x.py"}):
        status, reply = s.request("/guild/api/runs", "POST", dict(body, stage=True))
        assert status == 403, (body, status, reply)
        assert "outside the server's root" in reply["error"] and "\n" not in reply["error"]
    assert diff(before, snapshot(s.home)) == []
    status, reply = s.request("/guild/api/runs", "POST", {"script": "train.py\x00x", "stage": True})
    assert status == 400


def test_rest_allows_the_root_and_allowed_roots(confined_server):
    s = confined_server
    for body in ({"script": "train.py"}, {"script": "inner.py", "cwd": "sub"},
                 {"script": "sub/../train.py"}, {"script": os.path.join(s.allowed, "ok.py")},
                 {"script": "ok.py", "cwd": s.allowed}):
        status, reply = s.request("/guild/api/runs", "POST", dict(body, stage=True))
        assert status == 201, (body, reply)
        assert reply["runs"][0]["status"] == "staged"


def test_rest_output_tail_and_offset(confined_server):
    s = confined_server
    status, reply = s.request("/guild/api/runs", "POST", {"script": "train.py", "stage": True})
    run_id = reply["runs"][0]["id"]
    api.unstage(run_id, store=s.home)
    run = api.resolve_store(s.home).run(run_id)
    with open(run.path("output"), "wb") as f:
        f.write(b"one\ntwo\r2%\rdone\nthree")
    status, reply = s.request(f"/guild/api/runs/{run_id}/output?tail=2")
    assert status == 200 and reply["output"] == "two\r2%\rdone\nthree"
    status, reply = s.request(f"/guild/api/runs/{run_id}/output?offset=4")
    assert status == 200 and reply["output"] == "two\r2%\rdone\nthree" and reply["offset"] == 21
    status, reply = s.request(f"/guild/api/runs/{run_id}/output?offset=21")
    assert reply == {"id": run_id, "output": "", "offset": 21}
    status, reply = s.request(f"/guild/api/runs/{run_id}/output?offset=1&tail=1")
    assert status == 400


def test_rest_answers_507_for_a_read_only_store(confined_server):
    s = confined_server
    status, reply = s.request("/guild/api/runs", "POST", {"script": "train.py", "stage": True})
    run_id = reply["runs"][0]["id"]
    p = subprocess.run(["mount", "--bind", s.home, s.home], capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"cannot bind-mount here: {p.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", s.home], check=True)
        before = snapshot(s.home)
        status, reply = s.request(f"/guild/api/runs/{run_id}", "DELETE")
        assert status == 507 and reply["error"].startswith("store not writable"), reply
        assert diff(before, snapshot(s.home)) == []
    finally:
        subprocess.run(["umount", s.home], check=True)
