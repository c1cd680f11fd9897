"""The live parts of the ``/guild`` page, put into ``page.PAGE``: the main
scalar and its sparkline (an inline SVG polyline) in the running and
finished rows; a click on a run opens its output, followed through
``GET /guild/api/runs/ID/output?since=OFFSET`` until the run has ended and
all of it is read; notices of runs that end, comparing one state with the
next (a failed run's notice shows its last lines and opens its whole
output, traceback included, in one click); and browser notifications of
the same, once the user allowed them with a click (the Notification API
asks only on a user's gesture)."""

LIVE_CSS = r"""
  td.scalar { white-space: nowrap; font-family: monospace; font-size: 12px; }
  td.scalar svg { vertical-align: middle; margin-left: 4px; }
  tr[data-run] { cursor: pointer; }
  tr[data-run].open td { background: #eef4fb; }
  #live { display: flex; flex-wrap: wrap; gap: .5em; align-items: center; }
  #notices .notice { border-left: 4px solid #999; padding: 2px 8px; margin: 3px 0; font-size: 13px; }
  #notices .notice[data-status="completed"] { border-left-color: var(--completed); }
  #notices .notice[data-status="error"] { border-left-color: var(--error); }
  #notices .notice[data-status="terminated"] { border-left-color: var(--terminated); }
  #notices pre { margin: 2px 0; padding: 2px 6px; background: #fbeaea; font-size: 11px; max-height: 8em;
                 overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
  #output-pane { border: 1px solid #ccc; border-radius: 4px; margin: .5em 0; padding: .3em .5em; }
  #output-pane[hidden] { display: none; }
  #output-head { display: flex; justify-content: space-between; align-items: center; gap: .5em; }
  #output-text { margin: .3em 0 0; max-height: 360px; overflow: auto; background: #fafafa; font-size: 12px;
                 white-space: pre-wrap; overflow-wrap: anywhere; }
"""

LIVE_HTML = r"""
<div id="live"><button id="notify" title="get a browser notification when a run ends">notify me when runs end</button>
<span id="notify-state" class="muted"></span></div>
<div id="notices"></div>
<section id="output-pane" hidden><div id="output-head"><span id="output-title"></span>
<button id="output-close">close</button></div><pre id="output-text"></pre></section>
"""

