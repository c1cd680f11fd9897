"""The Jupyter server extension, against a real Jupyter server on 127.0.0.1."""

from __future__ import annotations

import http.cookiejar
import json
import os
import pathlib
import urllib.error
import urllib.request

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import module_server, start_guild_server
from support.snapshots import group

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAIN = "import time\nlr = 0.1\nepochs = 2\nsleep = 0.0\ntime.sleep(sleep)\nprint('loss:', lr)\n"
FAKE_GPUS = json.dumps([{"name": "Fake H100", "uuid": "GPU-fake-0", "memory": {"total": 80 * 2**30, "used": 2**30},
                         "utilization": {"gpu": 37, "memory": 5}}])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = module_server(tmp_path_factory, TRAIN, env={"GUILD_JUPYTER_FAKE_GPUS": FAKE_GPUS})
    s.outside = pathlib.Path(s.home).parent / "outside.txt"  # next to the Guild home
    s.outside.write_text("must stay\n")
    yield s
    s.stop()


def state(home):
    """Everything a request could change: run dirs, statuses, the trash."""
    runs_dir = os.path.join(home, "runs")
    ids = sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []
    trash = os.path.join(home, "trash", "runs")
    return ids, {r.id: r.status for r in api.runs(store=home)}, sorted(os.listdir(trash)) if os.path.isdir(trash) else []


def raw(server, path, method="GET", body=None, headers=None, opener=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_shipped_config_enables_the_extension():
    with open(os.path.join(ROOT, "jupyter-config", "jupyter_server_config.d", "guild_jupyter.json")) as f:
        assert json.load(f) == {"ServerApp": {"jpserver_extensions": {"guild_jupyter": True}}}
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        pyproject = f.read()
    # A wheel carries it (tests/test_packaging.py builds one and looks).
    section = pyproject.split("[tool.hatch.build.targets.wheel.shared-data]", 1)[1].split("\n[", 1)[0]
    assert '"jupyter-config/jupyter_server_config.d" = "etc/jupyter/jupyter_server_config.d"' in section
    from guild_jupyter import _jupyter_server_extension_points
    from guild_jupyter.server.app import GuildJupyter

    assert _jupyter_server_extension_points() == [{"module": "guild_jupyter.server", "app": GuildJupyter}]


def test_runs_endpoints(server):
    st, body = server.request("/guild/api/runs", "POST",
                              {"script": "train.py", "assignments": ["lr=[0.1,0.2,0.3]"], "stage": True, "label": "api"})
    assert st == 201 and [r["status"] for r in body["runs"]] == ["staged"] * 3
    ids = [r["id"] for r in body["runs"]]
    assert [r["flags"]["lr"] for r in body["runs"]] == [0.3, 0.2, 0.1]  # newest first, as every listing
    st, listing = server.request("/guild/api/runs?status=staged&label=api")
    assert st == 200 and listing["total"] == 3 and {r["id"] for r in listing["runs"]} == set(ids)
    st, page = server.request("/guild/api/runs?status=staged&label=api&limit=1&offset=1")
    assert page["total"] == 3 and [r["id"] for r in page["runs"]] == [listing["runs"][1]["id"]]
    st, one = server.request(f"/guild/api/runs/{ids[0][:8]}")
    assert st == 200 and one["id"] == ids[0] and one["flags"]["lr"] == 0.3 and one["status"] == "staged"
    st, err = server.request(f"/guild/api/runs/{ids[0]}/output")
    assert st == 409 and "staged" in err["error"]
    st, gone = server.request(f"/guild/api/runs/{ids[0]}", "DELETE")
    assert st == 200 and gone["action"] == "unstaged" and gone["run"]["status"] == "unstaged"
    assert gone["run"]["guild_status"] == "terminated" and gone["run"]["elapsed"] is None

    st, started = server.request("/guild/api/runs", "POST", {"script": "train.py", "flags": {"sleep": 30}})
    assert st == 201 and started["runs"][0]["status"] == "running"
    run_id = started["runs"][0]["id"]
    st, err = server.request(f"/guild/api/runs/{run_id}", "DELETE")
    assert st == 409 and "stop it" in err["error"]
    st, stopped = server.request(f"/guild/api/runs/{run_id}/stop", "POST", {"wait": True})
    assert st == 200 and stopped["status"] == "terminated"
    st, err = server.request(f"/guild/api/runs/{run_id}/stop", "POST")
    assert st == 409 and "already terminated" in err["error"]

    sub = os.path.join(server.root_dir, "sub")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "other.py"), "w") as f:
        f.write("width = 3\n")
    st, other = server.request("/guild/api/runs", "POST", {"script": "other.py", "cwd": "sub", "stage": True})
    assert st == 201 and other["runs"][0]["flags"] == {"width": 3}  # cwd is relative to the server's root
    assert server.request(f"/guild/api/runs/{other['runs'][0]['id']}", "DELETE")[0] == 200

    st, done = server.request("/guild/api/runs", "POST", {"script": "train.py", "flags": {"lr": 0.5}})
    done_id = done["runs"][0]["id"]
    wait_for(lambda: server.request(f"/guild/api/runs/{done_id}")[1]["status"] == "completed", message="run completes")
    st, out = server.request(f"/guild/api/runs/{done_id}/output?tail=1")
    assert st == 200 and out["output"] == "loss: 0.5\n"
    st, deleted = server.request(f"/guild/api/runs/{done_id}", "DELETE")
    assert st == 200 and deleted["action"] == "deleted"
    assert os.path.isdir(os.path.join(server.home, "trash", "runs", done_id))
    assert server.request(f"/guild/api/runs/{done_id}")[0] == 404


