"""The live sweep view (labextension/src/sweep/) in Chromium, at issue 22's scale.

    .venv/bin/python bench/bench_sweep_view.py [--trials 100] [--tags 5] [--points 10000]
                                               [--updates 20] [--served-by real|replies] [--peer-points 20000]

A sweep of ``--trials`` trials, each with ``--tags`` scalars of ``--points``
points, shown by the /guild page's sweep view (``/guild?sweep=ID``: the
same component as the JupyterLab tab and the cell output) in Debian's
Chromium, measured with the Performance API inside the page:

(a) first paint: from the navigation's start to the first frame of the
    chart with every trial's line (``gj-sweep:first-paint``, marked once
    the browser painted that frame). Goal <= 1 s.
(b) each 1 s update, while every trial logs 10 more points per tag:
    the browser's main-thread time of the update: parsing and appending the
    answer (``gj-sweep:apply``), redrawing the chart (``gj-sweep:draw``),
    and the table's answer rendered (``gj-sweep:table``); p50 and p95 of
    their sum per update, and every long task (> 50 ms) seen. Goal <= 16 ms.
    These are wall times: on a loaded machine they include waits for a
    core. So a Chromium trace of the same seconds gives the main thread's
    CPU time per update too, every task it ran (style, layout, paint and
    the raster of the chart's canvas included), from one answer applied to
    the next.

``--served-by real`` (the default): a real Jupyter server with the
extension on a real store, the event files written by our own writer
(the store builder of bench/bench_sweep_server.py, which measures the
server's side: its time per update, goal <= 50 ms); each update appends
to the files. ``--served-by replies``: the REST answers are made here and
handed to the page by Playwright (no server work at all): the browser's
side alone.

Peer, in the same run: the same lines drawn by JupyterLab's own Vega
renderer (a Vega-Lite line chart of ``--peer-points`` points in a notebook
output, as a cell would show it), against our view on the same points:
the time from opening the notebook to the chart being drawn.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from common import median, pct  # noqa: E402

#: Collects the view's own measures and the long tasks, from the page's start.
COLLECT = """
window.__gj = {apply: [], draw: [], table: [], long: []};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.entryType === 'longtask') window.__gj.long.push([e.startTime, e.duration]);
    else if (e.name.startsWith('gj-sweep:') && window.__gj[e.name.slice(9)]) window.__gj[e.name.slice(9)].push([e.startTime, e.duration]);
  }
}).observe({entryTypes: ['measure', 'longtask']});
"""
#: Where first paint's time went: the page's own files and each REST answer (start, first byte, end; ms
#: from the navigation's start), the view's first measures, and the paint.
TIMELINE = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const out = [['page', 0, nav.responseStart, nav.responseEnd], ['DOMContentLoaded', nav.domContentLoadedEventEnd]];
  for (const r of performance.getEntriesByType('resource')) {
    if (r.startTime > (performance.getEntriesByName('gj-sweep:first-paint')[0] || {startTime: 1e9}).startTime) continue;
    const name = r.name.replace(/^https?:[/][/][^/]+/, '').replace(/[?&]token=[^&]*/, '').slice(0, 90);
    out.push([name, r.startTime, r.responseStart, r.responseEnd, r.transferSize || r.encodedBodySize || 0]);
  }
  for (const k of ['table', 'apply', 'draw']) {
    for (const e of window.__gj[k]) out.push(['gj-sweep:' + k, e[0], e[0] + e[1]]);
  }
  out.push(['first paint', performance.getEntriesByName('gj-sweep:first-paint')[0].startTime]);
  return out.sort((a, b) => a[1] - b[1]);
}"""
FIRST_PAINT = """() => { const m = performance.getEntriesByName('gj-sweep:first-paint'); return m.length ? m[0].startTime : null; }"""


def ms(x: float) -> str:
    return f"{x:.1f} ms"


def show(name: str, xs: list) -> None:
    print(f"  {name:58s} p50 {median(xs):7.1f} ms   p95 {pct(xs, 95):7.1f} ms   max {max(xs):7.1f} ms   (n={len(xs)})")


# -- answers made here (--served-by replies) ------------------------------------------------------------


