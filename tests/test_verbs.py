"""Issue 21.6/21.7 and 26.5: the verbs' conflicting options, one text per
result, and the queue flags' bounds, through every door.

- Every conflicting pair of every verb (``api.CONFLICTS``) is refused by the
  command line (a real subprocess: exit 2, one stderr line), the magic (a
  real IPython shell: one ``UsageError`` line), the API (``BadInput``) and
  REST (a real Jupyter server: 400 and one line), with the api's one
  sentence, and nothing in the store changes.
- Every bound of every numeric queue flag (``api.queue_flag_table()``) is
  refused just past it the same four ways, and accepted at it.
- An idle queue allowed a huge ``max-running`` holds no memory per slot and
  no core (psutil, measured in a process of its own).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from IPython.core.error import UsageError

from conftest import cli, shown_ids, shown_queue, wait_for
from guild_jupyter import api
from guild_jupyter.errors import BadInput
from support.jupyter import module_server

PAIRS = [(verb, a, b) for verb, groups in api.CONFLICTS.items() for g in groups
         for i, a in enumerate(g) for b in g[i + 1:]]


@pytest.fixture(scope="module")
def shell(ipython):
    ipython.extension_manager.load_extension("guild_jupyter")
    return ipython


def snapshot(home) -> tuple:
    """Everything a refused command could have changed: each run's status,
    the files of its ``.guild`` directory (markers, attrs, claims, queue
    control), and the trash."""
    runs_dir = os.path.join(home, "runs")
    runs = {}
    for rid in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
        meta = os.path.join(runs_dir, rid, ".guild")
        files = sorted(n for n in os.listdir(meta) if n != "output") if os.path.isdir(meta) else []
        runs[rid] = files
    trash = os.path.join(home, "trash", "runs")
    statuses = {r.id: r.status for r in api.runs(store=home)}
    return runs, statuses, sorted(os.listdir(trash)) if os.path.isdir(trash) else []


# -- conflicts: the table ---------------------------------------------------------------------------------


def cli_words(verb, a, b, w) -> list[str]:
    """A command line giving options ``a`` and ``b`` of ``verb`` (``w``: the world's ids)."""
    return {
        ("run", "foreground", "stage"): ["run", "train.py", "--foreground", "--stage"],
        ("run", "foreground", "dry_run"): ["run", "train.py", "--foreground", "--dry-run"],
        ("run", "foreground", "after"): ["run", "train.py", "--foreground", "--after", w["running"][:8]],
        ("run", "foreground", "after_any"): ["run", "train.py", "--foreground", "--after-any", w["running"][:8]],
        ("run", "foreground", "priority"): ["run", "train.py", "--foreground", "--priority", "3"],
        ("stop", "runs", "all"): ["stop", w["running"][:8], "--all"],
        ("stop", "runs", "queues"): ["stop", w["running"][:8], "--queues"],
        ("stop", "all", "queues"): ["stop", "--all", "--queues"],
        ("output", "tail", "follow"): ["output", w["running"][:8], "--tail", "2", "--follow"],
        ("queue", "action", "background"): ["queue", "pause", w["queue"][:8], "--background"],
        ("queue", "action", "flags"): ["queue", "drain", w["queue"][:8], "run-once=yes"],
        ("compare", "sort", "scalar"): ["compare", "--sort", "loss", "--scalar", "loss"],
    }[(verb, a, b)]


def api_call(verb, a, b, w, project):
    """The same through the Python API."""
    train = str(project / "train.py")
    return {
        ("run", "foreground", "stage"): lambda: api.run(train, foreground=True, stage=True),
        ("run", "foreground", "dry_run"): lambda: api.run(train, foreground=True, dry_run=True),
        ("run", "foreground", "after"): lambda: api.run(train, foreground=True, after=w["running"]),
        ("run", "foreground", "after_any"): lambda: api.run(train, foreground=True, after_any=[w["running"]]),
        ("run", "foreground", "priority"): lambda: api.run(train, foreground=True, priority=3),
        ("stop", "runs", "all"): lambda: api.stop(w["running"], all=True),
        ("stop", "runs", "queues"): lambda: api.stop(w["running"], queues=True),
        ("stop", "all", "queues"): lambda: api.stop(all=True, queues=True),
        ("output", "tail", "follow"): lambda: api.output(w["running"], tail=2, follow=True),
        # pause|resume|drain are api.queue_control, which takes neither: the glue asks the api's check.
        ("queue", "action", "background"): lambda: api.refuse_conflicts("queue", action="pause", background=True),
        ("queue", "action", "flags"): lambda: api.refuse_conflicts("queue", action="drain", flags=["run-once=yes"]),
        ("compare", "sort", "scalar"): lambda: api.compare(sort="loss", scalar="loss"),
    }[(verb, a, b)]


def rest_request(verb, a, b, w) -> tuple:
    """``(method, path, body, message)``: the REST request giving both
    options and the line it is refused with (REST names some options its
    own way: ``since`` is its follow; pause takes no fields; compare has
    no endpoint)."""
    same = api_message(verb, a, b)
    return {
        ("run", "foreground", "stage"): ("POST", "runs", {"script": "train.py", "stage": True, "foreground": True},
                                         "unknown field(s): foreground"),
        ("run", "foreground", "dry_run"): ("POST", "runs", {"script": "train.py", "dry_run": True,
                                                            "foreground": True}, "unknown field(s): dry_run, foreground"),
        # REST stages or starts in the background: it has no foreground to refuse them with.
        ("run", "foreground", "after"): ("POST", "runs", {"script": "train.py", "after": [w["running"]],
                                                          "foreground": True}, "unknown field(s): foreground"),
        ("run", "foreground", "after_any"): ("POST", "runs", {"script": "train.py", "after_any": [w["running"]],
                                                              "foreground": True}, "unknown field(s): foreground"),
        ("run", "foreground", "priority"): ("POST", "runs", {"script": "train.py", "priority": 3,
                                                             "foreground": True}, "unknown field(s): foreground"),
        ("stop", "runs", "all"): ("POST", "stop", {"runs": [w["running"]], "all": True}, same),
        ("stop", "runs", "queues"): ("POST", "stop", {"runs": [w["running"]], "queues": True}, same),
        ("stop", "all", "queues"): ("POST", "stop", {"all": True, "queues": True}, same),
        ("output", "tail", "follow"): ("GET", f"runs/{w['running']}/output?tail=2&since=0", None,
                                       "give one of tail, since and offset"),
        ("queue", "action", "background"): ("POST", f"queues/{w['queue']}/pause", {"background": True},
                                            "pause takes no fields"),
        ("queue", "action", "flags"): ("POST", f"queues/{w['queue']}/drain", {"run_once": True},
                                       "drain takes no fields"),
        ("compare", "sort", "scalar"): ("GET", "compare?sort=loss&scalar=loss", None, "no such endpoint"),
    }[(verb, a, b)]


def api_message(verb, a, b) -> str:
    with pytest.raises(BadInput) as e:
        api.refuse_conflicts(verb, **{a: ["x"] if a in ("runs", "flags") else True,
                                      b: ["x"] if b in ("runs", "flags") else True})
    return str(e.value)


def test_every_conflict_has_a_case_in_every_door():
    """Adding a conflict to the api's table without a case here fails."""
    w = {"running": "0" * 32, "queue": "1" * 32}
    assert PAIRS
    for verb, a, b in PAIRS:
        assert cli_words(verb, a, b, w) and rest_request(verb, a, b, w)
        assert callable(api_call(verb, a, b, w, pathlib.Path(".")))


def test_the_verb_table_shows_the_apis_conflicts():
    from guild_jupyter.frontends import commands as C

    by_name = {v.name: v for v in C.VERBS}
    assert by_name["stop"].conflicts == (("RUN", "--all", "--queues"),)
    assert by_name["run"].conflicts == (("--foreground", "--stage"), ("--foreground", "--dry-run"),
                                        ("--foreground", "--after"), ("--foreground", "--after-any"),
                                        ("--foreground", "--priority"))
    for verb, groups in api.CONFLICTS.items():
        options = by_name[verb].options(C.CLI)
        for group in by_name[verb].conflicts:
            for name in group:  # each is an option of the verb, or its RUN / FLAG=VALUE / action words
                assert name in options or name in ("RUN", "FLAG=VALUE", "pause|resume|drain"), (verb, name)


@pytest.fixture
def world(project, guild_home):
    """A store with something every verb could change: a running run, a
    staged run no queue serves, a running queue (a thread of this process)."""
    (running,) = api.run(str(project / "train.py"), "sleep=0.5", "epochs=200")
    (staged,) = api.run(str(project / "train.py"), stage=True, gpus="7")
    q = api.queue(poll_interval=60)
    wait_for(lambda: q.run.refresh().status == "running", message="the queue holds its run")
    try:
        yield {"running": running.id, "staged": staged.id, "queue": q.id, "home": str(guild_home)}
    finally:
        q.stop(timeout=20)
        api.stop(running.id)


@pytest.mark.parametrize("verb, a, b", PAIRS, ids=[f"{v} {a}+{b}" for v, a, b in PAIRS])
def test_conflicting_options_are_refused_alike_and_change_nothing(verb, a, b, world, project, shell, capsys):
    before = snapshot(world["home"])
    message = api_message(verb, a, b)
    assert "\n" not in message and message.startswith(f"{verb}: give ")
    # The API.
    with pytest.raises(BadInput) as e:
        api_call(verb, a, b, world, project)()
    assert str(e.value) == message
    # The command line, a real process.
    words = cli_words(verb, a, b, world)
    p = cli(*words, cwd=project)
    assert p.returncode == 2 and p.stdout == "" and p.stderr.splitlines() == [f"guild-jupyter: error: {message}"]
    # The magic, in a real IPython shell.
    capsys.readouterr()
    old = os.getcwd()
    os.chdir(project)
    try:
        result = shell.run_cell("%guild " + " ".join(words))
    finally:
        os.chdir(old)
    err = capsys.readouterr().err
    assert type(result.error_in_exec) is UsageError and str(result.error_in_exec) == message
    assert [ln for ln in err.splitlines() if ln.strip()] == [f"UsageError: {message}"]
    assert snapshot(world["home"]) == before


# -- conflicts over REST ----------------------------------------------------------------------------------

TRAIN = "import time\nlr = 0.1\nepochs = 2\nsleep = 0.0\nfor _ in range(epochs):\n    time.sleep(sleep)\nprint('loss:', lr)\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = module_server(tmp_path_factory, TRAIN)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def rest_world(server):
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "assignments": ["sleep=0.5",
                                                                                               "epochs=400"]})
    assert st == 201, body
    running = body["runs"][0]["id"]
    st, q = server.request("/guild/api/queues", "POST", {"host": "server", "poll_interval": 60})
    assert st == 201, q
    yield {"running": running, "queue": q["id"], "home": server.home}
    server.request(f"/guild/api/queues/{q['id']}", "DELETE")
    server.request(f"/guild/api/runs/{running}/stop", "POST", {"wait": True})


