"""The status panel in process: a real temp store with runs in every status,
the widgets built against it, and their buttons clicked (``Button.click()``
is what the kernel does when the browser's click arrives)."""

from __future__ import annotations

import html
import io
import json
import os
import shutil
import textwrap
import time
import uuid

import psutil
import pytest

from conftest import wait_for
from guild_jupyter import api
from guild_jupyter.errors import WrongState
from guild_jupyter.gpus.nvml import NvmlProbe
from guild_jupyter.gpus.fake import FakeNvml
from guild_jupyter.frontends.panel import Panel, panel
from guild_jupyter.store.index import RunIndex
from guild_jupyter.store.store import Store
from support.snapshots import group, rows

SLEEP_PY = textwrap.dedent(
    """\
    import time
    secs = 60.0
    lr = 0.1
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        time.sleep(0.05)
    print("loss: 0.5")
    """
)
FAIL_PY = "import sys\ncode = 3\nsys.exit(code)\n"


@pytest.fixture
def scripts(tmp_path):
    d = tmp_path / "scripts"
    d.mkdir()
    (d / "sleep.py").write_text(SLEEP_PY)
    (d / "fail.py").write_text(FAIL_PY)
    return d


@pytest.fixture
def store(guild_home):
    st = Store(str(guild_home))
    yield st
    # Never leave a run or a queue behind.
    for q in api.queues(store=st):
        if q.this_process:
            try:
                api.stop(q.id, store=st, wait=False)
            except WrongState:  # a run-once queue that ended between the listing and the stop
                pass
    api.stop(all=True, store=st, timeout=15)


def fake_probe(*devices):
    """NVML as ``pynvml`` would answer it, on a machine without a GPU."""
    return NvmlProbe(nvml=FakeNvml(devices))


def gpu(name, pids=(), used=2 * 2**30, total=16 * 2**30, util=37):
    """An NVML-shaped device dict for ``FakeNvml``."""
    return {"name": name, "uuid": f"GPU-{name.replace(' ', '-')}", "memory": {"total": total, "used": used},
            "utilization": {"gpu": util}, "processes": [{"pid": p, "usedGpuMemory": 2**30} for p in pids]}


def _stage(scripts, *assignments, gpus=None, store=None):
    return api.run(str(scripts / "sleep.py"), *assignments, gpus=gpus, stage=True, store=store)[0]


def _start(scripts, secs=60, store=None):
    return api.run(str(scripts / "sleep.py"), f"secs={secs}", store=store)[0]


def _finish(scripts, name="sleep.py", *assignments, store=None):
    return api.run(str(scripts / name), *assignments, foreground=True, stream=io.StringIO(), store=store)[0]


def _every_status(scripts, store):
    """One run (at least) in every status; returns them by name."""
    runs = {
        "staged": _stage(scripts, "secs=1", store=store),
        "staged_gpu2": _stage(scripts, "secs=1", gpus="2", store=store),
        "pending": _claimed(_stage(scripts, "secs=1", store=store), store),
        "running": _start(scripts, store=store),
        "completed": _finish(scripts, "sleep.py", "secs=0", store=store),
        "error": _finish(scripts, "fail.py", store=store),
        "terminated": _stage(scripts, "secs=1", store=store),
    }
    api.unstage(runs["terminated"].id, store=store)
    return runs


def _claimed(run, store):
    """A pending run: claimed by this (live) process, as a queue claims one."""
    from guild_jupyter.store import transitions

    transitions.claim(api.resolve_store(store), run, transitions.Claim.by_this_process())
    return run.refresh()


def _rows(p: Panel, group: str) -> list[dict]:
    return rows(p.snapshot, group)


def _row_widget(p: Panel, group: str, run_id: str):
    for row in p.groups[group].rows:
        if row.run_id == run_id:
            return row
    raise AssertionError(f"run {run_id[:8]} not shown in {group}: {[r.run_id for r in p.groups[group].rows]}")


def _confirmed_click(row, verb: str = "stop") -> None:
    """A stop takes two clicks: the first arms "Confirm stop"."""
    button = row.button(verb)
    button.click()
    assert button.description == f"Confirm {verb}"
    button.click()


