"""The /guild page end to end: a real Jupyter server with the extension,
Debian's Chromium driven by Playwright. A 6-trial grid and a running run:
at 1100 px every swept value is in its row's visible text (not cut), the
statuses have their colours, staged runs say why they wait; at 700 px every
button is on screen. A stop takes two clicks ("confirm stop"); an unstaged
run reads unstaged; the message line clears itself."""

from __future__ import annotations

import pytest

from conftest import wait_for
from guild_jupyter import api, views
from support.jupyter import FAKE_GPU_ENV, chromium_page, start_guild_server

pytestmark = pytest.mark.browser

TRAIN_PY = ("import time\nbatch = 16\nepochs = 40\nlr = 0.01\nsecs = 60.0\n"
            "deadline = time.monotonic() + secs\nwhile time.monotonic() < deadline:\n    time.sleep(0.05)\n")

# Cells of a row whose content is wider than shown (cut by overflow).
CUT = """(row) => Array.from(row.querySelectorAll('td')).filter((e) => e.scrollWidth > e.clientWidth + 1)
    .map((e) => e.dataset.label + ': ' + e.textContent)"""
# Buttons (visible ones) that lie partly outside the viewport.
OFF_SCREEN = """() => Array.from(document.querySelectorAll('button')).filter((b) => b.offsetParent !== null)
    .map((b) => [b.textContent, b.getBoundingClientRect()])
    .filter(([, r]) => r.left < 0 || r.right > window.innerWidth || r.width === 0)
    .map(([t, r]) => t + ' ' + Math.round(r.left) + '..' + Math.round(r.right))"""


def test_guild_page_is_legible_at_1100_and_700_px_and_acts(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    (root / "train.py").write_text(TRAIN_PY)
    trials = api.run(str(root / "train.py"), "batch=[16,32]", "lr=[0.0001,0.0003,0.00001]", "secs=1",
                     stage=True, label="grid")
    running = api.run(str(root / "train.py"), "secs=120", gpus="0")[0]
    server = start_guild_server(tmp_path / "jupyter", guild_home, root_dir=root, env=FAKE_GPU_ENV)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        with chromium_page(server, tmp_path, {"width": 1100, "height": 1000}) as page:
            page.goto(f"{server.url}/guild?token={server.token}")
            row = page.locator(f'tr[data-run="{running.id}"][data-status="running"]')
            row.wait_for(timeout=30_000)
            for t in trials:
                page.locator(f'tr[data-run="{t.id}"][data-status="staged"]').wait_for(timeout=30_000)
            heads = page.locator("#group-staged thead").inner_text()
            assert "why it waits" in heads and "flags" in heads
            for t in trials:
                tr = page.locator(f'tr[data-run="{t.id}"]')
                text = tr.inner_text()
                for name in ("batch", "lr"):
                    assert f"{name}={views.format_flag(t.flags[name])}" in text, text
                assert "no queue is running" in text and "any GPU" in text
                assert tr.evaluate(CUT) == [], tr.evaluate(CUT)
            # Status colours: the status cell carries its status's colour.
            color = row.locator("td.st-running").evaluate("(e) => getComputedStyle(e).color")
            assert color == "rgb(46, 125, 50)", color
            assert "Fake H100" in page.locator("#gpus").inner_text()
            assert running.id[:8] in page.locator("#gpus").inner_text()  # the run on GPU 0
            page.screenshot(path=str(shots / "guild-page-1100.png"), full_page=True)

            page.set_viewport_size({"width": 700, "height": 1000})
            page.wait_for_timeout(1200)  # a refresh at the new width
            assert page.evaluate(OFF_SCREEN) == []
            assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
            for t in trials:  # still every swept value, not cut
                tr = page.locator(f'tr[data-run="{t.id}"]')
                assert f"lr={views.format_flag(t.flags['lr'])}" in tr.inner_text()
                assert tr.evaluate(CUT) == []
            page.screenshot(path=str(shots / "guild-page-700.png"), full_page=True)

            # Stop: the first click only arms it.
            row.get_by_role("button", name="stop").click()
            confirm = row.get_by_role("button", name="confirm stop")
            confirm.wait_for(timeout=5_000)
            assert running.refresh().status == "running"
            message = page.locator("#message")
            height = message.bounding_box()["height"]
            confirm.click()
            wait_for(lambda: running.refresh().status == "terminated", timeout=30, message="stopped from the page")
            page.locator(f'tr[data-run="{running.id}"][data-status="terminated"]').wait_for(timeout=30_000)
            page.locator(f'tr[data-run="{trials[0].id}"]').get_by_role("button", name="unstage").click()
            wait_for(lambda: trials[0].refresh().status == "terminated", timeout=30, message="unstaged from the page")
            page.locator(f'tr[data-run="{trials[0].id}"][data-status="unstaged"]').wait_for(timeout=30_000)
            assert message.bounding_box()["height"] == height
            assert page.evaluate(OFF_SCREEN) == []
            page.screenshot(path=str(shots / "guild-page-700-after.png"), full_page=True)
            page.wait_for_function("() => document.getElementById('message').textContent === ''", timeout=15_000)
            assert message.bounding_box()["height"] == height  # cleared without moving the page
    finally:
        server.stop()
        api.stop(all=True, timeout=15)
    print(f"screenshots: {shots}")
    assert all(p.stat().st_size > 0 for p in shots.iterdir())
