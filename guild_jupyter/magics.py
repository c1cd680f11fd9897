"""``%guild`` and ``%%guild``: the notebook front of :mod:`guild_jupyter.api`.

A thin front: each subcommand is parsed with argparse, handed to its Python
twin in ``api``, and the twin's object is the magic's value (``runs = %guild
runs`` works; the last line of a cell renders it). Every bad input, ours or
argparse's, is an IPython ``UsageError``: one line, no traceback, and nothing
was written (the API validates before it touches the store).

Enable with ``%load_ext guild_jupyter``, or in every kernel with
``c.InteractiveShellApp.extensions = ["guild_jupyter"]`` in an
``ipython_kernel_config`` (the package ships one under ``jupyter-config/ipython/``).

Nothing heavy is imported until a magic runs, so auto-loading costs a kernel
next to nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import shlex
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from .errors import GuildJupyterError
from .runlist import RunList

__all__ = ["GuildMagics", "load_ipython_extension", "cell_op_name"]

STATUSES = ("staged", "pending", "running", "completed", "error", "terminated")
DEFAULT_SHOWN = 20  # rows a run list shows in a cell, like `guild runs`

SUMMARY = """\
%guild run SCRIPT [FLAG=VALUE ...] [--stage] [--foreground] [--gpus IDS] [--label TEXT]
           [--max-trials N] [--random-seed S] [--dry-run]
%%guild run [FLAG=VALUE ...] [--name NAME] [--stage] ...   (the cell body is the script)
%guild queue [gpus=IDS] [wait-for-running=yes] [run-once=yes] [poll-interval=S] [--background]
%guild queues [--all]
%guild runs [--staged|--pending|--running|--completed|--error|--terminated] [-n N] [--op NAME] [--label TEXT] [-a]
%guild stop [RUN ...|--all|--queues] [--no-wait]
%guild unstage RUN ...      %guild delete RUN ...
%guild output RUN [--tail N]
%guild compare [RUN ...]
%guild panel [--refresh SECONDS]

Every subcommand takes --store PATH (a Guild home; default $GUILD_HOME or ~/.guild),
also as %guild --store PATH SUBCOMMAND ... . RUN is an id, a unique id prefix, or an
index in the latest %guild runs listing. Add -h to a subcommand for its options."""


class _HelpShown(Exception):
    """argparse printed the help (``-h``): the magic has nothing more to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status=0, message=None):
        if status:
            raise UsageError(f"{self.prog}: {(message or 'error').strip()}")
        raise _HelpShown()


def _parser(name: str, description: str) -> _Parser:
    p = _Parser(prog=f"%guild {name}", description=description, add_help=True, allow_abbrev=False)
    p.add_argument("--store", metavar="PATH", help="Guild home holding runs/ (default $GUILD_HOME or ~/.guild)")
    return p


def _run_options(p: _Parser) -> None:
    p.add_argument("flags", nargs="*", metavar="FLAG=VALUE", help="flag values; brackets make a sweep")
    p.add_argument("--stage", "--stage-trials", action="store_true", dest="stage",
                   help="initialize the runs for a queue, do not start them")
    p.add_argument("--foreground", action="store_true", help="wait for each run, its output in the cell")
    p.add_argument("--gpus", metavar="IDS", help="pin the runs to these GPUs, e.g. 0 or 0,1")
    p.add_argument("--label", metavar="TEXT")
    p.add_argument("--max-trials", type=int, metavar="N", help="trials of a random search (default 20)")
    p.add_argument("--random-seed", type=int, metavar="S")
    p.add_argument("--dry-run", action="store_true", help="show the trials, write nothing")


