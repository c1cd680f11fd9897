"""The live sweep view renders the sweep contract, in Chromium: a real
Jupyter server with the extension, its ``/guild/api/sweeps/...`` answered
from fixture files (``support.sweep_fixture``: every word and number
checked comes from those files, never from this one).

On the /guild page (``?sweep=ID``): the heading, summary and best trial;
the table's columns in the server's order, each trial's cells, the best
row marked; sorting by a column (nulls last both ways) and filtering by
status; the chart's lines grow piece by piece as the scalars answer with
``since``, and end equal to the served points, the best trial's line last
and wider; a tag or x change asks from the start; log scale; smoothing is
TensorBoard's EMA (checked against an EMA written here from its
definition); the hover names the trial's flags; the scatter puts each
trial at its flag and final scalar; the rows' actions reach their paths,
the restage form sending the edited flag. In JupyterLab: the sidebar's
Sweeps section opens the view in a main-area tab, and a saved notebook's
output of the sweep MIME type renders the same live view."""

from __future__ import annotations

import json

import nbformat
import pytest

from support.jupyter import chromium_page, guild_server
from support.lab import SIDEBAR, open_lab, open_sidebar
from support.sweep_fixture import ema, serve_sweep

pytestmark = pytest.mark.browser

VIEW = ".gj-sweep"
#: The chart's lines as drawn: run id → [[x, y], ...] (the arrays uPlot draws, which the view only
#: appends to between redraws), and each line's width in uPlot.
LINES_JS = """(el) => {
  const c = el.gjSweep.chart;
  if (!c.plot) return null;
  return c.shown.map((s, i) => ({
    run: s.trial.id,
    points: Array.from(s.xs.subarray(0, s.n)).map((x, j) => [x, s.ys[j]]),
    width: c.plot.series[i + 1].width,
  }));
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep-render")
    home = tmp / "guild-home"
    (home / "runs").mkdir(parents=True)
    with guild_server(tmp / "jupyter", home) as s:
        yield s


def open_sweep_page(page, server, sweep_id: str) -> None:
    page.goto(f"{server.url}/guild?sweep={sweep_id}&token={server.token}")
    page.locator(f"{VIEW} .gj-trial").first.wait_for(timeout=30_000)


def lines(page, root: str = VIEW) -> list[dict] | None:
    return page.locator(root).first.evaluate(LINES_JS)


def wait_points(page, total: int, root: str = VIEW, timeout: int = 20_000) -> None:
    page.wait_for_function(
        "([root, n]) => { const c = document.querySelector(root + ' .gj-sweep-chart');"
        " return c && Number(c.dataset.points) === n; }", arg=[root, total], timeout=timeout)


def show_file_axis(page, fx, root: str = VIEW) -> int:
    """Shows the x axis the scalars file was made against (a view starts
    with step); returns how many scalar asks came before that choice."""
    page.locator(f"{root} .gj-x-picker option[value='{fx.x}']").wait_for(state="attached", timeout=20_000)
    if fx.x == "step":
        return 0
    n = len(fx.scalar_asks)  # before the choice: its first ask may be answered while it is made
    page.locator(f"{root} .gj-x-picker").select_option(fx.x)
    return n


def until(page, predicate, what: str, timeout_ms: int = 10_000):
    """Lets the page run (its polls are answered by this thread's routes)
    until ``predicate()`` holds."""
    waited = 0
    while True:
        value = predicate()
        if value:
            return value
        if waited >= timeout_ms:
            raise AssertionError(f"timed out waiting for {what}")
        page.wait_for_timeout(50)
        waited += 50


def as_dict(shown: list[dict]) -> dict:
    return {line["run"]: [list(p) for p in line["points"]] for line in shown}


def column_texts(page, key: str) -> list[str]:
    return page.locator(f'{VIEW} tr.gj-trial td[data-key="{key}"]').all_inner_texts()


def sorted_ids(trials: list[dict], key: str, reverse: bool) -> list[str]:
    """The order a sort by ``key`` must give: by sort value, nulls last either way, ties in the server's order."""
    valued = [t for t in trials if t["cells"][key]["sort"] is not None]
    nulls = [t for t in trials if t["cells"][key]["sort"] is None]
    valued = sorted(valued, key=lambda t: t["cells"][key]["sort"], reverse=reverse)
    if reverse:  # ties keep the server's order in either direction
        groups: dict = {}
        for t in valued:
            groups.setdefault(t["cells"][key]["sort"], []).append(t)
        valued = [t for v in sorted(groups, reverse=True) for t in sorted(groups[v], key=trials.index)]
    return [t["id"] for t in valued + nulls]


def test_the_sweep_page_shows_the_table_and_live_charts(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1400, "height": 1100}) as page:
        fx = serve_sweep(page.context, pieces=3)
        sweep = fx.sweep
        main = sweep["scalar"]["tag"]
        open_sweep_page(page, server, fx.id)
        view = page.locator(VIEW)
        assert view.locator(".gj-heading").inner_text() == sweep["title"]
        assert view.locator(".gj-summary").inner_text() == sweep["summary_text"]
        assert sweep["title"] in page.title()
        best = next(t for t in sweep["trials"] if t["id"] == sweep["best"])
        best_line = view.locator(".gj-sweep-best").inner_text()
        assert sweep["scalar"]["best_text"] in best_line and best["flags_hover"] in best_line

        # The columns in the server's order; every trial's cells as words.
        heads = view.locator("thead th[data-key]").evaluate_all("(els) => els.map((e) => [e.dataset.key, e.innerText])")
        assert heads == [[c["key"], c["title"]] for c in sweep["columns"]]
        for t in sweep["trials"]:
            row = view.locator(f'tr.gj-trial[data-run="{t["id"]}"]')
            cells = dict(row.locator("td[data-key]").evaluate_all("(els) => els.map((e) => [e.dataset.key, e.innerText])"))
            assert list(cells) == [c["key"] for c in sweep["columns"]]
            for c in sweep["columns"]:
                assert cells[c["key"]].startswith(t["cells"][c["key"]]["text"]), (t["id"], c["key"])
            # A retry says what it retries, and sits right under it.
            status_key = next(c["key"] for c in sweep["columns"] if c["kind"] == "status")
            if t.get("retry_text"):
                assert t["retry_text"] in cells[status_key]
                assert "gj-mod-retry" in view.locator(f'tbody[data-run="{t["id"]}"]').get_attribute("class")
            labels = row.locator(".gj-actions > button").evaluate_all("(els) => els.map((b) => b.textContent)")
            assert labels == [a["label"] for a in t["actions"]]
            assert ("gj-mod-best" in row.get_attribute("class")) == t["is_best"]

        # The lines grow, piece by piece, and end as the files' points of the main tag.
        first_ask = show_file_axis(page, fx)
        stages = {k: fx.series_for(main, upto=k) for k in range(1, fx.pieces + 1)}
        seen = []  # the pieces the chart was seen holding, in order

        def grown():
            got = as_dict(lines(page) or [])
            k = next((k for k, want in stages.items() if got == want), None)
            assert got == {} or k is not None, got  # never anything but what was served so far
            if k is not None and (not seen or seen[-1] != k):
                seen.append(k)
            return k == fx.pieces

        until(page, grown, "every piece of the main tag", timeout_ms=20_000)
        assert seen == sorted(seen) and len(seen) >= 2, seen  # it grew, piece after piece
        asks = [a for a in fx.scalar_asks[first_ask:] if a["x"] == fx.x]
        assert asks[0].get("since") is None and asks[0]["tags"] == main
        assert [a.get("since") for a in asks[1:3]] == ["piece-1", "piece-2"]
        # The best trial's line is drawn last and wider than every other.
        shown = lines(page)
        assert shown[-1]["run"] == sweep["best"]
        assert all(line["width"] < shown[-1]["width"] for line in shown[:-1])
        assert view.locator(".gj-sweep-chart").get_attribute("data-best") == sweep["best"]
        page.screenshot(path=str(tmp_path / "sweep-page.png"), full_page=True)

        # The hover names the nearest line's trial by its flags.
        last = next(line for line in shown if line["run"] == sweep["best"])
        x, y = last["points"][len(last["points"]) // 2]
        pos = view.first.evaluate(
            """(el, [x, y]) => { const p = el.gjSweep.chart.plot; const r = p.over.getBoundingClientRect();
                 return [r.left + p.valToPos(x, 'x'), r.top + p.valToPos(y, 'y')]; }""", [x, y])
        page.mouse.move(pos[0], pos[1])
        tip = view.locator(".gj-chart-tip")
        tip.wait_for(state="visible", timeout=5_000)
        assert tip.get_attribute("data-run") == sweep["best"]
        assert best["flags_hover"] in tip.inner_text()
        page.mouse.move(5, 5)
        tip.wait_for(state="hidden", timeout=5_000)

        # Smoothing: TensorBoard's EMA of each line.
        weight = 0.9
        view.locator(".gj-smoothing").evaluate(
            "(el, w) => { el.value = String(w); el.dispatchEvent(new Event('input')); }", weight)
        page.wait_for_function("() => document.querySelector('.gj-smoothing-text').textContent === '0.90'")

        def smoothed_ok():
            got = as_dict(lines(page))
            for run, points in fx.series_for(main).items():
                want = ema([p[1] for p in points], weight)
                if [p[0] for p in got[run]] != [p[0] for p in points]:
                    return False
                if any(abs(a[1] - b) > 1e-9 * max(1.0, abs(b)) for a, b in zip(got[run], want)):
                    return False
            return True

        until(page, smoothed_ok, "the smoothed lines")
        view.locator(".gj-smoothing").evaluate("(el) => { el.value = '0'; el.dispatchEvent(new Event('input')); }")
        until(page, lambda: as_dict(lines(page)) == fx.series_for(main), "the lines as served again")

        # Log scale.
        view.locator(".gj-log-scale").check()
        page.wait_for_function("(el) => el.gjSweep.chart.plot.scales.y.distr === 3", arg=view.element_handle())
        view.locator(".gj-log-scale").uncheck()
        page.wait_for_function("(el) => el.gjSweep.chart.plot.scales.y.distr === 1", arg=view.element_handle())

        # Another tag: asked for from the start.
        other = next(t for t in fx.tags() if t != main)
        n_asks = len(fx.scalar_asks)
        view.locator(".gj-tag-picker").select_option(other)
        until(page, lambda: as_dict(lines(page) or []) == fx.series_for(other), f"the lines of {other}")
        ask = fx.scalar_asks[n_asks]
        assert ask["tags"] == other and "since" not in ask
        # Another x axis (a logged tag): from the start too, x the tag's value at each step.
        x_tag = next(x for x in fx.axes() if x != fx.x and x in sweep["x_axes"] and x not in ("step", "time"))
        n_asks = len(fx.scalar_asks)
        view.locator(".gj-x-picker").select_option(x_tag)
        want = fx.series_for(other, x=x_tag)
        until(page, lambda: as_dict(lines(page) or []) == want, f"the lines against {x_tag}")
        ask = fx.scalar_asks[n_asks]
        assert ask["x"] == x_tag and ask["tags"] == other and "since" not in ask

        # Flags against results: each trial with a final value, at its flag's value and that value.
        hp = sweep["hparams"]
        for flag in hp["flags"]:
            view.locator(".gj-scatter-flag").select_option(flag)
            dots = view.locator(".gj-scatter-point").evaluate_all(
                "(els) => els.map((e) => [e.dataset.run, Number(e.dataset.x), Number(e.dataset.y),"
                " e.classList.contains('gj-mod-best')])")
            want_dots = [[p["run"], p["flags"][flag], p["final"], p["run"] == sweep["best"]]
                         for p in hp["points"] if p["final"] is not None]
            assert sorted(dots) == sorted(want_dots), flag
            assert flag in view.locator(".gj-scatter-svg").inner_html()


def test_the_trial_table_sorts_filters_and_acts(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1400, "height": 1100}) as page:
        fx = serve_sweep(page.context, pieces=1)
        sweep = fx.sweep
        trials = sweep["trials"]
        open_sweep_page(page, server, fx.id)
        view = page.locator(VIEW)

        def order():
            return view.locator("tr.gj-trial").evaluate_all("(els) => els.map((e) => e.dataset.run)")

        assert order() == [t["id"] for t in trials]
        # A retry comes right after the trial it retries (the server's order, kept).
        retries = [t for t in trials if t.get("attempt")]
        assert retries, "the fixture should hold a retry"
        for r in retries:
            assert order()[order().index(r["id"]) - 1] in (r["trial"], *[x["id"] for x in trials if x.get("trial") == r["trial"]])
        for key in ("scalar", "flag:lr", "progress"):
            head = view.locator(f'thead th[data-key="{key}"] button')
            head.click()
            assert order() == sorted_ids(trials, key, reverse=False), key
            assert view.locator(f'thead th[data-key="{key}"]').get_attribute("aria-sort") == "ascending"
            head.click()
            assert order() == sorted_ids(trials, key, reverse=True), key
            head.click()
            assert order() == [t["id"] for t in trials]

        # The status filter: its choices are the sweep's statuses.
        options = view.locator(".gj-status-filter option").evaluate_all("(els) => els.map((o) => o.value)")
        assert options == [""] + sweep["statuses"]
        for status in sweep["statuses"]:
            view.locator(".gj-status-filter").select_option(status)
            assert order() == [t["id"] for t in trials if t["status"] == status]
        view.locator(".gj-status-filter").select_option("")
        assert order() == [t["id"] for t in trials]

        # Actions: exactly the row's, reaching their method and path.
        def first_with(verb=None, confirm=None):
            for t in trials:
                for a in t["actions"]:
                    if verb is not None and a["verb"] != verb:
                        continue
                    if confirm is not None and (bool(a["confirm"]) != confirm or a["method"] == "GET" or a.get("form")):
                        continue
                    return t, a
            raise AssertionError(f"the fixture has no {verb or ''} action (confirm={confirm})")

        # A verb that asks first (stop, restart, delete): the first click asks, the second sends.
        t, action = first_with(confirm=True)
        button = view.locator(f'tr.gj-trial[data-run="{t["id"]}"] button[data-action="{action["verb"]}"]')
        button.click()
        assert button.inner_text() == action["confirm"]
        page.wait_for_timeout(300)
        assert fx.calls == []
        button.click()
        page.wait_for_function("() => document.querySelector('.gj-message').textContent.endsWith('done')")
        assert fx.calls[0][:2] == (action["method"], action["path"])

        # A verb that does not (retry, unstage): one click.
        t, action = first_with(confirm=False)
        n = len(fx.calls)
        view.locator(f'tr.gj-trial[data-run="{t["id"]}"] button[data-action="{action["verb"]}"]').click()
        until(page, lambda: len(fx.calls) > n, f"the {action['verb']} call")
        assert fx.calls[n][:2] == (action["method"], action["path"])

        t, action = first_with("output")
        view.locator(f'tr.gj-trial[data-run="{t["id"]}"] button[data-action="output"]').click()
        view.locator(f'.gj-output[data-run="{t["id"]}"]').wait_for(timeout=10_000)
        assert ("GET", action["path"], None) in fx.calls

        # Restage: the flag form under the row, sending only the edited flag.
        t, action = first_with("restage")
        row = view.locator(f'tr.gj-trial[data-run="{t["id"]}"]')
        row.locator('button[data-action="restage"]').click()
        form = view.locator(f'tbody[data-run="{t["id"]}"] form.gj-form')
        form.wait_for(timeout=5_000)
        values = form.locator("input").evaluate_all("(els) => els.map((i) => [i.name, i.value])")
        assert values == [[f["name"], f["value"]] for f in action["form"]["flags"]]
        flag = action["form"]["flags"][0]["name"]
        fx.replies[(action["method"], action["path"])] = (200, {"action": "restage", "runs": []})
        form.locator(f'input[name="{flag}"]').fill("0.0375")
        form.locator("button[type=submit]").click()
        form.wait_for(state="detached", timeout=10_000)
        posts = [c for c in fx.calls if c[0] != "GET"]  # the followed output keeps asking meanwhile
        assert posts[-1] == (action["method"], action["path"], {"flags": {flag: "0.0375"}})
        assert view.locator(f'tbody[data-run="{t["id"]}"] tr.gj-trial-more').is_hidden()


