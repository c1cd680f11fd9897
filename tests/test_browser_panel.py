"""End to end in a real browser: JupyterLab from this venv, Debian's
Chromium driven by Playwright, a notebook that stages a run, starts one and
shows the panel; the test clicks the running run's stop button and checks
the run directory."""

from __future__ import annotations

import json
import os
import sys

import pytest

from conftest import wait_for
from guild_jupyter import api
from guild_jupyter.store.store import Store
from support.jupyter import launch_chromium, open_notebook, run_all_cells, start_jupyter, write_notebook

pytestmark = pytest.mark.browser

# One GPU, NVML-shaped, through the environment (no GPU on these machines).
FAKE_GPUS = [{"name": "Fake H100", "memory": {"total": 80 * 2**30, "used": 3 * 2**30}, "utilization": {"gpu": 42}}]
SLEEP_PY = "import time\nsecs = 60.0\ndeadline = time.monotonic() + secs\nwhile time.monotonic() < deadline:\n    time.sleep(0.05)\n"

NOTEBOOK = [
    "import sys\n"
    "from guild_jupyter import api\n"
    "from guild_jupyter.widgets import panel\n"
    "_ = open('kernel-python.txt', 'w').write(sys.executable)",
    "staged = api.run('sleep.py', 'secs=1', stage=True)[0]\n"
    "running = api.run('sleep.py', 'secs=120', gpus='0')[0]\n"
    "_ = open('runs.txt', 'w').write(staged.id + ' ' + running.id)",
    "p = panel()",
]


def test_panel_in_jupyterlab_stops_a_running_run(tmp_path, guild_home):
    from playwright.sync_api import sync_playwright

    server = start_jupyter(
        tmp_path / "jupyter",
        env={"GUILD_HOME": str(guild_home), "GUILD_JUPYTER_STOP_GRACE": "3",
             "GUILD_JUPYTER_FAKE_GPUS": json.dumps(FAKE_GPUS)},
    )
    root = server.root_dir
    (tmp_path / "jupyter" / "root" / "sleep.py").write_text(SLEEP_PY)
    write_notebook(os.path.join(root, "panel.ipynb"), NOTEBOOK)
    shot = tmp_path / "panel.png"
    store = Store(str(guild_home))
    try:
        status, specs = server.request("/api/kernelspecs")
        assert status == 200 and specs["default"] == "python3"
        with sync_playwright() as pw:
            browser = launch_chromium(pw, tmp_path / "browser")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                open_notebook(page, server, "panel.ipynb", cells=len(NOTEBOOK))
                run_all_cells(page)
                runs_file = os.path.join(root, "runs.txt")
                wait_for(lambda: os.path.exists(runs_file), timeout=60, message="the notebook's runs")
                with open(os.path.join(root, "kernel-python.txt")) as f:
                    assert f.read() == sys.executable  # the kernel runs this venv's Python
                staged_id, running_id = open(runs_file).read().split()

                out = page.locator(".jp-OutputArea-output")  # not the cells' own source
                staged_row = out.locator(".gj-staged-row", has_text=staged_id[:8])
                running_row = out.locator(".gj-running-row", has_text=running_id[:8])
                staged_row.wait_for(timeout=30_000)
                running_row.wait_for(timeout=30_000)
                assert "no queue is running" in staged_row.inner_text()
                assert "running" in running_row.inner_text()
                gpus = out.locator(".gj-gpus")
                gpus.filter(has_text=running_id[:8]).wait_for(timeout=10_000)  # pinned to GPU 0
                assert "Fake H100" in gpus.inner_text() and "42%" in gpus.inner_text()
                page.screenshot(path=str(tmp_path / "panel-before-stop.png"), full_page=True)

                running_row.locator("button", has_text="stop").click()
                wait_for(lambda: store.run(running_id).status == "terminated", timeout=30,
                         message="the run terminated on disk")
                assert store.run(running_id).exit_status < 0
                # The panel shows it (its refresh thread, within a second or so).
                out.locator(".gj-finished-row", has_text=running_id[:8]).filter(has_text="terminated").wait_for(
                    timeout=10_000)
                feedback = out.locator(".gj-feedback")
                feedback.filter(has_text=f"run {running_id[:8]} terminated").wait_for(timeout=10_000)
                assert store.run(staged_id).status == "staged"
                page.screenshot(path=str(shot), full_page=True)
            except BaseException:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                print(f"screenshot: {tmp_path / 'failure.png'}\nserver log:\n{server.log()[-3000:]}")
                raise
            finally:
                browser.close()
    finally:
        server.stop()
        api.stop(all=True, store=store, timeout=15)
    assert shot.stat().st_size > 0