@pytest.mark.parametrize("verb, a, b", PAIRS, ids=[f"{v} {a}+{b}" for v, a, b in PAIRS])
def test_rest_refuses_conflicting_options_and_changes_nothing(verb, a, b, server, rest_world):
    before = snapshot(rest_world["home"])
    method, path, body, message = rest_request(verb, a, b, rest_world)
    status, answer = server.request("/guild/api/" + path, method, body)
    if message == "no such endpoint":  # a verb REST does not offer
        assert status == 404 and answer["error"] == message
        return
    assert status == 400 and answer["error"].startswith(message) and "\n" not in answer["error"], answer
    assert snapshot(rest_world["home"]) == before


def test_rest_stop_takes_one_of_its_three(server, rest_world):
    """``POST /guild/api/stop`` with runs only stops those (refused pairs aside)."""
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "assignments": ["sleep=0.5",
                                                                                               "epochs=400"]})
    assert st == 201, body
    rid = body["runs"][0]["id"]
    st, body = server.request("/guild/api/stop", "POST", {"runs": [rid[:10]], "wait": True})
    assert st == 200 and [r["id"] for r in body["runs"]] == [rid] and body["runs"][0]["status"] == "terminated"
    assert server.request(f"/guild/api/runs/{rest_world['running']}")[1]["status"] == "running"
    # Never an index over REST: an index of the listing that no run id starts with
    # (ids are random; another run is made until one such index exists).
    for _ in range(20):
        ids = [n for n in os.listdir(os.path.join(rest_world["home"], "runs")) if len(n) == 32]
        index = next((str(i) for i in range(1, len(ids) + 1) if not any(r.startswith(str(i)) for r in ids)), None)
        if index is not None:
            break
        st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "assignments": ["epochs=1"]})
        assert st == 201, body
        server.request(f"/guild/api/runs/{body['runs'][0]['id']}/stop", "POST", {"wait": True})
    st, body = server.request("/guild/api/stop", "POST", {"runs": [index]})
    assert st == 404 and f"no run with id '{index}'" in body["error"]


