"""REST handlers under ``/guild/api/`` and the ``/guild`` page.

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
the IOLoop's executor, never on the event loop.
"""

from __future__ import annotations

import os

from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from .. import api, views
from .base import QUEUE_FIELDS, RUN_ID, ApiError, BaseHandler, bool_field, int_arg, run_row

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
RUN_FIELDS = {"script", "flags", "assignments", "stage", "gpus", "label", "max_trials", "random_seed", "cwd", "retries"}
MAX_OUTPUT_CHUNK = 4 * 1024 * 1024  # per GET .../output?offset=N


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
                           retries=body.get("retries"), store=self.store, cwd=cwd)
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
        """Unstages a staged run; deletes (to Guild's trash) a finished one."""
        run = await self.run_ref(ref)
        if run.status == "staged":
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
    {name: value}}``): a staged copy with edited flags."""

    @web.authenticated
    async def post(self, ref, action):
        body = self.body_json()
        allowed = {"restart": {"stage"}, "restage": {"flags"}}[action]
        unknown = set(body) - allowed
        if unknown:
            raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))} (allowed: {', '.join(allowed)})")
        run = await self.run_ref(ref)
        if action == "restart":
            done = await self.call(api.restart, run.id, stage=bool_field(body, "stage"), store=self.store)
        else:
            flags = body.get("flags", {})
            if not isinstance(flags, dict):
                raise ApiError(400, "'flags' must be an object of flag values")
            done = await self.call(api.restage, run.id, flags=flags, store=self.store)
        self.reply({"action": action, "runs": [await self.call(run_row, r) for r in done]})


class GpusHandler(BaseHandler):
    @web.authenticated
    async def get(self):
        snap = await self.call(self.ext.monitor.snapshot)
        self.reply(snap["gpus"])


class StateHandler(BaseHandler):
    """Everything the page shows, as the panel sees it (paged per group)."""

    @web.authenticated
    async def get(self):
        pages = {}
        for group in ("running", "pending", "staged", "finished"):
            pages[group] = int_arg(self, group, 0, 0, 10**6)
        snap = await self.call(self.ext.monitor.snapshot, pages, 25)
        snap["queues"] = [queue_row(q, self.ext.hosted) for q in snap["queues"]]
        self.reply(snap)


class NotFoundHandler(BaseHandler):
    @web.authenticated
    async def get(self, *_):
        raise ApiError(404, "no such endpoint")

    post = delete = get


class PageHandler(JupyterHandler):
    @web.authenticated
    def get(self):
        from .page import PAGE  # lazy: the page's module loads on the first request of /guild

        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(PAGE.replace("{{xsrf}}", self.xsrf_token.decode()))


def handlers() -> list:
    ref = r"([^/]+)"
    return [
        (r"/guild/?", PageHandler),
        (r"/guild/api/runs/?", RunsHandler),
        (rf"/guild/api/runs/{ref}/output/?", OutputHandler),
        (rf"/guild/api/runs/{ref}/stop/?", StopHandler),
        (r"/guild/api/stop/?", StopManyHandler),
        (rf"/guild/api/runs/{ref}/(restart|restage)/?", RerunHandler),
        (rf"/guild/api/runs/{ref}/?", RunHandler),
        (r"/guild/api/queues/?", QueuesHandler),
        (rf"/guild/api/queues/{ref}/(pause|resume|drain)/?", QueueActionHandler),
        (rf"/guild/api/queues/{ref}/?", QueueHandler),
        (r"/guild/api/gpus/?", GpusHandler),
        (r"/guild/api/state/?", StateHandler),
        (r"/guild/api/(.*)", NotFoundHandler),
    ]

