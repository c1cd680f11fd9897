"""The panel's live parts on real runs: notices (the events of its own
``api.EventWatcher``) when a run or a whole sweep ends (a failed run's last
lines, its whole output one click away), a row's output followed while the
run runs, and the main scalar with its sparkline in the running and
finished rows."""

from __future__ import annotations

import re

import pytest

from conftest import wait_for, write_script
from guild_jupyter import api, views
from guild_jupyter.frontends.panel import Panel
from guild_jupyter.frontends.panel.markup import COLUMNS, run_html, spark_svg
from support.snapshots import group

SCRIPT = (
    "import sys, time\n"
    "n = 20\n"
    "rate = 20.0\n"
    "fail = False\n"
    "for i in range(n):\n"
    "    print(f'step: {i}', flush=True)\n"
    "    print(f'loss: {1.0 / (i + 1):.4f}', flush=True)\n"
    "    time.sleep(1.0 / rate)\n"
    "if fail:\n"
    "    raise ValueError('the model diverged')\n"
)


@pytest.fixture
def script(project):
    return write_script(project, SCRIPT)


@pytest.fixture
def make_panel(guild_home):
    made = []

    def make():
        p = Panel(refresh=None)  # no thread: the test refreshes
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def notices_of(panel, kind):
    return [n for n in panel.notice_area.notices if n["kind"] == kind + "-ended"]


def test_a_finished_and_a_failed_run_get_notices(script, make_panel):
    panel = make_panel()
    panel.refresh()
    assert panel.notice_area.notices == [] and panel.notice_area.box.layout.display == "none"
    ok = api.run(script, "n=10")[0]
    bad = api.run(script, "n=10", "fail=True")[0]
    api.wait(ok, bad, timeout=60)
    panel.refresh()
    by_id = {n["run"]: n for n in notices_of(panel, "run")}
    assert set(by_id) == {ok.id, bad.id}
    assert by_id[ok.id]["status"] == "completed" and by_id[ok.id]["tail"] == ""
    assert by_id[ok.id]["level"] == "success" and by_id[ok.id]["text"].startswith(f"{script.rsplit('/', 1)[1]} n=10 ")
    failed = by_id[bad.id]
    assert failed["status"] == "error" and failed["exit_status"] == 1 and failed["level"] == "error"
    assert failed["text"].startswith(f"ticker.py n=10 fail={views.format_flag(True)} ({bad.id[:8]}) failed after ")
    assert failed["text"].endswith(" (exit 1)")
    assert "ValueError: the model diverged" in failed["tail"]  # the last lines of its output
    assert [a["verb"] for a in failed["actions"]] == ["output"]
    assert panel.notice_area.box.layout.display == ""
    shown = [html.value for _, html, _ in panel.notice_area.rows if html.value]
    assert any("the model diverged" in h and failed["text"] in h for h in shown)  # the event's own sentence
    panel.refresh()
    assert len(notices_of(panel, "run")) == 2  # each end is noticed once

    # The whole output (the traceback) is one click away.
    row = next(r for r, _, _ in panel.notice_area.rows if r.run_id == bad.id)
    button = next(b for r, _, b in panel.notice_area.rows if r is row)
    button.click()
    assert panel.output_view.run_id == bad.id and panel.output_view.box.layout.display == ""
    assert "Traceback (most recent call last)" in panel.output_view.body.value
    assert "loss: 0.1000" in panel.output_view.body.value and "error" in panel.output_view.title.value


def test_a_whole_sweep_gets_a_notice_when_its_last_trial_ends(script, make_panel):
    trials = api.run(script, "n=3", "rate=100", "fail=[False,True,False]", stage=True)
    single = api.run(script, "n=3", stage=True)[0]  # staged apart: not in the sweep
    panel = make_panel()
    panel.refresh()
    q = api.queue(run_once=True)
    api.wait(*trials, single, timeout=90)
    q.join(timeout=30)
    panel.refresh()
    sweeps = notices_of(panel, "sweep")
    assert len(sweeps) == 1, sweeps
    sweep = sweeps[0]
    assert sorted(sweep["ids"]) == sorted(t.id for t in trials)
    assert sweep["counts"] == {"completed": 2, "error": 1} and sweep["status"] == "error"
    assert sweep["level"] == "error" and sweep["text"] == "sweep of 3 runs of ticker.py ended: 2 completed, 1 failed" \
        or sweep["text"] == "sweep of 3 runs of ticker.py ended: 1 failed, 2 completed"
    failed = next(t for t in trials if t.flags["fail"])
    assert sweep["failed"] == [failed.id] and sweep["run"] == failed.id
    assert {n["run"] for n in notices_of(panel, "run")} == {t.id for t in trials} | {single.id}
    assert any("sweep of 3 runs" in html.value for _, html, _ in panel.notice_area.rows)
    row = next(r for r, html, _ in panel.notice_area.rows if "sweep of 3 runs" in html.value)
    assert row.run_id == failed.id  # its button opens the failed trial's output


