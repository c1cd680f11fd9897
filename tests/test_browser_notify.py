"""JupyterLab tells you (issue 21, item 4), end to end: a real JupyterLab
with the server extension, Debian's Chromium, real runs.

A run that fails while a notebook cell is busy raises a JupyterLab
notification with the server's sentence (``/guild/api/events``); its
"Output" opens the sidebar on that run's output; the status bar item reads
the server's ``status_bar_text``; the failed run is in the sidebar's failed
group without a click. A reload shows the notice again in the sidebar but
raises no second notification. The panel's notice of a failed run is
readable in JupyterLab's dark theme (WCAG AA, from the rendered colours).
"""

from __future__ import annotations

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import chromium_page, guild_server, open_notebook, run_all_cells, write_notebook
from support.lab import SIDEBAR, contrast_report, open_sidebar, status_item_text, use_theme

pytestmark = pytest.mark.browser

FAILS = "import time\nsecs = 0.5\ntime.sleep(secs)\nprint('loss: nan', flush=True)\nraise ValueError('the loss is nan')\n"
TOAST = ".Toastify .jp-Notification-Toast-error"


def failure_event(server, run_id: str) -> dict:
    def found():
        _, reply = server.request("/guild/api/events?after=0&timeout=0")
        return next((e for e in reply["events"] if e.get("run") == run_id and e["kind"] == "run-ended"), None)

    return wait_for(found, timeout=30, interval=0.2, message="the server's event of the failed run")


@pytest.fixture
def lab(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    (root / "fails.py").write_text(FAILS)
    try:
        with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server:
            server.script = str(root / "fails.py")
            yield server
    finally:
        api.stop(all=True, timeout=15)


def test_a_run_that_fails_while_a_cell_is_busy_raises_a_notification(lab, tmp_path):
    write_notebook(tmp_path / "root" / "busy.ipynb", ["import time; time.sleep(40)"])
    with chromium_page(lab, tmp_path, {"width": 1280, "height": 900}, full_page=False) as page:
        open_notebook(page, lab, "busy.ipynb", cells=1)
        sidebar = open_sidebar(page)
        sidebar.locator(".gj-summary").wait_for(timeout=20_000)
        page.wait_for_function("() => /\\d/.test(document.querySelector('.jp-GuildStatus').textContent)",
                               timeout=20_000)
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('#jp-main-statusbar span, #jp-main-statusbar div'))"
            ".some(e => /\\|\\s*Busy$/.test(e.textContent.trim()))", timeout=15_000)

        failing = api.run(lab.script)[0]
        event = failure_event(lab, failing.id)
        assert event["level"] == "error"
        toast = page.locator(TOAST, has_text=event["text"])
        toast.wait_for(timeout=30_000)
        assert page.locator(TOAST).count() == 1
        assert "Busy" in page.locator("#jp-main-statusbar").inner_text()  # the cell ran all along
        # The status bar item: the server's words, with the failure counted.
        wait_for(lambda: status_item_text(page) == lab.request("/guild/api/state")[1]["status_bar_text"], timeout=15,
                 message="the status bar item reads the server's status_bar_text")
        assert "failed" in status_item_text(page)
        # The failed group shows it without a click.
        row = sidebar.locator(f'[data-group="failed"] .gj-run[data-run="{failing.id}"]')
        row.wait_for(state="visible", timeout=15_000)
        page.screenshot(path=str(tmp_path / "notification.png"))
        # The notification's action opens the sidebar on the run's output.
        toast.get_by_role("button", name="Output").click()
        page.locator(f'{SIDEBAR} .gj-output[data-run="{failing.id}"]').wait_for(state="visible", timeout=15_000)
        page.locator(f"{SIDEBAR} .gj-output-text", has_text="ValueError: the loss is nan").wait_for(timeout=15_000)

        # A reload: the sidebar shows the notice again, no second notification.
        page.reload()
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        page.locator(".jp-GuildStatus", has_text="failed").click()  # the status bar item opens it
        notice = page.locator(f'{SIDEBAR} .gj-notice[data-run="{failing.id}"][data-level="error"]')
        notice.wait_for(timeout=30_000)
        assert event["text"] in notice.inner_text()
        page.wait_for_timeout(1500)  # a notification would have been raised with the notice
        assert page.locator(TOAST).count() == 0


def test_the_panels_notice_of_a_failed_run_is_readable_in_dark(lab, tmp_path):
    cells = ["from guild_jupyter import api, panel\np = panel()",
             f"failed = api.run({lab.script!r})[0]"]
    write_notebook(tmp_path / "root" / "panel.ipynb", cells)
    with chromium_page(lab, tmp_path, {"width": 1280, "height": 1000}, full_page=False) as page:
        open_notebook(page, lab, "panel.ipynb", cells=len(cells))
        run_all_cells(page)
        notice = page.locator(".jp-OutputArea-output .gj-notice[data-level='error']")
        notice.wait_for(timeout=60_000)
        page.locator(".jp-OutputArea-output .gj-notice-tail", has_text="the loss is nan").wait_for(timeout=30_000)
        use_theme(page, "JupyterLab Dark")
        notice.wait_for(timeout=30_000)
        report = contrast_report(page, ".jp-OutputArea-output .gj-notice[data-level='error']")
        assert report["background"] < 0.1, report  # a dark notice, not a light box in a dark page
        assert report["checked"] >= 2 and report["failures"] == [], report
        page.screenshot(path=str(tmp_path / "panel-notice-dark.png"))
