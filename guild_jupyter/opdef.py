"""Script operations: what a run of a Python script (or a notebook cell) is.

Builds the ``RunSpec`` the store initializes: the opref and ``op`` attr Guild
needs to list and re-run it, the flags (script defaults overlaid with the
user's), and the source snapshot copied to the run directory's root.
"""

from __future__ import annotations

import os

from .errors import ScriptError
from .execution import flags as flaglib
from .execution.flaginject import takes_list
from .gpus.spec import is_auto
from .store.flag_labels import format_flag_value
from .store.new_run import RunSpec

MAX_SOURCE_FILES = 100
MAX_SOURCE_BYTES = 1024 * 1024
_SKIP_DIRS = {"__pycache__", "venv", ".venv", "env", "site-packages", "node_modules", "build", "dist"}


class ScriptOp:
    """A Python script (or cell body) as an operation."""

    def __init__(self, project_dir: str, name: str, source: bytes, kind: str = "script"):
        self.project_dir = project_dir
        self.name = name  # path of the script relative to project_dir, e.g. train.py
        self.source = source
        self.kind = kind
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ScriptError(f"{name}: not UTF-8 text ({e.reason})") from e
        self.flags_info = flaglib.inspect_script(text, name)
        self._sources = None

    @classmethod
    def from_path(cls, script: str, cwd: str | None = None) -> "ScriptOp":
        path = os.path.abspath(os.path.join(cwd or os.getcwd(), os.path.expanduser(script)))
        if not script or not os.path.isfile(path):
            raise ScriptError(f"script not found: {script}")
        if not path.endswith(".py"):
            raise ScriptError(f"not a Python script or notebook: {script}")
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as e:
            raise ScriptError(f"cannot read {script}: {e.strerror}") from e
        return cls(os.path.dirname(path), os.path.basename(path), source)

    def code_text(self) -> str:
        """The Python source that runs, for the checks made before a run."""
        return self.source.decode("utf-8")

    @property
    def opref(self) -> str:
        return f"script:{_quote(self.project_dir)} '' '' {_quote(self.name)}"

    @property
    def defaults(self) -> dict:
        return dict(self.flags_info.defaults)

    def check_flags(self, given: dict) -> None:
        flaglib.check_flags(self.flags_info, given, self.name)

    def coerce_flags(self, trials: list) -> list:
        """Each trial's flag values converted to the flags' types as Guild
        converts them (``lr=1`` -> 1.0 for an argparse float, ``name=1`` ->
        "1" for a string default); raises ``FlagError`` at the first value
        Guild refuses (or no ``name=value`` could say), before anything is
        written."""
        types = flaglib.flag_types(self.flags_info)
        return [flaglib.coerce_flag_values(self.flags_info, t, types) for t in trials]

    @property
    def list_flags(self) -> set:
        """The flags that take a list as one value (``layers=[64,32]`` is one
        value, ``layers=[]`` too, not a sweep)."""
        return flaglib.list_flag_names(self.flags_info)

    def sources(self) -> dict:
        """The source snapshot: the script, plus the project's Python modules
        and packages so the script can import them (bounded in count and size)."""
        if self._sources is None:
            self._sources = collect_sources(self.project_dir, skip={self.name})
            self._sources[self.name] = self.source
        return self._sources

    def op_attr(self, gpus: str | None, flags: dict | None = None) -> dict:
        """Guild's ``op`` attr, with which a real ``guild run queue`` starts
        the run. ``flags``: the run's values (an empty list needs the option
        given alone, which Guild's flag arguments cannot say)."""
        dest = "args" if self.flags_info.style == "args" else "globals"
        module = self.name[:-3].replace(os.sep, ".")
        cmd_flags = {}
        bare_options = []
        for name in self.flags_info.defaults:
            opt = self.flags_info.options.get(name) or {}
            action = opt.get("action") if isinstance(opt, dict) else getattr(opt, "action", None)
            if isinstance(opt, dict) and takes_list(opt) and (flags or {}).get(name) in ("", []):
                # An empty list: Guild passes no argument for an empty split value, so the
                # option goes alone in the command (kept when Guild rewrites the attr).
                cmd_flags[name] = {"arg-skip": True}
                bare_options.append(opt["option"])
            elif isinstance(opt, dict) and takes_list(opt):
                cmd_flags[name] = {"arg-split": True}  # Guild splits "8 4" into --opt 8 4
            elif action == "store_true":
                cmd_flags[name] = {"arg-switch": True}
            elif action == "store_false":
                cmd_flags[name] = {"arg-switch": False}
            else:
                cmd_flags[name] = {}
        env = {"FLAGS_DEST": dest, "PYTHONPATH": "."}
        if gpus and not is_auto(gpus):  # CUDA numbers GPUs as NVML (and the panel) does only in PCI bus order
            env["CUDA_VISIBLE_DEVICES"] = gpus
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return {
            "deps": [],
            "flag-null-labels": {},
            "flags-extra": {},
            "label-template": None,
            "output-scalars": None,
            "python-requires": None,
            "op-cmd": {
                "cmd-args": ["${python_exe}", "-um", "guild.op_main", module, *bare_options, "__flag_args__"],
                "cmd-env": env,
                "cmd-flags": cmd_flags,
                "flags-dest": dest,
            },
            "sourcecode": {"dest": "."},
        }

    def _list_options(self) -> set:
        if self.flags_info.style != "args":
            return set()
        return {n for n, opt in (self.flags_info.options or {}).items() if takes_list(opt)}

    def spec(self, user_flags: dict, gpus: str | None = None, label: str | None = None, extra_attrs=None) -> RunSpec:
        flags = self.defaults
        flags.update(user_flags)
        user_flags = dict(user_flags)
        for name in self._list_options():
            for d in (flags, user_flags):
                if isinstance(d.get(name), (list, tuple)):
                    d[name] = split_encoded(d[name])
        extra = {"guild_jupyter": {"kind": self.kind}, "host": _hostname(), "user": _user()}
        extra.update(extra_attrs or {})
        return RunSpec(
            opref=self.opref,
            flags=flags,
            user_flags=user_flags,
            op_attr=self.op_attr(gpus, flags),
            sources=self.sources(),
            gpus=gpus,
            label=label,
            extra_attrs=extra,
            run_params={"flags": [f"{k}={v}" for k, v in user_flags.items()], "opspec": self.name},
        )