def _settle_bindings(p: Panel) -> None:
    """Clicks right after a row changed runs are refused on purpose (the user
    may have aimed at the previous run); tests click as a person would, later."""
    for rows in [p.queue_rows] + [g.rows for g in p.groups.values()]:
        for r in rows:
            r.bound_at -= 10


def test_rows_counts_and_waiting_reasons(scripts, store):
    runs = _every_status(scripts, store)
    child = wait_for(lambda: psutil.Process(runs["running"].lock_pid()).children(), message="run's process")[0]
    probe = fake_probe(gpu("Fake GPU 0", pids=[child.pid]), gpu("Fake GPU 1", util=3))
    p = panel(store=store.home, refresh=0, probe=probe, display=False)
    try:
        snap = p.refresh()
        json.dumps(snap)  # the web page gets it as is
        c = snap["counts"]
        assert (c["staged"], c["pending"], c["running"], c["completed"], c["error"], c["terminated"], c["unstaged"]) == (
            2, 1, 1, 1, 1, 0, 1)
        assert [r["id"] for r in _rows(p, "staged")] == [runs["staged"].id, runs["staged_gpu2"].id]  # start order
        assert [r["id"] for r in _rows(p, "running")] == [runs["running"].id]
        assert [r["id"] for r in _rows(p, "pending")] == [runs["pending"].id]
        finished = {r["id"]: r["status"] for r in _rows(p, "finished")}
        assert finished == {runs["completed"].id: "completed",
                            runs["terminated"].id: "unstaged"}  # taken off the queue: never started
        assert [(r["id"], r["status_text"]) for r in _rows(p, "failed")] == [(runs["error"].id, "error (exit 3)")]
        assert p.groups["failed"].open and not p.groups["finished"].open  # a failed run is seen at once
        assert p.groups["failed"].body.layout.display == "" and p.groups["finished"].body.layout.display == "none"
        unstaged = next(r for r in _rows(p, "finished") if r["id"] == runs["terminated"].id)
        assert unstaged["elapsed"] is None and unstaged["elapsed_text"] == "" and unstaged["guild_status"] == "terminated"
        staged = _rows(p, "staged")
        assert [r["waiting"] for r in staged] == ["no queue is running"] * 2
        assert staged[1]["gpus"] == "2" and staged[0]["flags"] == {"secs": 1, "lr": 0.1}
        # The widgets show the same rows, with the run's op, flags and status.
        html = _row_widget(p, "running", runs["running"].id).html.value
        assert runs["running"].id[:8] in html and "sleep.py" in html and "running" in html and "secs=60" in html
        assert "no queue is running" in _row_widget(p, "staged", runs["staged"].id).html.value
        assert snap["summary_text"] == "1 running · 1 pending · 2 staged · 1 failed" and snap["attention"] == 1
        assert snap["summary_text"] in p.header.value
        # GPUs: name, memory, utilization and the run whose process NVML reports.
        gpus = snap["gpus"]
        assert gpus["available"] and [d["index"] for d in gpus["devices"]] == [0, 1]
        assert [r["id"] for r in gpus["devices"][0]["runs"]] == [runs["running"].id]
        assert gpus["devices"][1]["runs"] == []
        assert gpus["devices"][0]["text"] == "GPU 0 · Fake GPU 0" and gpus["devices"][0]["utilization_text"] == "37 %"
        assert gpus["devices"][0]["memory_text"] == "2.0/16 GiB" and gpus["devices"][1]["runs_text"] == "no runs"
        assert gpus["devices"][0]["runs_text"] == f"{runs['running'].id[:8]} (sleep.py)"
        for text in ("GPU 0 · Fake GPU 0", "37 %", "2.0/16 GiB", runs["running"].id[:8]):
            assert text in p.gpus_html.value

        # A queue that waits for running runs, unpinned: one reason each.
        q = api.queue("wait-for-running=yes", store=store)
        snap = p.refresh()
        assert [(x["id"], x["host"], x["this_process"], x["gpus"], x["state"]) for x in snap["queues"]] == [
            (q.id, "thread", True, None, "waiting")]
        reasons = [r["waiting"] for r in _rows(p, "staged")]
        assert reasons == ["waiting for running runs to end (wait-for-running)", "no queue serves runs for GPU 2"]
        qrow = p.queue_rows[0]
        assert qrow.run_id == q.id and "thread (this kernel)" in qrow.html.value
        assert "<b>Queues</b> (1)" in p.queues_title.value
        # Stop the queue from its row.
        _settle_bindings(p)
        _confirmed_click(qrow)
        assert f"queue {q.id[:8]}" in p.feedback.value and "#c62828" not in p.feedback.value  # stopping, or stopped
        assert q.join(15)
        wait_for(lambda: not p.refresh()["queues"], timeout=10, message="queue gone from the panel")
        assert f"queue {q.id[:8]} stopped by you" in p.feedback.value
        assert p.queue_rows[0].box.layout.display == "none"
        assert store.run(q.id).status == "terminated"
    finally:
        p.close()


