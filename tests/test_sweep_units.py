"""Sweeps as units (issue 22 item 2, and the notebook half of item 4): the
trials of one ``run`` call share a ``sweep`` attr that Guild ignores, kept
by retries and restages; rows, ``runs --json`` carry it; ``runs``,
``compare``, ``plot`` take ``--sweep`` and ``wait`` a sweep id; the sweep's
table groups retries under their trial; ``%guild sweep`` and
``sweep_view()`` show it; bad input is one line and changes nothing."""

from __future__ import annotations

import json
import os

import pytest
from IPython.core.error import UsageError

import guild_jupyter
from conftest import cli, guild, run_dirs, wait_for
from guild_jupyter import api
from guild_jupyter.errors import BadInput
from guild_jupyter.frontends.magics import GuildMagics
from guild_jupyter.sweep_display import MIME_TYPE, SweepView
from test_steps import by_tag, tbx_events

# Fails (exit 1) for lr > 0.25, after logging its epochs.
SWEEP_PY = ("import sys\nlr = 0.1\nepochs = 3\n"
            "for epoch in range(epochs):\n"
            "    print(f'epoch: {epoch}')\n"
            "    print(f'loss: {lr / (epoch + 1):.6f}')\n"
            "sys.exit(1 if lr > 0.25 else 0)\n")


@pytest.fixture
def proj(tmp_path):
    d = tmp_path / "proj"
    d.mkdir()
    (d / "train.py").write_text(SWEEP_PY)
    (d / "other.py").write_text("x = 1\nprint(f'loss: {x}')\n")
    return d


def sweeps_of(runs) -> set:
    return {r.sweep for r in runs}


def test_the_runs_of_one_call_share_a_sweep_id_guild_ignores(proj, guild_home):
    staged = api.run("train.py", "lr=[0.1,0.2,0.3]", stage=True, cwd=str(proj))
    (sweep,) = sweeps_of(staged)
    assert sweep and sweep.startswith("s") and len(sweep) == 9
    single = api.run("train.py", "lr=0.05", stage=True, cwd=str(proj))
    assert single[0].sweep not in (None, sweep)  # a single run is a sweep of one
    before = run_dirs(guild_home)
    trials = api.run("train.py", "lr=[0.1,0.2]", dry_run=True, cwd=str(proj))
    assert len(trials) == 2 and run_dirs(guild_home) == before  # a dry run writes nothing
    p = guild("runs", "info", staged[0].id[:8], env={"GUILD_HOME": str(guild_home)})
    assert "staged" in p.stdout  # Guild reads the run with our attr in it
    rows = json.loads(cli("runs", "--json", check=0).stdout)
    assert sorted(r["sweep"] for r in rows) == sorted([sweep] * 3 + [single[0].sweep])
    snap_rows = api.monitor().snapshot()["groups"]
    assert {r["sweep"] for g in snap_rows for r in g["rows"]} == {sweep, single[0].sweep}
    listed = cli("runs", "--sweep", sweep, check=0).stdout
    assert sorted(line.split()[0][-9:-1] for line in listed.splitlines()) == sorted(r.id[:8] for r in staged)
    assert {r.id for r in api.runs(sweep=sweep)} == {r.id for r in staged}


def test_retries_and_restages_keep_their_origins_sweep(proj, guild_home):
    runs = api.run("train.py", "lr=[0.1,0.3]", stage=True, retries=1, cwd=str(proj))
    sweep = runs[0].sweep
    q = api.queue("run-once=yes", store=str(guild_home))
    # the lr=0.3 trial fails, is retried once by the queue, fails again
    wait_for(lambda: len(api.runs(sweep=sweep)) == 3 and all(
        r.status in ("completed", "error") for r in api.runs(sweep=sweep)), timeout=60, message="the retry to end")
    assert q.join(60), "the run-once queue did not end"  # else it may claim the runs staged below
    members = api.runs(sweep=sweep)
    (retry,) = [r for r in members if r.get("retry_of")]
    failed = next(r for r in members if r.id == retry.get("retry_of"))
    assert retry.sweep == sweep and failed.flags["lr"] == 0.3
    restaged = api.restage(failed.id, "lr=0.05")
    assert restaged[0].sweep == sweep and restaged[0].get("restage_of") == failed.id
    by_hand = api.retry(retry.id)
    assert by_hand[0].sweep == sweep
    table = api.sweep_table(sweep)
    ids = [t["id"] for t in table["trials"]]
    # trials in the order made, each followed by its retries
    assert ids.index(retry.id) == ids.index(failed.id) + 1 and ids.index(by_hand[0].id) == ids.index(retry.id) + 1
    rows = {t["id"]: t for t in table["trials"]}
    assert rows[retry.id]["trial"] == failed.id and rows[retry.id]["attempt"] == 1
    assert rows[retry.id]["retry_text"] == f"retry 1/1 of {failed.id[:8]}"
    assert rows[by_hand[0].id]["attempt"] == 2 and rows[restaged[0].id]["attempt"] == 0
    assert table["title"] == "train.py · 3 trials (2 retries)"
    assert table["columns"][0] == {"key": "flag:lr", "title": "lr", "kind": "flag"}
    assert "flag:epochs" not in {c["key"] for c in table["columns"]}  # constant: not a column
    best = rows[table["best"]]
    assert best["flags"]["lr"] == 0.1 and best["is_best"] and sum(t["is_best"] for t in table["trials"]) == 1
    assert table["scalar"] == {"tag": "loss", "direction": "min", "best_text": "lowest loss"}
    assert best["cells"]["progress"]["text"].startswith("epoch 3/3")
    assert best["cells"]["scalar"]["sort"] == pytest.approx(0.033333, rel=1e-6)
    assert best["cells"]["best"]["sort"] == pytest.approx(0.033333, rel=1e-6)
    assert table["tags"] == ["epoch", "loss"] and table["x_axes"] == ["step", "time", "epoch", "loss"]
    assert table["counts"] == {"error": 2, "completed": 1, "staged": 2}


