"""The served view model against a real Jupyter server (127.0.0.1): the
events long-poll (``/guild/api/events``), the state long-poll
(``/guild/api/state?after_version=``), and every action a row carries,
with the restage form's bad value refused (400, one line, nothing written)
and a retry."""

from __future__ import annotations

import os
import threading
import time

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import start_guild_server
from support.snapshots import group

TRAIN = ("import sys, time\nlr = 0.1\nsecs = 0.0\nfail = False\nprint('loss:', lr)\ntime.sleep(secs)\n"
         "if fail:\n    sys.exit(4)\n")
WAIT = 50  # seconds a long-poll may wait here: far beyond what any answer below needs


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("events-server")
    home, root = tmp / "guild-home", tmp / "root"
    home.mkdir()
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    server = start_guild_server(tmp / "jupyter", home, root_dir=root)
    server.home, server.tmp, server.root = str(home), tmp, root
    yield server
    server.stop()


def state(home):
    """Everything a request could change: run dirs and statuses."""
    runs_dir = os.path.join(home, "runs")
    ids = sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []
    return ids, {r.id: r.status for r in api.runs(store=home)}


def start(server, *assignments, stage=False) -> str:
    st, body = server.request("/guild/api/runs", "POST", {"script": "train.py", "assignments": list(assignments),
                                                          "stage": stage})
    assert st == 201, body
    return body["runs"][0]["id"]


def finished(server, run_id) -> dict:
    return wait_for(lambda: (lambda r: r if r["status"] not in ("running", "pending", "staged") else None)(
        server.request(f"/guild/api/runs/{run_id}")[1]), timeout=60, message=f"run {run_id[:8]} ends")


def in_background(fn):
    """Runs ``fn()`` on a thread; returns (thread, result dict with 'value' and 'took')."""
    out: dict = {}

    def go():
        t0 = time.monotonic()
        out["value"] = fn()
        out["took"] = time.monotonic() - t0

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, out


def test_events_long_poll(served):
    st, first = served.request("/guild/api/events?after=0&timeout=0")
    assert st == 200 and set(first) == {"events", "last", "boot"}
    last = first["last"]
    # Nothing happens: the long-poll waits its timeout, then answers empty.
    t0 = time.monotonic()
    st, empty = served.request(f"/guild/api/events?after={last}&timeout=1")
    assert st == 200 and empty["events"] == [] and empty["last"] == last and time.monotonic() - t0 >= 1.0
    # A run fails while a client waits: the client is answered with it, long before its timeout.
    t, out = in_background(lambda: served.request(f"/guild/api/events?after={last}&timeout={WAIT}",
                                                  timeout=WAIT + 10))
    time.sleep(0.2)  # the client is waiting (an event sooner is fine too: it is then answered at once)
    run_id = start(served, "fail=yes")
    t.join(WAIT + 15)
    st, answer = out["value"]
    assert st == 200 and out["took"] < WAIT - 5, out
    (event,) = [e for e in answer["events"] if e.get("run") == run_id]
    assert event["kind"] == "run-ended" and event["level"] == "error" and event["seq"] > last
    assert event["text"].startswith(f"train.py fail=yes ({run_id[:8]}) failed after ") and "(exit 4)" in event["text"]
    assert event["actions"][0]["path"] == f"runs/{run_id}/output"
    # A reload (after=0) shows the recent events again; a client that is up to date waits.
    st, again = served.request("/guild/api/events?after=0&timeout=0")
    assert event in again["events"] and again["boot"] == first["boot"]
    # A sequence number beyond the newest (another server's) is answered at once, not after the wait.
    t0 = time.monotonic()
    st, other = served.request(f"/guild/api/events?after={answer['last'] + 1000}&timeout={WAIT}", timeout=WAIT + 10)
    assert st == 200 and other["events"] == [] and time.monotonic() - t0 < WAIT - 5
    for bad in ("after=-1", "after=x", f"timeout={WAIT * 10}", "timeout=abc"):
        st, err = served.request(f"/guild/api/events?{bad}")
        assert st == 400 and "\n" not in err["error"], (bad, err)