def test_buttons_change_the_store(scripts, store):
    staged = _stage(scripts, "secs=0", store=store)
    pinned = _stage(scripts, "secs=0", gpus="2", store=store)
    running = _start(scripts, store=store)
    p = panel(store=store, refresh=0, probe=fake_probe(), display=False)
    try:
        p.refresh()
        _settle_bindings(p)
        # stop -> terminated
        row = _row_widget(p, "running", running.id)
        row.button("stop").click()  # the first click only arms the stop
        assert row.button("stop").description == "Confirm stop" and store.run(running.id).status == "running"
        assert f"Stop run {running.id[:8]}?" in p.feedback.value  # what it will do
        row.button("stop").click()
        assert f"run {running.id[:8]}" in p.feedback.value and "#c62828" not in p.feedback.value  # stopping, or stopped
        wait_for(lambda: store.run(running.id).status == "terminated", timeout=15, message="run terminated")
        wait_for(lambda: running.id in {r["id"] for r in group(p.refresh(), "finished")["rows"]}, timeout=5,
                 message="stopped run listed as finished")
        assert f"run {running.id[:8]} stopped by you" in p.feedback.value  # the outcome follows "stopping"
        # unstage -> terminated (never started), gone from the staged list
        _settle_bindings(p)
        _row_widget(p, "staged", staged.id).button("unstage").click()
        assert "unstaged run" in p.feedback.value
        r = store.run(staged.id)
        assert r.status == "terminated" and r.started is not None and r.exit_status == -15
        assert staged.id not in {x["id"] for x in _rows(p, "staged")}
        # An action on a run that changed meanwhile: an error in the panel, nothing changed.
        row = _row_widget(p, "staged", pinned.id)
        _settle_bindings(p)
        api.unstage(pinned.id, store=store)
        row.button("unstage").click()
        assert "cannot unstage run" in p.feedback.value and "not staged" in p.feedback.value
        assert "#c62828" in p.feedback.value  # shown as an error
        # Start a queue from the form: a bad GPU spec is refused in the panel...
        n_runs = len(store.run_ids())
        p.queue_gpus.value = "x"
        p.queue_start.click()
        assert "cannot start the queue" in p.feedback.value
        assert len(store.run_ids()) == n_runs
        # ... so are bad queue flags ...
        p.queue_gpus.value = "2"
        p.queue_fields["max-running"].value = "0"
        p.queue_start.click()
        assert "cannot start the queue" in p.feedback.value and "max-running" in p.feedback.value
        assert len(store.run_ids()) == n_runs
        p.queue_fields["max-running"].value = "10001"  # past its bound: refused, not clamped
        p.queue_start.click()
        assert "bad value for max-running" in p.feedback.value and "from 1 to 10000" in p.feedback.value
        assert len(store.run_ids()) == n_runs
        # The form is the queue-flag table's: one field per flag, in its order, hinting its range.
        assert list(p.queue_fields) == list(api.QUEUE_FLAGS)
        assert "from 0.1 to 86400" in p.queue_fields["poll-interval"].placeholder
        # ... a good one starts (run-once: it starts the pinned run, then exits), with the flags given.
        again = _stage(scripts, "secs=0", gpus="2", store=store)
        p.queue_fields["max-running"].value = "2"
        p.queue_fields["retries"].value = "1"
        p.queue_run_once.value = True
        p.queue_start.click()
        assert "started queue" in p.feedback.value, p.feedback.value
        wait_for(lambda: store.run(again.id).status == "completed", timeout=30, message="queue ran the pinned run")
        (q,) = [r for r in store.runs() if r.is_queue and r.flags.get("gpus") == "2"]
        assert q.flags["max-running"] == 2 and q.flags["retries"] == 1
    finally:
        p.close()


