"""``%guild`` and ``%%guild``: the notebook front of :mod:`guild_jupyter.api`.

A thin front: the line is split as a shell splits it, parsed by the verb's
parser (generated from :mod:`.commands`), handed to its Python twin in
``api``, and the twin's object is the magic's value (``runs = %guild runs``
works; the last line of a cell renders it). Every bad input, ours or
argparse's, is an IPython ``UsageError``: one line, no traceback, and
nothing was written (the API validates before it touches the store).

Enable with ``%load_ext guild_jupyter``, or in every kernel with
``guild-jupyter autoload on``. Nothing heavy is imported until a magic runs,
so auto-loading costs a kernel next to nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..display import DEFAULT_SHOWN, RunListing, RunOutput, Trials
from ..errors import GuildJupyterError
from . import commands as C

__all__ = ["GuildMagics", "load_ipython_extension", "cell_op_name", "split_line", "Trials", "PROG"]

PROG, CELL_PROG = "%guild", "%%guild"

# -- the line ---------------------------------------------------------------------------------

_SWEEP_START = re.compile(r"^[^-=\s][^=\s]*=\w*\[")


def split_line(line: str) -> list[str]:
    """Shell-like words; a flag value whose brackets span several words
    (``lr=[0.1, 0.01]``) is put back together."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"{PROG}: cannot parse the line: {e}") from None
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
            raise UsageError(f"{CELL_PROG} run: bad --name {name!r}: use letters, digits, - and _")
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


# -- the magics ----------------------------------------------------------------------------------