def test_state_long_poll_answers_when_the_version_moves(served):
    st, snap = served.request("/guild/api/state")
    assert st == 200 and isinstance(snap["version"], int) and snap["last_event"] >= 0
    assert [g["name"] for g in snap["groups"]] == ["running", "pending", "staged", "failed", "finished"]
    t0 = time.monotonic()
    st, same = served.request(f"/guild/api/state?after_version={snap['version']}&timeout=1")
    assert st == 200 and same["version"] == snap["version"] and time.monotonic() - t0 >= 1.0
    t, out = in_background(lambda: served.request(f"/guild/api/state?after_version={snap['version']}"
                                                  f"&timeout={WAIT}", timeout=WAIT + 10))
    time.sleep(0.2)
    staged = start(served, stage=True)
    t.join(WAIT + 15)
    st, moved = out["value"]
    assert st == 200 and moved["version"] != snap["version"] and out["took"] < WAIT - 5
    assert staged in {r["id"] for r in group(moved, "staged")["rows"]}
    st, _ = served.request(f"/guild/api/runs/{staged}", "DELETE")
    assert st == 200


def test_every_action_of_a_row_is_served(served):
    """Each action's method and path is an endpoint; the restage form's bad
    value is refused in one line with nothing written; a retry stages."""
    failed = start(served, "fail=yes")
    finished(served, failed)
    done = start(served)
    finished(served, done)
    staged = start(served, stage=True)
    st, snap = served.request("/guild/api/state")
    rows = {r["id"]: r for g in snap["groups"] for r in g["rows"]}
    routes = {(a["method"], a["path"].replace(rid, "{id}")) for rid in (failed, done, staged)
              for a in rows[rid]["actions"]}
    assert routes == {("GET", "runs/{id}/output"), ("POST", "runs/{id}/retry"), ("POST", "runs/{id}/restart"),
                      ("POST", "runs/{id}/restage"), ("DELETE", "runs/{id}"), ("POST", "runs/{id}/prioritize")}
    for method, path in routes:  # routed: an unknown run is "no run", not "no such endpoint"
        st, err = served.request("/guild/api/" + path.replace("{id}", "fedcba98" * 4), method,
                                 {} if method == "POST" else None)
        assert st == 404 and "no such endpoint" not in err["error"], (method, path, err)

    form = next(a for a in rows[failed]["actions"] if a["verb"] == "restage")["form"]
    assert {f["name"]: f["type"] for f in form["flags"]} == {"lr": "float", "secs": "float", "fail": "bool"}
    before = state(served.home)
    st, err = served.request(f"/guild/api/runs/{failed}/restage", "POST", {"flags": {"lr": "abc"}})
    assert st == 400 and "lr" in err["error"] and "\n" not in err["error"]
    assert state(served.home) == before  # nothing written
    st, body = served.request(f"/guild/api/runs/{failed}/restage", "POST", {"flags": {"lr": "0.05", "fail": "no"}})
    assert st == 200 and [(r["flags"]["lr"], r["flags"]["fail"], r["status"]) for r in body["runs"]] == [
        (0.05, False, "staged")]  # the form's text, read as a command line reads it

    st, body = served.request(f"/guild/api/runs/{failed}/retry", "POST", {})
    assert st == 200 and [r["status"] for r in body["runs"]] == ["staged"]
    assert body["runs"][0]["retry_text"] == f"retry 1 of {failed[:8]}"
    before = state(served.home)
    st, err = served.request(f"/guild/api/runs/{done}/retry", "POST", {})
    assert st == 409 and "only a failed run can be retried" in err["error"]
    st, err = served.request(f"/guild/api/runs/{failed}/retry", "POST", {"now": True})
    assert st == 400 and "unknown field" in err["error"]
    assert state(served.home) == before
    for rid in [staged, body["runs"][0]["id"]]:
        served.request(f"/guild/api/runs/{rid}", "DELETE")


def test_a_restarted_server_has_another_boot(served):
    st, before = served.request("/guild/api/events?after=0&timeout=0")
    assert st == 200
    other = start_guild_server(served.tmp / "jupyter-2", served.home, root_dir=served.root)
    try:
        st, after = other.request(f"/guild/api/events?after={before['last'] + 1}&timeout={WAIT}", timeout=WAIT + 10)
        assert st == 200 and after["boot"] != before["boot"]
        # a client that saw the other boot asks again from 0: this server's own events only
        st, fresh = other.request("/guild/api/events?after=0&timeout=0")
        assert fresh["boot"] == after["boot"] and all(e["seq"] <= fresh["last"] for e in fresh["events"])
    finally:
        other.stop()
