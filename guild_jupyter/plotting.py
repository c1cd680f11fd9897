"""Curves: one scalar of several runs against an x axis, drawn with matplotlib.

``plot`` (``guild_jupyter.plot``, ``%guild plot``, ``guild-jupyter plot
--output FILE.png``) returns a ``matplotlib.figure.Figure`` made without
pyplot: no global figure list to leak into, no GUI backend chosen behind the
user's back (it is drawn with Agg), and in IPython it shows as a PNG
wherever it is the value of a cell. Each run is one line; its legend entry
is the run's short id and the flags that differ among the runs plotted.
The x axis is ``step``, ``time`` (seconds since the run started) or a
scalar logged alongside (``epoch``). Points come as numpy arrays (from our
writer's index where there is one: ``charts``), one ``plot`` call per run:
a hundred runs of 10,000 points draw in well under a second.

The module is named ``plotting`` (not ``plot``) so that importing it never
replaces the ``guild_jupyter.plot`` function with a module. matplotlib is
imported inside :func:`plot` only: a command that draws nothing never pays
for it.
"""

from __future__ import annotations

import sys

from . import validate, views
from .api.viewing import curves
from .errors import BadInput

__all__ = ["plot", "legend_label", "register_png_formatter", "png_bytes"]


def legend_label(curve: dict) -> str:
    """``1a2b3c4d lr=0.1 batch=32``: the short id, then the differing flags."""
    flags = curve["flags"]
    varying = {k: flags[k] for k in curve.get("varying", ()) if k in flags}
    return (curve["id"][:8] + " " + views.flags_text(varying)).strip()


def plot(*refs, scalar: str = "loss", op: str | None = None, sweep: str | None = None, x: str = "step",
         store=None, listing=None, title: str | None = None, output: str | None = None):
    """A Figure with one line of ``scalar`` against ``x`` per run named
    (default: every run, those whose op contains ``op``, or a ``sweep``'s)
    that logged it. ``x``: ``step``, ``time`` or a logged scalar. A scalar no
    run logged, or an x axis that is none of those, is a ``BadInput`` naming
    the ones they did. ``output``: a file (.png, .svg, .pdf) the figure is
    also saved to; one that cannot be written is a ``BadInput``."""
    validate.path("output", output)

    data = curves(*refs, scalar=scalar, op=op, sweep=sweep, x=x, store=store, listing=listing)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for c in data:
        ax.plot(c["x"], c["values"], label=legend_label(c), marker="." if len(c["x"]) < 30 else None)
    if x == "step":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("time (s)" if x == "time" else x)
    ax.set_ylabel(scalar)
    ax.set_title(title if title is not None else f"{scalar} of {len(data)} run{'s' if len(data) != 1 else ''}")
    ax.grid(True, alpha=0.3)
    if len(data) <= 20:
        ax.legend(fontsize="small")
    fig.guild_errors = [f"run {c['id'][:8]}: {e}" for c in data for e in c["errors"]]
    if output is not None:
        try:
            fig.savefig(output)
        except (OSError, ValueError) as e:
            raise BadInput(f"cannot save the figure to {output}: {e}") from None
    fig.guild_output = output
    register_png_formatter()
    return fig


def png_bytes(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def register_png_formatter(shell=None) -> bool:
    """In IPython, shows our figures as PNGs (what the inline backend does,
    which is set up only once pyplot is imported). Never imports IPython."""
    if shell is None:
        ipython = sys.modules.get("IPython")
        get = getattr(ipython, "get_ipython", None)
        shell = get() if get is not None else None
    if shell is None or getattr(shell, "display_formatter", None) is None:
        return False
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters.get("image/png")
    if formatter is None:
        return False
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, png_bytes)
    return True