# -- one text per result ----------------------------------------------------------------------------------


def test_each_verb_says_the_same_in_a_terminal_and_a_cell(project, guild_home, shell, monkeypatch):
    """The CLI prints, and a magic's value renders, one text per result:
    runs as ``[index:short id]`` rows, a queue and a pause as one sentence;
    never a full id."""
    monkeypatch.chdir(project)
    staged = cli("run", "train.py", "lr=[1,2]", "--stage", check=0).stdout
    ids = shown_ids(staged)
    assert len(ids) == 2 and staged.startswith(f"[1:{ids[0]}]  train.py  ") and "staged" in staged
    unstaged = cli("unstage", ids[0], check=0).stdout
    assert unstaged.startswith(f"[1:{ids[0]}]  train.py  ") and "unstaged" in unstaged
    # The same command, the same text: in a terminal and as a cell's value.
    for line in ("run train.py lr=[3,4] --dry-run", f"wait {ids[0]}", "runs", "queues", f"compare {ids[1]}"):
        terminal = cli(*line.split(), check=None).stdout.rstrip("\n")
        cell = shell.run_line_magic("guild", line)
        assert str(cell) == terminal, line
    q = shell.run_line_magic("guild", "queue poll-interval=60")
    try:
        assert shown_queue(str(q)) == q.id[:8]
        paused_cli = cli("queue", "pause", q.id[:8], check=0).stdout.rstrip("\n")
        resumed = shell.run_line_magic("guild", f"queue resume {q.id[:8]}")
        paused_magic = shell.run_line_magic("guild", f"queue pause {q.id[:8]}")
        assert str(paused_magic) == paused_cli and paused_cli.startswith(f"queue {q.id[:8]} paused")
        assert str(resumed) == f"queue {q.id[:8]} resumed" and resumed["state"] == "running"  # its fields stay
    finally:
        q.stop(timeout=20)
    detached = cli("queue", "--background", "run-once=yes", "poll-interval=1", check=0).stdout
    qid = api.resolve_store().resolve(shown_queue(detached)).id
    wait_for(lambda: api.resolve_store().run(qid).status == "completed", timeout=60, message="the queue ends")
    deleted = cli("delete", ids[0], check=0).stdout
    assert f"[{ids[0]}]  train.py" in deleted  # in the trash: no index
    for text in (staged, unstaged, paused_cli, detached, deleted):
        assert not any(len(w.strip("[]:,()")) == 32 for w in text.split()), text  # never a full id


