"""The live sweep view end to end (issue 22's browser tests): a real
JupyterLab with the server extension on 127.0.0.1, Debian's Chromium, a
real queue running a real sweep of an epoch-only script (it prints
``epoch:``, ``loss:`` and ``acc:`` each epoch, never ``step:``).

One notebook runs ``%guild sweep ID`` in a real kernel, then a cell that
sleeps: the cell's output is the live component, and its chart fills while
the kernel is busy. From the sidebar's sweep row the same view opens in a
main-area tab (the kernel still busy); its lines grow while the runs log
(held at a gate, then let go: three points per trial, then six, each the
value the script printed at that step); the failing trial's retry (the
queue's, ``retries=1``) shows right under it, saying what it retries; the
best trial (lowest loss) is highlighted in the table and drawn last and
widest; restage from a row, with an edited flag, stages a run with that
flag in the store (read back through the api). The kernel is restarted
(JupyterLab's REST restart) before the gate opens: the cell's output keeps
updating after it (its lines grow to six points too).

Every expected value comes from the script's own arithmetic or the api,
never from the page."""

from __future__ import annotations

import re

import pytest

from conftest import wait_for
from guild_jupyter import api
from support.jupyter import chromium_page, guild_server, run_all_cells, wait_kernel_idle, write_notebook
from support.lab import open_sidebar
from test_browser_sweep_render import LINES_JS, as_dict

pytestmark = pytest.mark.browser

# Logs 3 epochs, waits for the file ``gate`` (when given), logs 3 more; fails for lr > 0.25.
TRAIN = ("import os, sys, time\nlr = 0.1\nepochs = 6\ngate = ''\n"
         "for epoch in range(epochs):\n"
         "    if gate and epoch == 3:\n"
         "        while not os.path.exists(gate):\n"
         "            time.sleep(0.02)\n"
         "    print(f'epoch: {epoch}', flush=True)\n"
         "    print(f'loss: {lr / (epoch + 1):.6f}', flush=True)\n"
         "    print(f'acc: {1 - lr / (epoch + 1):.6f}', flush=True)\n"
         "sys.exit(1 if lr > 0.25 else 0)\n")
#: The edited flag a restage sends: no trial of the sweep has it.
RESTAGED_LR = "0.0375"


def expected_loss(lr: float, epochs: int) -> list[list[float]]:
    """The script's loss at each step (the k-th value gets step k: it never prints ``step:``)."""
    return [[float(k), round(lr / (k + 1), 6)] for k in range(epochs)]


def close(got: dict, want: dict) -> bool:
    """Same runs, same steps, values equal up to the event file's float32."""
    if set(got) != set(want):
        return False
    for run, points in want.items():
        if [p[0] for p in got[run]] != [p[0] for p in points]:
            return False
        if any(abs(a[1] - b[1]) > 1e-6 * max(1.0, abs(b[1])) for a, b in zip(got[run], points)):
            return False
    return True


def kernel_busy(server) -> bool:
    st, kernels = server.request("/api/kernels")
    assert st == 200, kernels
    return [k["execution_state"] for k in kernels] == ["busy"]


