"""The /guild page end to end: a real Jupyter server with the extension,
Debian's Chromium driven by Playwright; the page lists a staged and a
running run, and its stop button ends the running one on disk."""

from __future__ import annotations

import json

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import launch_chromium, start_jupyter

pytestmark = pytest.mark.browser

SLEEP_PY = "import time\nsecs = 60.0\ndeadline = time.monotonic() + secs\nwhile time.monotonic() < deadline:\n    time.sleep(0.05)\n"
FAKE_GPUS = [{"name": "Fake H100", "memory": {"total": 80 * 2**30, "used": 3 * 2**30}, "utilization": {"gpu": 42}}]


def test_guild_page_lists_runs_and_stops_one(tmp_path, guild_home):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    (root / "sleep.py").write_text(SLEEP_PY)
    staged = api.run(str(root / "sleep.py"), "secs=1", stage=True)[0]
    running = api.run(str(root / "sleep.py"), "secs=120", gpus="0")[0]
    server = start_jupyter(
        tmp_path / "jupyter", root_dir=root,
        env={"GUILD_HOME": str(guild_home), "GUILD_JUPYTER_STOP_GRACE": "3",
             "GUILD_JUPYTER_FAKE_GPUS": json.dumps(FAKE_GPUS)},
        extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'],
    )
    shot = tmp_path / "guild-page.png"
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw, tmp_path / "browser")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                page.goto(f"{server.url}/guild?token={server.token}")
                page.locator(f'tr[data-run="{staged.id}"][data-status="staged"]').wait_for(timeout=30_000)
                row = page.locator(f'tr[data-run="{running.id}"][data-status="running"]')
                row.wait_for(timeout=30_000)
                assert "Fake H100" in page.locator("#gpus").inner_text()
                assert running.id[:8] in page.locator("#gpus").inner_text()  # the run on GPU 0
                row.get_by_role("button", name="stop").click()
                wait_for(lambda: running.refresh().status == "terminated", timeout=30, message="stopped from the page")
                page.locator(f'tr[data-run="{running.id}"][data-status="terminated"]').wait_for(timeout=30_000)
                page.locator(f'tr[data-run="{staged.id}"]').get_by_role("button", name="unstage").click()
                wait_for(lambda: staged.refresh().status == "terminated", timeout=30, message="unstaged from the page")
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
    finally:
        server.stop()
        if running.refresh().status == "running":
            api.stop(running.id)
    assert shot.stat().st_size > 0
