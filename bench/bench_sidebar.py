"""The JupyterLab sidebar (labextension/) in a real JupyterLab and Chromium.

    .venv/bin/python bench/bench_sidebar.py [--changes 20] [--idle 20] [--big 10000]

(a) Latency from a run's status change on disk to the view showing it,
    p50/p95 over ``--changes`` changes of each kind: a run staged (it
    appears) and a staged run unstaged (its status flips). Each change
    waits a random 0-1 s first, so changes land at every phase of a 1 s
    poll. A MutationObserver in the page stamps the moment an element
    ``[data-run=ID][data-status=S]`` first appears. The sidebar long-polls
    ``/guild/api/state?after_version=V`` (the server answers when the
    store's watcher sees a change); the same sidebar with the long poll
    taken away (the route drops ``after_version``, so the server answers at
    once and the sidebar falls back to polling every second: how it worked
    before) is the peer, measured in the same run (Guild itself has no live
    view); the /guild page (the same model) too.
(b) The Jupyter server's CPU (user+system of its process, % of one core)
    over ``--idle`` seconds with nothing changing: no browser; /lab with the
    sidebar open; /lab with the sidebar closed (the status bar still long-polls).
(c) With ``--big`` finished runs added: the same idle CPU with the sidebar
    open, and the time to turn a page of the finished group (p50 of 10).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time

import psutil

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from common import clone_runs, fresh_home, median, pct, project  # noqa: E402
from support.jupyter import launch_chromium, start_jupyter  # noqa: E402

from guild_jupyter import api  # noqa: E402

OBSERVER = """() => {
  window.__seen = {};
  const stamp = () => {
    for (const el of document.querySelectorAll('[data-run][data-status]')) {
      const k = el.dataset.run + ':' + el.dataset.status;
      if (!(k in window.__seen)) window.__seen[k] = Date.now();
    }
  };
  new MutationObserver(stamp).observe(document.body,
    {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
  stamp();
}"""


def seen_at(page, run_id: str, status: str, timeout: float = 30.0) -> float:
    key = f"{run_id}:{status}"
    handle = page.wait_for_function(f"() => window.__seen && window.__seen[{key!r}]", timeout=int(timeout * 1000))
    return float(handle.json_value())


def latencies(page, store, script: str, n: int) -> tuple[list, list]:
    appear, flip = [], []
    for _ in range(n):
        time.sleep(random.uniform(0, 1.0))
        r = api.run(script, stage=True, store=store)[0]
        t = time.time() * 1000
        appear.append(seen_at(page, r.id, "staged") - t)
        time.sleep(random.uniform(0, 1.0))
        t = time.time() * 1000
        api.unstage(r.id, store=store)
        flip.append(seen_at(page, r.id, "unstaged") - t)
    return appear, flip


def cpu_percent(server, seconds: float) -> float:
    proc = psutil.Process(server.proc.pid)
    c0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    return 100 * (sum(proc.cpu_times()[:2]) - c0) / (time.monotonic() - t0)


def open_sidebar(page, server) -> None:
    page.goto(server.lab_url())
    page.locator(".jp-Launcher").wait_for(timeout=60_000)
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=60_000)
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Open Guild Sidebar")
    page.locator(".lm-CommandPalette-input").press("Enter")
    page.locator("#guild-jupyter-sidebar .gj-summary").wait_for(timeout=30_000)


def without_long_poll(route) -> None:
    """The state request as a server without long polls would answer it: at once."""
    url = re.sub(r"[?&](after_version|timeout)=[^&]*", "", route.request.url)
    route.continue_(url=url if "?" in url or "&" not in url else url.replace("&", "?", 1))


def show(name: str, xs: list) -> None:
    print(f"{name:46s} p50 {median(xs):7.0f} ms   p95 {pct(xs, 95):7.0f} ms   (n={len(xs)})")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--changes", type=int, default=20)
    p.add_argument("--idle", type=float, default=20.0)
    p.add_argument("--big", type=int, default=10000, help="finished runs to add for (c); 0 skips it")
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    proj = project("x = 0\n")
    script = os.path.join(proj, "tiny.py")
    home = fresh_home()
    store = api.resolve_store(home)
    server = start_jupyter(tempfile.mkdtemp(prefix="gj-bench-sidebar-"), env={"GUILD_HOME": home}, root_dir=proj,
                           extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw, tempfile.mkdtemp(prefix="gj-bench-chromium-"))
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            print(f"(a) status change on disk -> shown, {a.changes} changes each")
            open_sidebar(page, server)
            page.evaluate(OBSERVER)
            s_appear, s_flip = latencies(page, store, script, a.changes)
            show("sidebar (long poll): staged run appears", s_appear)
            show("sidebar (long poll): staged -> unstaged", s_flip)
            polled = browser.new_page(viewport={"width": 1280, "height": 900})
            polled.route("**/guild/api/state*", without_long_poll)
            page.goto("about:blank")  # one viewer at a time
            open_sidebar(polled, server)
            polled.evaluate(OBSERVER)
            p_appear, p_flip = latencies(polled, store, script, a.changes)
            show("peer, sidebar polling 1 s: staged run appears", p_appear)
            show("peer, sidebar polling 1 s: staged -> unstaged", p_flip)
            print(f"    ratio long poll / polling, p50: appears {median(s_appear) / median(p_appear):.2f}, "
                  f"flips {median(s_flip) / median(p_flip):.2f}")
            polled.close()
            page2 = browser.new_page(viewport={"width": 1280, "height": 900})
            page2.goto(f"{server.url}/guild?token={server.token}")
            page2.locator(".gj-page .gj-summary").wait_for()
            page2.evaluate(OBSERVER)
            g_appear, g_flip = latencies(page2, store, script, a.changes)
            show("/guild page: staged run appears", g_appear)
            show("/guild page: staged -> unstaged", g_flip)
            page2.close()

            print(f"(b) server CPU, idle, over {a.idle:.0f} s ({a.changes * 2} runs in the store)")
            print(f"    no browser page:                 {cpu_percent(server, a.idle):5.2f} % of a core")
            open_sidebar(page, server)
            print(f"    /lab, sidebar open (long poll):  {cpu_percent(server, a.idle):5.2f} % of a core")
            page.locator(".jp-SideBar .lm-TabBar-tab[data-id='guild-jupyter-sidebar']").click()  # closes it
            page.locator("#guild-jupyter-sidebar").wait_for(state="hidden", timeout=10_000)
            print(f"    /lab, sidebar closed (long poll): {cpu_percent(server, a.idle):5.2f} % of a core")

            if a.big:
                template = os.path.join(home, "runs", os.listdir(os.path.join(home, "runs"))[0])
                clone_runs(home, template, a.big)
                open_sidebar(page, server)
                group = page.locator("#guild-jupyter-sidebar [data-group='finished']")
                group.locator("summary").click()  # open the finished group
                text = group.locator(".gj-pager-text")
                count = group.locator("summary > .gj-count")
                try:
                    page.wait_for_function("([el, n]) => el.textContent === String(n)",
                                           arg=[count.element_handle(), a.big + 2 * a.changes], timeout=120_000)
                except Exception:
                    print("finished runs shown:", count.inner_text(), page.locator("#guild-jupyter-sidebar").inner_text())
                    raise
                turns = []
                for _ in range(min(10, -(-(a.big + 2 * a.changes) // 25) - 1)):
                    before = text.inner_text()
                    t0 = time.perf_counter()
                    group.get_by_role("button", name="›").click()
                    page.wait_for_function("([el, b]) => el.textContent !== b", arg=[text.element_handle(), before],
                                           timeout=30_000)
                    turns.append((time.perf_counter() - t0) * 1000)
                print(f"(c) {a.big + 2 * a.changes} runs in the store")
                show("sidebar: turn a page of finished runs", turns)
                print(f"    /lab, sidebar open, idle:        {cpu_percent(server, a.idle):5.2f} % of a core")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