def build_parsers() -> dict[str, _Parser]:
    parsers: dict[str, _Parser] = {}

    p = parsers["run"] = _parser("run", "Stage or start runs of a Python script (default: start in the background).")
    p.add_argument("script", help="a Python script, relative to the kernel's working directory")
    _run_options(p)

    p = parsers["cell run"] = _parser("run", "Stage or start runs of this cell's body as a script.")
    p.prog = "%%guild run"
    _run_options(p)
    p.add_argument("--name", metavar="NAME", help="the operation's name (default: from a leading comment, "
                                                  "else cell-<hash of the body>)")

    p = parsers["queue"] = _parser("queue", "Start a queue: a thread in this kernel, or with --background a "
                                            "detached process.")
    p.add_argument("flags", nargs="*", metavar="FLAG=VALUE",
                   help="gpus=IDS wait-for-running=yes|no run-once=yes|no poll-interval=SECONDS")
    p.add_argument("--background", action="store_true", help="a detached process that outlives the kernel")

    p = parsers["queues"] = _parser("queues", "List queues (this kernel's threads and detached processes).")
    p.add_argument("--all", action="store_true", help="include finished queues")

    p = parsers["runs"] = _parser("runs", "List runs, newest first.")
    for s in STATUSES:
        p.add_argument(f"--{s}", action="store_true", help=f"only {s} runs")
    p.add_argument("-n", type=int, metavar="N", dest="limit", help="at most N runs")
    p.add_argument("--op", metavar="NAME", help="only runs whose op name contains NAME")
    p.add_argument("--label", metavar="TEXT", help="only runs whose label contains TEXT")
    p.add_argument("-a", "--all", action="store_true", help=f"show every run (default: the first {DEFAULT_SHOWN})")

    p = parsers["stop"] = _parser("stop", "Stop running runs; a staged run is removed from the queue.")
    p.add_argument("runs", nargs="*", metavar="RUN")
    p.add_argument("--all", action="store_true", help="every running run and queue")
    p.add_argument("--queues", action="store_true", help="every queue")
    p.add_argument("--no-wait", action="store_true", help="return without waiting for the runs to end")

    p = parsers["unstage"] = _parser("unstage", "Remove staged runs from the queue.")
    p.add_argument("runs", nargs="+", metavar="RUN")

    p = parsers["delete"] = _parser("delete", "Move runs to Guild's trash.")
    p.add_argument("runs", nargs="+", metavar="RUN")

    p = parsers["output"] = _parser("output", "A run's output.")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")

    p = parsers["compare"] = _parser("compare", "Flags and last scalar values per run.")
    p.add_argument("runs", nargs="*", metavar="RUN")

    p = parsers["panel"] = _parser("panel", "A live panel of queues, runs and GPUs.")
    p.add_argument("--refresh", type=float, metavar="SECONDS", default=1.0,
                   help="seconds between refreshes (0: never)")
    for p in parsers.values():
        # argparse %-formats a given usage (parse_intermixed_args sets one),
        # and our prog starts with '%'.
        p.usage = p.format_usage()[len("usage: "):].strip().replace("%", "%%")
    return parsers


# -- the line ---------------------------------------------------------------------------------

_SWEEP_START = re.compile(r"^[^-=\s][^=\s]*=\w*\[")


