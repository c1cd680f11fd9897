"""The ``/guild`` page: one HTML document with its script inline (no build
step). It polls ``/guild/api/state`` every second and renders the rows the
panel renders (``views.run_row`` / ``views.queue_row``): queues, runs by
status under column headers (the flags that vary first, in bold, wrapped,
never cut), each staged run's waiting reason, status colours, and GPUs.
Its buttons call the REST API with the page's XSRF token; a stop takes a
second click ("confirm stop") within five seconds. Messages show in a line
of fixed height and clear themselves. Below 820 px the tables become one
card per row, so every value and button stays on screen. A click on a run
opens its output, followed while it runs; runs that end get notices (and
browser notifications once allowed): see ``page_live``."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Guild runs</title>
<style>
  :root { --staged:#1565c0; --pending:#ef6c00; --running:#2e7d32; --completed:#546e7a; --error:#c62828;
          --terminated:#8d6e63; --unstaged:#7b1fa2; }
  * { box-sizing: border-box; }
  body { font: 14px system-ui, sans-serif; margin: 1.2em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  h2 { font-size: 1.05em; margin: 1.2em 0 .3em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f3f3f3; font-weight: 600; white-space: nowrap; }
  td.nowrap { white-space: nowrap; }
  td.flags { white-space: normal; overflow-wrap: anywhere; font-family: monospace; font-size: 12px; min-width: 12em; }
  td.flags .rest { color: #666; }
  td.flags .label { color: #555; font-style: italic; }
  td.waiting { color: var(--staged); min-width: 10em; }
  code { font-size: 12px; }
  .muted { color: #777; }
  #counts { display: flex; flex-wrap: wrap; column-gap: 1em; }
  #counts span { white-space: nowrap; }
  #store { overflow-wrap: anywhere; }
  #message { height: 1.5em; line-height: 1.5em; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; }
  #message.err { color: #b00020; }
  #message.ok { color: #2e7d32; }
  button { font-size: 12px; white-space: nowrap; }
  button.confirm { background: #c62828; color: white; border: 1px solid #8e0000; }
  tr[data-status] td:first-child { border-left: 4px solid transparent; }
  .st-staged { color: var(--staged); } tr[data-status="staged"] td:first-child { border-left-color: var(--staged); }
  .st-pending { color: var(--pending); } tr[data-status="pending"] td:first-child { border-left-color: var(--pending); }
  .st-running { color: var(--running); } tr[data-status="running"] td:first-child { border-left-color: var(--running); }
  .st-completed { color: var(--completed); } tr[data-status="completed"] td:first-child { border-left-color: var(--completed); }
  .st-error { color: var(--error); } tr[data-status="error"] td:first-child { border-left-color: var(--error); }
  .st-terminated { color: var(--terminated); } tr[data-status="terminated"] td:first-child { border-left-color: var(--terminated); }
  .st-unstaged { color: var(--unstaged); } tr[data-status="unstaged"] td:first-child { border-left-color: var(--unstaged); }
/*{{live-css}}*/
  @media (max-width: 820px) {
    body { margin: .6em; }
    table, thead, tbody, tr, td { display: block; width: 100%; }
    thead { display: none; }
    tr { border: 1px solid #ddd; border-radius: 4px; margin: 0 0 .5em; padding: .3em .5em; }
    tr[data-status] td:first-child { border-left: none; }
    tr[data-status] { border-left: 4px solid #ddd; }
    tr[data-status="staged"] { border-left-color: var(--staged); } tr[data-status="pending"] { border-left-color: var(--pending); }
    tr[data-status="running"] { border-left-color: var(--running); } tr[data-status="completed"] { border-left-color: var(--completed); }
    tr[data-status="error"] { border-left-color: var(--error); } tr[data-status="terminated"] { border-left-color: var(--terminated); }
    tr[data-status="unstaged"] { border-left-color: var(--unstaged); }
    td { border: none; padding: 1px 0; }
    td[data-label]:not([data-label=""])::before { content: attr(data-label) ": "; color: #777; }
    td.flags { min-width: 0; }
    td:empty { display: none; }
  }
</style>
</head>
<body>
<h1>Guild runs</h1>
<div id="store" class="muted"></div>
<div id="counts"></div>
<div id="message" role="status"></div>
<!--{{live-html}}-->
<h2>Queues</h2>
<table id="queues"><thead><tr><th>queue</th><th>host</th><th>pid</th><th>gpus</th><th>state</th><th>slots</th><th>run</th><th>options</th><th></th></tr></thead><tbody></tbody></table>
<div id="groups"></div>
<h2>GPUs</h2>
<div id="gpus"></div>
<div id="warnings" class="muted"></div>
<script>
"use strict";
const XSRF = "{{xsrf}}";
const BASE = location.pathname.replace(/\/+$/, "") + "/";  // .../guild/
const GROUPS = ["running", "pending", "staged", "finished"];
const SCALAR_GROUPS = ["running", "finished"];  // rows with the main scalar and its sparkline
const TITLES = {running: "Running", pending: "Pending", staged: "Staged", finished: "Recently finished"};
const CONFIRM_MS = 5000, MESSAGE_MS = 8000;
const pages = {running: 0, pending: 0, staged: 0, finished: 0};
const confirming = {};  // id -> deadline of its "confirm stop"
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.onclick = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c === null || c === undefined ? "" : c);
  return e;
}

async function call(method, path) {
  const r = await fetch(BASE + path, {method, headers: {"X-XSRFToken": XSRF}, credentials: "same-origin"});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

let messageTimer = null;
function say(text, error) {
  const m = $("message");
  m.textContent = text;
  m.title = text;
  m.className = error ? "err" : "ok";
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { m.textContent = ""; m.title = ""; m.className = ""; }, MESSAGE_MS);
}

async function act(button, method, path, done) {
  button.disabled = true;
  try {
    await call(method, path);
    say(done, false);
  } catch (e) {
    say(e.message, true);
    button.disabled = false;
  }
  refresh();
}

// A stop asks for a second click within CONFIRM_MS.
function stopButton(id, label, method, path, done) {
  const armed = (confirming[id] || 0) > Date.now();
  return el("button", {class: armed ? "confirm" : "", "data-action": "stop",
                       title: armed ? "click again to stop" : label + " " + id.slice(0, 8),
                       onclick: (ev) => {
    if ((confirming[id] || 0) > Date.now()) {
      delete confirming[id];
      act(ev.target, method, path, done);
    } else {
      confirming[id] = Date.now() + CONFIRM_MS;
      ev.target.textContent = "confirm stop";
      ev.target.className = "confirm";
      setTimeout(() => { if ((confirming[id] || 0) <= Date.now()) { delete confirming[id]; refresh(); } }, CONFIRM_MS + 50);
    }
  }}, armed ? "confirm stop" : label);
}

function flagsCell(r) {
  const td = el("td", {class: "flags", "data-label": "flags"});
  const rest = r.flags_text.slice(r.varying_text.length).trim();
  if (r.varying_text) td.append(el("b", {}, r.varying_text));
  if (rest) td.append(r.varying_text ? " " : "", el("span", {class: "rest"}, rest));
  if (r.label_text) td.append(" ", el("span", {class: "label"}, "· " + r.label_text));
  return td;
}

function cell(label, text, cls, title) {
  const a = {"data-label": label, class: "nowrap" + (cls ? " " + cls : "")};
  if (title) a.title = title;
  return el("td", a, text);
}

// Pause/resume and drain: a running queue of ours (Guild's own do not obey them).
function controlButtons(q) {
  if (q.host === "guild") return [];
  const paused = q.control === "paused";
  const act1 = paused ? "resume" : "pause";
  const post = (action, done) => (ev) => act(ev.target, "POST", "api/queues/" + q.id + "/" + action, done);
  return [
    el("button", {"data-action": act1, title: act1 + " queue " + q.short_id,
                  onclick: post(act1, "queue " + q.short_id + (paused ? " resumed" : " paused (its runs keep running)"))}, act1),
    el("button", Object.assign({"data-action": "drain", title: "start nothing more, stop once its runs end",
                                onclick: post("drain", "queue " + q.short_id + " draining")},
                               q.control === "draining" ? {disabled: ""} : {}), "drain"),
  ];
}

function renderQueues(queues) {
  const body = $("queues").tBodies[0];
  body.replaceChildren(...(queues.length ? queues.flatMap((q) => [el("tr", {"data-queue": q.id, title: q.description},
    cell("queue", el("code", {}, q.short_id)), cell("host", q.host_text), cell("pid", q.pid ?? ""),
    cell("gpus", q.gpus_text), cell("state", q.state, q.state === "running" ? "st-running" : ""),
    cell("slots", q.slots_text ?? ""), cell("run", q.current_short ?? ""), cell("options", q.options_text),
    el("td", {"data-label": "", class: "nowrap"}, ...controlButtons(q), stopButton(q.id, "stop queue", "DELETE", "api/queues/" + q.id,
      "queue " + q.short_id + " stopping (its runs keep running)"))), ...daskRows(q)]) :
    [el("tr", {}, el("td", {colspan: 9, class: "muted"}, "no queue is running"))]));
}

// A Dask queue's cluster, under its row: address, dashboard, workers with resources and runs.
function daskRows(q) {
  const d = q.dask;
  if (!d) return [];
  const workers = (d.workers || []).map((w) => {
    const res = Object.entries(w.resources || {}).map(([k, v]) => k + "=" + v).join(",");
    const runs = (w.runs || []).map((r) => r.slice(0, 8)).join(", ") || "idle";
    return w.name + (res ? " [" + res + "]" : "") + ": " + runs;
  });
  return [el("tr", {class: "dask", "data-dask": q.id}, el("td", {colspan: 9, class: "muted"},
    "Dask ", el("code", {}, d.address), " · ",
    d.dashboard ? el("a", {href: d.dashboard, target: "_blank", rel: "noopener"}, "dashboard") : "no dashboard",
    " · ", workers.join(" · ") || "no workers", d.waiting ? " · " + d.waiting : ""))];
}

const EXTRA = {running: ["elapsed", (r) => r.elapsed_text], pending: ["queue", (r) => (r.queue || "").slice(0, 8)],
               staged: ["why it waits", (r) => r.waiting ?? ""], finished: ["took", (r) => r.elapsed_text]};

function renderGroup(name, g) {
  const [extraHead, extra] = EXTRA[name];
  const timeHead = g.time_kind;
  const rows = g.rows.map((r) => {
    const buttons = el("td", {"data-label": ""});
    if (r.status === "running" || r.status === "pending") {
      buttons.append(stopButton(r.id, "stop", "POST", "api/runs/" + r.id + "/stop", "stopping run " + r.short_id));
    }
    if (r.status === "staged") {
      buttons.append(el("button", {"data-action": "unstage", onclick: (ev) => act(ev.target, "DELETE", "api/runs/" + r.id,
        "unstaged run " + r.short_id + ": it will not start")}, "unstage"));
    }
    const tr = el("tr", {"data-run": r.id, "data-status": r.status, title: "click: the run's output"},
      cell("run", el("code", {}, r.short_id), "", r.id), cell("status", r.status_text, "st-" + r.status),
      cell("op", r.worker ? r.op + " @ " + r.worker : r.op, "",  // a Dask run: its worker (and host)
           r.worker ? "on Dask worker " + r.worker + " (" + r.worker_host + ")" : ""), cell("gpus", r.gpus_text), cell(timeHead, r.time_text),
      name === "staged" ? el("td", {class: "waiting", "data-label": extraHead}, extra(r)) : cell(extraHead, extra(r)),
      ...(SCALAR_GROUPS.includes(name) ? [scalarCell(r)] : []), flagsCell(r), buttons);
    tr.onclick = (ev) => { if (!ev.target.closest("button")) openOutput(r.id); };  // its output, followed
    return tr;
  });
  const nav = el("div", {class: "muted"}, `${g.total} ${name}` + (g.pages > 1 ? ` - page ${g.page + 1} of ${g.pages} ` : ""));
  if (g.pages > 1) {
    nav.append(el("button", {onclick: () => { pages[name] = Math.max(0, g.page - 1); refresh(); }}, "prev"),
               el("button", {onclick: () => { pages[name] = g.page + 1; refresh(); }}, "next"));
  }
  const heads = ["run", "status", "op", "gpus", timeHead, extraHead, ...(SCALAR_GROUPS.includes(name) ? ["scalar"] : []),
                 "flags (varying first) · label", ""];
  return el("section", {id: "group-" + name}, el("h2", {}, TITLES[name]), nav,
    g.rows.length ? el("table", {}, el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows)) : "");
}

function mib(v) { return v >= 2 ** 30 ? (v / 2 ** 30).toFixed(1) + " GiB" : Math.round(v / 2 ** 20) + " MiB"; }

function renderGpus(gpus) {
  const box = $("gpus");
  if (!gpus.available) {
    box.replaceChildren(el("p", {class: "muted", id: "no-gpu"}, gpus.error || "no NVIDIA GPU found"));
    return;
  }
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...["gpu", "name", "memory", "utilization", "runs"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...gpus.devices.map((g) => el("tr", {},
      cell("gpu", g.index), cell("name", g.name),
      cell("memory", `${mib(g.memory_used)} / ${mib(g.memory_total)}`),
      cell("utilization", g.utilization === null || g.utilization === undefined ? "" : g.utilization + "%"),
      cell("runs", (g.runs || []).map((r) => r.short_id + " (" + r.op + ")").join(", ")))))));
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const q = GROUPS.map((g) => g + "=" + pages[g]).join("&");
    const s = await call("GET", "api/state?" + q);
    $("store").textContent = "store: " + s.store;
    $("counts").replaceChildren(...Object.entries(s.counts).map(([k, v]) =>
      el("span", {"data-count": k, class: "st-" + k}, `${k}: ${v}`)));
    renderQueues(s.queues);
    $("groups").replaceChildren(...GROUPS.map((g) => renderGroup(g, s.groups[g])));
    markOpen();
    noticeEnded(s);
    renderGpus(s.gpus);
    $("warnings").replaceChildren(...s.warnings.map((w) => el("div", {}, "warning: " + w)));
    document.body.dataset.updated = String(s.time);
  } catch (e) {
    say("cannot refresh: " + e.message, true);
  } finally {
    busy = false;
  }
}
//{{live-js}}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""

from .page_live import LIVE_CSS, LIVE_HTML, LIVE_JS  # noqa: E402 - the live parts, kept in their own module

PAGE = PAGE.replace("/*{{live-css}}*/", LIVE_CSS).replace("<!--{{live-html}}-->", LIVE_HTML).replace(
    "//{{live-js}}", LIVE_JS)
