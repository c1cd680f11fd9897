"""The JupyterLab sidebar (labextension/) end to end: a real JupyterLab
with the server extension, Debian's Chromium driven by Playwright, real
runs. What a row says and which buttons it has come from the server's
view model (read here over REST, never written in this file).

Opened from the command palette, it shows a staged and a running run with
their words and the status bar item reads the server's
``status_bar_text``; at 250 px nothing is cut; while a notebook cell
sleeps (the kernel busy) the row's stop (two clicks: the action asks
first) ends the run on disk (how soon is printed,
not asserted: timings belong in bench/); a run's output is followed; after
a kernel restart the sidebar still shows new runs and unstages one; a
queue started from it is paused and stopped. With the server extension
off, the sidebar says so in one line and polls slowly instead of
flooding. `jupyter labextension list` shows it enabled.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.fixture_server import group_of, row_of
from support.jupyter import (FAKE_GPU_ENV, chromium_page, guild_server, open_notebook, start_guild_server,
                             write_notebook)
from support.lab import SIDEBAR, cut_report, open_lab, open_sidebar, set_sidebar_width, status_item_text

VENV_BIN = os.path.dirname(sys.executable)
TRAIN_PY = ("import time\nsecs = 60.0\ndeadline = time.monotonic() + secs\ni = 0\n"
            "while time.monotonic() < deadline:\n    print('step', i, flush=True)\n"
            "    print(f'loss: {1 / (i + 1):.4f}', flush=True)\n    i += 1\n    time.sleep(0.2)\n")


#: Fields of a row that stay the same while the run runs.
STEADY_WORDS = ("title", "subtitle", "label_text", "gpus_text", "position_text", "waiting_text", "retry_text")


def run_el(page, run, status=None):
    sel = f'{SIDEBAR} .gj-run[data-run="{run.id}"]'
    return page.locator(sel + (f'[data-status="{status}"]' if status else ""))


def server_state(server) -> dict:
    st, state = server.request("/guild/api/state")
    assert st == 200, state
    return state


def wait_status_item(page, server, timeout: float = 15) -> str:
    """Waits until the status bar item reads what the server's snapshot says now."""
    def same():
        text = server_state(server)["status_bar_text"]
        return status_item_text(page) == text and text

    return wait_for(same, timeout=timeout, interval=0.2, message="the status bar item reads status_bar_text")