def test_the_live_sweep_view_follows_a_queue_running_a_sweep(tmp_path, guild_home):
    root = tmp_path / "root"
    root.mkdir()
    script = root / "train.py"
    script.write_text(TRAIN)
    gate = tmp_path / "gate"
    trials = api.run(str(script), "lr=[0.1,0.2,0.3]", f"gate={gate}", stage=True, retries=1)
    sweep = trials[0].sweep
    lr_of = {t.id: t.flags["lr"] for t in trials}
    by_lr = {lr: rid for rid, lr in lr_of.items()}
    write_notebook(root / "sweep.ipynb", [f"%load_ext guild_jupyter\n%guild sweep {sweep}",
                                          "import time; time.sleep(300)"])
    queue = None
    try:
        with guild_server(tmp_path / "jupyter", guild_home, root_dir=root) as server, \
                chromium_page(server, tmp_path, {"width": 1400, "height": 1000}, full_page=False) as page:
            page.goto(server.lab_url("sweep.ipynb"))
            page.locator(".jp-Notebook .jp-Cell").nth(1).wait_for(timeout=60_000)
            wait_kernel_idle(page)
            run_all_cells(page)

            # The cell's output is the live component (not the HTML fallback), while the next cell keeps the kernel busy.
            cell = ".jp-OutputArea-output .gj-sweep"
            page.locator(f"{cell} tr.gj-trial").nth(len(trials) - 1).wait_for(timeout=30_000)
            wait_for(lambda: kernel_busy(server), timeout=30, message="the kernel busy with the sleeping cell")
            assert page.locator(f"{cell}").get_attribute("data-sweep") == sweep
            assert page.locator(f"{cell} .gj-error").is_hidden()  # its store is the one the server serves
            assert page.locator(".jp-OutputArea-output .guild-sweep").count() == 0  # the HTML fallback's div
            ids = page.locator(f"{cell} tr.gj-trial").evaluate_all("(els) => els.map((e) => e.dataset.run)")
            assert ids == [t["id"] for t in api.sweep_table(sweep)["trials"]] and set(ids) == set(lr_of)

            # A real queue runs all three at once; they log three epochs and wait at the gate.
            queue = api.queue(max_running=3, poll_interval=1)
            held = {rid: expected_loss(lr, 3) for rid, lr in lr_of.items()}
            cell_lines = lambda: as_dict(page.locator(cell).first.evaluate(LINES_JS) or [])  # noqa: E731
            wait_for(lambda: close(cell_lines(), held), timeout=60, interval=0.2,
                     message="the cell's chart: three epochs of each trial")
            assert kernel_busy(server)  # it filled while the kernel was busy

            # The sidebar's sweep row opens the same view in a main-area tab.
            sidebar = open_sidebar(page)
            row = sidebar.locator(f'.gj-sweep-row[data-sweep="{sweep}"]')
            row.wait_for(timeout=30_000)
            row.locator("button[data-action='open-sweep']").click()
            tab = f"#guild-jupyter-sweep-{sweep}"
            page.locator(f"{tab} tr.gj-trial").first.wait_for(timeout=20_000)
            assert kernel_busy(server)
            tab_lines = lambda: as_dict(page.locator(f"{tab} .gj-sweep").first.evaluate(LINES_JS) or [])  # noqa: E731
            wait_for(lambda: close(tab_lines(), held), timeout=30, interval=0.2,
                     message="the tab's chart: three epochs of each trial")

            # The kernel restarted (JupyterLab's REST restart): the sleeping cell is gone, the output stays live.
            (kernel,) = [k["id"] for k in server.request("/api/kernels")[1]]
            st, restarted = server.request(f"/api/kernels/{kernel}/restart", method="POST", body={}, timeout=60)
            assert st == 200, restarted
            wait_for(lambda: [k["execution_state"] for k in server.request("/api/kernels")[1]] == ["idle"],
                     timeout=60, message="the restarted kernel idle (its sleeping cell gone)")
            assert page.locator(cell).count() == 1 and close(cell_lines(), held)

            # Let them go: the lines grow to six points, as logged (seen in between or not, never other values),
            # in the tab and in the output of the cell whose kernel restarted.
            gate.write_text("")
            whole = {rid: expected_loss(lr, 6) for rid, lr in lr_of.items()}

            def grown(lines=tab_lines):
                got = lines()
                for rid, points in got.items():
                    if rid in whole:
                        assert len(points) >= 3 and close({rid: points}, {rid: whole[rid][:len(points)]}), (rid, points)
                return all(len(got.get(rid, [])) == 6 for rid in whole)

            wait_for(grown, timeout=60, interval=0.2, message="six epochs of each trial in the tab's chart")
            # The notebook's tab in front again (a view off screen asks nothing): its output catches up.
            page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="sweep.ipynb").click()
            wait_for(lambda: grown(cell_lines), timeout=30, interval=0.2,
                     message="six epochs of each trial in the chart of the cell whose kernel restarted")
            page.locator(f".lm-DockPanel-tabBar .lm-TabBar-tab[data-id='guild-jupyter-sweep-{sweep}']").click()
            page.locator(tab).wait_for(state="visible", timeout=10_000)

            # The lr=0.3 trial failed; the queue's retry shows right under it, saying what it retries.
            failed = by_lr[0.3]
            retry = wait_for(lambda: next((r for r in api.runs(sweep=sweep) if r.get("retry_of") == failed), None),
                             timeout=60, message="the queue's retry of the failed trial")
            wait_for(lambda: all(r.status in ("completed", "error") for r in api.runs(sweep=sweep)), timeout=60,
                     message="every trial and the retry ended")
            table = api.sweep_table(sweep)
            retry_row = next(t for t in table["trials"] if t["id"] == retry.id)
            assert retry_row["retry_text"]
            page.locator(f'{tab} tr.gj-trial[data-run="{retry.id}"] td[data-key="status"]',
                         has_text=retry_row["retry_text"]).wait_for(timeout=20_000)
            order = page.locator(f"{tab} tr.gj-trial").evaluate_all("(els) => els.map((e) => e.dataset.run)")
            assert order == [t["id"] for t in table["trials"]] and len(order) == 4
            assert order.index(retry.id) == order.index(failed) + 1
            assert "gj-mod-retry" in page.locator(f'{tab} tbody[data-run="{retry.id}"]').get_attribute("class")
            wait_for(lambda: close(tab_lines(), {**whole, retry.id: expected_loss(0.3, 6)}), timeout=30,
                     interval=0.2, message="the retry's line")

            # The best trial (lowest loss: lr=0.1) is highlighted: its row, the best line, drawn last and widest.
            best = by_lr[0.1]
            assert table["best"] == best
            page.locator(f'{tab} tr.gj-trial.gj-mod-best[data-run="{best}"]').wait_for(timeout=20_000)
            assert page.locator(f"{tab} tr.gj-trial.gj-mod-best").count() == 1
            assert page.locator(f"{tab} .gj-sweep-chart").get_attribute("data-best") == best
            shown = page.locator(f"{tab} .gj-sweep").first.evaluate(LINES_JS)
            assert shown[-1]["run"] == best and all(s["width"] < shown[-1]["width"] for s in shown[:-1])
            assert table["scalar"]["best_text"] in page.locator(f"{tab} .gj-sweep-best").inner_text()
            # The flags-against-results dots moved with the final values (drawn at three epochs, now at six).
            finals = sorted([p["run"], p["final"]] for p in table["hparams"]["points"] if p["final"] is not None)
            dots = lambda: sorted(page.locator(f"{tab} .gj-scatter-point").evaluate_all(  # noqa: E731
                "(els) => els.map((e) => [e.dataset.run, Number(e.dataset.y)])"))
            wait_for(lambda: dots() == finals, timeout=20, interval=0.2, message="the scatter's dots at the final values")
            page.screenshot(path=str(tmp_path / "sweep-tab-live.png"))

            # Restage from a row with an edited flag (the queue stopped first, so the run stays staged).
            queue.stop()
            assert queue.join(30), "the queue did not stop"
            queue = None
            origin = by_lr[0.2]
            page.locator(f'{tab} tr.gj-trial[data-run="{origin}"] button[data-action="restage"]').click()
            form = page.locator(f'{tab} tbody[data-run="{origin}"] form.gj-form')
            form.wait_for(timeout=10_000)
            form.locator('input[name="lr"]').fill(RESTAGED_LR)
            form.locator("button[type=submit]").click()
            form.wait_for(state="detached", timeout=15_000)
            staged = wait_for(lambda: [r for r in api.runs(sweep=sweep) if r.get("restage_of") == origin],
                              timeout=20, message="the restaged run in the store")
            (run,) = staged
            assert run.status == "staged" and run.flags["lr"] == float(RESTAGED_LR) and run.sweep == sweep
            assert run.flags["gate"] == str(gate)  # the other flags as the origin's
            page.locator(f'{tab} tr.gj-trial[data-run="{run.id}"]').wait_for(timeout=20_000)
            cells = page.locator(f'{tab} tr.gj-trial[data-run="{run.id}"] td[data-key="flag:lr"]').inner_text()
            assert re.search(r"0\.0375\b", cells), cells
    finally:
        if queue is not None:
            queue.stop()
        api.stop(all=True, timeout=15)
