"""Curves: one scalar of several runs against step, drawn with matplotlib.

``plot`` (``guild_jupyter.plot``, ``%guild plot``, ``guild-jupyter plot
--output FILE.png``) returns a ``matplotlib.figure.Figure`` made without
pyplot: no global figure list to leak into, no GUI backend chosen behind the
user's back (it is drawn with Agg), and in IPython it shows as a PNG
wherever it is the value of a cell. Each run is one line; its legend entry
is the run's short id and the flags that differ among the runs plotted.

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

__all__ = ["plot", "legend_label", "register_png_formatter"]


def legend_label(curve: dict) -> str:
    """``1a2b3c4d lr=0.1 batch=32``: the short id, then the differing flags."""
    flags = curve["flags"]
    varying = {k: flags[k] for k in curve.get("varying", ()) if k in flags}
    return (curve["id"][:8] + " " + views.flags_text(varying)).strip()


def plot(*refs, scalar: str = "loss", op: str | None = None, store=None, listing=None, title: str | None = None,
         output: str | None = None):
    """A Figure with one line of ``scalar`` against step per run named
    (default: every run, or those whose op contains ``op``) that logged it.
    A scalar no run logged is a ``BadInput`` naming the ones they did.
    ``output``: a file (.png, .svg, .pdf) the figure is also saved to; one
    that cannot be written is a ``BadInput``."""
    validate.path("output", output)

    data = curves(*refs, scalar=scalar, op=op, store=store, listing=listing)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for c in data:
        ax.plot(c["steps"], c["values"], label=legend_label(c), marker="." if len(c["steps"]) < 30 else None)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
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


def _png(fig) -> bytes:
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
        formatter.for_type(Figure, _png)
    return True
