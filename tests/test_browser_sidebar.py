"""The JupyterLab sidebar (labextension/) end to end: a real JupyterLab
with the server extension, Debian's Chromium driven by Playwright.

Opened from the command palette, it shows a staged and a running run and
the status bar counts them; while a notebook cell sleeps (the kernel busy)
a stop clicked in the sidebar ends the run on disk (how soon is printed, not
asserted: timings belong in bench/); a run's
output is followed; after a kernel restart the sidebar still shows new runs
and unstages one; the dark theme changes its colours (screenshot saved).
With the server extension off, the sidebar says so in one line and polls
slowly instead of flooding. `jupyter labextension list` shows it enabled.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
import zipfile

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import (FAKE_GPU_ENV, chromium_page, guild_server, open_notebook, start_guild_server,
                             write_notebook)

VENV_BIN = os.path.dirname(sys.executable)
TRAIN_PY = ("import time\nsecs = 60.0\ndeadline = time.monotonic() + secs\ni = 0\n"
            "while time.monotonic() < deadline:\n    print('step', i, flush=True)\n"
            "    print(f'loss: {1 / (i + 1):.4f}', flush=True)\n    i += 1\n    time.sleep(0.2)\n")
SIDEBAR = "#guild-jupyter-sidebar"


def run_el(page, run, status=None):
    sel = f'{SIDEBAR} .jp-GuildRun[data-run="{run.id}"]'
    return page.locator(sel + (f'[data-status="{status}"]' if status else ""))


def palette(page, text: str) -> None:
    """Runs the command palette's first match for ``text`` (once JupyterLab
    has loaded: its splash screen is gone)."""
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=30_000)
    page.keyboard.press("Control+Shift+C")
    box = page.locator(".lm-CommandPalette-input")
    box.wait_for(timeout=10_000)
    box.fill(text)
    page.locator(".lm-CommandPalette-item", has_text=text).first.wait_for(timeout=10_000)
    box.press("Enter")


def set_sidebar_width(page, width: int) -> None:
    """Drags the handle between the left area and the main area."""
    box = page.locator(SIDEBAR).bounding_box()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first.bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + width - box["width"], y, steps=5)
    page.mouse.up()
    wait_for(lambda: abs(page.locator(SIDEBAR).bounding_box()["width"] - width) <= 4, timeout=5,
             message=f"a {width} px sidebar")


def status_bar_text(page) -> str:
    return page.locator("#jp-main-statusbar").inner_text()


def background_luminance(page, selector: str) -> float:
    rgb = page.locator(selector).evaluate("(e) => getComputedStyle(e).backgroundColor")
    r, g, b = (int(x) for x in re.findall(r"\d+", rgb)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_typescript_unit_tests_pass():
    """The sidebar's pure helpers (labextension/src/test), under node's test runner."""
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


def test_a_wheel_carries_the_sidebar(tmp_path):
    """`pip wheel .` (after the build) puts the sidebar where JupyterLab
    finds installed extensions: share/jupyter/labextensions/guild-jupyter."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), repo],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    (wheel,) = tmp_path.glob("guild_jupyter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    prefix = "guild_jupyter-0.1.0.data/data/share/jupyter/labextensions/guild-jupyter/"
    assert prefix + "package.json" in names and prefix + "install.json" in names, names
    assert any(re.fullmatch(re.escape(prefix) + r"static/remoteEntry\.[0-9a-f]+\.js", n) for n in names), names
    built = os.listdir(os.path.join(repo, "guild_jupyter", "labextension", "static"))
    assert sorted(n[len(prefix) + 7:] for n in names if n.startswith(prefix + "static/")) == sorted(built)


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
            palette(page, "Open Guild Sidebar")
            page.locator(SIDEBAR).wait_for(state="visible", timeout=10_000)
            run_el(page, running, "running").wait_for(timeout=20_000)
            staged_el = run_el(page, staged, "staged")
            staged_el.wait_for(timeout=20_000)
            assert "no queue is running" in staged_el.inner_text()
            page.wait_for_function(
                "() => document.querySelector('.jp-GuildStatus')?.textContent === '1 running · 1 staged'",
                timeout=10_000)
            # GPUs, with the run on GPU 0; the running run's latest loss and its sparkline.
            gpus = page.locator(f"{SIDEBAR} .jp-GuildGpu")
            gpus.wait_for(timeout=10_000)
            assert "Fake H100" in gpus.inner_text() and "42%" in gpus.inner_text()
            page.locator(f"{SIDEBAR} .jp-GuildGpu", has_text=running.id[:8]).wait_for(timeout=10_000)
            run_el(page, running).locator(".jp-GuildRun-scalar", has_text=re.compile(r"loss \d")).wait_for(
                timeout=15_000)
            run_el(page, running).locator(".jp-GuildRun-spark polyline").wait_for(timeout=15_000)
            # At 300 px the sidebar fits its width, the op and scalar not cut.
            set_sidebar_width(page, 300)
            assert page.locator(SIDEBAR).evaluate("(e) => e.scrollWidth <= e.clientWidth + 1")
            for cls in ("jp-GuildRun-op", "jp-GuildRun-scalar"):
                assert run_el(page, running).locator("." + cls).evaluate(
                    "(e) => e.scrollWidth <= e.clientWidth"), cls
            page.screenshot(path=str(shots / "sidebar-light-300px.png"))

            # The output of the running run, followed.
            run_el(page, running).get_by_role("button", name="output").click()
            page.locator(f"{SIDEBAR} .jp-GuildSidebar-outputText", has_text="step 3").wait_for(timeout=15_000)

            # A busy kernel: the cell sleeps 30 s.
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.keyboard.press("Shift+Enter")
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('#jp-main-statusbar span, #jp-main-statusbar div'))"
                ".some(e => /\\|\\s*Busy$/.test(e.textContent.trim()))", timeout=15_000)
            row = run_el(page, running, "running")
            row.get_by_role("button", name="stop").click()
            confirm = row.get_by_role("button", name="confirm stop")
            confirm.wait_for(timeout=5_000)
            assert running.refresh().status == "running"  # the first click only arms it
            clicked = time.monotonic()
            confirm.click()
            wait_for(lambda: running.refresh().status == "terminated", timeout=30,
                     message="the run terminated on disk after the click")
            elapsed = time.monotonic() - clicked
            assert "Busy" in status_bar_text(page)  # the cell was still running all along
            run_el(page, running, "terminated").wait_for(state="attached", timeout=10_000)
            page.locator(f"{SIDEBAR} .jp-GuildSidebar-output", has_text="end of output").wait_for(timeout=10_000)
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
            later_el.get_by_role("button", name="unstage").click()
            wait_for(lambda: later.refresh().status == "terminated", timeout=10,
                     message="unstaged from the sidebar after the restart")
            run_el(page, later, "unstaged").wait_for(state="attached", timeout=10_000)
            page.wait_for_function(
                "() => document.querySelector('.jp-GuildStatus')?.textContent === '0 running · 1 staged'",
                timeout=10_000)

            # Dark theme: JupyterLab's variables darken the sidebar.
            light = background_luminance(page, SIDEBAR)
            palette(page, "Use Theme: JupyterLab Dark")
            page.wait_for_function("() => document.body.dataset.jpThemeName === 'JupyterLab Dark'",
                                   timeout=20_000)
            wait_for(lambda: background_luminance(page, SIDEBAR) < light / 2, timeout=10,
                     message="a dark sidebar background")
            page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=20_000)
            dark_shot = shots / "sidebar-dark.png"
            page.screenshot(path=str(dark_shot))
            assert dark_shot.stat().st_size > 0

            # Queue controls: start one on the server, pause it, stop it.
            page.locator(SIDEBAR).get_by_role("button", name="start queue").click()
            queue_el = page.locator(f"{SIDEBAR} .jp-GuildQueue")
            queue_el.wait_for(timeout=15_000)
            qid = queue_el.get_attribute("data-queue")
            wait_for(lambda: staged.refresh().status != "staged", timeout=30,
                     message="the queue started from the sidebar starting the staged run")
            queue_el.get_by_role("button", name="pause").click()
            page.locator(f'{SIDEBAR} .jp-GuildQueue[data-queue="{qid}"][data-status="paused"]').wait_for(
                timeout=15_000)
            _, queues = server.request("/guild/api/queues")
            assert [q["state"] for q in queues["queues"] if q["id"] == qid] == ["paused"], queues
            queue_el.get_by_role("button", name="stop").click()
            queue_el.get_by_role("button", name="confirm stop").click()
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
        page.goto(server.lab_url())
        page.locator(".jp-Launcher").wait_for(timeout=30_000)
        page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=30_000)
        page.locator(".jp-LauncherCard", has_text="Guild").click()  # the launcher tile opens it
        error = page.locator(f"{SIDEBAR} .jp-GuildSidebar-error")
        error.wait_for(state="visible", timeout=20_000)
        assert "server extension not found" in error.inner_text()
        assert len(error.inner_text().strip().splitlines()) == 1
        assert page.locator(".jp-GuildStatus").inner_text() == "Guild: unavailable"
        # Backing off: over 6 s, far fewer calls than one a second.
        before = len(requests)
        page.wait_for_timeout(6000)
        assert len(requests) - before <= 3, requests[before:]