def test_an_unknown_sweep_says_so_in_one_line(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1000, "height": 800}) as page:
        serve_sweep(page.context)
        page.goto(f"{server.url}/guild?sweep=0000dead&token={server.token}")
        error = page.locator(f"{VIEW} .gj-error")
        error.wait_for(state="visible", timeout=20_000)
        assert error.inner_text() == "no sweep 0000dead"


def test_the_sidebar_opens_a_sweep_in_a_main_area_tab(server, tmp_path):
    with chromium_page(server, tmp_path, {"width": 1400, "height": 1000}, full_page=False) as page:
        fx = serve_sweep(page.context)
        sidebar = open_sidebar(page, server)
        link = fx.links["sweeps"][0]
        row = sidebar.locator(f'.gj-sweep-row[data-sweep="{link["id"]}"]')
        row.wait_for(timeout=30_000)
        assert link["title"] in row.inner_text() and link["summary_text"] in row.inner_text()
        row.locator("button").click()
        tab = page.locator(f"#guild-jupyter-sweep-{link['id']}")
        tab.wait_for(state="visible", timeout=20_000)
        tab.locator(".gj-trial").first.wait_for(timeout=20_000)
        page.locator(".lm-TabBar-tab.lm-mod-current", has_text=fx.sweep["title"]).wait_for(timeout=10_000)
        show_file_axis(page, fx, f"#guild-jupyter-sweep-{link['id']}")
        wait_points(page, sum(len(p) for p in fx.series_for(fx.sweep["scalar"]["tag"]).values()),
                    root=f"#guild-jupyter-sweep-{link['id']}")
        # A second click shows the same tab, not another.
        row.locator("button").click()
        page.wait_for_timeout(300)
        assert page.locator(f"#guild-jupyter-sweep-{link['id']}").count() == 1
        page.screenshot(path=str(tmp_path / "sweep-tab.png"))