def test_the_real_guild_cli_shows_in_the_next_listing(server):
    """A relabel by the real ``guild label`` (the label file rewritten in
    place), ``guild runs rm`` and ``guild runs restore`` show in the very
    next GET /guild/api/runs, and in /guild/api/state."""
    from conftest import guild

    env = {"GUILD_HOME": server.home}
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "stage": True, "label": "cli"})
    run_id = body["runs"][0]["id"]
    assert server.request(f"/guild/api/runs/{run_id}", "DELETE")[1]["action"] == "unstaged"

    def listed():
        return {r["id"]: r for r in server.request("/guild/api/runs?label=&limit=1000")[1]["runs"]}

    assert listed()[run_id]["label"] == "cli"
    for text in ("relabelled", "relabelleD"):  # same length: only the label file's own mtime moves
        guild("label", run_id, "--set", text, "-y", env=env)
        assert listed()[run_id]["label"] == text
    state = server.request("/guild/api/state")[1]
    assert {r["id"]: r["label"] for r in group(state, "finished")["rows"]}.get(run_id) == "relabelleD"
    guild("runs", "rm", run_id, "-y", env=env)
    assert run_id not in listed()
    guild("runs", "restore", run_id, "-y", env=env)
    row = listed()[run_id]
    assert row["status"] == "unstaged" and row["label"] == "relabelleD"


def test_queues_and_gpus(server):
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "stage": True, "label": "for-queue"})
    run_id = body["runs"][0]["id"]
    st, q = server.request("/guild/api/queues", "POST", {"run_once": True, "poll_interval": 1})
    assert st == 201 and q["host"] == "server"
    wait_for(lambda: server.request(f"/guild/api/runs/{run_id}")[1]["status"] == "completed", message="queue runs it")
    st, started_by = server.request(f"/guild/api/runs/{run_id}")
    assert started_by["queue"] == q["id"]
    wait_for(lambda: server.request(f"/guild/api/runs/{q['id']}")[1]["status"] == "completed",
             message="the run-once queue ends")
    st, err = server.request(f"/guild/api/queues/{q['id']}", "DELETE")  # hosted here, but already over
    assert st == 409 and "already completed" in err["error"]

    st, q2 = server.request("/guild/api/queues", "POST", {"gpus": "0", "wait_for_running": True})
    assert st == 201
    st, qs = server.request("/guild/api/queues")
    mine = [x for x in qs["queues"] if x["id"] == q2["id"]]
    assert mine and mine[0]["hosted_here"] and mine[0]["host"] == "server" and mine[0]["gpus"] == "0"
    st, stopped = server.request(f"/guild/api/queues/{q2['id']}", "DELETE")
    assert st == 200 and stopped["status"] in ("terminated", "completed")
    assert server.request(f"/guild/api/queues/{q2['id']}", "DELETE")[0] == 409

    st, d = server.request("/guild/api/queues", "POST", {"host": "detached", "gpus": "1"})
    assert st == 201 and d["host"] == "detached"
    wait_for(lambda: any(x["id"] == d["id"] and x["host"] == "detached"
                         for x in server.request("/guild/api/queues")[1]["queues"]), message="detached queue listed")
    st, stopped = server.request(f"/guild/api/queues/{d['id']}", "DELETE")
    assert st == 200 and stopped["status"] != "running"

    st, gpus = server.request("/guild/api/gpus")
    assert st == 200 and gpus["available"] and gpus["devices"][0]["name"] == "Fake H100"
    assert gpus["devices"][0]["utilization"] == 37

    st, snap = server.request("/guild/api/state")
    assert st == 200 and snap["gpus"]["devices"][0]["name"] == "Fake H100"
    assert [g["name"] for g in snap["groups"]] == ["running", "pending", "staged", "failed", "finished"]
    assert any(r["id"] == run_id for r in group(snap, "finished")["rows"])


