"""The real ``guild`` CLI (guildai 0.9) reads, compares and stops our runs,
and we read Guild's."""

from __future__ import annotations

import csv
import io

import pytest

from conftest import cli, guild, shown_ids, wait_for
from guild_jupyter import api

pytestmark = pytest.mark.guild


def test_guild_lists_info_compares_and_cats_our_run(project):
    cli("run", "train.py", "lr=0.25", "name=alpha", "verbose=yes", "--foreground", cwd=project, check=0)
    staged = api.run(str(project / "train.py"), "lr=0.5", stage=True)[0]
    ours = api.runs("completed")[0]

    listing = guild("runs").stdout
    line = next(ln for ln in listing.splitlines() if ours.id[:8] in ln)
    assert "train.py" in line and "completed" in line and "lr=0.25" in line and "name=alpha" in line
    line = next(ln for ln in listing.splitlines() if staged.id[:8] in ln)
    assert "staged" in line
    assert staged.id[:8] in guild("runs", "--staged").stdout
    assert ours.id[:8] not in guild("runs", "--staged").stdout

    info = guild("runs", "info", ours.id).stdout
    assert "status: completed" in info and "operation: train.py" in info
    assert "lr: 0.25" in info and "name: alpha" in info and "verbose: yes" in info
    assert "loss: 0.125" in info  # the last loss line, recorded as a scalar

    table = list(csv.DictReader(io.StringIO(guild("compare", "--csv", "-").stdout)))
    row = next(r for r in table if r["run"] == ours.id[:8])
    assert row["status"] == "completed" and float(row["lr"]) == 0.25
    assert abs(float(row["loss"]) - 0.125) < 1e-6

    assert guild("cat", "--output", ours.id).stdout == api.output(ours.id)


def test_guild_stop_terminates_our_running_run(project):
    p = cli("run", "train.py", "sleep=20", cwd=project, check=0)
    r = api.runs()[0]
    assert shown_ids(p.stdout) == [r.id[:8]] and r.status == "running"
    assert r.id[:8] in guild("runs", "--running").stdout
    guild("stop", "-y", r.id)
    wait_for(lambda: r.refresh().status != "running", timeout=30, message="guild stop takes effect")
    assert r.status == "terminated"
    assert "terminated" in guild("runs", "info", r.id).stdout


def test_we_read_guilds_runs(project):
    guild("run", "train.py", "lr=0.3", "name=from-guild", "-y", cwd=project)
    guild("run", "train.py", "lr=0.4", "--stage", "-y", cwd=project)
    listing = guild("runs").stdout.splitlines()
    ours = api.runs()
    assert len(ours) == 2
    by_status = {r.status: r for r in ours}
    done, staged = by_status["completed"], by_status["staged"]
    assert done.flags == {"lr": 0.3, "epochs": 2, "name": "from-guild", "verbose": False, "sleep": 0.0}
    assert staged.flags["lr"] == 0.4
    assert done.op_name == "train.py"
    assert any(done.id[:8] in ln and "completed" in ln for ln in listing)
    assert api.compare(done.id).rows[0]["scalars"]["loss"] == pytest.approx(0.15)
    assert "loss: 0.150000" in api.output(done.id)
