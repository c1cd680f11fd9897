"""The one browser code base renders the view model, in Chromium: the
/guild page bundle and the JupyterLab sidebar, both served by a real
Jupyter server with the extension, with ``/guild/api/state`` and
``/guild/api/events`` answered from a snapshot of the contract
(``support.snapshot``: the words checked come from that file, never from
this one). Every run, queue, GPU and notice shows the view model's words
in both, the same words in both; the sidebar at 250 px shows every title
uncut and the failed group without a click, and the status bar item reads
the snapshot's ``status_bar_text``; the buttons are the rows' ``actions``
and a click reaches the action's method and path (a confirm asks first; a
restage form shows the server's one-line error); in dark (and light)
themes every text of the page and the sidebar meets WCAG AA, computed from
the rendered colours."""

from __future__ import annotations

import pytest

from support.jupyter import chromium_page, guild_server
from support.lab import (SIDEBAR, contrast_report, cut_report, open_sidebar, set_sidebar_width, status_item_text,
                         use_theme, words)
from support.fixture_server import all_runs, gpu_words, queue_words, run_words, serve_fixture

pytestmark = pytest.mark.browser

PAGE_ROOT = ".gj-page"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("render")
    home = tmp / "guild-home"
    (home / "runs").mkdir(parents=True)
    with guild_server(tmp / "jupyter", home) as s:
        yield s


def open_page(page, server) -> None:
    page.goto(f"{server.url}/guild?token={server.token}")
    page.locator(f"{PAGE_ROOT} .gj-run").first.wait_for(timeout=30_000)


def expand_all(page, root: str) -> None:
    """Opens every closed group (a click on its heading, as a person would)."""
    closed = page.locator(f"{root} details.gj-group:not([open])")
    for _ in range(closed.count()):
        closed.first.locator("summary").click()
    page.wait_for_function(f"() => !document.querySelector('{root} details.gj-group:not([open])')")


def assert_shows_the_snapshot(page, root: str, snap: dict, events: dict) -> None:
    """Every row of the snapshot shows its words, visibly (groups expanded)."""
    view = page.locator(root)
    assert snap["summary_text"] in view.locator(".gj-summary").inner_text()
    assert [g["name"] for g in snap["groups"]] == view.locator("details.gj-group").evaluate_all(
        "(els) => els.map((e) => e.dataset.group)")
    for group, row in all_runs(snap):
        el = view.locator(f'[data-group="{group["name"]}"] .gj-run[data-run="{row["id"]}"][data-status="{row["status"]}"]')
        text = el.inner_text()
        for word in run_words(row):
            assert word in text, (group["name"], row["id"], word, text)
        labels = el.locator(".gj-actions > button").evaluate_all("(els) => els.map((b) => b.textContent)")
        assert labels == [a["label"] for a in row["actions"]], (row["id"], labels)
    for group in snap["groups"]:
        heading = view.locator(f'[data-group="{group["name"]}"] > summary').inner_text()
        assert group["title"] in heading and str(group["total"]) in heading
        if not group["rows"]:
            assert group["empty_text"] in view.locator(f'[data-group="{group["name"]}"] .gj-empty').inner_text()
    for q in snap["queues"]:
        el = view.locator(f'.gj-queue[data-queue="{q["id"]}"]')
        for word in queue_words(q):
            assert word in el.inner_text(), (q["id"], word)
        labels = el.locator(".gj-actions > button").evaluate_all("(els) => els.map((b) => b.textContent)")
        assert labels == [a["label"] for a in q["actions"]]
    for g in snap["gpus"]["devices"]:
        text = view.locator(f'.gj-gpu[data-gpu="{g["index"]}"]').inner_text()
        for word in gpu_words(g):
            assert word in text, (g["index"], word, text)
    for w in snap["warnings"]:
        assert w in view.locator(".gj-warnings").inner_text()
    # Notices: the newest events, newest first (a viewer shows a few), a
    # failed run's last lines with it.
    shown = view.locator(".gj-notice").evaluate_all("(els) => els.map((e) => Number(e.dataset.seq))")
    newest = sorted((e["seq"] for e in events["events"]), reverse=True)
    assert shown == newest[:len(shown)] and len(shown) >= min(len(newest), 3), (shown, newest)
    for e in events["events"]:
        if e["seq"] not in shown:
            continue
        notice = view.locator(f'.gj-notice[data-seq="{e["seq"]}"]')
        assert e["text"] in notice.inner_text()
        assert notice.get_attribute("data-level") == e["level"]
        if e.get("tail"):
            assert e["tail"].strip().splitlines()[-1] in notice.locator(".gj-notice-tail").inner_text()