BAD = [
    ("POST", "/guild/api/runs", b"{not json", 400, "malformed JSON"),
    ("POST", "/guild/api/runs", b"[1, 2]", 400, "JSON object"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "extra": 1}, 400, "unknown field"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "assignments": ["lr=["]}, 400, "malformed sweep"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "assignments": ["lr=[1,2]", "epochs=range[1:0:1]"]},
     400, "no trials"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "assignments": ["lr=uniform[1:0]"]}, 400, "low"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "assignments": ["lr=[1,2]"], "max_trials": 0},
     400, "max-trials"),
    ("POST", "/guild/api/runs", {"script": "missing.py", "stage": True}, 400, "script not found"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "gpus": "a"}, 400, "GPU"),
    ("POST", "/guild/api/runs", {"stage": True}, 400, "script"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": "no"}, 400, "'stage' must be true or false"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "flags": {"nope": 1}}, 400, "nope"),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True, "gpus": True}, 400, "gpus"),
    ("POST", "/guild/api/runs", b'{"script": "train.py", "label": "' + b"x" * 100_000 + b'"}', 413, "KiB"),
    ("POST", "/guild/api/queues", {"gpus": "a"}, 400, "GPU"),
    ("POST", "/guild/api/queues", {"poll_interval": 0}, 400, "poll-interval"),
    ("POST", "/guild/api/queues", {"run_once": "maybe"}, 400, "run-once"),
    ("POST", "/guild/api/queues", {"colour": "red"}, 400, "unknown"),
    ("POST", "/guild/api/queues", {"host": "mars"}, 400, "host"),
    ("GET", "/guild/api/runs?status=sleeping", None, 400, "status"),
    ("GET", "/guild/api/runs?limit=0", None, 400, "limit"),
    ("GET", "/guild/api/runs/..%2F..%2Fetc", None, 400, "bad run id"),
    ("GET", "/guild/api/runs/%2Fetc%2Fpasswd", None, 400, "bad run id"),
    ("GET", "/guild/api/runs/..%2Foutside.txt/output", None, 400, "bad run id"),
    ("DELETE", "/guild/api/runs/..%2F..%2Foutside.txt", None, 400, "bad run id"),
    ("DELETE", "/guild/api/runs/GARBAGE!", None, 400, "bad run id"),
    ("POST", "/guild/api/runs/" + "a" * 33 + "/stop", None, 400, "bad run id"),
    ("POST", "/guild/api/runs/feedface/stop", {"wait": "yes"}, 400, "'wait' must be true or false"),
    ("GET", "/guild/api/runs/%00", None, 400, "bad run id"),
    ("GET", "/guild/api/runs/ABCDEF", None, 400, "bad run id"),
    ("GET", "/guild/api/runs/feedface", None, 404, "no run"),
    ("DELETE", "/guild/api/queues/feedface", None, 404, "no run"),
    ("GET", "/guild/api/nothing-here", None, 404, "no such endpoint"),
]


@pytest.mark.parametrize("method, path, body, status, message", BAD, ids=[f"{m} {p[:40]} {s}" for m, p, _, s, _ in BAD])
def test_bad_input_is_a_json_error_and_changes_nothing(server, method, path, body, status, message):
    before = state(server.home)
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}
    st, raw_body = raw(server, path, method, body, headers)
    assert st == status, raw_body[:300]
    err = json.loads(raw_body)
    assert message in err["error"] and "\n" not in err["error"] and err["status"] == status
    assert state(server.home) == before
    assert server.outside.read_text() == "must stay\n"


ENDPOINTS = [
    ("GET", "/guild/api/runs", None),
    ("POST", "/guild/api/runs", {"script": "train.py", "stage": True}),
    ("GET", "/guild/api/runs/{id}", None),
    ("GET", "/guild/api/runs/{id}/output", None),
    ("POST", "/guild/api/runs/{id}/stop", {}),
    ("DELETE", "/guild/api/runs/{id}", None),
    ("GET", "/guild/api/queues", None),
    ("POST", "/guild/api/queues", {"run_once": True}),
    ("DELETE", "/guild/api/queues/{id}", None),
    ("GET", "/guild/api/gpus", None),
    ("GET", "/guild/api/state", None),
]


