"""Compare: filters, sort, the best run, the flags that differ, JSON and
DataFrames, checked against the real ``guild compare --csv`` over the same
store, and bad input (an unknown sort key or scalar) as one line."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest
from IPython.core.error import UsageError

from conftest import TRAIN_PY, cli, guild, run_dirs
from guild_jupyter import api
from guild_jupyter.comparison import lower_is_better, parse_sort
from guild_jupyter.errors import BadInput
from guild_jupyter.frontends.magics import GuildMagics

OTHER_PY = "import sys\nunits = 8\nprint('acc: 0.9')\nprint('val_loss: 2.5')\nsys.exit(1)\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three train.py runs (two labelled sweep) and one other.py run that
    fails; made once, read by every test."""
    tmp = tmp_path_factory.mktemp("compare")
    home, proj = tmp / "home", tmp / "proj"
    (home / "runs").mkdir(parents=True)
    proj.mkdir()
    (proj / "train.py").write_text(TRAIN_PY)
    (proj / "other.py").write_text(OTHER_PY)
    runs = [("train.py", "lr=0.1", "--label", "sweep"), ("train.py", "lr=0.3", "--label", "sweep"),
            ("train.py", "lr=0.2", "name=b")]
    for args in runs:
        cli("run", *args, "epochs=3", "--foreground", "--store", home, cwd=proj, check=0)
    cli("run", "other.py", "--foreground", "--store", home, cwd=proj, check=1)
    return str(home)


def guild_csv(home, *args) -> list[dict]:
    p = guild("compare", "--csv", "-", *args, env={"GUILD_HOME": home})
    return list(csv.DictReader(io.StringIO(p.stdout)))


def short_ids(table) -> list[str]:
    return [r["id"][:8] for r in table.rows]


def test_the_same_runs_flags_and_scalars_as_guild(store):
    theirs = {r["run"]: r for r in guild_csv(store)}
    ours = api.compare(store=store)
    assert sorted(short_ids(ours)) == sorted(theirs)
    for row in ours.rows:
        g = theirs[row["id"][:8]]
        assert g["status"] == row["status"]
        for name, value in row["scalars"].items():
            assert float(g[name]) == pytest.approx(value, rel=1e-5)
        if "lr" in row["flags"]:
            assert float(g["lr"]) == row["flags"]["lr"]


@pytest.mark.parametrize("ours, theirs", [
    ({"op": "train.py"}, ["--operation", "train.py"]),
    ({"op": "other.py"}, ["--operation", "other.py"]),
    ({"label": "sweep"}, ["--label", "sweep"]),
    ({"status": "error"}, ["--error"]),
    ({"status": ["completed"], "label": "sweep"}, ["--completed", "--label", "sweep"]),
])
def test_filters_select_what_guild_selects(store, ours, theirs):
    expected = sorted(r["run"] for r in guild_csv(store, *theirs))
    assert expected  # every filter here selects something
    assert sorted(short_ids(api.compare(store=store, **ours))) == expected


@pytest.mark.parametrize("sort, theirs", [("loss", "--min"), ("-loss", "--max")])
def test_sort_by_a_scalar_orders_as_guild_does(store, sort, theirs):
    expected = [r["run"] for r in guild_csv(store, "--operation", "train.py", theirs, "loss")]
    table = api.compare(store=store, op="train", sort=sort)
    assert short_ids(table) == expected and len(expected) == 3
    assert table.rows[0]["best"] and not any(r["best"] for r in table.rows[1:])
    assert table.best == {"train.py": (table.rows[0]["id"], "loss", "min" if sort == "loss" else "max")}


def test_sort_by_a_flag_runs_without_the_value_last(store):
    table = api.compare(store=store, sort="-lr")
    assert [r["flags"].get("lr") for r in table.rows] == [0.3, 0.2, 0.1, None]
    table = api.compare(store=store, sort="=lr")  # =NAME: the flag, as Guild's column specs write it
    assert [r["flags"].get("lr") for r in table.rows] == [0.1, 0.2, 0.3, None]
    table = api.compare(store=store, sort="acc")
    # the first of each op that has the value: train.py logs no acc, so only other.py has a best
    assert table.rows[0]["op"] == "other.py" and table.best == {"other.py": (table.rows[0]["id"], "acc", "min")}


def test_best_run_by_the_main_scalar(store):
    table = api.compare(store=store, op="train")
    (best,) = [r for r in table.rows if r["best"]]
    assert best["flags"]["lr"] == 0.1 and table.best["train.py"][1:] == ("loss", "min")  # a loss: lowest is best
    assert "* best: " + best["id"][:8] + " (lowest loss)" in str(table)
    assert best["id"][:8] + " *" in str(table)
    assert "class='gj-best'" in table._repr_html_()
    table = api.compare(store=store, scalar="acc")
    assert [r["op"] for r in table.rows if r["best"]] == ["other.py"] and table.best["other.py"][2] == "max"
    assert lower_is_better("val_loss") and lower_is_better("train/mse") and lower_is_better("error_rate")
    assert not lower_is_better("acc") and not lower_is_better("glossary") and not lower_is_better("f1")
    assert parse_sort("-=lr") == ("lr", True, True)


