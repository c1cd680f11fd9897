"""One run directory in Guild 0.9's layout, and its status."""

from __future__ import annotations

import os
import shlex
import stat as stat_
import time

from ..procs import Identity, start_time
from . import attrs as attrlib
from .markers import LOCK, LOCK_PROCS, LOCK_REMOTE, LOCK_START, PENDING_MARKER, STAGED_MARKER  # noqa: F401 - re-exported
from .regular_file import read_small

STAGED, PENDING, RUNNING = "staged", "pending", "running"
COMPLETED, ERROR, TERMINATED = "completed", "error", "terminated"
STATUSES = (STAGED, PENDING, RUNNING, COMPLETED, ERROR, TERMINATED)
FINISHED = (COMPLETED, ERROR, TERMINATED)



def now_us() -> int:
    return int(time.time() * 1_000_000)


def status_for_exit(exit_status) -> str:
    if exit_status == 0:
        return COMPLETED
    if isinstance(exit_status, int) and exit_status < 0:
        return TERMINATED
    return ERROR


#: The op names of a queue run: Guild's own queue and ours.
QUEUE_OPS = ("queue", "guild_jupyter:queue")


def op_name_of(opref) -> str:
    """The op name of an opref tuple (kind, pkg, version, model, op): what a
    run shows (``Run.op_name``, a listing's ``Entry.op``)."""
    kind, _pkg, _ver, model, op = opref
    if not op:
        return "?"
    if kind == "script" or not model:
        return op
    return f"{model}:{op}"


def gpus_of(run_params) -> str | None:
    """The GPUs a run is pinned to, from its ``run_params`` attr (None: any)."""
    g = run_params.get("gpus") if isinstance(run_params, dict) else None
    return None if g in (None, "") else str(g)


def label_of(value) -> str:
    return "" if value is None else str(value)


def flags_of(value) -> dict:
    return value if isinstance(value, dict) else {}


def sweep_of(value) -> str | None:
    """The sweep id of a ``sweep`` attr value (None: no sweep, or not one of ours)."""
    return value if isinstance(value, str) and is_sweep_id(value) else None


def is_sweep_id(text) -> bool:
    """Whether ``text`` has the shape of a sweep id (``s`` + 8 lowercase
    hex, ``new_run.new_sweep_id``); never a run id or run id prefix, which
    are hex only."""
    return isinstance(text, str) and len(text) == 9 and text[0] == "s" and not text[1:].strip("0123456789abcdef")


def split_opref(text: str) -> list[str]:
    """Tokens of an opref line. Guild writes them shell-quoted; nearly all are
    plain words or ``''``, which a split handles 30x faster than shlex."""
    text = text.strip()
    if "\\" not in text and '"' not in text:
        tokens = text.split()
        if all(t == "''" or "'" not in t for t in tokens):
            return ["" if t == "''" else t for t in tokens]
    return shlex.split(text)


def parse_opref(text: str) -> tuple[str, str, str, str, str]:
    """(pkg_type, pkg_name, version, model, op) of an opref line; raises
    ValueError or IndexError when it has not that shape."""
    parts = split_opref(text)
    kind, _, pkg = parts[0].partition(":")
    return (kind, pkg, parts[1], parts[2], parts[3])


