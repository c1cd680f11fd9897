"""REST handlers under ``/guild/api/`` and the ``/guild`` page (an HTML file
and a bundle built from labextension/ with the sidebar, under ``/guild/static/``).

Every handler authenticates with Jupyter's own identity provider
(``@web.authenticated``: a token, or a login cookie plus the XSRF token for
requests that change something). Errors are JSON ``{"error": message}``
written in one place, ``BaseHandler.write_error`` (:mod:`.base`, with the
reading of bodies, run ids and the executor calls): 400 bad input, 403 not
authenticated or a path outside the allowed roots, 404 unknown run, 409
wrong state, 413 body too big, 507 store not writable.
A script and cwd given to ``POST /guild/api/runs`` are resolved (symlinks
included) and must lie under the server's root directory or one of
``c.GuildJupyter.allowed_roots``.
Run ids in URLs are 1-32 lowercase hex digits (id or unique prefix; an
ambiguous prefix is 400); anything else is 400 before the store is read.
Blocking work (store reads, starting and stopping runs and queues) runs in
the IOLoop's executor, never on the event loop. The long-polls
(``/guild/api/events``, ``/guild/api/state?after_version=``) wait on the
event loop for the server's one store watcher (``app.GuildJupyter.watch``).
"""

from __future__ import annotations

import asyncio
import os

from jupyter_server.base.handlers import FileFindHandler, JupyterHandler
from tornado import web

from .. import api, views
from .base import QUEUE_FIELDS, RUN_ID, ApiError, BaseHandler, bool_field, int_arg, run_row

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
RUN_FIELDS = {"script", "flags", "assignments", "stage", "gpus", "label", "max_trials", "random_seed", "cwd", "retries",
              "priority", "after", "after_any"}
#: What a staging may add (SPEC 12): a priority, the runs it waits for.
WAIT_FIELDS = {"priority", "after", "after_any"}
MAX_OUTPUT_CHUNK = 4 * 1024 * 1024  # per GET .../output?offset=N
PAGE_HTML = os.path.join(os.path.dirname(__file__), "page.html")
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")  # the page bundle (build output)


class RunsHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        statuses = self.get_arguments("status")
        bad = [s for s in statuses if s not in views.STATUSES]
        if bad:
            raise ApiError(400, f"unknown status {bad[0]!r} (one of {', '.join(views.STATUSES)})")
        op = self.get_argument("op", None)
        label = self.get_argument("label", None)
        limit = int_arg(self, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = int_arg(self, "offset", 0, 0, 10**9)
        self.reply(await self.call(self._listing, statuses, op, label, limit, offset))

    def _listing(self, statuses, op, label, limit, offset) -> dict:
        """One page of the listing index, newest first (off the event loop)."""
        return self.ext.monitor.list_runs(statuses, op, label, limit, offset)

    @web.authenticated
    async def post(self):
        body = self.body_json()
        unknown = set(body) - RUN_FIELDS
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(RUN_FIELDS))})")
        script = body.get("script")
        if not isinstance(script, str) or not script:
            raise ApiError(400, "'script' (a Python script or notebook, relative to the server's root) is required")
        assignments = body.get("assignments", [])
        if not isinstance(assignments, list) or not all(isinstance(a, str) for a in assignments):
            raise ApiError(400, "'assignments' must be a list of NAME=VALUE strings")
        flags = body.get("flags")
        if flags is not None and not isinstance(flags, dict):
            raise ApiError(400, "'flags' must be an object of flag values")
        waiting = waiting_fields(body)
        for name in ("max_trials", "random_seed", "retries"):
            v = body.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ApiError(400, f"'{name}' must be a whole number")
        for name in ("label", "cwd"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise ApiError(400, f"'{name}' must be a string")
        gpus = body.get("gpus")
        if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, (str, int, list))):
            raise ApiError(400, "'gpus' must be a string like \"0,1\"")
        stage = bool_field(body, "stage")
        script, cwd = self.confined_paths(script, body.get("cwd") or "")

        def start():
            runs = api.run(script, *assignments, flags=flags, gpus=gpus, label=body.get("label"), stage=stage,
                           max_trials=body.get("max_trials"), random_seed=body.get("random_seed"),
                           retries=body.get("retries"), store=self.store, cwd=cwd, **waiting)
            return [run_row(r) for r in runs]

        self.reply({"runs": await self.call(start)}, status=201)


    def confined_paths(self, script: str, cwd: str) -> tuple[str, str]:
        """``(script, cwd)`` resolved (realpath: symlinks and ``..`` followed)
        the way ``api.run`` would resolve them, and refused with 403 unless
        both lie under the server's root or an allowed root."""
        if "\x00" in script or "\x00" in cwd:
            raise ApiError(400, "paths cannot contain NUL characters")
        root = self.settings["server_root_dir"]
        real_cwd = os.path.realpath(os.path.join(root, os.path.expanduser(cwd)))  # an absolute cwd wins
        real_script = os.path.realpath(os.path.join(real_cwd, os.path.expanduser(script)))
        roots = self.ext.allowed_root_dirs(root)
        for name, path in (("cwd", real_cwd), ("script", real_script)):
            if not any(_is_within(path, r) for r in roots):
                value = cwd if name == "cwd" else script
                raise ApiError(403, f"'{name}' {value!r} is outside the server's root directory "
                                    "(c.GuildJupyter.allowed_roots lists other directories to allow)")
        return real_script, real_cwd