def test_a_rows_output_button_follows_the_run(script, make_panel):
    run = api.run(script, "n=60")[0]  # about 3 s
    panel = make_panel()
    panel.refresh()
    row = next(r for r in panel.groups["running"].rows if r.run_id == run.id)
    assert row.button("output") is not None
    assert all(r.button("output") is None for r in panel.groups["staged"].rows)  # no output before a start
    row.button("output").click()
    view = panel.output_view
    assert view.run_id == run.id and "following" in view.title.value
    seen = []

    def grew():
        panel.refresh()
        n = view.body.value.count("loss:")
        if not seen or n > seen[-1]:
            seen.append(n)
        return len(seen) >= 3

    wait_for(grew, timeout=30, interval=0.2, message="the output growing in the panel")
    api.wait(run, timeout=60)
    panel.refresh()
    assert view.done and "completed" in view.title.value and "following" not in view.title.value
    assert view.body.value.count("loss:") == 60 and view.text == api.output(run.id)
    view.close_button.click()
    assert view.box.layout.display == "none" and view.run_id is None


def test_the_latest_scalar_is_in_the_panel_within_one_refresh(script, make_panel):
    """A run printing ``loss:`` lines at 20 Hz: once a line is in its output,
    the panel shows that value (or a later one) within one refresh interval
    (1 s) after the supervisor's next flush of its event file (about every
    second, ``store.scalars.writer.FLUSH_SECS``)."""
    from guild_jupyter.store.scalars.writer import FLUSH_SECS

    run = api.run(script, "n=200")[0]  # 10 s at 20 Hz
    panel = make_panel()
    try:
        for _ in range(3):
            printed = wait_for(lambda: [float(v) for v in re.findall(r"loss: ([0-9.]+)", api.output(run.id))],
                               message="a loss line")
            latest = printed[-1]
            seen = []

            def shown():
                row = next(r for r in group(panel.refresh(), "running")["rows"] if r["id"] == run.id)
                seen.append(row.get("scalar"))
                return row if row.get("scalar") and row["scalar"]["value"] <= latest + 1e-6 else None

            row = wait_for(shown, timeout=FLUSH_SECS + 1.0 + 0.5, interval=0.05,
                           message=f"loss {latest} in the panel")
            assert row["scalar"]["tag"] == "loss" and isinstance(row["scalar"]["step"], int)
            assert row["spark"] and abs(row["spark"][-1] - row["scalar"]["value"]) < 1e-9
            assert row["spark_points"] == views.spark_points(row["spark"])
            html = run_html(row, "running")
            assert "loss " in html and ("gj-spark" in html) == (len(row["spark"]) >= 2)
            assert not row["spark_points"] or f"points='{row['spark_points']}'" in html
    finally:
        if run.refresh().status == "running":
            api.stop(run.id, timeout=15)


def test_scalar_and_sparkline_rendering():
    """The sparkline's geometry is the view model's (``spark_points``): the
    panel draws exactly those points, as the page and the sidebar do."""
    sp = views.spark_points
    assert sp([]) == "" and sp([1.0]) == "" and sp([None, float("nan"), 2.0]) == ""
    assert (views.SPARK_WIDTH, views.SPARK_HEIGHT) == (64, 16)
    points = sp([3.0, 2.0, 1.0, 1.5]).split()
    assert len(points) == 4
    xs = [float(p.split(",")[0]) for p in points]
    ys = [float(p.split(",")[1]) for p in points]
    assert xs == sorted(xs) and xs[0] == 1.0 and xs[-1] == 63.0
    assert ys[0] == 1.0 and ys[2] == 15.0  # the highest value at the top, the lowest at the bottom
    assert sp([2.5, 2.5, 2.5]) == "1,8 32,8 63,8"  # a flat series: mid-height
    svg = spark_svg(sp([3.0, 2.0, 1.0, 1.5]))
    assert re.search(r"points='([^']+)'", svg).group(1) == sp([3.0, 2.0, 1.0, 1.5]) and spark_svg("") == ""
    for name in ("running", "failed", "finished"):
        assert "scalar_text" in [c[0] for c in COLUMNS[name]]
    base = {"id": "a" * 32, "short_id": "a" * 8, "status": "completed", "status_text": "completed", "op": "t.py",
            "spark_points": "",
            "gpus": None, "gpus_text": "any GPU", "time": None, "time_text": "", "time_kind": "ended",
            "elapsed_text": "1s", "queue": None, "position": None, "waiting": None, "flags": {}, "varying": [],
            "label_text": ""}
    html = run_html(dict(base, scalar={"tag": "loss", "value": 0.125, "step": 7}, spark=[0.5, 0.25, 0.125],
                         spark_points=sp([0.5, 0.25, 0.125])), "finished")
    assert "loss 0.125" in html and "<polyline" in html and "at step 7" in html
    assert "gj-spark" not in run_html(base, "finished")  # a row without the keys renders as before


def test_a_run_that_starts_and_ends_between_two_looks_is_noticed_once(script, make_panel):
    panel = make_panel()
    panel.refresh()  # nothing yet
    quick = api.run(script, "n=2", "rate=100", "fail=True")[0]
    api.wait(quick, timeout=60)  # never seen running by the panel
    panel.refresh()
    assert [(n["run"], n["status"]) for n in panel.notice_area.notices] == [(quick.id, "error")]
    assert "the model diverged" in panel.notice_area.notices[0]["tail"]
    panel.refresh()
    panel.refresh()
    assert len(panel.notice_area.notices) == 1
