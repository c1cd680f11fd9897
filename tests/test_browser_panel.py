"""End to end in a real browser: JupyterLab from this venv, Debian's
Chromium driven by Playwright, at 1100 px wide. A notebook stages a
6-trial grid, starts one run on (fake) GPU 0 and shows the panel. The test
checks what a person reads: column headers, every swept value of every
trial visible in its row (not cut off, not under a button), the waiting
reason, one "any GPU" wording; then stops the running run (two clicks:
"confirm stop"), unstages a trial (shown as unstaged, no elapsed time), and
watches the message line clear itself without moving the rows below."""

from __future__ import annotations

import os
import sys

import pytest

from conftest import wait_for
from guild_jupyter import api, views
from guild_jupyter.store.store import Store
from support.jupyter import (FAKE_GPU_ENV, chromium_page, open_notebook, run_all_cells, start_guild_server,
                             write_notebook)

pytestmark = pytest.mark.browser

TRAIN_PY = ("import time\nbatch = 16\nepochs = 40\nlr = 0.01\nsecs = 60.0\n"
            "deadline = time.monotonic() + secs\nwhile time.monotonic() < deadline:\n    time.sleep(0.05)\n")
BATCHES = (16, 32)
LRS = ("0.0001", "0.0003", "0.00001")  # long values that look alike: the panel must show each in full

NOTEBOOK = [
    "import os, sys\n"
    "from guild_jupyter import api, panel\n"
    "def publish(name, text):  # whole or not at all: the test reads it as soon as it exists\n"
    "    with open(name + '.tmp', 'w') as f:\n"
    "        f.write(text)\n"
    "    os.replace(name + '.tmp', name)\n"
    "publish('kernel-python.txt', sys.executable)",
    f"grid = api.run('train.py', 'batch=[{','.join(map(str, BATCHES))}]', 'lr=[{','.join(LRS)}]', 'secs=1',\n"
    "               stage=True, label='grid')\n"
    "running = api.run('train.py', 'secs=120', gpus='0')[0]\n"
    "publish('runs.txt', ' '.join([running.id] + [r.id for r in grid]))",
    "p = panel()",
]

# Elements of a row whose content is cut off (wider inside than shown).
CUT = """(row) => Array.from(row.querySelectorAll('.gj-run, .gj-run > span, .widget-html-content'))
    .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.className + ': ' + e.textContent)"""
# How far the flags cell reaches past the row's button (> 0: under it).
UNDER_BUTTON = """(row) => { const f = row.querySelector('.gj-col-flags').getBoundingClientRect();
    const b = row.querySelector('button'); if (!b) return -1e9;
    const r = b.getBoundingClientRect(); return (f.top < r.bottom && f.bottom > r.top) ? f.right - r.left : -1e9; }"""


def test_panel_in_jupyterlab_is_legible_and_acts(tmp_path, guild_home):
    server = start_guild_server(tmp_path / "jupyter", guild_home, extension=None, env=FAKE_GPU_ENV)
    root = server.root_dir
    (tmp_path / "jupyter" / "root" / "train.py").write_text(TRAIN_PY)
    write_notebook(os.path.join(root, "panel.ipynb"), NOTEBOOK)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    store = Store(str(guild_home))
    try:
        with chromium_page(server, tmp_path, {"width": 1100, "height": 1300}) as page:
            open_notebook(page, server, "panel.ipynb", cells=len(NOTEBOOK))
            run_all_cells(page)
            runs_file = os.path.join(root, "runs.txt")
            wait_for(lambda: os.path.exists(runs_file), timeout=60, message="the notebook's runs")
            with open(os.path.join(root, "kernel-python.txt")) as f:
                assert f.read() == sys.executable  # the kernel runs this venv's Python
            running_id, *trial_ids = open(runs_file).read().split()
            assert len(trial_ids) == 6

            out = page.locator(".jp-OutputArea-output")  # not the cells' own source
            running_row = out.locator(".gj-running-row", has_text=running_id[:8])
            running_row.wait_for(timeout=30_000)
            for tid in trial_ids:
                out.locator(".gj-staged-row", has_text=tid[:8]).wait_for(timeout=30_000)
            page.wait_for_timeout(300)  # let the last refresh settle before measuring

            # Column headers above each group, and the waiting reason.
            staged_group = out.locator(".gj-group-staged")
            assert "why it waits" in staged_group.locator(".gj-columns").inner_text()
            assert "started" in out.locator(".gj-group-running .gj-columns").inner_text()
            # Every swept value of every trial is in its row's visible text,
            # nothing in the row is cut off, nothing lies under the button.
            for tid in trial_ids:
                flags = store.run(tid).flags
                row = out.locator(".gj-staged-row", has_text=tid[:8])
                text = row.inner_text()
                for name in ("batch", "lr"):
                    assert f"{name}={views.format_flag(flags[name])}" in text, (tid, text)
                # the swept flags come first, before the fixed ones
                assert text.index("lr=") < text.index("epochs=") and text.index("batch=") < text.index("epochs=")
                assert "no queue is running" in text
                assert "any GPU" in text
                assert row.evaluate(CUT) == [], (tid, row.evaluate(CUT))
                assert row.evaluate(UNDER_BUTTON) <= 0
            gpus = out.locator(".gj-gpus")
            gpus.filter(has_text=running_id[:8]).wait_for(timeout=10_000)  # pinned to GPU 0
            assert "Fake H100" in gpus.inner_text() and "42 %" in gpus.inner_text()
            page.screenshot(path=str(shots / "panel-1100-staged.png"), full_page=True)

            # Stop takes two clicks.
            stop = running_row.locator("button", has_text="stop")
            stop.click()
            running_row.locator("button", has_text="confirm stop").wait_for(timeout=5_000)
            assert store.run(running_id).status == "running"
            feedback = out.locator(".gj-feedback")
            height = feedback.bounding_box()["height"]
            running_row.locator("button", has_text="confirm stop").click()
            wait_for(lambda: store.run(running_id).status == "terminated", timeout=30,
                     message="the run terminated on disk")
            out.locator(".gj-group-finished .gj-group-toggle").click()  # finished runs: closed until asked
            out.locator(".gj-finished-row", has_text=running_id[:8]).filter(has_text="stopped by you").wait_for(
                timeout=10_000)
            feedback.filter(has_text=f"run {running_id[:8]} stopped by you").wait_for(timeout=10_000)
            # The message line keeps its height: nothing below it moved.
            assert feedback.bounding_box()["height"] == height

            # Unstage a trial: it reads unstaged, with no elapsed time.
            victim = trial_ids[0]
            out.locator(".gj-staged-row", has_text=victim[:8]).locator("button", has_text="unstage").click()
            wait_for(lambda: store.run(victim).status == "terminated", timeout=30, message="unstaged on disk")
            done = out.locator(".gj-finished-row", has_text=victim[:8])
            done.filter(has_text="unstaged").wait_for(timeout=10_000)
            assert done.locator(".gj-col-elapsed").inner_text().strip() == ""
            page.screenshot(path=str(shots / "panel-1100-after.png"), full_page=True)
            # The message clears itself, and the groups never moved for it.
            page.wait_for_function(
                "() => { const f = document.querySelector('.jp-OutputArea-output .gj-feedback');"
                " return f && f.innerText.trim() === ''; }", timeout=15_000)
            assert feedback.bounding_box()["height"] == height
            assert [store.run(t).status for t in trial_ids[1:]] == ["staged"] * 5
    finally:
        server.stop()
        api.stop(all=True, store=store, timeout=15)
    print(f"screenshots: {shots}")
    assert all(p.stat().st_size > 0 for p in shots.iterdir())