def test_rows_that_just_changed_refuse_clicks(scripts, store):
    first = _stage(scripts, store=store)
    second = _stage(scripts, store=store)
    p = panel(store=store, refresh=0, probe=fake_probe(), display=False)
    try:
        row = p.groups["staged"].rows[0]
        assert row.run_id == first.id  # it appeared: no run was shown there before
        api.unstage(first.id, store=store)
        p.refresh()
        assert row.run_id == second.id  # it now shows another run than a moment ago
        row.button("unstage").click()
        assert "the list just changed" in p.feedback.value
        assert store.run(second.id).status == "staged"
        row.bound_at -= 10  # a moment later the same click works
        row.button("unstage").click()
        assert f"unstaged run {second.id[:8]}" in p.feedback.value
        assert store.run(second.id).status == "terminated"
    finally:
        p.close()


def test_live_refresh_and_close_stops_the_thread(scripts, store):
    """The panel's own thread refreshes it: a run staged after it started is
    shown without a refresh() by hand. (How soon -- the refresh every second
    -- is measured in bench/bench_latencies.py, not here.)"""
    p = panel(store=store, probe=fake_probe(), display=False)  # default: refresh every second
    try:
        wait_for(lambda: p.snapshot is not None, timeout=10, message="first refresh")
        first = p.snapshot
        r = _stage(scripts, store=store)
        wait_for(lambda: any(row.run_id == r.id for row in p.groups["staged"].rows), timeout=30,
                 interval=0.01, message="staged run shown")
        assert p.snapshot is not first  # a later refresh, made by the thread
        # Not through the change token: a queue-less state change (a run that
        # ends on its own) shows up too.
        running = _start(scripts, secs=0.5, store=store)
        wait_for(lambda: running.id in {x["id"] for x in group(p.snapshot, "finished")["rows"]}, timeout=5,
                 message="finished run shown")
        thread = p._thread
        assert thread.is_alive()
    finally:
        p.close()
    assert not thread.is_alive()
    assert p.comm is None and p.closed
    assert all(row.box.comm is None for row in p.groups["staged"].rows)


def test_paging_bounds_the_rows(scripts, store, guild_home):
    done = _finish(scripts, "sleep.py", "secs=0", store=store)
    for i in range(24):  # copies of a finished run, as a big store has them
        dest = os.path.join(store.runs_dir, uuid.uuid4().hex)
        shutil.copytree(done.dir, dest)
    p = panel(store=store, refresh=0, page_size=10, probe=fake_probe(), display=False)
    try:
        snap = p.refresh()
        g = group(snap, "finished")
        assert (g["total"], g["pages"], g["page"], len(g["rows"])) == (25, 3, 0, 10)
        view = p.groups["finished"]
        assert view.pager.layout.display == "" and "1–10 of 25" in view.page_label.value
        first = {r["id"] for r in g["rows"]}
        view.next.click()
        view.next.click()
        g = group(p.snapshot, "finished")
        assert g["page"] == 2 and len(g["rows"]) == 5 and not first & {r["id"] for r in g["rows"]}
        assert view.next.disabled and [r.box.layout.display for r in view.rows].count("none") == 5
        view.next.click()  # clamped
        assert group(p.snapshot, "finished")["page"] == 2
    finally:
        p.close()


def test_no_gpu_is_a_state_not_an_error(store):
    no_nvml = NvmlProbe(nvml=FakeNvml(init_error="NVML Shared Library Not Found"))
    p = panel(store=store, refresh=0, probe=no_nvml, display=False)
    try:
        snap = p.refresh()
        assert snap["gpus"]["available"] is False and snap["gpus"]["devices"] == []
        assert "no NVIDIA GPU found" in p.gpus_html.value and "Shared Library Not Found" in p.gpus_html.value
    finally:
        p.close()

    class Exploding:
        def read(self):
            raise RuntimeError("driver fell over")

    snap = api.monitor(store, probe=Exploding()).snapshot()
    assert snap["gpus"]["available"] is False and "driver fell over" in snap["gpus"]["error"]