class Run:
    """A lazily read view of ``runs/<id>``. Reading never raises for bad files:
    unreadable attrs are collected in ``warnings``."""

    __slots__ = ("id", "dir", "guild_dir", "_cache", "warnings", "_names")

    def __init__(self, run_dir: str):
        self.dir = run_dir
        self.id = os.path.basename(run_dir)
        self.guild_dir = run_dir + "/.guild"  # plain concatenation: hot in listings
        self._cache: dict = {}
        self.warnings: list[str] = []
        self._names = None

    def __repr__(self):
        return f"<Run {self.id[:8]} {self.status}>"

    # -- files -------------------------------------------------------------

    def path(self, *parts) -> str:
        if len(parts) == 1:
            return self.guild_dir + "/" + parts[0]
        return os.path.join(self.guild_dir, *parts)

    @property
    def attrs_dir(self) -> str:
        return os.path.join(self.guild_dir, "attrs")

    def get(self, name: str, default=None):
        if name in self._cache:
            return self._cache[name]
        try:
            value = attrlib.read(self.guild_dir + "/attrs/" + name, default)
        except attrlib.AttrReadError as e:
            self.warnings.append(f"run {self.id[:8]}: unreadable attr {name}: {e}")
            value = default
        self._cache[name] = value
        return value

    def set_read(self, name: str, value=None, error: Exception | None = None) -> None:
        """Attr ``name`` as a caller read it from its file (a listing that
        stamps each file as it reads it): ``value``, or the
        ``AttrReadError`` met, which warns as ``get`` does and reads None."""
        if error is not None:
            self.warnings.append(f"run {self.id[:8]}: unreadable attr {name}: {error}")
            value = None
        self._cache[name] = value

    def set_read_all(self, values: dict, errors=()) -> None:
        """``set_read`` of many attrs at once: ``values`` by name, and
        ``(name, AttrReadError)`` of those that could not be read, in the
        order their warnings are given."""
        self._cache.update(values)
        for name, error in errors:
            self.set_read(name, error=error)

    def set_opref(self, data: bytes | None, error: OSError | None = None) -> None:
        """``.guild/opref`` as a caller read it: its bytes, None when it is
        missing, or the error met reading it (a warning). The one place an
        opref is parsed: ``opref`` reads the file and hands it here, a
        listing that read it through its open ``.guild`` does the same."""
        self._cache["_opref_text"] = None
        if data is None and error is None:
            self._cache["_opref"] = ("", "", "", "", "")
            return
        try:
            if error is not None:
                raise error
            text = data.decode("utf-8")
            self._cache["_opref_text"] = text.strip()
            self._cache["_opref"] = parse_opref(text)
        except (OSError, ValueError, IndexError):  # UnicodeDecodeError is a ValueError
            self.warnings.append(f"run {self.id[:8]}: unreadable opref")
            self._cache["_opref"] = ("", "", "", "", "")

    def assume_absent(self, names) -> None:
        """Attrs known not to exist (a listing's stamp of the run, just
        taken, found no file): read as None without opening them."""
        for name in names:
            self._cache.setdefault(name, None)

    def write_attr(self, name: str, value) -> None:
        attrlib.write_attr(self.attrs_dir, name, value)
        self._cache[name] = value

    def refresh(self) -> "Run":
        self._cache.clear()
        self._names = None
        self.warnings = []
        return self

    def _guild_names(self) -> set:
        if self._names is None:
            try:
                self._names = set(os.listdir(self.guild_dir))
            except OSError:
                self._names = set()
        return self._names

    def set_guild_names(self, names) -> None:
        """The names in ``.guild`` as a caller just listed them (a listing
        that read the run's files through its open ``.guild``)."""
        self._names = set(names)

    def marker_names(self) -> set:
        """The names in ``.guild`` (markers, LOCK...), as read once."""
        return self._guild_names()

    @property
    def deleted(self) -> bool:
        """Its directory is gone: moved to the trash (``delete``) or removed."""
        return not os.path.isdir(self.dir)

    def has_marker(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    # -- what a listing knows ----------------------------------------------

    def cached(self, names) -> dict:
        """The values of ``names`` read so far (attrs, and ``status`` and
        ``_opref``), for a listing to keep (``index.Entry``)."""
        return {k: self._cache[k] for k in names if k in self._cache}

    @classmethod
    def with_values(cls, run_dir: str, values: dict, warnings=()) -> "Run":
        """A run whose listed values are ``values`` (read from a listing;
        reads nothing until asked for another)."""
        run = cls.__new__(cls)  # a listing makes 10,000 of these: no more than the fields
        run.dir = run_dir
        run.id = run_dir[run_dir.rfind("/") + 1:]
        run.guild_dir = run_dir + "/.guild"
        run._cache = dict(values)
        run.warnings = list(warnings)
        run._names = None
        return run

    def remember(self, name: str, value) -> None:
        """``value`` was just written as attr ``name`` (by the lifecycle)."""
        self._cache[name] = value

    def forget(self, name: str) -> None:
        """Attr ``name`` changed on disk: read it again when asked."""
        self._cache.pop(name, None)

    def is_run(self) -> bool:
        """Whether ``runs/<id>``, whose ``.guild`` (or ``.guild/attrs``) cannot
        be stat'ed, is a run: not without ``.guild`` or when it is no
        directory itself; a damaged one is, listed with a warning."""
        try:
            mode = os.stat(self.guild_dir).st_mode
        except NotADirectoryError:  # runs/<id> is a file
            return False
        except FileNotFoundError:
            if not os.path.islink(self.guild_dir):
                return False
            self.mark_damaged(".guild is a dangling symlink")
            return True
        except OSError as e:  # ELOOP, EACCES, EIO...
            self.mark_damaged(f".guild: {e.strerror or e}")
            return True
        if not stat_.S_ISDIR(mode):
            self.mark_damaged(".guild is not a directory")
        return True  # a directory without attrs/ lists with what it has

    def mark_damaged(self, why: str) -> None:
        """Marks the run as an error with a warning; what it could not read
        lists as empty, so that filters and the sort key cannot raise."""
        self.warnings.append(f"run {self.id[:8]}: cannot read the run: {why}")
        cache = self._cache
        cache.setdefault("status", ERROR)
        cache.setdefault("_opref", ("", "", "", "", ""))
        for name in ("started", "initialized", "label", "run_params", "exit_status"):
            cache.setdefault(name, None)

    # -- derived -----------------------------------------------------------

    @property
    def status(self) -> str:
        if "status" in self._cache:
            return self._cache["status"]
        s = self._compute_status()
        self._cache["status"] = s
        return s

    def _compute_status(self) -> str:
        names = self._guild_names()
        if LOCK_REMOTE in names:
            return RUNNING
        if PENDING_MARKER in names:
            return PENDING
        if STAGED_MARKER in names:
            return STAGED
        exit_status = self.get("exit_status")
        if exit_status is not None:
            return status_for_exit(exit_status)
        if LOCK in names and self.lock_pid_alive():
            return RUNNING
        # The reads above are not one moment: a holder that recorded the
        # outcome and let go between them (exit_status read before it was
        # written, LOCK read after it was dropped) would read error here.
        # A holder records the outcome before it drops LOCK, so reading
        # exit_status again, after LOCK, tells the two apart.
        self.forget("exit_status")
        exit_status = self.get("exit_status")
        if exit_status is not None:
            return status_for_exit(exit_status)
        return ERROR

    def lock_pid(self) -> int | None:
        try:
            return int(read_small(self.path(LOCK), 4096)[:20].strip())
        except (OSError, ValueError):
            return None

    def lock_holder(self):
        """The live process LOCK names, as an ``Identity``, or None when that
        process is gone or is not the run's (a reused pid).

        Our LOCKs come with a start record naming the same pid; a LOCK
        without one (Guild's, or ours after ``guild run --restart`` wrote a
        new pid) is the run's only if its process started no later than the
        LOCK was written."""
        pid = self.lock_pid()
        if pid is None:
            return None
        started = start_time(pid)
        if started is None:
            return None
        rec = self._start_record()
        if rec is not None and rec.pid == pid:
            return rec if abs(rec.start - started) < 1.0 else None
        try:
            written = os.stat(self.path(LOCK)).st_mtime
        except OSError:
            return None
        return Identity(pid, started) if started <= written + 1.0 else None

    def _start_record(self):
        try:
            import json

            return Identity.from_record(json.loads(read_small(self.path(LOCK_START), 4096)))
        except (OSError, ValueError):
            return None

    def lock_pid_alive(self) -> bool:
        return self.lock_holder() is not None

    @property
    def opref(self) -> tuple[str, str, str, str, str]:
        """(pkg_type, pkg_name, version, model, op) from ``.guild/opref``."""
        if "_opref" not in self._cache:
            try:
                self.set_opref(read_small(self.path("opref")))
            except FileNotFoundError:
                self.set_opref(None)
            except OSError as e:
                self.set_opref(None, e)
        return self._cache["_opref"]

    @property
    def opref_text(self) -> str | None:
        """``.guild/opref`` as Guild wrote it (stripped), None when it cannot
        be read (as ``guild runs --json`` prints it)."""
        if "_opref_text" not in self._cache:
            try:
                self._cache["_opref_text"] = attrlib.read_text(self.path("opref")).strip()
            except (OSError, ValueError):
                self._cache["_opref_text"] = None
        return self._cache["_opref_text"]

    @property
    def op_name(self) -> str:
        return op_name_of(self.opref)

    @property
    def is_queue(self) -> bool:
        return self.op_name in QUEUE_OPS

    @property
    def flags(self) -> dict:
        return flags_of(self.get("flags", {}))

    @property
    def gpus(self) -> str | None:
        return gpus_of(self.get("run_params", {}))

    @property
    def sweep(self) -> str | None:
        """The sweep id the run belongs to (the ``run`` call that made it;
        a retry or restage keeps its origin's); None for runs without one."""
        return sweep_of(self.get("sweep"))

    @property
    def label(self) -> str:
        return label_of(self.get("label"))

    @property
    def started(self) -> int | None:
        v = self.get("started")
        return v if isinstance(v, int) else None

    @property
    def stopped(self) -> int | None:
        v = self.get("stopped")
        return v if isinstance(v, int) else None

    @property
    def timestamp(self) -> int:
        """Guild's sort key: ``started``, else ``initialized``."""
        v = self.started
        if v is None:
            v = self.get("initialized")
        return v if isinstance(v, int) else 0

    @property
    def exit_status(self):
        return self.get("exit_status")