class Replies:
    """A sweep's REST answers computed in this process: ``trials`` trials of
    ``tags`` tags, ``points`` points each, thinned to ``points=N`` on a
    first answer as the server does, 10 more points per trial each second."""

    def __init__(self, trials: int, tags: int, points: int):
        self.trials, self.tags_n, self.points = trials, tags, points
        self.tags = ["loss", "acc", "val_loss", "grad_norm", "epoch"][:tags]
        self.ids = [f"{i:032x}" for i in range(1, trials + 1)]
        self.at = points
        self.lock = threading.Lock()
        self.version = 1
        #: Answers made before the page asks (the first load), so that no time of this process counts.
        self.cache: dict = {}

    def prepare_first(self, tag: str = "loss", points: int = 893) -> None:
        """``points``: what the view asks at the bench's 1400 px wide page
        (about a point per pixel column of its chart; the timeline shows
        the asked number: another one is answered, later, on demand)."""
        self.cache[(tag, None, points, self.at)] = json.dumps(self.scalars([tag], None, points))

    def value(self, i: int, tag: str, step: int) -> float:
        k = self.tags.index(tag) + 1
        return k * (0.001 + i / self.trials) / (1 + step * 0.01) + 0.001 * math.sin(step)

    def table(self) -> dict:
        with self.lock:
            at = self.at
        trials = []
        for i, rid in enumerate(self.ids):
            lr = round(0.001 + i * 0.1 / self.trials, 6)
            last = self.value(i, "loss", at - 1)
            trials.append({
                "id": rid, "short_id": rid[:8], "op": "train.py", "status": "staged", "status_text": "staged",
                "title": f"lr={lr}", "subtitle": f"train.py · {rid[:8]}", "flags": {"lr": lr}, "flags_hover": f"lr={lr}",
                "is_best": i == 0, "trial": rid, "attempt": 0, "retry_text": "",
                "cells": {"flag:lr": {"text": str(lr), "sort": lr}, "status": {"text": "staged", "sort": 2},
                          "progress": {"text": f"step {at - 1}", "sort": None},
                          "scalar": {"text": f"{last:.4g}", "sort": last}, "best": {"text": f"{last:.4g}", "sort": last}},
                "actions": [{"verb": "unstage", "label": "Unstage", "confirm": None, "method": "DELETE",
                             "path": f"runs/{rid}", "form": None, "target": rid}],
            })
        return {"id": "sbench0001", "title": f"train.py · {self.trials} trials", "op": "train.py",
                "counts": {"staged": self.trials}, "summary_text": f"{self.trials} staged", "version": self.version,
                "columns": [{"key": "flag:lr", "title": "lr", "kind": "flag"}, {"key": "status", "title": "status", "kind": "status"},
                            {"key": "progress", "title": "progress", "kind": "text"},
                            {"key": "scalar", "title": "loss", "kind": "number"}, {"key": "best", "title": "best loss", "kind": "number"}],
                "scalar": {"tag": "loss", "direction": "min", "best_text": "lowest loss"}, "best": self.ids[0],
                "tags": sorted(self.tags), "x_axes": ["step", "time"], "statuses": ["staged"], "trials": trials,
                "hparams": {"flags": ["lr"], "points": [{"run": t["id"], "flags": t["flags"], "final": t["cells"]["scalar"]["sort"],
                                                         "best": t["cells"]["best"]["sort"]} for t in trials]}}

    def scalars(self, tags: list[str], since: str | None, points: int) -> dict:
        with self.lock:
            at = self.at
        start = 0 if since is None else int(since)
        series = {}
        for i, rid in enumerate(self.ids):
            steps = range(start, at)
            if len(steps) > points:  # thinned as the server thins: about `points` per series, first and last kept
                stride = len(steps) / points
                steps = sorted({start + int(k * stride) for k in range(points - 1)} | {at - 1})
            series[rid] = {t: [[s, self.value(i, t, s)] for s in steps] for t in tags}
        return {"token": str(at), "x": "step", "tags": tags, "series": series, "reset": False,
                "thinned": since is None and at > points, "done": False, "errors": []}

    def log_more(self, n: int = 10) -> None:
        with self.lock:
            self.at += n

    def install(self, context) -> None:
        import urllib.parse

        def sweeps(route):
            url = urllib.parse.urlsplit(route.request.url)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path.rstrip("/").endswith("/scalars"):
                key = (q.get("tags", "loss"), q.get("since"), int(q.get("points", 5000)), self.at)
                text = self.cache.get(key) or json.dumps(self.scalars(key[0].split(","), key[1], key[2]))
                if q.get("main") == "1":  # the main scalar (loss), named as the server names it
                    text = json.dumps(dict(json.loads(text), main="loss"))
            else:
                text = json.dumps(self.table())  # at once: the view polls every second then
            route.fulfill(body=text, content_type="application/json")

        context.route("**/guild/api/sweeps/**", sweeps)