def split_encoded(values) -> str:
    """A list flag's value as Guild stores one for an argparse ``nargs``
    option: the items joined by spaces, shell-quoted (``[8, 4]`` -> ``8 4``),
    which Guild's queue splits back into separate arguments."""
    import shlex

    return " ".join(shlex.quote(v if isinstance(v, str) else format_flag_value(v)) for v in values)


def collect_sources(project_dir: str, skip=()) -> dict:
    out: dict = {}

    def add_dir(d: str, rel: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if len(out) >= MAX_SOURCE_FILES or e.name.startswith("."):
                continue
            relpath = os.path.join(rel, e.name) if rel else e.name
            if e.is_file() and e.name.endswith(".py") and relpath not in skip:
                try:
                    if e.stat().st_size <= MAX_SOURCE_BYTES:
                        with open(e.path, "rb") as f:
                            out[relpath] = f.read()
                except OSError:
                    pass
            elif (
                e.is_dir(follow_symlinks=False)
                and depth < 3
                and e.name not in _SKIP_DIRS
                and os.path.isfile(os.path.join(e.path, "__init__.py"))
            ):
                add_dir(e.path, relpath, depth + 1)

    add_dir(project_dir, "", 0)
    return out


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s) if s else "''"


def _hostname() -> str:
    return os.uname().nodename  # what socket.gethostname() returns, without importing socket


def _user() -> str:
    """The login name, as getpass.getuser() finds it (without its imports)."""
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return ""