def test_typescript_unit_tests_pass():
    """The pure helpers of labextension/src (src/test), under node's test runner."""
    ext = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "labextension")
    if not os.path.isdir(os.path.join(ext, "node_modules")):
        pytest.fail("labextension/node_modules missing: run scripts/build-labextension.sh")
    out = subprocess.run(["npm", "test"], cwd=ext, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert re.search(r"^# fail 0$", out.stdout, re.M) and re.search(r"^# pass [1-9]", out.stdout, re.M), out.stdout


def test_labextension_list_shows_the_sidebar_enabled():
    out = subprocess.run([os.path.join(VENV_BIN, "jupyter"), "labextension", "list"], capture_output=True,
                         text=True, timeout=60)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    line = next((ln for ln in text.splitlines() if "guild-jupyter" in ln), None)
    assert line is not None, f"guild-jupyter not listed (run scripts/build-labextension.sh):\n{text}"
    assert "enabled" in line and "OK" in line, line


@pytest.mark.browser
def test_sidebar_acts_while_the_kernel_is_busy_and_after_a_restart(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    (root / "train.py").write_text(TRAIN_PY)
    write_notebook(root / "busy.ipynb", ["import time; time.sleep(30)"])
    staged = api.run(str(root / "train.py"), "secs=1", stage=True, label="waits")[0]
    running = api.run(str(root / "train.py"), "secs=120", gpus="0")[0]
    server = start_guild_server(tmp_path / "jupyter", guild_home, root_dir=root, env=FAKE_GPU_ENV)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        with chromium_page(server, tmp_path, {"width": 1280, "height": 900}, full_page=False) as page:
            console_errors: list[str] = []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            open_notebook(page, server, "busy.ipynb", cells=1)
            open_sidebar(page)
            run_el(page, running, "running").wait_for(timeout=20_000)
            staged_el = run_el(page, staged, "staged")
            staged_el.wait_for(timeout=20_000)
            state = server_state(server)
            for run, el in ((staged, staged_el), (running, run_el(page, running))):
                row = row_of(state, run.id)
                for key in STEADY_WORDS:  # (the time, the status and the scalar move on)
                    if row.get(key):
                        assert row[key] in el.inner_text(), (key, row[key], el.inner_text())
                labels = el.locator(".gj-actions > button").evaluate_all("(els) => els.map((b) => b.textContent)")
                assert labels == [a["label"] for a in row["actions"]]
            wait_status_item(page, server)
            # GPUs, with the run on GPU 0; the running run's latest loss and its sparkline.
            gpu = page.locator(f"{SIDEBAR} .gj-gpu", has_text=running.id[:8])
            gpu.wait_for(timeout=15_000)
            device = server_state(server)["gpus"]["devices"][0]
            assert device["text"] in gpu.inner_text() and device["utilization_text"] in gpu.inner_text()
            run_el(page, running).locator(".gj-scalar", has_text=re.compile(r"loss \d")).wait_for(timeout=15_000)
            run_el(page, running).locator(".gj-spark polyline").wait_for(timeout=15_000)
            # At 250 px nothing is cut; the title leads.
            set_sidebar_width(page, 250)
            assert cut_report(page, SIDEBAR) == []
            page.screenshot(path=str(shots / "sidebar-250px.png"))

            # The output of the running run, followed.
            run_el(page, running).locator("button[data-action='output']").click()
            page.locator(f"{SIDEBAR} .gj-output-text", has_text="step 3").wait_for(timeout=15_000)

            # A busy kernel: the cell sleeps 30 s.
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.keyboard.press("Shift+Enter")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('#jp-main-statusbar span, #jp-main-statusbar div'))"
                ".some(e => /\\|\\s*Busy$/.test(e.textContent.trim()))", timeout=15_000)
            stop = next(a for a in row_of(server_state(server), running.id)["actions"] if a["verb"] == "stop")
            button = run_el(page, running, "running").locator("button[data-action='stop']")
            button.click()
            assert button.inner_text() == stop["confirm"]
            assert running.refresh().status == "running"  # the first click only asks
            clicked = time.monotonic()
            button.click()
            wait_for(lambda: running.refresh().status == "terminated", timeout=30,
                     message="the run terminated on disk after the click")
            elapsed = time.monotonic() - clicked
            assert "Busy" in page.locator("#jp-main-statusbar").inner_text()  # the cell was still running all along
            stopped_row = run_el(page, running, "terminated")
            stopped_row.wait_for(state="attached", timeout=10_000)
            page.locator(f"{SIDEBAR} .gj-output", has_text="end of output").wait_for(timeout=10_000)
            page.screenshot(path=str(shots / "sidebar-busy-kernel.png"))

            # Restart the kernel: the sidebar keeps working.
            page.get_by_role("menuitem", name="Kernel", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Restart Kernel…")).first.click()
            page.locator(".jp-Dialog-button.jp-mod-accept", has_text="Restart").click()
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('#jp-main-statusbar span, #jp-main-statusbar div'))"
                ".some(e => /\\|\\s*Idle$/.test(e.textContent.trim()))", timeout=30_000)
            later = api.run(str(root / "train.py"), "secs=1", stage=True, label="later")[0]
            later_el = run_el(page, later, "staged")
            later_el.wait_for(timeout=10_000)
            later_el.locator("button[data-action='unstage']").click()
            wait_for(lambda: later.refresh().status == "terminated", timeout=10,
                     message="unstaged from the sidebar after the restart")
            run_el(page, later, "unstaged").wait_for(state="attached", timeout=10_000)
            wait_status_item(page, server)

            # Queue controls: start one on the server, pause it, stop it.
            page.locator(f"{SIDEBAR} .gj-queues-section").get_by_role("button", name="start queue").click()
            queue_el = page.locator(f"{SIDEBAR} .gj-queue")
            queue_el.wait_for(timeout=15_000)
            qid = queue_el.get_attribute("data-queue")
            wait_for(lambda: staged.refresh().status != "staged", timeout=30,
                     message="the queue started from the sidebar starting the staged run")
            queue_el.locator("button[data-action='pause']").click()
            page.locator(f'{SIDEBAR} .gj-queue[data-queue="{qid}"][data-status="paused"]').wait_for(timeout=15_000)
            _, queues = server.request("/guild/api/queues")
            assert [q["state"] for q in queues["queues"] if q["id"] == qid] == ["paused"], queues
            state_text = next(q["state_text"] for q in server_state(server)["queues"] if q["id"] == qid)
            assert state_text in queue_el.inner_text()
            stop_queue = queue_el.locator("button[data-action='stop']")
            stop_queue.click()
            stop_queue.click()
            queue_el.wait_for(state="detached", timeout=20_000)
            _, queues = server.request("/guild/api/queues")
            assert qid not in [q["id"] for q in queues["queues"]], queues
            assert not [e for e in console_errors if "guild" in e.lower()], console_errors
    finally:
        server.stop()
        api.stop(all=True, timeout=15)
    print(f"stop took {elapsed:.2f} s from the click; screenshots: {shots}")


