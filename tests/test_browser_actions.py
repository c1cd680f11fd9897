"""A failed run's actions, clicked in Chromium, reach the server and change
the store (a real Jupyter server with the extension, real runs): on the
/guild page, restage with a bad flag value shows the server's one-line
error in the form and writes nothing; with a good value it stages a copy
with that value; retry stages the run again. In the JupyterLab sidebar the
same form shows the same line and writes nothing."""

from __future__ import annotations

import os

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.fixture_server import row_of
from support.jupyter import chromium_page, guild_server
from support.lab import SIDEBAR, open_sidebar

pytestmark = pytest.mark.browser

FAILS = "secs = 0.2\nimport time\ntime.sleep(secs)\nraise SystemExit(3)\n"


def run_dirs(home) -> set:
    return set(os.listdir(os.path.join(home, "runs")))


def action(server, run_id: str, verb: str) -> dict:
    _, state = server.request("/guild/api/state")
    return next(a for a in row_of(state, run_id)["actions"] if a["verb"] == verb)


def bad_value_is_refused_in_the_form(page, root: str, failed, home) -> str:
    """Opens the row's restage form, sends a bad value; returns the line shown."""
    el = page.locator(f'{root} .gj-run[data-run="{failed.id}"]')
    el.locator("button[data-action='restage']").click()
    form = el.locator("form.gj-form")
    form.wait_for(timeout=10_000)
    before = run_dirs(home)
    form.locator("input[name='secs']").fill("not-a-number")
    form.locator("button[type=submit]").click()
    error = form.locator(".gj-form-error")
    error.wait_for(state="visible", timeout=15_000)
    line = error.inner_text()
    assert line.strip() and "\n" not in line.strip() and "secs" in line, line
    assert run_dirs(home) == before  # nothing written
    assert form.is_visible()
    return line


def test_restage_and_retry_from_the_page_and_the_sidebar(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    (root / "fails.py").write_text(FAILS)
    failed = api.run(str(root / "fails.py"))[0]
    wait_for(lambda: failed.refresh().status == "error", timeout=60, message="the run failed")
    try:
        with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server, \
                chromium_page(server, tmp_path, {"width": 1200, "height": 1000}, full_page=False) as page:
            page.goto(f"{server.url}/guild?token={server.token}")
            row = page.locator(f'.gj-page [data-group="failed"] .gj-run[data-run="{failed.id}"]')
            row.wait_for(state="visible", timeout=30_000)  # the failed group is open
            restage = action(server, failed.id, "restage")
            values = row.locator("button[data-action='restage']")
            values.click()
            shown = row.locator("form.gj-form input").evaluate_all("(els) => els.map((i) => [i.name, i.value])")
            assert shown == [[f["name"], f["value"]] for f in restage["form"]["flags"]]
            values.click()  # closes it
            row.locator("form.gj-form").wait_for(state="detached", timeout=5_000)

            line = bad_value_is_refused_in_the_form(page, ".gj-page", failed, guild_home)
            # The same line the server gives for that value over REST (which writes nothing either).
            before = run_dirs(guild_home)
            st, err = server.request("/" + "guild/api/" + restage["path"], restage["method"],
                                     {"flags": {"secs": "not-a-number"}})
            assert st == 400 and err["error"] == line and run_dirs(guild_home) == before

            # A good value: a staged copy with it.
            form = row.locator("form.gj-form")
            form.locator("input[name='secs']").fill("0.25")
            form.locator("button[type=submit]").click()
            form.wait_for(state="detached", timeout=15_000)
            copies = wait_for(lambda: [r for r in api.runs(store=str(guild_home)) if r.status == "staged"],
                              timeout=15, message="the restaged copy")
            assert [r.flags["secs"] for r in copies] == [0.25]
            page.locator(f'.gj-page .gj-run[data-run="{copies[0].id}"][data-status="staged"]').wait_for(timeout=15_000)

            # Retry: the failed run staged again, as it was.
            row.locator("button[data-action='retry']").click()
            retried = wait_for(lambda: [r for r in api.runs(store=str(guild_home))
                                        if r.status == "staged" and r.id != copies[0].id],
                               timeout=15, message="the retry staged")
            assert len(retried) == 1 and retried[0].flags == failed.flags
            page.locator(f'.gj-page .gj-run[data-run="{retried[0].id}"][data-status="staged"]').wait_for(timeout=15_000)

            # The sidebar: the same form, the same line, nothing written.
            open_sidebar(page, server)
            page.locator(f'{SIDEBAR} .gj-run[data-run="{failed.id}"]').wait_for(state="visible", timeout=30_000)
            assert bad_value_is_refused_in_the_form(page, SIDEBAR, failed, guild_home) == line
    finally:
        api.stop(all=True, timeout=15)
