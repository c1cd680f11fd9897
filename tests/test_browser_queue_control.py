"""The /guild page's queue buttons end to end: a real Jupyter server with the
extension, Debian's Chromium driven by Playwright, a detached queue. The
buttons are the queue row's actions: pause shows the queue paused (its
words from the server) and offers resume; resume; drain ends the queue. At
700 px every button is still on screen."""

from __future__ import annotations

import pytest

from conftest import wait_for
from guild_jupyter import api
from guild_jupyter.store import queue_state
from support.jupyter import chromium_page, guild_server
from test_browser_server import OFF_SCREEN

pytestmark = pytest.mark.browser


def queue_row(server, qid: str) -> dict:
    _, state = server.request("/guild/api/state")
    return next(q for q in state["queues"] if q["id"] == qid)


def test_pause_resume_drain_from_the_page(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    q = api.queue(poll_interval=60, background=True)
    try:
        with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server, \
                chromium_page(server, tmp_path, {"width": 700, "height": 900}) as page:
            page.goto(f"{server.url}/guild?token={server.token}")
            row = page.locator(f'.gj-queue[data-queue="{q.id}"]')
            row.wait_for(timeout=30_000)
            assert page.evaluate(OFF_SCREEN) == []
            labels = row.locator(".gj-actions > button").evaluate_all("(els) => els.map((b) => b.textContent)")
            assert labels == [a["label"] for a in queue_row(server, q.id)["actions"]]
            row.locator("button[data-action='pause']").click()
            wait_for(lambda: queue_state.read_control(q.run) == "paused", timeout=15, message="paused")
            page.locator(f'.gj-queue[data-queue="{q.id}"] button[data-action="resume"]').wait_for(timeout=15_000)
            assert queue_row(server, q.id)["state_text"] in row.locator(".gj-state").inner_text()
            row.locator("button[data-action='resume']").click()
            wait_for(lambda: queue_state.read_control(q.run) == "running", timeout=15, message="resumed")
            page.locator(f'.gj-queue[data-queue="{q.id}"] button[data-action="pause"]').wait_for(timeout=15_000)
            row.locator("button[data-action='drain']").click()
            wait_for(lambda: q.run.refresh().status == "completed", timeout=30, message="drained queue ended")
            page.locator(f'.gj-queue[data-queue="{q.id}"]').wait_for(state="detached", timeout=15_000)
            assert "Drained" in api.output(q.id)
    finally:
        if q.status != "stopped":
            q.stop(timeout=20)