@pytest.mark.browser
def test_sidebar_pages_a_large_group(tmp_path, guild_home):
    """60 staged runs: the sidebar shows 25 at a time and turns pages."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "train.py").write_text(TRAIN_PY)
    first = api.run(str(root / "train.py"), "secs=1", stage=True)[0]
    for _ in range(59):
        shutil.copytree(first.dir, os.path.join(os.path.dirname(first.dir), uuid.uuid4().hex))
    with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server, \
            chromium_page(server, tmp_path, {"width": 1280, "height": 900}, full_page=False) as page:
        page.goto(server.lab_url())
        page.locator(".jp-Launcher").wait_for(timeout=30_000)
        palette(page, "Open Guild Sidebar")
        group = page.locator(f"{SIDEBAR} [data-group='staged']")
        pager = group.locator(".jp-GuildSidebar-pager .jp-GuildSidebar-muted")
        rows = group.locator(".jp-GuildRun")
        page.wait_for_function("(e) => e.textContent === '1–25 of 60'", arg=pager.element_handle(),
                               timeout=20_000)
        assert rows.count() == 25
        first_page = set(rows.evaluate_all("(els) => els.map((e) => e.dataset.run)"))
        group.get_by_role("button", name="›").click()
        page.wait_for_function("(e) => e.textContent === '26–50 of 60'", arg=pager.element_handle(),
                               timeout=10_000)
        second_page = set(rows.evaluate_all("(els) => els.map((e) => e.dataset.run)"))
        assert len(second_page) == 25 and not first_page & second_page
        group.get_by_role("button", name="›").click()
        page.wait_for_function("(e) => e.textContent === '51–60 of 60'", arg=pager.element_handle(),
                               timeout=10_000)
        assert rows.count() == 10
        assert "60 staged" in page.locator(".jp-GuildStatus").inner_text()
        assert server.request("/api/kernels") == (200, [])  # all of it with no kernel at all