LIVE_JS = r"""
const OUTPUT_POLL_MS = 500, OUTPUT_MAX_CHARS = 200000, NOTICES_SHOWN = 6;
const FINISHED = ["completed", "error", "terminated"];

function sparkSvg(values, width = 64, height = 16) {
  const pts = (values || []).filter((v) => typeof v === "number" && isFinite(v));
  if (pts.length < 2) return null;
  const lo = Math.min(...pts), hi = Math.max(...pts), span = (hi - lo) || 1, step = (width - 2) / (pts.length - 1);
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  for (const [k, v] of Object.entries({width, height, viewBox: `0 0 ${width} ${height}`, class: "spark"})) svg.setAttribute(k, v);
  const line = document.createElementNS(NS, "polyline");
  line.setAttribute("points", pts.map((v, i) => `${(1 + i * step).toFixed(1)},${(height - 1 - (v - lo) / span * (height - 2)).toFixed(1)}`).join(" "));
  for (const [k, v] of Object.entries({fill: "none", stroke: "#1565c0", "stroke-width": "1.2"})) line.setAttribute(k, v);
  svg.append(line);
  return svg;
}

function scalarCell(r) {
  const td = el("td", {class: "scalar", "data-label": "scalar"});
  const s = r.scalar;
  if (s) {
    td.title = `${s.tag} = ${s.value}` + (s.step === null || s.step === undefined ? "" : ` at step ${s.step}`);
    td.append(el("span", {class: "scalar-value"}, r.scalar_text));  // the view model's wording
    const svg = sparkSvg(r.spark);
    if (svg) td.append(svg);
  }
  return td;
}

// -- a run's output, followed ------------------------------------------------------------------
let following = null;  // {id, offset, done, timer}

function openOutput(id) {
  if (following) clearTimeout(following.timer);
  const f = following = {id, offset: 0, done: false, timer: null};
  const pane = $("output-pane");
  pane.hidden = false;
  pane.dataset.run = id;
  pane.dataset.done = "false";
  $("output-text").textContent = "";
  $("output-title").textContent = "output of run " + id.slice(0, 8);
  markOpen();
  pollOutput(f);
}

function closeOutput() {
  if (following) clearTimeout(following.timer);
  following = null;
  $("output-pane").hidden = true;
  markOpen();
}

function markOpen() {
  for (const tr of document.querySelectorAll("tr[data-run]")) tr.classList.toggle("open", !!following && tr.dataset.run === following.id);
}

async function pollOutput(f) {
  if (following !== f) return;
  try {
    const r = await call("GET", `api/runs/${f.id}/output?since=${f.offset}`);
    if (following !== f) return;
    const box = $("output-text");
    if (r.text) {
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      let text = box.textContent + r.text;
      if (text.length > OUTPUT_MAX_CHARS) text = text.slice(-OUTPUT_MAX_CHARS);
      box.textContent = text;
      if (atEnd) box.scrollTop = box.scrollHeight;
    }
    f.offset = r.offset;
    f.done = r.done;
    const how = r.done ? "" : (r.status === "staged" || r.status === "pending" ? " · waiting for it to start" : " · following");
    $("output-title").textContent = `output of run ${f.id.slice(0, 8)} · ${r.status}${how}`;
    $("output-pane").dataset.status = r.status;
    $("output-pane").dataset.done = String(r.done);
  } catch (e) {
    $("output-title").textContent = `output of run ${f.id.slice(0, 8)} · ${e.message}`;
    return;
  }
  if (!f.done) f.timer = setTimeout(() => pollOutput(f), OUTPUT_POLL_MS);
}

// -- notices and notifications ------------------------------------------------------------------
let active = null;  // id -> row of the runs last seen staged, pending or running
let lastLook = 0;  // the server's time (µs) of the previous state
const noticed = new Set();
const LOOK_MARGIN_US = 2e6;
const notices = [];
let notifying = false;

function askNotifications() {
  if (!("Notification" in window)) { $("notify-state").textContent = "this browser has no notifications"; return; }
  Notification.requestPermission().then((p) => {
    notifying = p === "granted";
    $("notify-state").textContent = notifying ? "notifications on" : "notifications " + p;
    $("notify").dataset.permission = p;
  });
}

function noticeFor(row) {
  const es = row.exit_status;
  const n = {id: row.id, short_id: row.short_id, op: row.op, status: row.status, tail: "",
             text: `run ${row.short_id} ${row.op} ${row.status}` + (es !== null && es !== undefined && es !== 0 ? ` (exit status ${es})` : "")};
  notices.push(n);
  if (notices.length > 50) notices.shift();
  if (row.status !== "completed") {
    call("GET", `api/runs/${row.id}/output?tail=8`).then((o) => { n.tail = o.output; renderNotices(); }).catch(() => {});
  }
  if (notifying) {
    try { new Notification(n.text, {body: row.flags_text || "", tag: row.id}); } catch (e) { /* some browsers only from a service worker */ }
  }
}

function renderNotices() {
  $("notices").replaceChildren(...notices.slice(-NOTICES_SHOWN).reverse().map((n) => {
    const d = el("div", {class: "notice", "data-run": n.id, "data-status": n.status}, n.text + " ",
      el("button", {class: "notice-output", onclick: () => openOutput(n.id)}, n.status === "error" ? "traceback" : "output"));
    if (n.tail && n.tail.trim()) d.append(el("pre", {}, n.tail.replace(/\s+$/, "")));
    return d;
  }));
}

async function noticeEnded(s) {
  // Runs seen active that are not any more, and runs that ended since the
  // previous look (a short run may start and end between two looks).
  const now = new Map();
  for (const g of ["running", "pending", "staged"]) for (const r of s.groups[g].rows) now.set(r.id, r);
  const before = active, since = lastLook;
  active = now;
  lastLook = s.time;
  if (before === null) return;
  const finished = new Map(s.groups.finished.rows.map((r) => [r.id, r]));
  const ids = [...before.keys()].filter((id) => !now.has(id));
  for (const r of s.groups.finished.rows) if ((r.stopped || 0) >= since - LOOK_MARGIN_US) ids.push(r.id);
  for (const id of new Set(ids)) {
    if (noticed.has(id)) continue;
    let row = finished.get(id);
    if (!row) {
      try { row = await call("GET", "api/runs/" + id); } catch (e) { continue; }
    }
    if (FINISHED.includes(row.status) && !noticed.has(id)) { noticed.add(id); noticeFor(row); }
  }
  renderNotices();
}

$("notify").onclick = askNotifications;
$("output-close").onclick = closeOutput;
"""