def split_line(line: str) -> list[str]:
    """Shell-like words; a flag value whose brackets span several words
    (``lr=[0.1, 0.01]``) is put back together."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"%guild: cannot parse the line: {e}") from None
    out: list[str] = []
    depth = 0
    for w in words:
        if depth > 0:
            out[-1] += " " + w
            depth += w.count("[") - w.count("]")
            continue
        out.append(w)
        if _SWEEP_START.match(w):
            depth = w.count("[") - w.count("]")
    return out


def _take_store(words: list[str]) -> tuple[str | None, list[str]]:
    """``--store PATH`` (or ``--store=PATH``) before the subcommand."""
    store = None
    while words and words[0].startswith("--store"):
        w = words.pop(0)
        if w.startswith("--store="):
            store = w[len("--store="):]
        elif w == "--store":
            if not words:
                raise UsageError("%guild: --store needs a PATH")
            store = words.pop(0)
        else:
            raise UsageError(f"%guild: unknown option {w!r}")
    return store, words


# -- cell operations ----------------------------------------------------------------------------

_CODING = re.compile(r"^#.*coding[:=]")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-_")[:40].strip("-_")


def cell_op_name(body: str, name: str | None = None) -> str:
    """The script file name of a ``%%guild run`` cell.

    ``--name NAME`` gives ``NAME.py`` (made file- and module-safe); else a
    leading ``# comment`` gives its slug (``# Train a tiny MLP`` ->
    ``train-a-tiny-mlp.py``), stable while the code below it changes; else
    ``cell-<first 8 hex of the body's sha1>.py``.
    """
    if name is not None:
        base = name[:-3] if name.endswith(".py") else name
        slug = _slug(base)
        if not slug:
            raise UsageError(f"%%guild run: bad --name {name!r}: use letters, digits, - and _")
        return slug + ".py"
    for line in body.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#") and not line.startswith("#!") and not _CODING.match(line):
            slug = _slug(line.lstrip("#"))
            if slug:
                return slug + ".py"
        break
    return "cell-" + hashlib.sha1(body.strip().encode("utf-8")).hexdigest()[:8] + ".py"


# -- values ------------------------------------------------------------------------------------------


class Trials(list):
    """The trials of a ``--dry-run``: each a dict of every flag value."""

    def __str__(self) -> str:
        if not self:
            return "no trials"
        from .runlist import flags_text

        return "\n".join(f"trial {i}: {flags_text(t)}" for i, t in enumerate(self, 1))

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


class RunListing(RunList):
    """A ``RunList`` that shows only its first ``shown`` rows, as ``guild runs``
    shows the newest 20: a notebook cell never holds a 10,000-row table, while
    indices, iteration and ``to_dataframe()`` still cover every run."""

    def __init__(self, runs=(), shown: int | None = DEFAULT_SHOWN, indices=None):
        super().__init__(runs, indices)
        self.shown = shown

    def _hidden(self) -> int:
        return 0 if self.shown is None else max(0, len(self) - self.shown)

    def rows(self):
        rows = super().rows()
        return rows if self.shown is None else itertools.islice(rows, self.shown)

    def _more(self) -> str:
        return f"... {self._hidden()} more (%guild runs --all shows every run; -n N, filters and .to_dataframe() help too)"

    def __str__(self) -> str:
        text = super().__str__()
        return text + "\n" + self._more() if self._hidden() else text

    __repr__ = __str__

    def _repr_html_(self) -> str:
        html = super()._repr_html_()
        return html + f"<p>{self._more()}</p>" if self._hidden() else html


class RunOutput(str):
    """A run's output: a ``str`` that a cell shows as the text it is."""

    def _repr_pretty_(self, p, cycle):
        p.text(str(self) if self else "(no output)")


# -- the magics ----------------------------------------------------------------------------------


