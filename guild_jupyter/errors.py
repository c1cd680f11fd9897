"""One exception hierarchy for the whole package.

Every error a user can cause derives from ``GuildJupyterError`` and carries a
one-line message written for the user. Front ends map it once: the magics to
``UsageError``, the CLI to exit status 2, the server to an HTTP status.
"""

from __future__ import annotations


class GuildJupyterError(Exception):
    """Base of every error this package raises on purpose."""

    #: HTTP status the server extension answers with.
    http_status = 400

    def __str__(self) -> str:  # one line, always
        msg = super().__str__()
        return " ".join(msg.split()) if "\n" in msg else msg


class BadInput(GuildJupyterError):
    """Malformed or invalid user input (flags, sweeps, options)."""


class FlagError(BadInput):
    """A flag is malformed or not defined by the operation."""


class SweepError(BadInput):
    """A sweep expression is malformed or yields no trials."""


class ScriptError(BadInput):
    """The script is missing or cannot be parsed."""


class RunNotFound(GuildJupyterError):
    http_status = 404


class RunDeleted(RunNotFound):
    """A run deleted while it was waited on or followed; ``run_id`` names it."""

    def __init__(self, run_id: str, in_trash: bool):
        restore = f" (guild runs restore {run_id[:8]} brings it back)" if in_trash else ""
        super().__init__(f"run {run_id[:8]} was deleted{restore}")
        self.run_id = run_id


class AmbiguousRun(BadInput):
    pass


class WrongState(GuildJupyterError):
    """The run is not in a state that allows the operation."""

    http_status = 409


class StoreError(GuildJupyterError):
    """The run store cannot be used (not writable, lock timeout)."""

    http_status = 500


class StoreNotWritable(StoreError):
    """The store's disk refuses writes: read-only, permission denied, full
    or over quota. HTTP 507 (Insufficient Storage), as WebDAV answers it."""

    http_status = 507


class LockTimeout(StoreError):
    def __init__(self, lock_file: str, timeout: float):
        super().__init__(
            f"timed out after {timeout:g}s waiting for the run-status lock {lock_file}"
        )
        self.lock_file = lock_file
        self.timeout = timeout


class RunStartError(GuildJupyterError):
    """A run could not be started."""

    http_status = 500


class WaitTimeout(GuildJupyterError, TimeoutError):
    """``api.wait`` / ``api.wait_until`` gave up; ``what`` says on what."""

    http_status = 504

    def __init__(self, what: str, timeout: float):
        super().__init__(f"timed out after {timeout:g}s waiting for {what}")
        self.what = what
        self.timeout = timeout


class GuildJupyterWarning(UserWarning):
    """Something the user should know that does not stop the operation
    (e.g. a flag named like a scalar the script prints)."""