# -- measuring in the page -------------------------------------------------------------------------------


TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "blink.user_timing"]


def main_thread_cpu(trace: bytes) -> tuple[list[float], list[tuple[str, float]]]:
    """Per update (from one ``gj-sweep:apply`` to the next), the CPU time
    (ms) of every task the page's main thread ran, from a Chromium trace:
    its thread time, which on a loaded machine does not count the time the
    thread waited for a core. Also where it went: the main thread's
    events directly under a task, by name, thread ms per update (mean)."""
    data = json.loads(trace)
    events = data["traceEvents"] if isinstance(data, dict) else data
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
    applies = sorted(e["ts"] for e in events if e.get("name") == "gj-sweep:apply" and e.get("ph") in ("b", "B", "R", "I", "n"))
    if not applies:  # measures as complete events
        applies = sorted(e["ts"] for e in events if e.get("name") == "gj-sweep:apply")
    main = {k for k, v in names.items() if v == "CrRendererMain"}
    on_main = [e for e in events if (e["pid"], e.get("tid")) in main and e.get("ph") == "X"]
    task_names = ("RunTask", "ThreadControllerImpl::RunTask")
    tasks = []  # top-level ones only: one name may wrap the other
    for t in sorted((e["ts"], e.get("dur", 0), e.get("tdur", 0)) for e in on_main if e.get("name") in task_names):
        if not tasks or t[0] >= tasks[-1][0] + tasks[-1][1]:
            tasks.append(t)
    out = []
    for a, b in zip(applies, applies[1:]):
        out.append(sum(d for ts, _dur, d in tasks if a <= ts < b) / 1000)
    # The events right under each task of the measured span (a task's children, by name).
    where: dict[str, float] = {}
    if len(applies) > 1:
        span = [t for t in tasks if applies[0] <= t[0] < applies[-1]]
        inner = sorted((e["ts"], e.get("dur", 0), e.get("tdur", 0), e["name"]) for e in on_main
                       if e.get("name") not in task_names and applies[0] <= e["ts"] < applies[-1])
        k = 0
        for ts, dur, _tdur in span:
            end = ts + dur
            covered = ts
            while k < len(inner) and inner[k][0] < ts:
                k += 1
            j = k
            while j < len(inner) and inner[j][0] < end:
                its, idur, itdur, name = inner[j]
                if its >= covered:  # a direct child (not inside the previous one)
                    where[name] = where.get(name, 0.0) + itdur / 1000
                    covered = its + idur
                j += 1
        n = len(applies) - 1
        where = {k: v / n for k, v in where.items()}
    return out, sorted(where.items(), key=lambda kv: -kv[1])[:14]