def row_words(page, root: str) -> dict:
    """The words each run, queue and GPU row shows (buttons included)."""
    return page.evaluate(
        """(root) => Object.fromEntries(Array.from(document.querySelectorAll(
             root + ' .gj-run, ' + root + ' .gj-queue, ' + root + ' .gj-gpu')).map((e) =>
             [e.dataset.run || e.dataset.queue || 'gpu' + e.dataset.gpu, e.innerText.split(/\\s+/).filter((w) => w)]))""",
        root)


def test_the_page_bundle_shows_the_view_models_words(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1200, "height": 1000}) as page:
        fixture = serve_fixture(page.context)
        snap, events = fixture.snapshot, fixture.events
        open_page(page, server)
        # Groups open or closed as the snapshot says, until clicked.
        for g in snap["groups"]:
            is_open = page.locator(f'{PAGE_ROOT} [data-group="{g["name"]}"]').evaluate("(e) => e.open")
            assert is_open == g["open"], g["name"]
        expand_all(page, PAGE_ROOT)
        assert_shows_the_snapshot(page, PAGE_ROOT, snap, events)
        assert snap["store"] in page.locator(".gj-store").inner_text()
        assert snap["summary_text"] in page.title()
        # Sparklines: the view model's points, drawn as given.
        for _, row in all_runs(snap):
            points = page.locator(f'.gj-run[data-run="{row["id"]}"] .gj-spark polyline')
            if row["spark_points"]:
                assert points.get_attribute("points") == row["spark_points"]
            else:
                assert points.count() == 0
        page.screenshot(path=str(tmp_path / "page-1200.png"), full_page=True)

        # Below 820 px: cards, every value and button on screen.
        page.set_viewport_size({"width": 700, "height": 1000})
        page.wait_for_function("() => window.innerWidth === 700")
        assert cut_report(page, PAGE_ROOT) == []
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        assert_shows_the_snapshot(page, PAGE_ROOT, snap, events)
        page.screenshot(path=str(tmp_path / "page-700.png"), full_page=True)

        # A reload shows the notices again (the events endpoint's recent ones).
        page.reload()
        page.locator(f'{PAGE_ROOT} .gj-notice[data-seq="{events["last"]}"]').wait_for(timeout=20_000)


def test_the_sidebar_shows_the_view_models_words_legibly_at_250px(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1280, "height": 1000}, full_page=False) as page:
        fixture = serve_fixture(page.context)
        snap, events = fixture.snapshot, fixture.events
        sidebar = open_sidebar(page, server)
        sidebar.locator(".gj-run").first.wait_for(timeout=30_000)
        set_sidebar_width(page, 250)
        page.wait_for_function("(t) => document.querySelector('.jp-GuildStatus').textContent === t",
                               arg=snap["status_bar_text"], timeout=10_000)
        # The failed group is open without a click, its runs visible.
        failed = [g for g in snap["groups"] if g["name"] == "failed" and g["rows"]]
        assert failed, "the snapshot should hold a failed run"
        for row in failed[0]["rows"]:
            assert sidebar.locator(f'[data-group="failed"] .gj-run[data-run="{row["id"]}"]').is_visible()
        # At 250 px the title (the varying flags) leads each row, whole; nothing is cut.
        for group, row in all_runs(snap):
            if not group["open"]:
                continue
            el = sidebar.locator(f'.gj-run[data-run="{row["id"]}"]')
            assert el.locator(".gj-title").inner_text() == row["title"]
            first = el.evaluate("(e) => e.querySelector('.gj-what').innerText.trim()")
            assert first.startswith(row["title"]), first
        assert cut_report(page, SIDEBAR) == []
        page.screenshot(path=str(tmp_path / "sidebar-250.png"))
        expand_all(page, SIDEBAR)
        assert_shows_the_snapshot(page, SIDEBAR, snap, events)
        assert cut_report(page, SIDEBAR) == []
        # A distinct icon: not the table of contents' (nor any other tab's).
        icons = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab").evaluate_all(
            "(els) => els.map((e) => [e.dataset.id, e.querySelector('svg')?.outerHTML || ''])")
        ours = [svg for tab, svg in icons if tab == "guild-jupyter-sidebar"]
        others = [svg for tab, svg in icons if tab != "guild-jupyter-sidebar"]
        assert ours and ours[0] and ours[0] not in others, icons
        # The status bar item opens the sidebar.
        page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='guild-jupyter-sidebar']").click()
        sidebar.wait_for(state="hidden", timeout=10_000)
        page.locator(".jp-GuildStatus").click()
        sidebar.wait_for(state="visible", timeout=10_000)
        assert status_item_text(page) == snap["status_bar_text"]


