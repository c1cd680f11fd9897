"""``%guild`` and ``%%guild``: the notebook front of :mod:`guild_jupyter.api`.

A thin front: the line is split as a shell splits it, parsed by the verb's
parser (generated from :mod:`.commands`), handed to its Python twin in
``api`` by the glue the command line shares (:mod:`.calls`), and the twin's
object is the magic's value (``runs = %guild runs`` works; the last line of
a cell renders it), with the same text the command line prints. Every bad input, ours or
argparse's, is an IPython ``UsageError``: one line, no traceback, and
nothing was written (the API validates before it touches the store).

Enable with ``%load_ext guild_jupyter``, or in every kernel with
``guild-jupyter autoload on``. Nothing heavy is imported until a magic runs,
so auto-loading costs a kernel next to nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..display import RunList, RunListing, Trials
from ..errors import GuildJupyterError
from . import calls
from . import commands as C
from .calls import cell_op_name

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
        return self._call(verb, args, front, cell)

    def parser(self, verb: C.Verb, front: str):
        key = (verb.name, front)
        if key not in self._parsers:
            prog = f"{CELL_PROG if front == C.CELL else PROG} {verb.name}"
            self._parsers[key] = C.build_parser(verb, front, prog)
        return self._parsers[key]

    def _call(self, verb: C.Verb, args, front: str, cell: str | None):
        """The verb's result (``calls.call``), the magic's value. Indices a
        result shows are the full listing's: an index typed next means the
        full listing then; after ``runs``, the listing shown."""
        from .. import api  # lazy: the magics load in every kernel (autoload); the api on the first %guild

        door = calls.Door(front, refs=lambda refs: self._refs(refs, args.store), stream=sys.stdout, cell=cell)
        try:
            result = calls.call(verb, args, door)
        except KeyboardInterrupt:
            if verb.name == "output":  # following a run: said so already; the run goes on
                return None
            raise
        if verb.name == "runs":
            self._listings[api.store_home(args.store)] = result
        elif getattr(result, "full_listing_indices", False):
            self._listings.pop(api.store_home(args.store), None)
        for w in getattr(result, "guild_errors", ()):  # a plot's runs that could not be read
            print(f"warning: {w}", file=sys.stderr)
        if isinstance(result, RunList) and not isinstance(result, RunListing):
            result = RunListing(result)  # the same rows; a cell shows the first 20 of a long list
        return None if calls.already_shown(result) else result

    def _refs(self, refs, store) -> list[str]:
        """Indices into this kernel's latest listing become ids (see
        ``api.listing_refs``); without a listing here an index means the
        current full listing (the API's default)."""
        from .. import api  # lazy: as in _call

        return api.listing_refs(refs, self._listings.get(api.store_home(store)))


def load_ipython_extension(ipython) -> None:
    """``%load_ext guild_jupyter``: registers ``%guild`` and ``%%guild`` and
    their tab completion."""
    from .completion import install  # lazy: IPython's completer loads with the extension, not on import

    ipython.register_magics(GuildMagics(ipython))
    install(ipython)