def waiting_fields(body: dict) -> dict:
    """``priority`` (a whole number), ``after`` and ``after_any`` (lists of
    run references: ids, prefixes, listing ranges, sweep ids) of a body, as
    the api takes them; the api checks their values."""
    out = {}
    if "priority" in body:
        v = body["priority"]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ApiError(400, "'priority' must be a whole number (from -1000 to 1000)")
        out["priority"] = v
    for name in ("after", "after_any"):
        if name in body:
            v = body[name]
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, list) or not all(isinstance(r, str) for r in v):
                raise ApiError(400, f"'{name}' must be a list of run references (ids, prefixes, ranges, sweep ids)")
            out[name] = v
    return out


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class RunHandler(BaseHandler):
    @web.authenticated
    async def get(self, ref):
        run = await self.run_ref(ref)
        row = await self.call(run_row, run)
        row["dir"] = run.dir
        self.reply(row)

    @web.authenticated
    async def delete(self, ref):
        """Unstages a staged run (or one waiting for its dependencies);
        deletes (to Guild's trash) a finished one."""
        run = await self.run_ref(ref)
        if run.status == "staged" or run.status == "pending" and await self.call(api.is_held, run):
            await self.call(api.unstage, run.id, store=self.store)
            self.reply({"id": run.id, "action": "unstaged", "run": await self.call(run_row, run)})
        else:
            await self.call(api.delete, run.id, store=self.store)
            self.reply({"id": run.id, "action": "deleted"})


class StopHandler(BaseHandler):
    @web.authenticated
    async def post(self, ref):
        body = self.body_json()
        unknown = set(body) - {"wait"}
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))} (allowed: wait)")
        wait = bool_field(body, "wait")
        run = await self.run_ref(ref)
        await self.call(api.stop, run.id, wait=wait, store=self.store)
        self.reply(await self.call(run_row, run))


class StopManyHandler(BaseHandler):
    """``POST /guild/api/stop`` ``{"runs": [ids], "all": bool, "queues": bool,
    "wait": bool}``: the runs named (ids or unique prefixes), or every
    running run and queue (``all``), or every queue (``queues``): one of the
    three, as ``stop`` takes them everywhere (``api.stop`` refuses two)."""

    FIELDS = {"runs", "all", "queues", "wait"}

    @web.authenticated
    async def post(self):
        body = self.body_json()
        unknown = set(body) - self.FIELDS
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))} "
                                f"(allowed: {', '.join(sorted(self.FIELDS))})")
        refs = body.get("runs", [])
        if not isinstance(refs, list) or not all(isinstance(r, str) and RUN_ID.match(r) for r in refs):
            raise ApiError(400, "'runs' must be a list of run ids (up to 32 hex digits each)")
        flags = {name: bool_field(body, name) for name in ("all", "queues")}
        wait = bool_field(body, "wait")
        await self.call(api.refuse_conflicts, "stop", runs=refs, **flags)  # before a run is looked up
        runs = [await self.call(self.store.resolve, ref, indices=False) for ref in refs]  # ids, never indices
        stopped = await self.call(api.stop, *runs, wait=wait, store=self.store, **flags)
        self.reply({"runs": [await self.call(run_row, r) for r in stopped]})


