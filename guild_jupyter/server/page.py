"""The ``/guild`` page: one HTML document with its script inline (no build
step). It polls ``/guild/api/state`` every second and renders queues, runs
by status (with waiting reasons) and GPUs; its buttons call the REST API
with the page's XSRF token."""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Guild runs</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  h2 { font-size: 1.05em; margin: 1.2em 0 .3em; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #f3f3f3; font-weight: 600; }
  code { font-size: 12px; }
  .muted { color: #777; }
  .err { color: #b00020; }
  #counts span { margin-right: 1em; }
  button { font-size: 12px; }
</style>
</head>
<body>
<h1>Guild runs</h1>
<div id="store" class="muted"></div>
<div id="counts"></div>
<div id="message" role="status"></div>
<h2>Queues</h2>
<table id="queues"><thead><tr><th>queue</th><th>host</th><th>pid</th><th>gpus</th><th>state</th><th>current run</th><th></th></tr></thead><tbody></tbody></table>
<div id="groups"></div>
<h2>GPUs</h2>
<div id="gpus"></div>
<div id="warnings" class="muted"></div>
<script>
"use strict";
const XSRF = "{{xsrf}}";
const BASE = location.pathname.replace(/\/+$/, "") + "/";  // .../guild/
const GROUPS = ["running", "pending", "staged", "finished"];
const pages = {running: 0, pending: 0, staged: 0, finished: 0};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.onclick = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c === null || c === undefined ? "" : c);
  return e;
}

function when(us) {
  return us ? new Date(us / 1000).toLocaleString() : "";
}

function secs(s) {
  if (s === null || s === undefined) return "";
  s = Math.round(s);
  return s < 60 ? s + "s" : Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
}

async function call(method, path) {
  const r = await fetch(BASE + path, {method, headers: {"X-XSRFToken": XSRF}, credentials: "same-origin"});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function action(label, method, path, done) {
  return el("button", {onclick: async (ev) => {
    ev.target.disabled = true;
    try {
      await call(method, path);
      say(done, false);
    } catch (e) {
      say(e.message, true);
      ev.target.disabled = false;
    }
    refresh();
  }}, label);
}

function say(text, error) {
  const m = $("message");
  m.textContent = text;
  m.className = error ? "err" : "muted";
}

function renderQueues(queues) {
  const body = $("queues").tBodies[0];
  body.replaceChildren(...(queues.length ? queues.map((q) => el("tr", {"data-queue": q.id},
    el("td", {}, el("code", {}, q.id.slice(0, 8))), el("td", {}, q.host), el("td", {}, q.pid ?? ""),
    el("td", {}, q.gpus ?? "any"), el("td", {}, q.state), el("td", {}, q.current ? q.current.slice(0, 8) : ""),
    el("td", {}, action("stop queue", "DELETE", "api/queues/" + q.id, "queue stopping")))) :
    [el("tr", {}, el("td", {colspan: 7, class: "muted"}, "no queue is running"))]));
}

function renderGroup(name, g) {
  const rows = g.rows.map((r) => {
    const buttons = el("td", {});
    if (r.status === "running" || r.status === "pending") buttons.append(action("stop", "POST", "api/runs/" + r.id + "/stop", "stop sent to " + r.short_id));
    if (r.status === "staged") buttons.append(action("unstage", "DELETE", "api/runs/" + r.id, "unstaged " + r.short_id));
    return el("tr", {"data-run": r.id, "data-status": r.status},
      el("td", {}, el("code", {}, r.short_id)), el("td", {}, r.op), el("td", {}, r.status),
      el("td", {}, el("code", {}, r.flags_text)), el("td", {}, r.gpus ?? ""), el("td", {}, r.label),
      el("td", {}, when(r.started)), el("td", {}, secs(r.elapsed)),
      el("td", {class: "muted"}, r.waiting ?? ""), buttons);
  });
  const nav = el("div", {class: "muted"}, `${g.total} ${name}` + (g.pages > 1 ? ` - page ${g.page + 1} of ${g.pages} ` : ""));
  if (g.pages > 1) {
    nav.append(el("button", {onclick: () => { pages[name] = Math.max(0, g.page - 1); refresh(); }}, "prev"),
               el("button", {onclick: () => { pages[name] = g.page + 1; refresh(); }}, "next"));
  }
  return el("section", {id: "group-" + name}, el("h2", {}, name[0].toUpperCase() + name.slice(1)), nav,
    el("table", {}, el("thead", {}, el("tr", {}, ...["run", "op", "status", "flags", "gpus", "label", "started", "time", "waiting", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows)));
}

function renderGpus(gpus) {
  const box = $("gpus");
  if (!gpus.available) {
    box.replaceChildren(el("p", {class: "muted", id: "no-gpu"}, gpus.error || "no NVIDIA GPU found"));
    return;
  }
  box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...["gpu", "name", "memory", "utilization", "runs"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...gpus.devices.map((g) => el("tr", {},
      el("td", {}, g.index), el("td", {}, g.name),
      el("td", {}, `${Math.round(g.memory_used / 2 ** 20)} / ${Math.round(g.memory_total / 2 ** 20)} MiB`),
      el("td", {}, g.utilization === null || g.utilization === undefined ? "" : g.utilization + "%"),
      el("td", {}, (g.runs || []).map((r) => r.short_id).join(" ")))))));
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const q = GROUPS.map((g) => g + "=" + pages[g]).join("&");
    const s = await call("GET", "api/state?" + q);
    $("store").textContent = "store: " + s.store;
    $("counts").replaceChildren(...Object.entries(s.counts).map(([k, v]) => el("span", {"data-count": k}, `${k}: ${v}`)));
    renderQueues(s.queues);
    $("groups").replaceChildren(...GROUPS.map((g) => renderGroup(g, s.groups[g])));
    renderGpus(s.gpus);
    $("warnings").replaceChildren(...s.warnings.map((w) => el("div", {}, "warning: " + w)));
    document.body.dataset.updated = String(s.time);
  } catch (e) {
    say("cannot refresh: " + e.message, true);
  } finally {
    busy = false;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""