@pytest.mark.browser
def test_sidebar_without_the_server_extension_says_so_in_one_line(tmp_path, guild_home):
    with guild_server(tmp_path / "jupyter", guild_home, extension=False) as server, \
            chromium_page(server, tmp_path, {"width": 1280, "height": 900}, full_page=False) as page:
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url) if "/guild/api/" in r.url else None)
        open_lab(page, server)
        page.locator(".jp-LauncherCard", has_text="Guild").click()  # the launcher tile opens it
        error = page.locator(f"{SIDEBAR} .gj-error")
        error.wait_for(state="visible", timeout=20_000)
        assert "server extension not found" in error.inner_text()
        assert len(error.inner_text().strip().splitlines()) == 1
        assert status_item_text(page) == "Guild: unavailable"
        # Backing off: over 6 s, far fewer calls than one a second.
        before = len(requests)
        page.wait_for_timeout(6000)
        assert len(requests) - before <= 3, requests[before:]


@pytest.mark.browser
def test_sidebar_pages_a_large_group(tmp_path, guild_home):
    """60 staged runs: the sidebar shows a page at a time and turns pages."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "train.py").write_text(TRAIN_PY)
    first = api.run(str(root / "train.py"), "secs=1", stage=True)[0]
    for _ in range(59):
        shutil.copytree(first.dir, os.path.join(os.path.dirname(first.dir), uuid.uuid4().hex))
    with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server, \
            chromium_page(server, tmp_path, {"width": 1280, "height": 900}, full_page=False) as page:
        open_sidebar(page, server)
        size = group_of(server_state(server), "staged")["page_size"]
        assert size < 60
        group = page.locator(f"{SIDEBAR} [data-group='staged']")
        pager = group.locator(".gj-pager-text")
        rows = group.locator(".gj-run")
        pages = []
        for start in range(1, 61, size):
            end = min(60, start + size - 1)
            page.wait_for_function("([e, t]) => e.textContent === t", arg=[pager.element_handle(), f"{start}–{end} of 60"],
                                   timeout=20_000)
            assert rows.count() == end - start + 1
            pages.append(set(rows.evaluate_all("(els) => els.map((e) => e.dataset.run)")))
            if end < 60:
                group.get_by_role("button", name="›").click()
        assert sum(len(p) for p in pages) == 60 and len(set().union(*pages)) == 60
        wait_status_item(page, server)
        assert server.request("/api/kernels") == (200, [])  # all of it with no kernel at all