class OutputHandler(BaseHandler):
    """``?tail=N``: the last N lines (read backwards from the end);
    ``?since=B``: up to 4 MiB from byte B as ``{"text", "offset", "status",
    "done"}`` (where to ask next, the run's status, and whether the run has
    ended and all of it was read: how a viewer follows a live run; a staged
    run answers empty text, not done); ``?offset=B``: the same piece as
    ``{"output", "offset"}``; none: the whole output."""

    @web.authenticated
    async def get(self, ref):
        run = await self.run_ref(ref)
        tail = int_arg(self, "tail", None, 0, 10**6)
        offset = int_arg(self, "offset", None, 0, 2**62)
        since = int_arg(self, "since", None, 0, 2**62)
        if sum(v is not None for v in (tail, offset, since)) > 1:
            raise ApiError(400, "give one of tail, since and offset")
        if since is not None:
            piece = await self.call(api.output_since, run.id, since, MAX_OUTPUT_CHUNK, store=self.store)
            self.reply(dict(piece, id=run.id))
            return
        if offset is None:
            text = await self.call(api.output, run.id, tail=tail, store=self.store)
            self.reply({"id": run.id, "output": text})
            return
        text, offset = await self.call(api.output_from, run.id, offset, MAX_OUTPUT_CHUNK, store=self.store)
        self.reply({"id": run.id, "output": text, "offset": offset})


def queue_row(q: dict, hosted) -> dict:
    return dict(q, hosted_here=q["id"] in hosted)


class QueuesHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        snap = await self.call(self.ext.monitor.snapshot)
        self.reply({"queues": [queue_row(q, self.ext.hosted) for q in snap["queues"]]})

    @web.authenticated
    async def post(self):
        body = self.body_json()
        spec = dict(body)
        host = spec.pop("host", "server")
        if host not in ("server", "detached"):
            raise ApiError(400, f"host must be 'server' or 'detached', not {host!r}")
        if host == "server":
            q = await self.call(self.ext.start_queue, spec)
        else:
            unknown = set(spec) - QUEUE_FIELDS
            if unknown:
                raise ApiError(400, f"unknown queue field(s): {', '.join(sorted(unknown))}")
            q = await self.call(api.queue, background=True, store=self.store, **spec)
        self.reply({"id": q.id, "host": host, "gpus": q.run.flags.get("gpus"), "status": "running"}, status=201)


class QueueHandler(BaseHandler):
    @web.authenticated
    async def delete(self, ref):
        run = await self.run_ref(ref)
        if not run.is_queue:
            raise ApiError(400, f"run {run.id[:8]} is not a queue")
        hosted = self.ext.hosted.get(run.id)
        if hosted is not None and hosted.status != "stopped":
            await self.call(hosted.stop, wait=True)
            self.ext.hosted.pop(run.id, None)
        elif run.refresh().status == "running":
            await self.call(api.stop, run.id, wait=True, store=self.store)
        else:
            self.ext.hosted.pop(run.id, None)
            raise ApiError(409, f"queue {run.id[:8]} is already {run.status}")
        self.reply(await self.call(run_row, run))


class QueueActionHandler(BaseHandler):
    """``POST /guild/api/queues/ID/pause|resume|drain``: a running queue of
    ours, wherever hosted, starts nothing (pause), starts again (resume), or
    starts nothing and stops once its runs have ended (drain)."""

    @web.authenticated
    async def post(self, ref, action):
        if self.body_json():
            raise ApiError(400, f"{action} takes no fields")
        run = await self.run_ref(ref)
        done = await self.call(api.queue_control, run.id, action, store=self.store)
        self.reply(done)