def test_a_viewers_table_sees_attrs_the_index_does_not_list_when_written(proj, guild_home):
    """A viewer asking every second (``exact=False``) is served runs kept
    from its last ask while the index's entry of each holds: an attr the
    index does not list (here the Dask worker a row names), written after,
    shows in the next table, not a run of the kept one's stale reads."""
    staged = api.run("train.py", "lr=[0.1,0.2]", stage=True, cwd=str(proj))
    sweep = staged[0].sweep
    for _ in range(2):  # the second: the runs kept from the first
        rows = {t["id"]: t for t in api.sweep_table(sweep, exact=False)["trials"]}
        assert set(rows) == {r.id for r in staged} and not any("worker" in t for t in rows.values())
    staged[0].write_attr("dask_worker", "tcp://127.0.0.1:40001")
    staged[0].write_attr("dask_host", "node-a")
    rows = {t["id"]: t for t in api.sweep_table(sweep, exact=False)["trials"]}
    assert rows[staged[0].id]["worker"] == "tcp://127.0.0.1:40001" and rows[staged[0].id]["worker_host"] == "node-a"
    assert "worker" not in rows[staged[1].id]


def test_runs_compare_plot_and_wait_take_a_sweep(proj, guild_home):
    sweep_runs = api.run("train.py", "lr=[0.1,0.2]", stage=True, cwd=str(proj))
    sweep = sweep_runs[0].sweep
    other = api.run("other.py", stage=True, cwd=str(proj))
    api.queue("run-once=yes", store=str(guild_home))
    p = cli("wait", sweep, "--timeout", "60", check=0)
    assert p.returncode == 0
    assert all(r.status == "completed" for r in api.runs(sweep=sweep))
    api.wait(other[0].id, timeout=60)
    table = api.compare(sweep=sweep)
    assert {r["id"] for r in table.rows} == {r.id for r in sweep_runs}
    assert {r["id"] for r in api.compare(sweep, store=str(guild_home)).rows} == {r.id for r in sweep_runs}
    out = cli("compare", "--sweep", sweep, check=0).stdout
    assert "other.py" not in out and "* best: " in out and "(lowest loss)" in out
    fig = api.plot(sweep=sweep, x="epoch")
    lines = {line.get_label().split()[0]: line for line in fig.axes[0].get_lines()}
    assert sorted(lines) == sorted(r.id[:8] for r in sweep_runs)
    for r in sweep_runs:
        epochs = dict(by_tag(tbx_events(r.dir), "epoch"))
        losses = by_tag(tbx_events(r.dir), "loss")
        assert list(lines[r.id[:8]].get_xdata()) == [epochs[s] for s, _v in losses]
        assert list(lines[r.id[:8]].get_ydata()) == [v for _s, v in losses]
    png = proj / "sweep.png"
    p = cli("plot", "--sweep", sweep, "--x", "epoch", "--output", png, check=0)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_an_unknown_sweep_is_one_line_and_changes_nothing(proj, guild_home):
    made = api.run("train.py", "lr=[0.1,0.2]", stage=True, cwd=str(proj))
    before = run_dirs(guild_home)
    for args in (("runs", "--sweep", "s00000000"), ("compare", "--sweep", "s00000000"), ("wait", "s00000000"),
                 ("plot", "--sweep", "s00000000", "--output", proj / "x.png"), ("sweep", "s00000000"),
                 ("sweep", "sxyz")):
        p = cli(*args)
        assert p.returncode == 2 and p.stderr.count("\n") == 1, (args, p.stderr)
        assert "s00000000" in p.stderr or "sxyz" in p.stderr
    p = cli("runs", "--sweep", "s00000000")
    assert f"newest sweeps: {made[0].sweep}" in p.stderr
    with pytest.raises(BadInput, match="no sweep 's00000000'"):
        api.sweep_view("s00000000")
    with pytest.raises(BadInput, match="known scalars: \\(none yet\\)"):
        api.sweep_table(made[0].sweep, scalar="loss")  # staged: nothing logged yet
    assert run_dirs(guild_home) == before and not (proj / "x.png").exists()


