"""A corrupt-store corpus: every file of a run damaged in turn (garbage,
empty, binary, missing), stray files, symlink loops and bad caches. Every
listing (API and CLI, ours and the real guild's view of the same store
aside) shows every run, the damaged one with a warning, never a traceback,
and a queue never starts a staged run whose attrs it cannot read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import TRAIN_PY
from guild_jupyter import api

pytestmark = pytest.mark.reliability

DAMAGE = {
    "garbage": b"{unclosed: [1, 2\n",
    "empty": b"",
    "binary": bytes(range(256)) * 4,
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store with one finished run and one staged run, made once."""
    tmp = tmp_path_factory.mktemp("corpus")
    home, project = tmp / "home", tmp / "project"
    home.mkdir()
    project.mkdir()
    (project / "train.py").write_text(TRAIN_PY)
    env = dict(os.environ, GUILD_HOME=str(home))
    subprocess.run([sys.executable, "-m", "guild_jupyter", "run", "train.py", "lr=0.3", "--foreground"],
                   cwd=project, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "guild_jupyter", "run", "train.py", "lr=0.4", "--stage"],
                   cwd=project, env=env, check=True, capture_output=True)
    return home


def _files(run_dir):
    names = sorted(os.listdir(os.path.join(run_dir, ".guild", "attrs")))
    return [os.path.join(".guild", "attrs", n) for n in names] + [os.path.join(".guild", "opref")]


def _cases(template_home):
    runs = sorted(os.listdir(template_home / "runs"))
    out = []
    for run_id in runs:
        for rel in _files(template_home / "runs" / run_id):
            for kind in (*DAMAGE, "missing"):
                out.append((run_id, rel, kind))
    return out


def _cli_runs(home):
    return subprocess.run([sys.executable, "-m", "guild_jupyter", "runs", "--json"], capture_output=True,
                          text=True, env=dict(os.environ, GUILD_HOME=str(home)), timeout=60)


def test_every_file_of_every_run_damaged_in_turn(template, tmp_path):
    """Each case on a fresh copy of the store: both runs still listed (API
    and CLI, exit 0, valid JSON), the intact one unchanged."""
    cases = _cases(template)
    assert len(cases) >= 40
    intact_rows = {r["id"]: r for r in json.loads(_cli_runs(template).stdout)}
    for n, (run_id, rel, kind) in enumerate(cases):
        home = tmp_path / f"case{n}"
        shutil.copytree(template, home, symlinks=True)
        path = home / "runs" / run_id / rel
        if kind == "missing":
            path.unlink()
        else:
            path.write_bytes(DAMAGE[kind])
        listed = api.runs(store=str(home))
        assert sorted(r.id for r in listed) == sorted(intact_rows), (rel, kind)
        p = _cli_runs(home)
        assert p.returncode == 0 and "Traceback" not in p.stderr, (rel, kind, p.stderr)
        rows = {r["id"]: r for r in json.loads(p.stdout)}
        assert sorted(rows) == sorted(intact_rows), (rel, kind)
        other = next(i for i in rows if i != run_id)
        for field in ("status", "label", "started", "exit_status", "flags"):
            assert rows[other][field] == intact_rows[other][field], (rel, kind, field)


def test_a_staged_run_with_unreadable_attrs_is_recorded_never_started(template, tmp_path):
    for name in ("flags", "op", "run_params"):
        for kind in DAMAGE:
            home = tmp_path / f"{name}-{kind}"
            shutil.copytree(template, home, symlinks=True)
            (staged,) = api.runs("staged", store=str(home))
            (home / "runs" / staged.id / ".guild" / "attrs" / name).write_bytes(DAMAGE[kind])
            q = api.queue(run_once=True, store=str(home))
            assert q.join(30)
            staged.refresh()
            assert staged.status == "error", (name, kind, staged.status)
            out = api.output(staged.id, store=str(home))
            assert "step:" not in out and name in out and "not started" in out, (name, kind, out)


def test_stray_files_links_and_loops_in_runs(template, tmp_path):
    home = tmp_path / "stray"
    shutil.copytree(template, home, symlinks=True)
    runs = home / "runs"
    (runs / "notes.txt").write_text("not a run\n")
    (runs / "emptydir").mkdir()
    os.symlink(runs / "nowhere", runs / "dangling")
    loop = runs / ("f" * 32)
    loop.mkdir()
    os.symlink(loop / ".guild", loop / ".guild")  # .guild is a link to itself
    (runs / ".hidden").mkdir()
    listed = api.runs(store=str(home))
    ids = {r.id for r in listed}
    assert loop.name in ids and len(ids) == 3
    looped = next(r for r in listed if r.id == loop.name)
    assert looped.status == "error" and looped.warnings
    p = _cli_runs(home)
    assert p.returncode == 0 and len(json.loads(p.stdout)) == 3


@pytest.mark.parametrize("cache", [b"", b"{", b"[]", b'{"v": 3, "runs": 5}', b'{"v": 3, "runs": {"x": 5}}',
                                   bytes(range(256)), b'{"format": 4, "count": 2, "record": "<16s7qQ3qQI4B"}\n' + bytes(300)])
def test_a_bad_listing_cache_is_rebuilt(template, tmp_path, cache):
    home = tmp_path / "cache"
    shutil.copytree(template, home, symlinks=True)
    path = home / "cache" / "guild_jupyter" / "listing.v4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cache)
    p = _cli_runs(home)
    assert p.returncode == 0 and len(json.loads(p.stdout)) == 2, p.stderr