def test_an_index_in_a_cell_means_what_the_latest_result_showed(project, shell, monkeypatch):
    """A result numbered as the full listing numbers runs (``run --stage``,
    ``stop``, ``restart``...) makes the next index typed mean that listing,
    not a filtered listing shown before it."""
    monkeypatch.chdir(project)
    shell.run_line_magic("guild", "run train.py lr=[1,2] --stage")
    filtered = shell.run_line_magic("guild", "runs --staged --label lr=1")
    assert [r.flags["lr"] for r in filtered] == [1]  # its 1 is lr=1
    shown = shell.run_line_magic("guild", "run train.py lr=5 --stage")
    assert str(shown).startswith(f"[1:{shown[0].id[:8]}]")
    (gone,) = shell.run_line_magic("guild", "unstage 1")
    assert gone.id == shown[0].id and gone.flags["lr"] == 5  # the 1 just shown
    again = shell.run_line_magic("guild", "runs --staged --label lr=2")
    (gone,) = shell.run_line_magic("guild", "unstage 1")  # after a listing: its 1
    assert gone.id == again[0].id


# -- queue-flag bounds ------------------------------------------------------------------------------------


def bound_cases():
    """``(flag, value, extra flags)`` just past each bound of each flag with one."""
    out = []
    for f in api.queue_flag_table():
        if f["min"] is None:
            continue
        extra = ["gpus=auto"] if f["auto_only"] else []
        if f["name"] == "dask":
            out += [(f, f"local:{f['min'] - 1}", extra), (f, f"local:{f['max'] + 1}", extra)]
        elif f["type"] == "seconds":
            out += [(f, repr(f["min"] / 2), extra), (f, repr(f["max"] * 2), extra)]
        else:
            out += [(f, str(f["min"] - 1), extra), (f, str(f["max"] + 1), extra)]
    return out


BOUNDS = bound_cases()


def test_every_numeric_queue_flag_has_a_documented_range():
    table = {f["name"]: f for f in api.queue_flag_table()}
    for name, f in table.items():
        if f["type"] in ("seconds", "count", "size", "percent") or name == "dask":
            assert f["min"] is not None and f["max"] is not None and f["range"], name
    assert table["poll-interval"]["min"] == 0.1
    from guild_jupyter.queueing.policy import QueueConfig

    config = QueueConfig()  # the table's defaults are the config's
    for name, f in table.items():
        if f["default"] is not None:
            assert getattr(config, f["field"]) == f["default"], name
    readme = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")).read()
    help_text = " ".join(cli("queue", "-h", check=0).stdout.split())
    for name, f in table.items():
        assert f"`{name}`" in readme and f"{name}=" in help_text, name
        if f["range"] and f["type"] != "text":
            assert f["range"] in help_text, name


