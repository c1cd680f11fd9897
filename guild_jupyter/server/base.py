"""The base every ``/guild/api/`` handler shares: how a request is read and
answered, kept apart from the handlers (:mod:`.handlers`) so that the
rules below live in one place and each handler reads as what it does.

Errors are JSON ``{"error": message, "status": code}`` written in one
place, ``BaseHandler.write_error``, from an ``ApiError`` (or the package's
own errors, mapped by ``BaseHandler.call`` to their HTTP status). A body is
a JSON object of at most ``MAX_BODY`` bytes. Run ids in URLs are 1-32
lowercase hex digits (id or unique prefix); anything else is 400 before
the store is read. Blocking work runs in the IOLoop's executor
(``BaseHandler.call``), never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re

from jupyter_server.base.handlers import APIHandler
from tornado import web

from .. import api, views
from ..errors import GuildJupyterError

__all__ = ["ApiError", "BaseHandler", "int_arg", "bool_field", "run_row", "MAX_BODY", "RUN_ID"]

MAX_BODY = 64 * 1024
RUN_ID = re.compile(r"[0-9a-f]{1,32}\Z")
#: The queue flags (``api.queue_flag_table``), as JSON fields (``max_running``):
#: what ``POST /guild/api/queues`` and ``c.GuildJupyter.queues`` accept.
QUEUE_FIELDS = frozenset(f["field"] for f in api.queue_flag_table())


class ApiError(web.HTTPError):
    def __init__(self, status: int, message: str):
        super().__init__(status, "%s", message)
        self.message = message


class BaseHandler(APIHandler):
    @property
    def ext(self):
        return self.settings["guild_jupyter"]

    @property
    def store(self):
        return self.ext.run_store

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            message = exc.message
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        else:
            message = self._reason or "error"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "status": status_code}))

    def body_json(self) -> dict:
        if len(self.request.body) > MAX_BODY:
            raise ApiError(413, f"request body over {MAX_BODY // 1024} KiB")
        if not self.request.body.strip():
            return {}
        try:
            data = json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"malformed JSON: {e}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the body must be a JSON object")
        return data

    async def call(self, fn, *args, **kwargs):
        """Runs a (possibly blocking) API call off the event loop and turns
        the package's errors into HTTP statuses."""
        try:
            return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kwargs))
        except GuildJupyterError as e:
            raise ApiError(e.http_status, str(e)) from None

    async def run_ref(self, ref: str):
        """The run a URL names: an id or unique id prefix (1-32 lowercase hex
        digits). Anything else is refused before the store is touched, so no
        URL can name a path outside it; listing indices are not accepted."""
        if not RUN_ID.match(ref):
            raise ApiError(400, f"bad run id {ref!r}: expected up to 32 hex digits")
        return await self.call(self.store.resolve, ref, indices=False)

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


def int_arg(handler, name, default, low, high):
    text = handler.get_argument(name, None)
    if text is None:
        return default
    try:
        v = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a whole number, not {text!r}") from None
    if not low <= v <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}")
    return v


def bool_field(body: dict, name: str, default: bool = False) -> bool:
    v = body.get(name, default)
    if not isinstance(v, bool):
        raise ApiError(400, f"'{name}' must be true or false, not {v!r}")
    return v


def run_row(run) -> dict:
    """``views.run_row`` of the run as it is now."""
    return views.run_row(run.refresh())