def measure_view(page, url: str, trials: int, updates: int, log_more, expect_points: int,
                 trace_out: str | None = None) -> dict:
    """Opens the view at ``url``; returns first paint and per-update costs."""
    page.add_init_script(COLLECT)
    page.goto(url)
    handle = page.wait_for_function(FIRST_PAINT, timeout=120_000, polling=50)
    first_paint = float(handle.json_value())
    drawn = page.evaluate("() => Number(document.querySelector('.gj-sweep-chart').dataset.points)")
    lines = page.evaluate("() => document.querySelector('.gj-sweep').gjSweep.chart.shown.length")
    first = page.evaluate("() => ({apply: window.__gj.apply.slice(), draw: window.__gj.draw.slice(), table: window.__gj.table.slice()})")
    timeline = page.evaluate(TIMELINE)
    page.evaluate("() => { window.__gj.apply = []; window.__gj.draw = []; window.__gj.table = []; window.__gj.long = []; }")
    page.context.browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
    for _ in range(updates):
        t0 = time.monotonic()
        log_more()
        # Let the page run for the rest of the second (its routes and polls are served meanwhile).
        page.wait_for_timeout(max(0, int((1.0 - (time.monotonic() - t0)) * 1000)))
    trace = page.context.browser.stop_tracing()
    if trace_out:
        with open(trace_out, "wb") as f:
            f.write(trace)
    cpu, where = main_thread_cpu(trace)
    got = page.evaluate("() => window.__gj")
    held = page.evaluate("() => document.querySelector('.gj-sweep').gjSweep.model.store.size()")
    fixed = page.evaluate("() => document.querySelector('.gj-trial-table').classList.contains('gj-mod-fixed')")
    # One update: an answer applied and the frame drawn after it, plus the table's render in that second.
    per_update, applies, draws, tables = [], [], [], []
    draw_list = sorted(got["draw"])
    for start, dur in sorted(got["apply"]):
        nxt = next((d for d in draw_list if d[0] >= start), None)
        if nxt is None:
            continue
        # The table's render of that second: before the answer (its own poll) or right after it (its
        # cells came with the series, rendered in the same task).
        table = sum(d for s, d in got["table"] if start - 950 < s <= start + dur + 50)
        applies.append(dur)
        draws.append(nxt[1])
        tables.append(table)
        per_update.append(dur + nxt[1] + table)
    return {"first_paint": first_paint, "drawn": drawn, "lines": lines, "first": first, "per_update": per_update,
            "apply": applies, "draw": draws, "table": tables, "long": got["long"], "held": held, "cpu": cpu, "where": where, "timeline": timeline, "fixed": fixed,
            "expect": expect_points}


def report(name: str, r: dict, trials: int) -> None:
    print(f"\n{name}")
    first_apply = sum(d for _, d in r["first"]["apply"])
    first_draw = sum(d for _, d in r["first"]["draw"])
    print(f"  (a) first paint: {ms(r['first_paint'])} from the navigation's start (goal <= 1000 ms); "
          f"{r['lines']} lines of {trials}, {r['drawn']:,} points drawn, {r['expect']:,} held; "
          f"main thread before it: apply {ms(first_apply)}, draws {ms(first_draw)}")
    print("  where first paint's time went (ms from the navigation's start: start, first byte, end; bytes):")
    for row in r["timeline"]:
        print("    " + f"{row[0]:60s} " + "  ".join(f"{v:8.0f}" for v in row[1:]))
    if r["per_update"]:
        print(f"  (b) each 1 s update ({len(r['per_update'])} updates; {r['held']:,} points held at the end; "
              f"the table's column widths {'fixed' if r['fixed'] else 'automatic'} at the end):")
        show("apply (JSON.parse + append to typed arrays)", r["apply"])
        show("draw (new segments stroked, or a uPlot redraw)", r["draw"])
        show("table (its answer rendered)", r["table"])
        show("main-thread time per update (sum; goal <= 16 ms)", r["per_update"])
        if r["cpu"]:
            show("main thread's CPU per update, every task (trace)", r["cpu"])
            print("    of which, per update (mean, thread ms): " + ", ".join(f"{k} {v:.1f}" for k, v in r["where"]))
    else:
        print("  (b) no update was seen")
    longs = [d for _, d in r["long"]]
    print(f"  long tasks (> 50 ms) during the updates: {len(longs)}" + (f", longest {ms(max(longs))}" if longs else ""))


# -- the peer: JupyterLab's Vega renderer ----------------------------------------------------------------


def vega_spec(values: list[dict]) -> dict:
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 800, "height": 300,
            "data": {"values": values}, "mark": {"type": "line", "strokeWidth": 1},
            "encoding": {"x": {"field": "step", "type": "quantitative"}, "y": {"field": "loss", "type": "quantitative"},
                         "color": {"field": "trial", "type": "nominal", "legend": None}}}