def test_the_best_run_is_chosen_per_op_never_across_scripts(store):
    table = api.compare(store=store)  # both ops: each its own best, by its own main scalar
    by_op = {r["op"]: r for r in table.rows if r["best"]}
    assert set(by_op) == {"train.py", "other.py"}
    assert by_op["train.py"]["flags"]["lr"] == 0.1 and table.best["train.py"][1:] == ("loss", "min")
    assert table.best["other.py"][1:] == ("acc", "max")  # other.py logged no loss: its first scalar
    text = str(table)
    assert f"* best of train.py: {by_op['train.py']['id'][:8]} (lowest loss)" in text
    assert f"* best of other.py: {by_op['other.py']['id'][:8]} (highest acc)" in text
    rows = json.loads(cli("compare", "--json", "--store", store, check=0).stdout)
    assert sorted(r["op"] for r in rows if r["best"]) == ["other.py", "train.py"]


def test_two_scripts_logging_the_same_scalar_each_get_their_best(tmp_path):
    """The issue's case: a label shared by runs of two scripts (compare
    --label matches text, as guild compare does) never makes one script's
    run the best of the other's."""
    home, proj = tmp_path / "home", tmp_path / "proj"
    (home / "runs").mkdir(parents=True)
    proj.mkdir()
    (proj / "a.py").write_text("lr = 0.1\nprint(f'loss: {lr}')\n")
    (proj / "b.py").write_text("lr = 0.1\nprint(f'loss: {lr * 100}')\n")
    for script, lr in (("a.py", "0.1"), ("a.py", "0.5"), ("b.py", "0.2"), ("b.py", "0.3")):
        cli("run", script, f"lr={lr}", "--label", "grid", "--foreground", "--store", home, cwd=proj, check=0)
    table = api.compare(store=str(home), label="grid")
    best = {op: next(r for r in table.rows if r["id"] == b[0]) for op, b in table.best.items()}
    assert best["a.py"]["flags"]["lr"] == 0.1 and best["b.py"]["flags"]["lr"] == 0.2  # 20.0 vs a.py's 0.1
    assert [b[1:] for b in table.best.values()] == [("loss", "min"), ("loss", "min")]
    assert sum(r["best"] for r in table.rows) == 2


def test_only_the_flags_that_differ_unless_all_flags(store):
    table = api.compare(store=store, op="train")
    head, _ = table.table()
    assert head[:3] == ["run", "op", "status"]
    assert "lr" in head and "name" in head and "epochs" not in head and "sleep" not in head
    head, _ = api.compare(store=store, op="train", all_flags=True).table()
    assert {"lr", "name", "epochs", "verbose", "sleep"} <= set(head)
    one = api.compare(api.compare(store=store, op="train").rows[0]["id"], store=store)
    assert {"lr", "name", "epochs"} <= set(one.table()[0])  # one run: nothing differs, every flag shown


def test_json_and_dataframe(store):
    p = cli("compare", "--sort", "-loss", "--op", "train", "--json", "--store", store, check=0)
    rows = json.loads(p.stdout)
    assert [r["flags"]["lr"] for r in rows] == [0.3, 0.2, 0.1]
    assert [r["best"] for r in rows] == [True, False, False]
    assert rows[2]["scalars"]["loss"] == pytest.approx(0.033333, rel=1e-5) and rows[2]["steps"]["loss"] == 2
    df = api.compare(store=store, op="train", sort="loss").to_dataframe()
    assert list(df.columns) == ["run", "op", "status", "lr", "name", "loss", "best"]
    assert list(df["lr"]) == [0.1, 0.2, 0.3] and list(df["best"]) == [True, False, False]
    p = cli("compare", "--status", "completed,error", "--all-flags", "--store", store, check=0)
    assert "epochs" in p.stdout.splitlines()[0] and p.stdout.count("  train.py  ") == 3 and "other.py" in p.stdout


def test_the_magic_takes_the_same_options(store, ipython):
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    table = ipython.run_line_magic("guild", f"compare --sort -loss --op train --store {store}")
    assert [r["flags"]["lr"] for r in table.rows] == [0.3, 0.2, 0.1]
    table = ipython.run_line_magic("guild", f"compare 1:2 --all-flags --store {store}")
    assert len(table) == 2
    with pytest.raises(UsageError) as e:
        ipython.run_line_magic("guild", f"compare --sort -nope --store {store}")
    assert "\n" not in str(e.value) and "unknown sort key '-nope'" in str(e.value) and "loss" in str(e.value)


@pytest.mark.parametrize("kwargs, words", [
    ({"sort": "nope"}, ["unknown sort key 'nope'", "known scalars: acc, loss, val_loss", "flags: epochs, lr, name, sleep, units"]),
    ({"sort": "=loss"}, ["unknown sort key '=loss'"]),
    ({"sort": "-"}, ["unknown sort key '-'"]),
    ({"scalar": "accuracy"}, ["unknown scalar 'accuracy'", "known scalars: acc, loss, val_loss"]),
    ({"status": "finished"}, ["unknown status 'finished'"]),
    ({"sort": 3}, ["sort must be a string"]),
])
def test_bad_input_is_one_line_and_changes_nothing(store, kwargs, words):
    before = run_dirs(store)
    with pytest.raises(BadInput) as e:
        api.compare(store=store, **kwargs)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message
    assert run_dirs(store) == before


def test_cli_bad_sort_key_exits_2_with_one_line(store):
    p = cli("compare", "--sort", "-nope", "--store", store)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "unknown sort key '-nope'" in p.stderr and "Traceback" not in p.stderr
    assert os.path.isdir(os.path.join(store, "runs"))