def _age(run_dir, seconds=10):
    """Moves a run's stamp (.guild, attrs/ and every file in them) into the
    past, as if written long ago: past the settle window of coarse mtimes."""
    past = time.time_ns() - seconds * 1_000_000_000
    g = os.path.join(run_dir, ".guild")
    for root, _dirs, files in os.walk(g, topdown=False):
        for name in files:
            os.utime(os.path.join(root, name), ns=(past, past))
        os.utime(root, ns=(past, past))


def test_index_rereads_only_changed_runs(scripts, store):
    a = _stage(scripts, store=store)
    b = _finish(scripts, "sleep.py", "secs=0", store=store)
    _age(a.dir)
    _age(b.dir)
    index = RunIndex(store)
    index.update(full=True)
    ea, eb = index.entries[a.id], index.entries[b.id]
    index.update(full=True)
    assert index.entries[a.id] is ea and index.entries[b.id] is eb
    version = index.version
    api.unstage(a.id, store=store)
    assert index.update()
    assert index.entries[a.id].status == "terminated" and index.entries[b.id] is eb
    assert index.version > version
    shutil.rmtree(b.dir)
    index.update()
    assert b.id not in index.entries


def test_the_real_guild_cli_never_outwits_the_index(scripts, store):
    """``guild label`` rewrites the label file in place (no directory time
    moves); ``guild runs rm`` / ``restore`` move the run out and back. Each
    shows in the panel's next refresh, the CLI listing's too."""
    from conftest import guild

    done = _finish(scripts, "sleep.py", "secs=0", store=store)
    other = _finish(scripts, "sleep.py", "secs=0", "lr=0.2", store=store)
    for r in (done, other):
        _age(r.dir)
    p = panel(store=store, refresh=0, probe=fake_probe(), display=False)
    try:
        def shown(run_id):
            return {r["id"]: r for r in group(p.refresh(), "finished")["rows"]}.get(run_id)

        assert shown(done.id)["label"] == "lr=0.1 secs=0"
        for text in ("x", "y"):  # a second label of the same length: only the file's own mtime moves
            guild("label", done.id, "--set", text, "-y")
            row = shown(done.id)
            assert row["label"] == text and row["label_text"] == text, row
            assert api.runs(store=store)[1 if api.runs(store=store)[0].id == other.id else 0].label == text
        guild("label", done.id, "--clear", "-y")
        assert shown(done.id)["label"] == ""
        guild("runs", "rm", other.id, "-y")
        assert shown(other.id) is None and other.id not in {r.id for r in api.runs(store=store)}
        guild("runs", "restore", other.id, "-y")
        assert shown(other.id)["status"] == "completed"
        assert other.id in {r.id for r in api.runs(store=store)}
    finally:
        p.close()