def peer_vega(browser, server, root: str, replies: "Replies", n_points: int) -> tuple[float, float]:
    """(ms to the Vega-Lite chart drawn in a notebook output, ms to our chart drawn
    in a notebook output), the same lines: ``n_points`` points over the trials."""
    import nbformat

    per = max(2, n_points // replies.trials)
    values = [{"trial": rid[:8], "step": s, "loss": replies.value(i, "loss", s)}
              for i, rid in enumerate(replies.ids) for s in range(per)]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("chart")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/vnd.vegalite.v5+json": vega_spec(values),
                                                                 "text/plain": "chart"})]
    nb.cells = [cell]
    nbformat.write(nb, os.path.join(root, "peer-vega.ipynb"))
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    t0 = time.monotonic()
    page.goto(server.lab_url("peer-vega.ipynb"))
    page.locator(".jp-OutputArea-output .vega-embed canvas, .jp-OutputArea-output .vega-embed svg").first.wait_for(
        timeout=600_000)
    t_vega = (time.monotonic() - t0) * 1000
    page.close()

    small = Replies(replies.trials, 1, per)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%guild sweep")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.guild-jupyter.sweep+json": {"sweep": "sbench0001", "store": ""}, "text/plain": "sweep"})]
    nb.cells = [cell]
    nbformat.write(nb, os.path.join(root, "peer-ours.ipynb"))
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    small.install(page.context)
    t0 = time.monotonic()
    page.goto(server.lab_url("peer-ours.ipynb"))
    page.wait_for_function(
        f"() => {{ const c = document.querySelector('.jp-OutputArea-output .gj-sweep-chart');"
        f" return c && Number(c.dataset.points) >= {per * replies.trials}; }}", timeout=120_000, polling=20)
    t_ours = (time.monotonic() - t0) * 1000
    page.close()
    return t_vega, t_ours


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--tags", type=int, default=5)
    p.add_argument("--points", type=int, default=10000)
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--served-by", choices=["real", "replies"], default="real")
    p.add_argument("--store", help="a store bench_sweep_server.py --keep made (DIR/guild-home): used, not built, and kept")
    p.add_argument("--peer-points", type=int, default=20000, help="points of the Vega peer; 0 skips it")
    p.add_argument("--trace-out", help="also write the updates' Chromium trace (JSON) there")
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    from support.jupyter import launch_chromium, start_jupyter

    base = tempfile.mkdtemp(prefix="gj-bench-sweep-view-")
    home = os.path.join(base, "guild-home")
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(home, "runs"))
    os.makedirs(root)
    replies = Replies(a.trials, a.tags, a.points)
    if a.served_by == "real":
        from bench_sweep_server import build, log_more, reopen  # noqa: PLC0415 - sweep-py's store builder

        t0 = time.monotonic()
        if a.store:
            home = os.path.join(a.store, "guild-home")
            sweep, runs, writers = reopen(home)
            print(f"store: {home} (made before), sweep {sweep}")
        else:
            sweep, runs, writers = build(home, a.trials, a.tags, a.points)
            print(f"store: {a.trials} trials x {a.tags} tags x {a.points:,} points written by our writer in "
                  f"{time.monotonic() - t0:.0f} s; sweep {sweep}")
        at = [a.points]

        def more() -> None:
            log_more(writers, runs, at[0], 10, a.tags)
            at[0] += 10
    else:
        sweep = "sbench0001"
        more = replies.log_more
        print(f"answers made in this process: {a.trials} trials x {a.tags} tags x {a.points:,} points")
    server = start_jupyter(os.path.join(base, "jupyter"), env={"GUILD_HOME": home}, root_dir=root,
                           extra_args=['--ServerApp.jpserver_extensions={"guild_jupyter": True}'])
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw, os.path.join(base, "chromium"))
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            if a.served_by == "replies":
                replies.prepare_first()
                replies.install(page.context)
            r = measure_view(page, f"{server.url}/guild?sweep={sweep}&token={server.token}", a.trials, a.updates, more,
                             a.trials * min(a.points, 2000), a.trace_out)
            report(f"the sweep view, {a.trials} trials x {a.points:,} points, served by {a.served_by}", r, a.trials)
            page.close()
            if a.peer_points:
                t_vega, t_ours = peer_vega(browser, server, root, replies, a.peer_points)
                print(f"\npeer: {a.peer_points:,} points ({a.trials} lines) in a notebook output, open -> drawn: "
                      f"JupyterLab's Vega renderer {t_vega:,.0f} ms, our view {t_ours:,.0f} ms "
                      f"(ratio {t_vega / t_ours:.1f}x)")
            browser.close()
    finally:
        server.stop()
        if a.served_by == "real":
            for w in writers.values():
                w.close()
        shutil.rmtree(base, ignore_errors=True)  # the store (~400 MB) too, unless it was --store's


if __name__ == "__main__":
    main()
