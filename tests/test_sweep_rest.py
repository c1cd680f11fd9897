"""REST for charts and sweeps (issue 22 items 4, 5), against a real Jupyter
server: ``runs/ID/scalars`` and ``sweeps/ID/scalars`` give only what is new
since a token (checked against the event files decoded with tensorboardX's
protobufs), a replaced file resets, ``sweeps/ID`` is the sweep's table
(varying flags as columns, the best of the op, retries under their trial,
a long poll on its version), the snapshot lists sweeps; bad input (an
unknown sweep, a tag no trial logged, a bad x axis) is one line and
changes nothing."""

from __future__ import annotations

import os
import struct

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import module_server
from test_steps import by_tag, tbx_events

# Logs 3 epochs, waits for the file ``gate`` (when given), logs 3 more; fails for lr > 0.25.
TRAIN = ("import os, sys, time\nlr = 0.1\nepochs = 6\ngate = ''\n"
         "for epoch in range(epochs):\n"
         "    if gate and epoch == 3:\n"
         "        while not os.path.exists(gate):\n"
         "            time.sleep(0.02)\n"
         "    print(f'epoch: {epoch}', flush=True)\n"
         "    print(f'loss: {lr / (epoch + 1):.6f}', flush=True)\n"
         "    print(f'acc: {1 - lr / (epoch + 1):.6f}', flush=True)\n"
         "sys.exit(1 if lr > 0.25 else 0)\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = module_server(tmp_path_factory, TRAIN)
    yield s
    s.stop()


def ok(server, path, method="GET", body=None):
    st, data = server.request(path, method, body, timeout=30)
    assert st in (200, 201), (path, st, data)
    return data


def state(home):
    runs_dir = os.path.join(home, "runs")
    return sorted(os.listdir(runs_dir)), {r.id: r.status for r in api.runs(store=home)}


def pairs(points):
    return [tuple(p[:2]) for p in points]


def test_a_runs_scalars_come_incrementally_and_equal_the_event_files(server, tmp_path):
    gate = tmp_path / "gate"
    (run,) = ok(server, "/guild/api/runs", "POST", {"script": "train.py", "assignments": [f"gate={gate}"]})["runs"]
    rid = run["id"]
    path = f"/guild/api/runs/{rid}/scalars?tags=loss,acc&x=step"

    def three_epochs():
        st, answer = server.request(path)
        if st == 400:  # not logged yet: one line naming what was
            assert "never logged scalar" in answer["error"]
            return None
        return answer if st == 200 and len(answer["series"].get("loss", [])) == 3 else None

    first = wait_for(three_epochs, timeout=60, message="three epochs logged")
    assert first["x"] == "step" and not first["reset"] and not first["done"]
    assert first["tags"] == ["acc", "epoch", "loss"]  # every tag logged (epoch not asked for)
    assert set(first["series"]) == {"loss", "acc"}
    events = tbx_events(api.runs(store=server.home)[0].dir)
    assert pairs(first["series"]["loss"]) == [(float(s), v) for s, v in by_tag(events, "loss")][:3]
    gate.write_text("")
    api.wait(rid, timeout=60, store=server.home)
    more = ok(server, f"{path}&since={first['token']}")
    assert not more["reset"] and more["done"] and more["token"] != first["token"]
    events = tbx_events(api.runs(store=server.home)[0].dir)
    # only the new points, and together the whole series, as an independent decoding reads it
    assert [p[0] for p in more["series"]["loss"]] == [3.0, 4.0, 5.0]
    for tag in ("loss", "acc"):
        assert pairs(first["series"][tag] + more["series"][tag]) == [(float(s), v) for s, v in by_tag(events, tag)]
    again = ok(server, f"{path}&since={first['token']}")  # an answer lost on the way: ask again
    assert again["series"] == more["series"] and not again["reset"]
    nothing = ok(server, f"{path}&since={more['token']}")
    assert nothing["series"] == {} and nothing["done"]
    # x axes: the raw form [step, value, time], time since the run started; an epoch axis; time
    raw = ok(server, f"/guild/api/runs/{rid}/scalars?tags=loss")["series"]["loss"]
    assert [p[:2] for p in raw] == [[float(s), v] for s, v in by_tag(events, "loss")]
    assert all(0 <= p[2] < 60 for p in raw) and [p[2] for p in raw] == sorted(p[2] for p in raw)
    by_epoch = ok(server, f"/guild/api/runs/{rid}/scalars?tags=loss&x=epoch")["series"]["loss"]
    epochs = dict(by_tag(events, "epoch"))
    assert by_epoch == [[epochs[s], v] for s, v in by_tag(events, "loss")]
    timed = ok(server, f"/guild/api/runs/{rid}/scalars?tags=acc&x=time")
    assert timed["x"] == "time" and [p[0] for p in timed["series"]["acc"]] == [p[2] for p in ok(
        server, f"/guild/api/runs/{rid}/scalars?tags=acc")["series"]["acc"]]
    thin = ok(server, f"/guild/api/runs/{rid}/scalars?tags=loss&x=step&points=4")["series"]["loss"]
    whole = [[float(s), v] for s, v in by_tag(events, "loss")]
    assert 2 <= len(thin) <= 4 and thin[0] == whole[0] and thin[-1] == whole[-1] and all(p in whole for p in thin)


def test_a_replaced_event_file_resets_the_series(server):
    (run,) = ok(server, "/guild/api/runs", "POST", {"script": "train.py", "assignments": ["lr=0.2"]})["runs"]
    api.wait(run["id"], timeout=60, store=server.home)
    path = f"/guild/api/runs/{run['id']}/scalars?tags=loss&x=step"
    first = ok(server, path)
    assert len(first["series"]["loss"]) == 6
    gdir = os.path.join(server.home, "runs", run["id"], ".guild")
    (name,) = [n for n in os.listdir(gdir) if n.startswith("events.out")]
    data = open(os.path.join(gdir, name), "rb").read()
    pos = 0
    for _ in range(1 + 3 * 2):  # the header, then epoch, loss, acc of the first two epochs
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 16 + n
    with open(os.path.join(gdir, "new"), "wb") as f:
        f.write(data[:pos])
    os.replace(os.path.join(gdir, "new"), os.path.join(gdir, name))
    kept = [(float(s), v) for s, v in by_tag(tbx_events(os.path.dirname(gdir)), "loss")]
    assert [v for _s, v in kept] == [pytest.approx(0.2), pytest.approx(0.1)]
    after = ok(server, f"{path}&since={first['token']}")
    assert after["reset"] and pairs(after["series"]["loss"]) == kept
    unknown = ok(server, f"{path}&since=t.nope.nope.1")  # another server's token: from the start, reset
    assert unknown["reset"] and pairs(unknown["series"]["loss"]) == kept


def test_a_sweep_as_a_table_and_its_scalars_in_one_call(server):
    made = ok(server, "/guild/api/runs", "POST", {"script": "train.py", "assignments": ["lr=[0.1,0.2,0.3]"],
                                                   "stage": True, "retries": 1})["runs"]
    sweep = made[0]["sweep"]
    assert sweep and {r["sweep"] for r in made} == {sweep}
    table = ok(server, f"/guild/api/sweeps/{sweep}")
    assert table["counts"] == {"staged": 3} and table["scalar"] is None and table["tags"] == []
    assert [c["key"] for c in table["columns"]] == ["flag:lr", "status", "progress", "scalar", "best"]
    # The main scalar's series asked for before the table is known: none logged yet, said so.
    early = ok(server, f"/guild/api/sweeps/{sweep}/scalars?main=1&x=step")
    assert early["main"] is None and early["series"] == {} and early["token"] is None
    waiting = server.request(f"/guild/api/sweeps/{sweep}?after_version={table['version']}&timeout=0.2")[1]
    assert waiting["version"] == table["version"]  # nothing moved: answered after the timeout, as it is
    # brief=1: the version stayed, so only what moves without it (the rows' cells, the scatter's points).
    brief = server.request(f"/guild/api/sweeps/{sweep}?after_version={table['version']}&timeout=0.2&brief=1")[1]
    assert brief == {"id": sweep, "version": table["version"], "brief": True, "hparams": table["hparams"],
                     "trials": [{"id": t["id"], "cells": t["cells"]} for t in table["trials"]]}
    ok(server, "/guild/api/queues", "POST", {"run_once": True})
    api.wait(sweep, timeout=120, store=server.home)
    moved = ok(server, f"/guild/api/sweeps/{sweep}?after_version={table['version']}&timeout=30&brief=1")
    assert moved["version"] != table["version"] and "brief" not in moved  # a new version: the whole table
    table = moved
    trials = table["trials"]
    assert len(trials) == 4 and table["title"] == "train.py · 3 trials (1 retry)"
    failed = next(t for t in trials if t["flags"]["lr"] == 0.3 and t["attempt"] == 0)
    retry = trials[trials.index(failed) + 1]  # grouped under the trial it retries
    assert retry["trial"] == failed["id"] and retry["attempt"] == 1 and retry["retry_of"] == failed["id"]
    best = next(t for t in trials if t["is_best"])
    assert table["best"] == best["id"] and best["flags"]["lr"] == 0.1
    assert table["scalar"]["best_text"] == "lowest loss" and table["statuses"] == ["completed", "error"]
    assert best["flags_hover"] == "lr=0.1" and best["cells"]["flag:lr"] == {"text": "0.1", "sort": 0.1}
    assert [a["verb"] for a in failed["actions"]] == ["output", "restart", "restage", "delete"]  # retried already
    assert table["hparams"]["flags"] == ["lr"]
    assert sorted(p["flags"]["lr"] for p in table["hparams"]["points"]) == [0.1, 0.2, 0.3, 0.3]
    answer = ok(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=epoch&points=2000")
    assert answer["done"] and set(answer["series"]) == {t["id"] for t in trials}
    for t in trials:
        run = next(r for r in api.runs(store=server.home) if r.id == t["id"])
        events = tbx_events(run.dir)
        epochs = dict(by_tag(events, "epoch"))
        assert answer["series"][t["id"]]["loss"] == [[epochs[s], v] for s, v in by_tag(events, "loss")]
    assert ok(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=epoch&since={answer['token']}")["series"] == {}
    # main=1: the table's main scalar (loss), the same points, and a token to go on from.
    main = ok(server, f"/guild/api/sweeps/{sweep}/scalars?main=1&x=epoch&points=2000")
    assert main["main"] == table["scalar"]["tag"] == "loss" and main["series"] == answer["series"]
    assert ok(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=epoch&since={main['token']}")["series"] == {}
    # brief=V: the answer also carries the table's brief (a live view's second in one request).
    with_cells = ok(server, f"/guild/api/sweeps/{sweep}/scalars?tags=loss&x=epoch&since={main['token']}"
                            f"&brief={table['version']}")
    assert with_cells["series"] == {} and with_cells["table"] == {
        "id": sweep, "version": table["version"], "brief": True, "hparams": table["hparams"],
        "trials": [{"id": t["id"], "cells": t["cells"]} for t in table["trials"]]}
    assert "table" not in main  # only when asked
    assert server.request(f"/guild/api/sweeps/{sweep}/scalars?tags=loss&brief=x")[0] == 400
    # A first read of the series makes the runs' summaries in the same pass: the table is the same either way.
    from guild_jupyter import charts

    charts.forget_summaries()
    by_summary = api.sweep_table(sweep, store=server.home)
    charts.forget_summaries()
    api.sweep_scalars(sweep, main=True, x="epoch", store=server.home)
    assert api.sweep_table(sweep, store=server.home) == by_summary
    snap = ok(server, "/guild/api/state")
    assert sweep in [s["id"] for s in snap["sweeps"]]
    listed = next(s for s in snap["sweeps"] if s["id"] == sweep)
    assert listed["open_action"]["path"] == f"sweeps/{sweep}" and listed["open_action"]["verb"] == "open-sweep"
    assert ok(server, "/guild/api/sweeps")["sweeps"][0]["id"] == sweep
    # restage from a row's action: the copy joins the sweep with the edited flag
    (restage,) = [a for a in best["actions"] if a["verb"] == "restage"]
    done = ok(server, f"/guild/api/{restage['path']}", restage["method"], {"flags": {"lr": "0.05"}})
    (copy,) = done["runs"]
    assert copy["sweep"] == sweep and copy["flags"]["lr"] == 0.05 and copy["status"] == "staged"
    after = ok(server, f"/guild/api/sweeps/{sweep}?after_version={table['version']}&timeout=10")
    assert copy["id"] in [t["id"] for t in after["trials"]] and after["counts"]["staged"] == 1
    api.unstage(copy["id"], store=server.home)


def test_bad_input_is_one_line_and_changes_nothing(server):
    made = ok(server, "/guild/api/runs", "POST", {"script": "train.py", "assignments": ["lr=0.15"]})["runs"]
    api.wait(made[0]["id"], timeout=60, store=server.home)
    sweep = made[0]["sweep"]
    before = state(server.home)
    cases = [
        (f"/guild/api/sweeps/s00000000", "no sweep 's00000000'"),
        (f"/guild/api/sweeps/s00000000/scalars", "no sweep 's00000000'"),
        (f"/guild/api/sweeps/nothex", "bad sweep id 'nothex'"),
        (f"/guild/api/sweeps/{sweep}/scalars?tags=loss,val_acc",
         f"no trial of sweep {sweep} logged scalar 'val_acc'; known scalars: acc, epoch, loss"),
        (f"/guild/api/sweeps/{sweep}/scalars?x=wall",
         "x axis 'wall' is neither step, time nor a logged scalar; known scalars: acc, epoch, loss"),
        (f"/guild/api/runs/{made[0]['id']}/scalars?tags=nope",
         f"run {made[0]['id'][:8]} never logged scalar 'nope'; known scalars: acc, epoch, loss"),
        (f"/guild/api/runs/{made[0]['id']}/scalars?points=1", "points must be from 2 to 100000, not 1"),
        (f"/guild/api/sweeps/{sweep}/scalars?main=1&tags=loss", "give tags or main, not both"),
        (f"/guild/api/sweeps/{sweep}?scalar=nope", f"no trial of sweep {sweep} logged scalar 'nope'"),
    ]
    for path, message in cases:
        st, body = server.request(path)
        assert st == 400, (path, st, body)
        assert body["error"].startswith(message) and "\n" not in body["error"], (path, body)
    assert state(server.home) == before