class RerunHandler(BaseHandler):
    """``POST /guild/api/runs/ID/restart`` (``{"stage": bool}``): a finished
    run again in place; ``POST /guild/api/runs/ID/restage`` (``{"flags":
    {name: value}}``): a staged copy with edited flags, where a string value
    reads as a command line's ``NAME=VALUE`` (what a form sends: ``0.05``
    for a number, ``[1,2]`` for a list flag, ``[0.1,0.2]`` a sweep) and any
    other JSON value is the value; ``POST /guild/api/runs/ID/retry``: a
    staged retry of a failed run. Restart (with ``stage``) and restage also
    take ``priority``, ``after`` and ``after_any`` (SPEC 12). A bad value
    answers 400 and writes nothing."""

    @web.authenticated
    async def post(self, ref, action):
        body = self.body_json()
        allowed = {"restart": {"stage"} | WAIT_FIELDS, "restage": {"flags"} | WAIT_FIELDS, "retry": set()}[action]
        unknown = set(body) - allowed
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))} "
                                f"(allowed: {', '.join(sorted(allowed)) or 'none'})")
        waiting = waiting_fields(body)
        run = await self.run_ref(ref)
        if action == "restart":
            done = await self.call(api.restart, run.id, stage=bool_field(body, "stage"), store=self.store, **waiting)
        elif action == "retry":
            done = await self.call(api.retry, run.id, store=self.store)
        else:
            flags = body.get("flags", {})
            if not isinstance(flags, dict):
                raise ApiError(400, "'flags' must be an object of flag values")
            typed = [f"{k}={v}" for k, v in flags.items() if isinstance(v, str)]
            values = {k: v for k, v in flags.items() if not isinstance(v, str)}
            done = await self.call(api.restage, run.id, *typed, flags=values, store=self.store, **waiting)
        self.reply({"action": action, "runs": [await self.call(run_row, r) for r in done]})


class PrioritizeHandler(BaseHandler):
    """``POST /guild/api/runs/ID/prioritize`` with ``{"priority": N}``, or
    ``{"flags": {"priority": "N"}}`` (what a row's prioritize form posts, as
    every row form does): the priority of a staged run, or of one waiting
    for its dependencies (409 for any other). Answers ``{"action":
    "prioritize", "runs": [RunRow]}``."""

    @web.authenticated
    async def post(self, ref):
        body = self.body_json()
        unknown = set(body) - {"priority", "flags"}
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))} (allowed: flags, priority)")
        run = await self.run_ref(ref)
        if len(body) != 1:
            raise ApiError(400, "give 'priority' (a whole number from -1000 to 1000), or the form's "
                                "{'flags': {'priority': ...}}")
        if "flags" in body:
            form = body["flags"]
            if not isinstance(form, dict) or set(form) != {"priority"}:
                raise ApiError(400, "the prioritize form has one field: priority")
            priority = form["priority"]
            if isinstance(priority, str):
                try:
                    priority = int(priority.strip())
                except ValueError:
                    raise ApiError(400, f"priority must be a whole number from -1000 to 1000, not {priority!r}") from None
        else:
            priority = body["priority"]
        done = await self.call(api.prioritize, run.id, priority=priority, store=self.store)
        self.reply({"action": "prioritize", "runs": [await self.call(run_row, r) for r in done]})


class GpusHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        snap = await self.call(self.ext.monitor.snapshot)
        self.reply(snap["gpus"])


MAX_WAIT = 60.0  # seconds a long-poll may wait
DEFAULT_WAIT = 25.0


def wait_arg(handler) -> float:
    """``?timeout=S``: seconds a long-poll waits (default 25, at most 60)."""
    text = handler.get_argument("timeout", None)
    if text is None:
        return DEFAULT_WAIT
    try:
        v = float(text)
    except ValueError:
        raise ApiError(400, f"timeout must be a number of seconds, not {text!r}") from None
    if not 0 <= v <= MAX_WAIT:
        raise ApiError(400, f"timeout must be between 0 and {MAX_WAIT:g} seconds")
    return v


