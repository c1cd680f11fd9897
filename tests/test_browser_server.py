"""The /guild page end to end: a real Jupyter server with the extension,
Debian's Chromium driven by Playwright, real runs; what a row says and
which buttons it has come from the server's view model (read over REST
here). A 6-trial grid and a running run: at 1100 px every row shows its
words (every swept value of its title, whole) and nothing is cut; at 700 px
the rows are cards and every button is on screen. A stop takes two clicks
(the action asks first); an unstaged run reads as the server says; the
message line clears itself without moving the page."""

from __future__ import annotations

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.fixture_server import row_of
from support.jupyter import FAKE_GPU_ENV, chromium_page, start_guild_server
from support.lab import cut_report

pytestmark = pytest.mark.browser

TRAIN_PY = ("import time\nbatch = 16\nepochs = 40\nlr = 0.01\nsecs = 60.0\n"
            "deadline = time.monotonic() + secs\nwhile time.monotonic() < deadline:\n    time.sleep(0.05)\n")
PAGE = ".gj-page"
#: Fields of a row that stay the same while the page is looked at.
STEADY_WORDS = ("title", "subtitle", "label_text", "gpus_text", "position_text", "waiting_text")

# Buttons (visible ones) that lie partly outside the viewport.
OFF_SCREEN = """() => Array.from(document.querySelectorAll('button')).filter((b) => b.offsetParent !== null)
    .map((b) => [b.textContent, b.getBoundingClientRect()])
    .filter(([, r]) => r.left < 0 || r.right > window.innerWidth || r.width === 0)
    .map(([t, r]) => t + ' ' + Math.round(r.left) + '..' + Math.round(r.right))"""


def state(server) -> dict:
    st, body = server.request("/guild/api/state")
    assert st == 200, body
    return body


def assert_rows_show_their_words(page, server, runs) -> None:
    snap = state(server)
    for run in runs:
        row = row_of(snap, run.id)
        el = page.locator(f'{PAGE} .gj-run[data-run="{run.id}"]')
        text = el.inner_text()
        for key in STEADY_WORDS:
            if row.get(key):
                assert row[key] in text, (key, row[key], text)
        assert el.locator(".gj-title").inner_text() == row["title"]


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
            row = page.locator(f'{PAGE} .gj-run[data-run="{running.id}"][data-status="running"]')
            row.wait_for(timeout=30_000)
            for t in trials:
                page.locator(f'{PAGE} .gj-run[data-run="{t.id}"][data-status="staged"]').wait_for(timeout=30_000)
            assert_rows_show_their_words(page, server, trials + [running])
            for t in trials:  # every swept value, in the title
                title = page.locator(f'{PAGE} .gj-run[data-run="{t.id}"] .gj-title').inner_text()
                assert "batch=" in title and "lr=" in title, title
            assert cut_report(page, PAGE) == []
            gpus = page.locator(f"{PAGE} .gj-gpu-list").inner_text()
            device = state(server)["gpus"]["devices"][0]
            assert device["text"] in gpus and running.id[:8] in gpus  # the run on GPU 0
            page.screenshot(path=str(shots / "guild-page-1100.png"), full_page=True)

            page.set_viewport_size({"width": 700, "height": 1000})
            page.wait_for_function("() => window.innerWidth === 700")
            assert page.evaluate(OFF_SCREEN) == []
            assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
            assert cut_report(page, PAGE) == []
            assert_rows_show_their_words(page, server, trials + [running])
            page.screenshot(path=str(shots / "guild-page-700.png"), full_page=True)

            # Stop: the first click only asks (the action's question on the button).
            stop = next(a for a in row_of(state(server), running.id)["actions"] if a["verb"] == "stop")
            button = row.locator("button[data-action='stop']")
            button.click()
            assert button.inner_text() == stop["confirm"]
            assert running.refresh().status == "running"
            message = page.locator(f"{PAGE} .gj-message")
            height = message.bounding_box()["height"]
            button.click()
            wait_for(lambda: running.refresh().status == "terminated", timeout=30, message="stopped from the page")
            page.locator(f'{PAGE} .gj-run[data-run="{running.id}"][data-status="terminated"]').wait_for(
                state="attached", timeout=30_000)
            page.locator(f'{PAGE} .gj-run[data-run="{trials[0].id}"] button[data-action="unstage"]').click()
            wait_for(lambda: trials[0].refresh().status == "terminated", timeout=30, message="unstaged from the page")
            page.locator(f'{PAGE} .gj-run[data-run="{trials[0].id}"][data-status="unstaged"]').wait_for(
                state="attached", timeout=30_000)
            assert message.bounding_box()["height"] == height
            assert page.evaluate(OFF_SCREEN) == []
            page.screenshot(path=str(shots / "guild-page-700-after.png"), full_page=True)
            page.wait_for_function("() => document.querySelector('.gj-page .gj-message').textContent === ''",
                                   timeout=15_000)
            assert message.bounding_box()["height"] == height  # cleared without moving the page
    finally:
        server.stop()
        api.stop(all=True, timeout=15)
    print(f"screenshots: {shots}")
    assert all(p.stat().st_size > 0 for p in shots.iterdir())