def test_restage_form_retry_and_delete_from_the_failed_group(scripts, store):
    failed = _finish(scripts, "fail.py", store=store)
    p = panel(store=store, refresh=0, probe=fake_probe(), display=False)
    try:
        p.refresh()
        _settle_bindings(p)
        row = _row_widget(p, "failed", failed.id)  # open at once: no need to expand anything
        assert [a["verb"] for a in row.actions] == ["output", "retry", "restart", "restage", "delete"]
        assert [b.description for b in row.buttons] == ["Output", "Retry", "Restart", "Restage", "Delete"]
        # restage: a form with the run's flags; a bad value shows the api's one line and writes nothing
        row.button("restage").click()
        form = p.restage_form
        assert form.box.layout.display == "" and form.run_id == failed.id
        assert [(t.description, t.value) for t in form.fields] == [("code", "3")]
        before = sorted(store.run_ids())
        form.fields[0].value = "abc"
        form.submit_button.click()
        assert "invalid value 'abc' for flag 'code'" in html.unescape(form.error.value)
        assert form.box.layout.display == ""  # the form stays, with the error in it
        assert sorted(store.run_ids()) == before  # nothing written
        form.fields[0].value = "[0,1]"  # brackets make a sweep, as on a command line
        form.submit_button.click()
        assert form.box.layout.display == "none" and form.fields == []
        copies = [r for r in store.runs() if r.get("restage_of") == failed.id]
        assert sorted(r.flags["code"] for r in copies) == [0, 1] and {r.status for r in copies} == {"staged"}
        assert f"staged 2 copies of run {failed.id[:8]}" in p.feedback.value
        # retry: a staged copy that says what it retries
        p.refresh()
        _settle_bindings(p)
        _row_widget(p, "failed", failed.id).button("retry").click()
        (retry,) = [r for r in store.runs() if r.get("retry_of") == failed.id]
        assert retry.status == "staged" and f"a retry of run {failed.id[:8]}" in p.feedback.value
        snap = p.refresh()
        assert next(r for r in rows(snap, "staged") if r["id"] == retry.id)["retry_text"] == (
            f"retry 1 of {failed.id[:8]}")
        # delete asks first, then moves the run to Guild's trash
        _settle_bindings(p)
        row = _row_widget(p, "failed", failed.id)
        _confirmed_click(row, "delete")
        assert failed.id not in store.run_ids() and "trash" in p.feedback.value
        assert os.path.isdir(os.path.join(store.home, "trash", "runs", failed.id))
    finally:
        p.close()


def test_notices_read_in_the_themes_colours(scripts, store):
    """A notice's text takes JupyterLab's own text and background colours
    (readable in the light and the dark theme); its level only colours a
    border."""
    p = panel(store=store, refresh=0, probe=fake_probe(), display=False)
    try:
        p.refresh()
        failed = _finish(scripts, "fail.py", store=store)
        p.refresh()
        (event,) = p.notice_area.notices
        shown = p.notice_area.rows[0][1].value
        assert html.escape(event["text"]) in shown and event["level"] == "error"
        assert "color:var(--jp-ui-font-color1" in shown and "background:var(--jp-layout-color1" in shown
        assert "border-left:4px solid" in shown and f"data-run='{failed.id}'" in shown
    finally:
        p.close()


def test_prioritize_form_and_a_held_run(scripts, store):
    """A staged run's "Prioritize" opens the same small form with its one
    field; a bad value shows the api's one line and writes nothing; a good
    one moves the run up the staged group. A run held for its dependency
    shows what it waits for, and can be unstaged."""
    older, newer = (api.run(str(scripts / "sleep.py"), f"secs={s}", stage=True, store=store)[0] for s in (1, 2))
    (held,) = api.run(str(scripts / "sleep.py"), "secs=3", stage=True, after=older.id, store=store)
    p = panel(store=store, refresh=0, probe=fake_probe(), display=False)
    try:
        snap = p.refresh()
        assert [r["id"] for r in rows(snap, "staged")] == [older.id, newer.id]
        (held_row,) = rows(snap, "pending")
        assert held_row["waiting_text"] == f"after {older.id[:8]} (staged)"
        p.groups["staged"].open = True
        p.refresh()
        _settle_bindings(p)
        row = _row_widget(p, "staged", newer.id)
        assert [b.description for b in row.buttons][:2] == ["Prioritize", "Unstage"]
        row.button("prioritize").click()
        form = p.restage_form
        assert form.box.layout.display == "" and form.run_id == newer.id and form.verb == "prioritize"
        assert [(t.description, t.value) for t in form.fields] == [("priority", "0")]
        form.fields[0].value = "high"
        form.submit_button.click()
        assert "priority must be a whole number" in html.unescape(form.error.value)
        assert newer.refresh().get("priority") is None  # nothing written
        form.fields[0].value = "7"
        form.submit_button.click()
        assert form.box.layout.display == "none" and newer.refresh().get("priority") == 7
        snap = p.refresh()
        staged = rows(snap, "staged")
        assert [r["id"] for r in staged] == [newer.id, older.id]
        assert staged[0]["position_text"] == "next to start · priority 7"
        p.groups["pending"].open = True
        p.refresh()
        _settle_bindings(p)
        _row_widget(p, "pending", held.id).button("unstage").click()
        assert held.refresh().status == "terminated" and held.get("unstaged") is True
    finally:
        p.close()