class LongPoll(BaseHandler):
    """A handler that may wait for the store's watcher (``ext.changes``)."""

    async def wait_until(self, ready, timeout: float):
        """Calls ``ready()`` (a coroutine function) until it returns
        something, waking on each change the watcher sees, for at most
        ``timeout`` seconds; returns its last answer (None: timed out)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        changes = self.ext.changes
        fut = changes.arm()
        try:
            answer = await ready()
            while answer is None:
                left = deadline - loop.time()
                if left <= 0 or self._gone():
                    return None
                if await changes.wait(fut, min(left, 1.0)):  # a closed connection is noticed within a second
                    changes.disarm(fut)
                    fut = changes.arm()
                    answer = await ready()
            return answer
        finally:
            changes.disarm(fut)


    def _gone(self) -> bool:
        """Whether the client has hung up (no use waiting for it)."""
        stream = getattr(self.request.connection, "stream", None)
        return stream is not None and stream.closed()


class StateHandler(LongPoll):
    """Everything the page and the sidebar show, as the panel sees it (paged
    per group: ``?running=P&failed=P...``). ``?after_version=V&timeout=S``:
    answers once the snapshot's ``version`` differs from V (at once if it
    already does), else after S seconds with the snapshot as it is."""

    @web.authenticated
    async def get(self):
        pages = {group: int_arg(self, group, 0, 0, 10**6) for group in views.GROUP_NAMES}
        after = int_arg(self, "after_version", None, 0, 2**62)
        timeout = wait_arg(self) if after is not None else 0.0
        last: list = []

        async def build():
            snap = await self.call(self.ext.monitor.snapshot, pages, 25)
            last[:] = [snap]
            return snap if after is None or snap["version"] != after else None

        snap = await self.wait_until(build, timeout) or last[0]
        snap["queues"] = [queue_row(q, self.ext.hosted) for q in snap["queues"]]
        self.reply(snap)


class EventsHandler(LongPoll):
    """``GET /guild/api/events?after=SEQ&timeout=S``: ``{"events", "last",
    "boot"}``, the kept events newer than SEQ; waits up to S seconds
    (default 25, at most 60) for one when there is none yet. A SEQ beyond
    the newest (another server's: see ``boot``) answers at once."""

    @web.authenticated
    async def get(self):
        after = int_arg(self, "after", 0, 0, 2**62)
        timeout = wait_arg(self)
        log = self.ext.events.log

        async def newer():
            return True if log.last != after else None

        await self.wait_until(newer, timeout if after <= log.last else 0.0)
        self.reply(log.answer(after))


def series_args(handler) -> dict:
    """``?since=TOKEN&tags=a,b&x=step|time|TAG&points=N`` of a scalars request."""
    tags = handler.get_argument("tags", None)
    return {"since": handler.get_argument("since", None) or None,
            "tags": ([t for t in tags.split(",") if t] or None) if tags is not None else None,
            "x": handler.get_argument("x", None) or None,
            "points": int_arg(handler, "points", None, 1, 10**9)}


class ScalarsHandler(BaseHandler):
    """``GET runs/<id>/scalars?since=TOKEN&tags=&x=&points=``: the run's
    points logged since TOKEN (``api.scalars``)."""

    @web.authenticated
    async def get(self, ref):
        run = await self.run_ref(ref)
        self.reply(await self.call(api.scalars, run.id, store=self.store, **series_args(self)))


def sweep_ref(ref: str) -> str:
    if not api.is_sweep_ref(ref):
        raise ApiError(400, f"bad sweep id {ref!r}: a sweep id is s and 8 hex digits, like s3f9a2c1d")
    return ref


class SweepsHandler(BaseHandler):
    """``GET sweeps``: the newest sweeps (what the sidebar lists)."""

    @web.authenticated
    async def get(self):
        limit = int_arg(self, "limit", 10, 1, 1000)
        self.reply({"sweeps": await self.call(self.ext.monitor.recent_sweeps, limit)})


class SweepHandler(LongPoll):
    """``GET sweeps/<id>[?after_version=V&timeout=S&scalar=NAME&brief=1]``:
    the sweep's table (``api.sweep_table``); with ``after_version``,
    answered once its ``version`` differs from V, else after S seconds
    (then, with ``brief=1``, only what moves without the version:
    ``views.sweep_brief``)."""

    @web.authenticated
    async def get(self, ref):
        sweep = sweep_ref(ref)
        scalar = self.get_argument("scalar", None) or None
        after = int_arg(self, "after_version", None, 0, 2**62)
        timeout = wait_arg(self) if after is not None else 0.0
        last: list = []

        async def build():
            table = await self.call(api.sweep_table, sweep, scalar=scalar, store=self.store, exact=False)
            last[:] = [table]
            return table if after is None or table["version"] != after else None

        table = await self.wait_until(build, timeout) or last[0]
        if after is not None and table["version"] == after and self.get_argument("brief", "") in ("1", "true"):
            table = views.sweep_brief(table)  # the asker holds this version's rows: only what moves without it
        self.reply(table)


class SweepScalarsHandler(BaseHandler):
    """``GET sweeps/<id>/scalars?since=TOKEN&tags=&x=&points=[&main=1][&brief=V]``:
    every trial's points logged since TOKEN, in one answer
    (``api.sweep_scalars``; ``main=1``: of the main scalar, instead of tags).
    ``brief=V`` (a viewer holding the table of version V): the answer also
    carries ``table``, the table's brief now (``views.sweep_brief``; its
    own version, which may differ from V): a live view's second is then
    one request, its cells and points together."""

    @web.authenticated
    async def get(self, ref):
        sweep = sweep_ref(ref)
        main = self.get_argument("main", "") in ("1", "true")
        brief = int_arg(self, "brief", None, 0, 2**62)
        answer = await self.call(api.sweep_scalars, sweep, store=self.store, exact=False, main=main,
                                 brief=brief is not None, **series_args(self))
        self.reply(answer)


class NotFoundHandler(BaseHandler):
    @web.authenticated
    async def get(self, *_):
        raise ApiError(404, "no such endpoint")

    post = delete = get


class PageHandler(JupyterHandler):
    """``/guild``: the page's HTML shell (``page.html``, a file of the
    package), whose bundle (``static/``, built from labextension/ with the
    sidebar) reads the REST API with the ``_xsrf`` cookie set here."""

    @web.authenticated
    def get(self):
        if self.request.path.endswith("/"):  # the shell's links are relative to .../guild
            query = self.request.query
            self.redirect(self.request.path.rstrip("/") + (f"?{query}" if query else ""))
            return
        if not os.path.isfile(os.path.join(STATIC_DIR, "guild-page.js")):
            raise web.HTTPError(500, "the /guild page is not built: run scripts/build-labextension.sh "
                                     "(pip install . with Node.js builds it too)")
        self.xsrf_token  # noqa: B018 - sets the _xsrf cookie the page sends back
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        with open(PAGE_HTML, encoding="utf-8") as f:
            self.finish(f.read())


def handlers() -> list:
    ref = r"([^/]+)"
    return [
        (r"/guild/?", PageHandler),
        (r"/guild/static/(.*)", FileFindHandler, {"path": STATIC_DIR}),
        (r"/guild/api/runs/?", RunsHandler),
        (rf"/guild/api/runs/{ref}/output/?", OutputHandler),
        (rf"/guild/api/runs/{ref}/stop/?", StopHandler),
        (rf"/guild/api/runs/{ref}/scalars/?", ScalarsHandler),
        (r"/guild/api/sweeps/?", SweepsHandler),
        (rf"/guild/api/sweeps/{ref}/scalars/?", SweepScalarsHandler),
        (rf"/guild/api/sweeps/{ref}/?", SweepHandler),
        (r"/guild/api/stop/?", StopManyHandler),
        (rf"/guild/api/runs/{ref}/(restart|restage|retry)/?", RerunHandler),
        (rf"/guild/api/runs/{ref}/prioritize/?", PrioritizeHandler),
        (rf"/guild/api/runs/{ref}/?", RunHandler),
        (r"/guild/api/queues/?", QueuesHandler),
        (rf"/guild/api/queues/{ref}/(pause|resume|drain)/?", QueueActionHandler),
        (rf"/guild/api/queues/{ref}/?", QueueHandler),
        (r"/guild/api/gpus/?", GpusHandler),
        (r"/guild/api/state/?", StateHandler),
        (r"/guild/api/events/?", EventsHandler),
        (r"/guild/api/(.*)", NotFoundHandler),
    ]

