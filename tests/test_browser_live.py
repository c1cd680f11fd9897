"""The /guild page's live parts end to end (a real Jupyter server with the
extension on 127.0.0.1, Debian's Chromium driven by Playwright): clicking a
running run shows its output growing until the run ends; the running row
shows the main scalar with its sparkline; a run that fails gets the
server's notice (its sentence and last lines) whose button opens its
traceback, and a reload shows it again; the notification button asks the
browser's permission on a click. Also the REST API's ``?since=OFFSET``."""

from __future__ import annotations

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import chromium_page, guild_server
from support.snapshots import group

TICKER = ("import time\nn = 100\nrate = 10.0\nfail = False\n"
          "for i in range(n):\n    print(f'step: {i}', flush=True)\n    print(f'loss: {1.0 / (i + 1):.4f}', flush=True)\n"
          "    time.sleep(1.0 / rate)\n"
          "if fail:\n    raise ValueError('the model diverged')\n")


@pytest.fixture
def server(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    (root / "ticker.py").write_text(TICKER)
    try:
        with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as s:
            s.script = str(root / "ticker.py")
            yield s
    finally:
        api.stop(all=True, timeout=15)


def test_rest_output_since(server):
    staged = api.run(server.script, "n=2", stage=True)[0]
    st, piece = server.request(f"/guild/api/runs/{staged.id}/output?since=0")
    assert st == 200 and piece == {"id": staged.id, "text": "", "offset": 0, "status": "staged", "done": False}
    run = api.run(server.script, "n=20", "rate=40")[0]
    text, offset = "", 0

    def step():
        nonlocal text, offset
        st, piece = server.request(f"/guild/api/runs/{run.id[:8]}/output?since={offset}")
        assert st == 200 and piece["offset"] == offset + len(piece["text"].encode())
        text += piece["text"]
        offset = piece["offset"]
        return piece["done"] and piece

    last = wait_for(step, timeout=60, interval=0.05, message="the whole output through since=")
    assert last["status"] == "completed" and text == api.output(run.id) and text.count("loss:") == 20
    for bad in ("since=-1", "since=x", "since=0&tail=1", "since=0&offset=0"):
        st, err = server.request(f"/guild/api/runs/{run.id}/output?{bad}")
        assert st == 400 and err["error"], (bad, err)


def test_rest_rows_carry_the_latest_scalar_within_one_refresh(server):
    """A run printing ``loss:`` lines at 20 Hz: once a line is in its output,
    ``GET state`` and ``GET runs`` show that value (or a later one) within
    the supervisor's flush of its event file (about a second) plus one
    refresh of the page (1 s)."""
    import re

    from guild_jupyter.store.scalars.writer import FLUSH_SECS

    run = api.run(server.script, "n=200", "rate=20")[0]
    try:
        for _ in range(2):
            printed = wait_for(lambda: re.findall(r"loss: ([0-9.]+)", api.output(run.id)), message="a loss line")
            latest = float(printed[-1])

            def shown():
                st, state = server.request("/guild/api/state")
                st2, listing = server.request("/guild/api/runs?status=running")
                rows = [r for r in group(state, "running")["rows"] + listing["runs"] if r["id"] == run.id]
                ok = [r for r in rows if r.get("scalar") and r["scalar"]["value"] <= latest + 1e-6]
                return len(ok) == 2 and ok

            rows = wait_for(shown, timeout=FLUSH_SECS + 1.0 + 1.0, interval=0.1, message=f"loss {latest} over REST")
            for r in rows:
                assert r["scalar"]["tag"] == "loss" and r["spark"] and r["spark"][-1] == r["scalar"]["value"]
    finally:
        if run.refresh().status == "running":
            api.stop(run.id, timeout=15)


@pytest.mark.browser
def test_clicking_a_running_run_shows_its_output_growing(server, tmp_path):
    run = api.run(server.script, "n=3000")[0]  # 300 s at 10 Hz; stopped at the end
    with chromium_page(server, tmp_path, {"width": 1200, "height": 1000}) as page:
        page.goto(f"{server.url}/guild?token={server.token}")
        row = page.locator(f'.gj-run[data-run="{run.id}"][data-status="running"]')
        row.wait_for(timeout=30_000)
        # Started once the page watches: it fails in about 1.5 s.
        failing = api.run(server.script, "n=30", "rate=20", "fail=True")[0]
        page.locator(f'.gj-run[data-run="{failing.id}"]').wait_for(state="attached", timeout=30_000)

        # Notifications are asked for on a click; granted here by the context.
        page.context.grant_permissions(["notifications"])
        page.click(".gj-notify")
        page.wait_for_function("() => document.querySelector('.gj-notify-state').textContent === 'notifications on'",
                               timeout=10_000)

        row.locator(".gj-title").click()  # a click on the row: its output
        pane = page.locator(f'.gj-output[data-run="{run.id}"]')
        pane.wait_for(state="visible", timeout=10_000)
        text = page.locator(".gj-output-text")
        counts = []
        for _ in range(3):  # the output grows while the run runs
            before = text.inner_text().count("loss:")
            page.wait_for_function(
                f"() => (document.querySelector('.gj-output-text').textContent.match(/loss:/g) || []).length > {before}",
                timeout=10_000)
            counts.append(text.inner_text().count("loss:"))
        assert counts == sorted(counts) and counts[-1] > counts[0]
        assert "following" in page.locator(".gj-output-state").inner_text()
        assert page.locator(f'.gj-run.gj-mod-followed[data-run="{run.id}"]').count() == 1
        # Every line, in order, as written so far.
        lines = [ln for ln in text.inner_text().splitlines() if ln.startswith("loss:")]
        assert lines == [f"loss: {1.0 / (i + 1):.4f}" for i in range(len(lines))]

        # The running row carries the main scalar and its sparkline.
        page.wait_for_function(
            f"""() => {{ const c = document.querySelector('.gj-run[data-run="{run.id}"] .gj-scalar');
                       return c && c.textContent.startsWith('loss ') && c.querySelector('svg polyline'); }}""",
            timeout=15_000)

        # The failed run: the server's notice with its last lines; one click opens its traceback.
        notice = page.locator(f'.gj-notice[data-run="{failing.id}"][data-level="error"]')
        notice.wait_for(timeout=30_000)
        _, events = server.request("/guild/api/events?after=0&timeout=0")
        sentence = next(e["text"] for e in events["events"] if e.get("run") == failing.id and e["kind"] == "run-ended")
        assert sentence in notice.inner_text()
        assert "the model diverged" in notice.locator(".gj-notice-tail").inner_text()
        notice.locator("button[data-action='output']").click()
        page.wait_for_function(
            f"""() => {{ const p = document.querySelector('.gj-output');
                       return p.dataset.run === '{failing.id}' && p.dataset.done === 'true'; }}""", timeout=15_000)
        assert "Traceback (most recent call last)" in text.inner_text()
        assert "ValueError: the model diverged" in text.inner_text()
        assert "error" in page.locator(".gj-output-state").inner_text()
        page.screenshot(path=str(tmp_path / "guild-live.png"), full_page=True)
        page.locator(".gj-output-close").click()
        page.locator(".gj-output").wait_for(state="hidden", timeout=5_000)

        # A reload shows the same notice again: the server kept it.
        page.reload()
        page.locator(f'.gj-notice[data-run="{failing.id}"][data-level="error"]', has_text=sentence).wait_for(
            timeout=30_000)
    assert run.refresh().status == "running"  # watching changed nothing
    api.stop(run.id, timeout=15)