def test_the_page_and_the_sidebar_show_the_same_words(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1280, "height": 1000}, full_page=False) as page:
        fixture = serve_fixture(page.context)
        open_page(page, server)
        expand_all(page, PAGE_ROOT)
        on_page = row_words(page, PAGE_ROOT)
        sidebar = open_sidebar(page, server)
        sidebar.locator(".gj-run").first.wait_for(timeout=30_000)
        expand_all(page, SIDEBAR)
        in_sidebar = row_words(page, SIDEBAR)
        expected = {r["id"] for _, r in all_runs(fixture.snapshot)} | {q["id"] for q in fixture.snapshot["queues"]}
        assert expected <= set(on_page) and len(on_page) == len(expected) + len(fixture.snapshot["gpus"]["devices"])
        for key in on_page:
            assert sorted(on_page[key]) == sorted(in_sidebar[key]), key


def test_actions_are_the_rows_and_reach_their_paths(server, tmp_path):
    """Clicks in the sidebar and on the page send exactly the action's
    method and path; a confirm asks first; restage's form sends the edited
    flags and shows the server's one-line error, staying open."""
    with chromium_page(server, tmp_path, {"width": 1280, "height": 1000}, full_page=False) as page:
        fixture = serve_fixture(page.context)
        snap = fixture.snapshot
        rows = [r for _, r in all_runs(snap)]

        def first_with(verb, confirm):
            for r in rows:
                for a in r["actions"]:
                    if a["verb"] == verb and bool(a["confirm"]) == confirm:
                        return r, a
            raise AssertionError(f"the snapshot has no {verb} action (confirm={confirm})")

        for root, opener in ((SIDEBAR, lambda: open_sidebar(page, server)), (PAGE_ROOT, lambda: open_page(page, server))):
            fixture.calls.clear()
            opener()
            view = page.locator(root)
            view.locator(".gj-run").first.wait_for(timeout=30_000)
            expand_all(page, root)
            # A confirmed verb: the first click asks (nothing sent), the second sends.
            row, action = first_with("stop", True)
            button = view.locator(f'.gj-run[data-run="{row["id"]}"] button[data-action="stop"]')
            button.click()
            assert button.inner_text() == action["confirm"]
            page.wait_for_timeout(300)
            assert fixture.calls == []
            button.click()
            wait_calls(page, fixture, 1)
            assert fixture.calls[0][:2] == (action["method"], action["path"])
            # A verb without confirm: one click.
            row, action = first_with("unstage", False)
            view.locator(f'.gj-run[data-run="{row["id"]}"] button[data-action="unstage"]').click()
            wait_calls(page, fixture, 2)
            assert fixture.calls[1][:2] == (action["method"], action["path"])
            # Output: opens the followed output of that run (a GET of the action's path).
            row, action = first_with("output", False)
            view.locator(f'.gj-run[data-run="{row["id"]}"] button[data-action="output"]').click()
            view.locator(f'.gj-output[data-run="{row["id"]}"]').wait_for(timeout=10_000)
            assert ("GET", action["path"], None) in fixture.calls
            # Restage: a form of the run's flags; a refused value shows the server's line.
            row, action = first_with("restage", False)
            el = view.locator(f'.gj-run[data-run="{row["id"]}"]')
            el.locator('button[data-action="restage"]').click()
            form = el.locator("form.gj-form")
            values = form.locator("input").evaluate_all("(els) => els.map((i) => [i.name, i.value])")
            assert values == [[f["name"], f["value"]] for f in action["form"]["flags"]]
            flag = action["form"]["flags"][0]["name"]
            line = f"invalid value 'not-a-value' for flag '{flag}': expected a number"
            fixture.replies[(action["method"], action["path"])] = (400, {"error": line})
            before = len(fixture.calls)
            form.locator(f'input[name="{flag}"]').fill("not-a-value")
            form.locator("button[type=submit]").click()
            error = form.locator(".gj-form-error")
            error.wait_for(state="visible", timeout=10_000)
            assert error.inner_text() == line
            assert fixture.calls[before:] == [(action["method"], action["path"], {"flags": {flag: "not-a-value"}})]
            assert form.is_visible()  # still open, to be corrected
            fixture.replies[(action["method"], action["path"])] = (201, {"action": "restage", "runs": []})
            form.locator(f'input[name="{flag}"]').fill("0.25")
            form.locator("button[type=submit]").click()
            form.wait_for(state="detached", timeout=10_000)
            assert fixture.calls[-1] == (action["method"], action["path"], {"flags": {flag: "0.25"}})
            # A queue's confirmed stop.
            q = snap["queues"][0]
            qstop = next(a for a in q["actions"] if a["confirm"])
            qb = view.locator(f'.gj-queue[data-queue="{q["id"]}"] button[data-action="{qstop["verb"]}"]')
            n = len(fixture.calls)
            qb.click()
            qb.click()
            wait_calls(page, fixture, n + 1)
            assert fixture.calls[n][:2] == (qstop["method"], qstop["path"])