@pytest.mark.parametrize("auth", ["none", "wrong-token"])
@pytest.mark.parametrize("method, path, body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_every_endpoint_refuses_without_a_valid_token(server, auth, method, path, body):
    st, staged = server.request("/guild/api/runs", "POST", {"script": "train.py", "stage": True, "label": "auth"})
    run_id = staged["runs"][0]["id"]
    before = state(server.home)
    headers = {"Content-Type": "application/json"}
    if auth == "wrong-token":
        headers["Authorization"] = "token " + "0" * 32
    st, _ = raw(server, path.format(id=run_id), method, body, headers)
    assert st in (401, 403)
    assert state(server.home) == before
    server.request(f"/guild/api/runs/{run_id}", "DELETE")


def test_the_page_needs_a_login(server):
    st, _ = raw(server, "/guild", headers={})  # not logged in: sent to the login page
    assert st in (200, 302, 403)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.addheaders = []
    no_redirect = urllib.request.build_opener(_NoRedirect)
    st, _ = raw(server, "/guild", opener=no_redirect)
    assert st in (302, 403)
    st, page = raw(server, f"/guild?token={server.token}", opener=opener)
    assert st == 200 and b"<title>Guild runs</title>" in page


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_a_browser_post_without_xsrf_is_refused(server):
    """A logged-in browser (cookie, no token) must send the XSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    st, _ = raw(server, f"/guild?token={server.token}", opener=opener)  # logs in: sets the login cookie
    assert st == 200 and any(c.name.startswith("username-") for c in jar)
    before = state(server.home)
    body = {"script": "train.py", "stage": True}
    st, err = raw(server, "/guild/api/runs", "POST", body, {"Content-Type": "application/json"}, opener=opener)
    assert st == 403 and b"_xsrf" in err
    assert state(server.home) == before
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    st, ok = raw(server, "/guild/api/runs", "POST", body, {"Content-Type": "application/json", "X-XSRFToken": xsrf},
                 opener=opener)
    assert st == 201
    server.request(f"/guild/api/runs/{json.loads(ok)['runs'][0]['id']}", "DELETE")


def test_server_queues_from_config_stop_cleanly_at_shutdown(tmp_path):
    home = tmp_path / "home"
    root = tmp_path / "root"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    api.run(str(root / "train.py"), "sleep=2", stage=True, store=str(home))
    config_dir = tmp_path / "jupyter" / "jupyter-config"  # start_jupyter's JUPYTER_CONFIG_DIR
    config_dir.mkdir(parents=True)
    (config_dir / "jupyter_server_config.py").write_text(
        'c.GuildJupyter.queues = [{"poll_interval": 1}, {"gpus": "0"}]\n'
    )
    s = start_guild_server(tmp_path / "jupyter", home, root_dir=root)
    try:
        st, qs = s.request("/guild/api/queues")
        assert st == 200 and sorted(str(q["gpus"]) for q in qs["queues"]) == ["0", "None"]
        assert all(q["hosted_here"] and q["host"] == "server" for q in qs["queues"])
        work = [r for r in api.runs(store=str(home)) if not r.is_queue][0]
        wait_for(lambda: work.refresh().status == "running", message="a configured queue starts the run")
    finally:
        s.stop()
    assert s.proc.returncode is not None
    queues = [r for r in api.runs(store=str(home)) if r.is_queue]
    assert [q.status for q in queues] == ["terminated", "terminated"]  # stopped with the server, outcome recorded
    assert "guild_jupyter" in s.log() and "Traceback" not in s.log()
    # the run the queue started outlives the server and records its outcome
    wait_for(lambda: work.refresh().status == "completed", timeout=30, message="the run finishes on its own")


def test_queue_start_takes_the_parallel_and_retry_fields(server):
    st, q = server.request("/guild/api/queues", "POST",
                           {"gpus": "auto", "per_gpu": 2, "max_running": 2, "retries": 1, "poll_interval": 1})
    assert st == 201, q
    try:
        wait_for(lambda: any(x["id"] == q["id"] for x in server.request("/guild/api/queues")[1]["queues"]),
                 message="queue listed")
        row = next(x for x in server.request("/guild/api/queues")[1]["queues"] if x["id"] == q["id"])
        assert row["slots"]["total"] == 2 and row["gpus"] == "auto"
        flags = server.request(f"/guild/api/runs/{q['id']}")[1]["flags"]
        assert flags["max-running"] == 2 and flags["per-gpu"] == 2 and flags["retries"] == 1
    finally:
        server.request(f"/guild/api/queues/{q['id']}", "DELETE")
    before = state(server.home)
    for bad, word in (({"max_running": 0}, "max-running"), ({"gpus": "auto", "per_gpu": 0}, "per-gpu"),
                      ({"retries": -1}, "retries"), ({"gpus": "auto:9"}, "GPU")):
        st, err = server.request("/guild/api/queues", "POST", bad)
        assert st == 400 and word in err["error"] and "\n" not in err["error"], (bad, err)
    assert state(server.home) == before