def test_the_sweep_verb_and_its_python_twin(proj, guild_home, ipython):
    made = api.run("train.py", "lr=[0.1,0.2]", cwd=str(proj), foreground=True, stream=open(os.devnull, "w"))
    sweep = made[0].sweep
    view = guild_jupyter.sweep_view()  # default: this process's newest run call
    assert isinstance(view, SweepView) and view.id == sweep
    bundle = view._repr_mimebundle_()
    assert bundle[MIME_TYPE] == {"sweep": sweep, "store": str(guild_home), "title": "train.py · 2 trials"}
    assert "<table>" in bundle["text/html"] and "data:image/png;base64," in bundle["text/html"]
    assert bundle["text/plain"].startswith(f"sweep {sweep} · train.py · 2 trials · 2 completed · * best: ")
    text = cli("sweep", sweep, check=0).stdout
    assert text.splitlines()[1].split() == ["run", "lr", "status", "progress", "loss", "best", "loss"]
    assert json.loads(cli("sweep", sweep, "--json", check=0).stdout)["id"] == sweep
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    shown = ipython.run_line_magic("guild", f"sweep {sweep}")
    data, _meta = ipython.display_formatter.format(shown)
    assert data[MIME_TYPE]["sweep"] == sweep and "text/html" in data
    with pytest.raises(UsageError) as e:
        ipython.run_line_magic("guild", "sweep s00000000")
    assert "\n" not in str(e.value)


def test_sweep_ended_names_its_sweep(proj, guild_home):
    watcher = api.EventWatcher(api.monitor(store=str(guild_home)))
    watcher.look(refresh=True)  # learns the (empty) store
    made = api.run("train.py", "lr=[0.1,0.3]", stage=True, retries=1, cwd=str(proj))
    q = api.queue("run-once=yes", store=str(guild_home))
    done = api.wait(made[0].sweep, timeout=60)  # the retry staged meanwhile included
    assert len(done) == 3 and sum(bool(r.get("retry_of")) for r in done) == 1
    events = []
    wait_for(lambda: events.extend(watcher.look(refresh=True)) or any(e["kind"] == "sweep-ended" for e in events),
             timeout=30, message="sweep-ended")
    (ended,) = [e for e in events if e["kind"] == "sweep-ended"]
    # each trial counted once, as its last attempt ended; every run of the sweep named
    assert ended["sweep"] == made[0].sweep and ended["counts"] == {"completed": 1, "error": 1}
    assert sorted(ended["ids"]) == sorted(r.id for r in done)
    assert q.join(60), "the run-once queue did not end"
    assert ended["text"] in ("sweep of 2 runs of train.py ended: 1 completed, 1 failed (after 1 retry)",
                             "sweep of 2 runs of train.py ended: 1 failed, 1 completed (after 1 retry)")
    snap = api.monitor(store=str(guild_home)).snapshot()
    (listed,) = snap["sweeps"]
    assert listed["id"] == made[0].sweep and listed["open_action"]["path"] == f"sweeps/{made[0].sweep}"
    assert listed["title"] == "train.py · 3 runs" and listed["summary_text"] == "1 completed · 2 failed"


def test_the_sweep_fixtures_have_the_shape_the_code_produces(tmp_path):
    """``tests/fixtures/sweep_table.json`` and ``sweep_scalars.json`` (what the
    browser's tests render) against a sweep made now: the same field names."""
    from support.sweep_store import build_sweep
    from support.viewmodel_store import key_paths

    home, project = tmp_path / "h", tmp_path / "p"
    home.mkdir()
    project.mkdir()
    table, scalars = build_sweep(str(home), str(project))
    fixtures = os.path.join(os.path.dirname(__file__), "fixtures")
    for name, made in (("sweep_table.json", table), ("sweep_scalars.json", scalars)):
        with open(os.path.join(fixtures, name)) as f:
            saved = json.load(f)
        # run ids are keys of series: compare the shape below them
        norm = (lambda d: {**d, "series": {"RUN": next(iter(d["series"].values()))}}) if "series" in made else None
        a, b = (key_paths(norm(made)), key_paths(norm(saved))) if norm else (key_paths(made), key_paths(saved))
        assert a == b, f"regenerate: scripts/make-viewmodel-fixtures.py ({name}: {a ^ b})"
    (retry,) = [t for t in table["trials"] if t["attempt"] == 1]
    ids = [t["id"] for t in table["trials"]]
    assert len(ids) == 4 and ids.index(retry["id"]) == ids.index(retry["trial"]) + 1


def test_sweep_ids_complete_where_a_sweep_goes(proj, guild_home):
    from guild_jupyter.frontends import completion
    from guild_jupyter.frontends.argspec import LINE

    older = api.run("train.py", "lr=[0.1,0.2]", stage=True, cwd=str(proj))[0].sweep
    newer = api.run("train.py", "lr=0.3", stage=True, cwd=str(proj))[0].sweep
    assert completion.complete("sweep ", LINE)[1][:2] == [newer, older]  # newest first, a single run's too
    assert completion.complete(f"runs --sweep {older[:4]}", LINE)[1] == [s for s in (newer, older)
                                                                         if s.startswith(older[:4])]
    assert completion.complete("compare --sweep s", LINE)[1][:2] == [newer, older]