@pytest.mark.parametrize("flag, value, extra", BOUNDS, ids=[f"{f['name']}={v}" for f, v, _ in BOUNDS])
def test_past_a_bound_is_one_line_everywhere_and_changes_nothing(flag, value, extra, guild_home, shell):
    before = snapshot(str(guild_home))
    with pytest.raises(BadInput) as e:
        api.queue(*extra, **{flag["field"]: value})
    message = str(e.value)
    assert message.startswith(f"bad value for {flag['name']}: ") and "\n" not in message
    assert (f"from {flag['min']:g} to" in message or "to 1TiB" in message
            or f"from {flag['min']} to {flag['max']}" in message), message
    p = cli("queue", *extra, f"{flag['name']}={value}", "--background")
    assert p.returncode == 2 and p.stdout == "" and p.stderr.splitlines() == [f"guild-jupyter: error: {message}"]
    with pytest.raises(UsageError) as e:
        shell.run_line_magic("guild", " ".join(["queue", *extra, f"{flag['name']}={value}"]))
    assert str(e.value) == message
    assert snapshot(str(guild_home)) == before


def test_at_a_bound_is_accepted():
    from guild_jupyter.queueing.config import parse_queue_flags

    for f in api.queue_flag_table():
        if f["min"] is None or f["name"] == "dask":
            continue
        extra = ["gpus=auto"] if f["auto_only"] else []
        for v in (f["min"], f["max"]):
            config = parse_queue_flags([*extra, f"{f['name']}={v}"])
            assert getattr(config, f["field"]) == v, (f["name"], v)
    assert parse_queue_flags(["dask=local:128"]).dask == "local:128"


def test_rest_refuses_a_queue_past_a_bound(server):
    before = snapshot(server.home)
    for host in ("server", "detached"):
        for body in ({"max_running": 2000000}, {"poll_interval": 1e-9}, {"dask": "local:100000"},
                     {"retries": 101}, {"max_running": True}):
            status, answer = server.request("/guild/api/queues", "POST", dict(body, host=host))
            assert status == 400 and answer["error"].startswith("bad value for ") and "\n" not in answer["error"], \
                (body, answer)
    assert snapshot(server.home) == before


# -- an idle queue allowed many runs ----------------------------------------------------------------------

IDLE = textwrap.dedent("""\
    import json, sys, threading, time
    import psutil
    from guild_jupyter import api
    from guild_jupyter.queueing.config import create_queue_run
    from guild_jupyter.queueing.loop import QueueLoop
    from guild_jupyter.queueing.policy import QueueConfig

    store = api.resolve_store(sys.argv[1])
    # Past the flag's bound on purpose (the config itself takes any number):
    # what an idle loop holds and does must not depend on it at all.
    config = QueueConfig(max_running=int(sys.argv[2]), poll_interval=0.1)
    run = create_queue_run(store, config, "thread")
    proc = psutil.Process()
    before = proc.memory_info().rss
    stop = threading.Event()
    loop = QueueLoop(store, config, run, stop)
    t = threading.Thread(target=loop.run_loop)
    t.start()
    deadline = time.monotonic() + 60
    while loop.state != "waiting" and time.monotonic() < deadline:
        time.sleep(0.01)
    cpu0, wall0 = sum(proc.cpu_times()[:2]), time.monotonic()
    time.sleep(2.0)  # a window to measure over, idle: no run is staged
    cpu, wall = sum(proc.cpu_times()[:2]) - cpu0, time.monotonic() - wall0
    grown = proc.memory_info().rss - before
    stop.set()
    t.join(30)
    print(json.dumps({"state": loop.state, "grown": grown, "cpu": cpu, "wall": wall, "slots": len(loop.slots)}))
""")


def test_an_idle_queue_allowed_ten_million_runs_holds_no_memory_or_core_for_them(tmp_path):
    """Before: 10,000,000 allowed runs cost 1.2 GB (measured: 1,204,224,000 bytes) and a core, idle."""
    home = tmp_path / "home"
    home.mkdir()
    p = subprocess.run([sys.executable, "-c", IDLE, str(home), "10000000"], capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["state"] == "stopped" and out["slots"] == 10_000_000
    assert out["grown"] < 64 * 2**20, out  # what 10 million slot records would take is over 1 GiB
    # A loop walking them used 0.44 of the window even on a loaded 2-core machine (1.0 idle); this one ~0.02.
    assert out["cpu"] < 0.2 * out["wall"], out