@magics_class
class GuildMagics(Magics):
    """``%guild SUBCOMMAND ...`` and ``%%guild run ...``."""

    def __init__(self, shell=None):
        super().__init__(shell)
        self._parsers: dict = {}
        # The latest ``%guild runs`` listing per store, so ``%guild stop 3``
        # means the third run the user saw, not the third run now.
        self._listings: dict[str, list] = {}

    @line_cell_magic
    def guild(self, line: str, cell: str | None = None):
        try:
            return self._dispatch(line, cell)
        except C.UsageProblem as e:
            raise UsageError(f"{e.prog}: {e}" if e.prog else str(e)) from None
        except GuildJupyterError as e:
            raise UsageError(str(e)) from None

    guild.__doc__ = "Guild AI runs and queues from a notebook.\n\n" + C.help_text(C.LINE, PROG)

    def _dispatch(self, line: str, cell: str | None):
        prog = CELL_PROG if cell is not None else PROG
        store, words = C.take_store(split_line(line), prog)
        if not words or words[0] in ("help", "-h", "--help"):
            print(C.help_text(C.LINE, PROG))
            return None
        sub, rest = words[0], words[1:]
        if cell is not None and sub != "run":
            raise UsageError(f"{CELL_PROG}: only '{CELL_PROG} run' takes a cell (got {sub!r})")
        front = C.CELL if cell is not None else C.LINE
        verb = C.find_verb(sub, front, prog)
        parser = self.parser(verb, front)
        try:
            args = C.parse(parser, verb, front, rest)
        except C.HelpShown:
            return None
        if args.store is None:
            args.store = store
        elif store is not None and os.path.abspath(store) != os.path.abspath(args.store):
            raise UsageError(f"{PROG}: --store given twice with different paths")
        handler = getattr(self, "_" + verb.name)
        return handler(args, cell) if verb.name == "run" else handler(args)

    def parser(self, verb: C.Verb, front: str):
        key = (verb.name, front)
        if key not in self._parsers:
            prog = f"{CELL_PROG if front == C.CELL else PROG} {verb.name}"
            self._parsers[key] = C.build_parser(verb, front, prog)
        return self._parsers[key]

    # -- subcommands ----------------------------------------------------------------------------

    def _run(self, args, cell):
        from .. import api  # lazy: the magics load in every kernel (autoload); the api on the first %guild

        prog = f"{CELL_PROG if cell is not None else PROG} run"
        if args.foreground and (args.stage or args.dry_run):
            raise UsageError(f"{prog}: --foreground cannot be combined with "
                             f"{'--stage' if args.stage else '--dry-run'}")
        cwd = os.getcwd()
        op = None
        script = getattr(args, "script", None)
        if cell is not None:
            name = cell_op_name(cell, args.name)
            try:
                op = api.cell_op(cell, name, cwd)
            except GuildJupyterError as e:
                raise UsageError(f"{prog}: {e}") from None
            script = op.name
        options = dict(gpus=args.gpus, label=args.label, max_trials=args.max_trials,
                       random_seed=args.random_seed, store=args.store, cwd=cwd, op=op, retries=args.retries)
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
            self._listings[api.store_home(args.store)] = api.runs(store=args.store)
        return RunListing(result, indices=result.indices)

    def _queue(self, args):
        from .. import api  # lazy: as in _run

        control = C.queue_action(args, f"{PROG} queue")
        if control is not None:  # %guild queue pause|resume|drain QUEUE
            (ref,) = self._refs([control[1]], args.store)
            return api.queue_control(ref, control[0], store=args.store)
        return api.queue(*args.flags, background=args.background, store=args.store)

    def _restart(self, args):
        from .. import api  # lazy: as in _run

        (ref,) = self._refs([args.run], args.store)
        return RunListing(api.restart(ref, stage=args.stage, store=args.store))

    def _restage(self, args):
        from .. import api  # lazy: as in _run

        (ref,) = self._refs([args.run], args.store)
        result = api.restage(ref, *args.flags, store=args.store)
        self._listings[api.store_home(args.store)] = api.runs(store=args.store)  # as after run --stage
        return RunListing(result, indices=result.indices)

    def _queues(self, args):
        from .. import api  # lazy: as in _run

        return api.queues(store=args.store, include_finished=args.all)

    def _runs(self, args):
        from .. import api  # lazy: as in _run

        statuses = [s for s in C.STATUSES if getattr(args, s)] or None
        listing = api.runs(statuses, op=args.op, label=args.label, limit=args.limit, store=args.store)
        listing.choose_scalar(args.scalar)
        self._listings[api.store_home(args.store)] = listing
        return RunListing(listing, shown=None if args.all else DEFAULT_SHOWN)

    def _stop(self, args):
        from .. import api  # lazy: as in _run

        if args.runs and (args.all or args.queues):
            raise UsageError(f"{PROG} stop: give runs, or --all, or --queues, not both")
        refs = self._refs(args.runs, args.store)
        return RunListing(api.stop(*refs, all=args.all, queues=args.queues, wait=not args.no_wait, store=args.store))

    def _unstage(self, args):
        from .. import api  # lazy: as in _run

        return RunListing(api.unstage(*self._refs(args.runs, args.store), store=args.store))

    def _delete(self, args):
        from .. import api  # lazy: as in _run

        return RunListing(api.delete(*self._refs(args.runs, args.store), store=args.store))

    def _output(self, args):
        from .. import api  # lazy: as in _run

        (ref,) = self._refs([args.run], args.store)
        if args.follow:
            try:  # the output streams into the cell; the outcome line ends it
                api.output(ref, tail=args.tail, follow=True, stream=sys.stdout, store=args.store)
            except KeyboardInterrupt:
                pass  # said so already; the run goes on
            return None
        return RunOutput(api.output(ref, tail=args.tail, store=args.store))

    def _wait(self, args):
        from .. import api  # lazy: as in _run

        return RunListing(api.wait(*self._refs(args.runs, args.store), timeout=args.timeout, store=args.store))

    def _compare(self, args):
        from .. import api  # lazy: as in _run
        from .cli import compare_options  # lazy: as in _run

        return api.compare(*self._refs(args.runs, args.store), store=args.store, **compare_options(args))

    def _plot(self, args):
        """The figure is the magic's value: the cell shows it as a PNG."""
        from .. import api  # lazy: as in _run

        fig = api.plot(*self._refs(args.runs, args.store), scalar=args.scalar, op=args.op, store=args.store)
        if args.output:
            try:
                fig.savefig(args.output)
            except (OSError, ValueError) as e:
                raise UsageError(f"{PROG} plot: cannot save the figure to {args.output}: {e}") from None
        for w in fig.guild_errors:
            print(f"warning: {w}", file=sys.stderr)
        return fig

    def _panel(self, args):
        if args.refresh < 0:
            raise UsageError(f"{PROG} panel: --refresh must be 0 (never) or a number of seconds")
        try:
            from .panel import panel  # lazy: ipywidgets and the panel load on %guild panel only
        except ImportError as e:
            raise UsageError(f"{PROG} panel: panel not available ({e})") from None
        return panel(store=args.store, refresh=args.refresh or None)

    def _refs(self, refs, store) -> list[str]:
        """Indices into this kernel's latest listing become ids (see
        ``api.listing_refs``); without a listing here an index means the
        current full listing (the API's default)."""
        from .. import api  # lazy: as in _run

        return api.listing_refs(refs, self._listings.get(api.store_home(store)))


def load_ipython_extension(ipython) -> None:
    """``%load_ext guild_jupyter``: registers ``%guild`` and ``%%guild`` and
    their tab completion."""
    from .completion import install  # lazy: IPython's completer loads with the extension, not on import

    ipython.register_magics(GuildMagics(ipython))
    install(ipython)