def wait_calls(page, fixture, n: int, timeout_ms: int = 10_000) -> None:
    """Lets the page run until ``n`` calls reached the API (Playwright's
    routes run on this thread, inside page waits)."""
    waited = 0
    while len(fixture.calls) < n and waited < timeout_ms:
        page.wait_for_timeout(50)
        waited += 50
    assert len(fixture.calls) >= n, fixture.calls


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_contrast_of_the_page_meets_wcag_aa(server, tmp_path, scheme):
    with chromium_page(server, tmp_path, {"width": 1200, "height": 1000}) as page:
        serve_fixture(page.context)
        page.emulate_media(color_scheme=scheme)
        open_page(page, server)
        expand_all(page, PAGE_ROOT)
        page.locator(".gj-run button[data-action='stop']").first.click()  # an armed button too
        page.locator(".gj-mod-armed").wait_for(timeout=3_000)
        report = contrast_report(page, PAGE_ROOT)
        assert (report["background"] < 0.1) if scheme == "dark" else (report["background"] > 0.8), report
        assert report["checked"] > 50 and report["failures"] == [], report
        page.screenshot(path=str(tmp_path / f"page-{scheme}.png"), full_page=True)


def test_contrast_of_the_sidebar_meets_wcag_aa_in_both_themes(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1280, "height": 1000}, full_page=False) as page:
        serve_fixture(page.context)
        sidebar = open_sidebar(page, server)
        sidebar.locator(".gj-run").first.wait_for(timeout=30_000)
        expand_all(page, SIDEBAR)
        sidebar.locator(".gj-run button[data-action='stop']").first.click()
        sidebar.locator(".gj-mod-armed").wait_for(timeout=3_000)
        light = contrast_report(page, SIDEBAR)
        assert light["background"] > 0.8 and light["checked"] > 50 and light["failures"] == [], light
        sidebar.locator(".gj-mod-armed").wait_for(state="detached", timeout=10_000)  # it disarms by itself
        use_theme(page, "JupyterLab Dark")
        sidebar.locator(".gj-run button[data-action='stop']").first.click()
        sidebar.locator(".gj-mod-armed").wait_for(timeout=3_000)
        dark = contrast_report(page, SIDEBAR)
        assert dark["background"] < 0.1, dark
        assert dark["checked"] > 50 and dark["failures"] == [], dark
        page.screenshot(path=str(tmp_path / "sidebar-dark.png"))
        use_theme(page, "JupyterLab Light")  # the server's settings are shared by this module's tests