def test_a_cell_output_of_the_sweep_type_is_the_live_view(server, tmp_path):
    """A saved notebook whose output is the sweep's MIME bundle (with the
    HTML fallback other front ends show): JupyterLab renders the live view
    (no kernel needed: it talks to the server)."""
    with chromium_page(server, tmp_path, {"width": 1400, "height": 1100}, full_page=False) as page:
        fx = serve_sweep(page.context)
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("%guild sweep")
        cell.outputs = [nbformat.v4.new_output("display_data", data={
            "application/vnd.guild-jupyter.sweep+json": {"sweep": fx.id, "store": fx.sweep["store"]},
            "text/html": "<p class='fallback'>the static table</p>", "text/plain": "sweep"})]
        nb.cells = [cell]
        nbformat.write(nb, f"{server.root_dir}/sweep-output.ipynb")
        open_lab(page, server, "sweep-output.ipynb")
        out = page.locator(f".jp-OutputArea-output {VIEW}")
        out.wait_for(timeout=30_000)
        out.locator(".gj-trial").first.wait_for(timeout=20_000)
        assert page.locator(".jp-OutputArea-output .fallback").count() == 0
        assert out.locator(".gj-error").is_hidden()  # the bundle's store is the one the server answers from
        show_file_axis(page, fx, f".jp-OutputArea-output {VIEW}")
        wait_points(page, sum(len(p) for p in fx.series_for(fx.sweep["scalar"]["tag"]).values()),
                    root=f".jp-OutputArea-output {VIEW}")
        assert json.loads(json.dumps(as_dict(lines(page, f".jp-OutputArea-output {VIEW}")))) == \
            fx.series_for(fx.sweep["scalar"]["tag"])