@magics_class
class GuildMagics(Magics):
    """``%guild SUBCOMMAND ...`` and ``%%guild run ...``."""

    def __init__(self, shell=None):
        super().__init__(shell)
        self._parsers = build_parsers()
        # The latest ``%guild runs`` listing per store, so ``%guild stop 3``
        # means the third run the user saw, not the third run now.
        self._listings: dict[str, list] = {}

    @line_cell_magic
    def guild(self, line: str, cell: str | None = None):
        """Guild AI runs and queues from a notebook. ``%guild help`` for the subcommands."""
        store, words = _take_store(split_line(line))
        if not words or words[0] in ("help", "-h", "--help"):
            print(SUMMARY)
            return None
        sub, rest = words[0], words[1:]
        if cell is not None and sub != "run":
            raise UsageError(f"%%guild: only '%%guild run' takes a cell (got {sub!r})")
        key = "cell run" if cell is not None else sub
        parser = self._parsers.get(key) if sub != "cell run" else None
        if parser is None:
            names = ", ".join(k for k in self._parsers if k != "cell run")
            raise UsageError(f"%guild: unknown subcommand {sub!r} (expected one of: {names}, help)")
        try:
            args = parser.parse_intermixed_args(rest)
        except _HelpShown:
            return None
        if args.store is None:
            args.store = store
        elif store is not None and os.path.abspath(store) != os.path.abspath(args.store):
            raise UsageError("%guild: --store given twice with different paths")
        handler = getattr(self, "_" + sub)
        try:
            return handler(args, cell) if sub == "run" else handler(args)
        except GuildJupyterError as e:
            raise UsageError(str(e)) from None

    # -- subcommands ----------------------------------------------------------------------------

    def _run(self, args, cell):
        from . import api

        if args.foreground and (args.stage or args.dry_run):
            raise UsageError(f"{_prog(cell)}: --foreground cannot be combined with "
                             f"{'--stage' if args.stage else '--dry-run'}")
        cwd = os.getcwd()
        op = None
        script = getattr(args, "script", None)
        if cell is not None:
            op = self._cell_op(cell, args.name, cwd)
            script = op.name
        options = dict(gpus=args.gpus, label=args.label, max_trials=args.max_trials,
                       random_seed=args.random_seed, store=args.store, cwd=cwd, op=op)
        if args.dry_run:
            return Trials(api.run(script, *args.flags, dry_run=True, **options))
        if args.foreground:
            try:
                return RunListing(api.run(script, *args.flags, foreground=True, **options))
            except api.SweepInterrupted as e:
                print(f"interrupted: stopped {sum(r.status == 'terminated' for r in e.runs)} run(s)",
                      file=sys.stderr)
                return RunListing(e.runs)
        result = api.run(script, *args.flags, stage=args.stage, **options)
        if args.stage:  # the indices shown are the full listing's: make them this kernel's too
            self._listings[_home(args.store)] = api.runs(store=args.store)
        return RunListing(result, indices=result.indices)

    @staticmethod
    def _cell_op(cell: str, name, cwd):
        from .opdef import ScriptOp

        if not cell.strip():
            raise UsageError("%%guild run: the cell is empty: there is nothing to run")
        if not cell.endswith("\n"):
            cell += "\n"
        from .execution.source_checks import free_names

        free = free_names(cell)
        if free:
            shown = ", ".join(free[:8]) + (f" (and {len(free) - 8} more)" if len(free) > 8 else "")
            raise UsageError(f"%%guild run: the cell uses {shown}, defined outside it: a run starts in a "
                             f"fresh process, so define or import {'them' if len(free) > 1 else 'it'} in the cell")
        return ScriptOp(cwd, cell_op_name(cell, name), cell.encode("utf-8"), kind="cell")

    def _queue(self, args):
        from . import api

        return api.queue(*args.flags, background=args.background, store=args.store)

    def _queues(self, args):
        from . import api

        return api.queues(store=args.store, include_finished=args.all)

    def _runs(self, args):
        from . import api

        statuses = [s for s in STATUSES if getattr(args, s)] or None
        listing = api.runs(statuses, op=args.op, label=args.label, limit=args.limit, store=args.store)
        self._listings[_home(args.store)] = listing
        return RunListing(listing, shown=None if args.all else DEFAULT_SHOWN)

    def _stop(self, args):
        from . import api

        if args.runs and (args.all or args.queues):
            raise UsageError("%guild stop: give runs, or --all, or --queues, not both")
        refs = self._refs(args.runs, args.store)
        return RunListing(api.stop(*refs, all=args.all, queues=args.queues, wait=not args.no_wait, store=args.store))

    def _unstage(self, args):
        from . import api

        return RunListing(api.unstage(*self._refs(args.runs, args.store), store=args.store))

    def _delete(self, args):
        from . import api

        return RunListing(api.delete(*self._refs(args.runs, args.store), store=args.store))

    def _output(self, args):
        from . import api

        (ref,) = self._refs([args.run], args.store)
        return RunOutput(api.output(ref, tail=args.tail, store=args.store))

    def _compare(self, args):
        from . import api

        return api.compare(*self._refs(args.runs, args.store), store=args.store)

    def _panel(self, args):
        if args.refresh < 0:
            raise UsageError("%guild panel: --refresh must be 0 (never) or a number of seconds")
        try:
            from .widgets import panel
        except ImportError as e:
            raise UsageError(f"%guild panel: panel not available ({e})") from None
        return panel(store=args.store, refresh=args.refresh or None)

    # -- run references ---------------------------------------------------------------------------

    def _refs(self, refs, store) -> list[str]:
        """Indices and ranges into the latest listing become full ids, checked
        to still exist; ids, prefixes and numbers outside the listing go to
        the API as they are (Guild reads those as id prefixes). Without a
        listing in this kernel an index means the current full listing (the
        API's default)."""
        from .store.store import parse_index_range

        listing = self._listings.get(_home(store))
        out = []
        for ref in refs:
            span = parse_index_range(ref) if listing is not None else None
            if span is not None and span[0] >= 0 and (span[1] is None or span[1] <= len(listing)):
                for i, run in enumerate(listing[span[0]:span[1]], span[0] + 1):
                    if not os.path.isdir(run.dir):
                        raise UsageError(f"run {run.id[:8]} (index {i} of the latest listing) no longer exists")
                    out.append(run.id)
            else:
                out.append(ref)
        return out


def _prog(cell) -> str:
    return "%%guild run" if cell is not None else "%guild run"


def _home(store) -> str:
    from .api import resolve_store

    return resolve_store(store).home


def load_ipython_extension(ipython) -> None:
    """``%load_ext guild_jupyter``: registers ``%guild`` and ``%%guild``."""
    ipython.register_magics(GuildMagics(ipython))
