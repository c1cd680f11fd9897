"""Runs the quickstart notebook headless, in a real kernel, on the default store.

    .venv/bin/python scripts/quickstart.py [--output PATH] [--timeout SECONDS]

Executes ``notebooks/quickstart.ipynb`` with nbclient in an IPython kernel of
this very Python (working directory ``notebooks/``, so ``train.py`` is found),
against the default run store: ``$GUILD_HOME``, else ``~/.guild``, the one the
real ``guild`` CLI uses. Writes the executed copy (default
``build/quickstart/quickstart.ipynb``, outside the sources) and prints its
path and the runs the notebook made, the way ``guild-jupyter runs`` lists them.
Exit status 0 when every cell ran, 1 when one failed (the executed copy shows
where).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")
DEFAULT_OUTPUT = os.path.join(ROOT, "build", "quickstart", "quickstart.ipynb")


def kernel_manager():
    """A manager for a kernel of this Python. Only the native ``python3``
    kernelspec is looked at, so a ``python3`` kernelspec installed for
    another Python (without guild_jupyter) can never stand in for it."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    return KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


def execute(notebook: str = NOTEBOOK, output: str = DEFAULT_OUTPUT, timeout: float = 100.0):
    """Executes ``notebook`` (cwd: its directory) and writes the executed copy
    to ``output``, also when a cell fails. Returns ``(nb, error)``: ``error``
    is None, or the cell error nbclient raised."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        km=kernel_manager(),
        timeout=timeout,
        kernel_name="python3",
        # The kernel's own warnings (e.g. about TCP without encryption on
        # localhost) are noise here; cell errors still surface.
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(notebook))}},
        # The panel's widget state goes into the executed copy, so the saved
        # notebook still shows the panel (not just its text form).
        store_widget_state=True,
    )
    error = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        error = e
    finally:
        # nbclient leaves a kernel it did not create running (until exit):
        # this one is ours to end.
        if client.km is not None and client.km.has_kernel:
            client.km.shutdown_kernel(now=False)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    nbformat.write(nb, output)
    return nb, error


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"the executed copy (default {DEFAULT_OUTPUT})")
    p.add_argument("--timeout", type=float, default=100.0, help="seconds a cell may take (default 100)")
    args = p.parse_args(argv)

    sys.path.insert(0, ROOT)  # run from a checkout without an install too
    from guild_jupyter import api

    store = api.resolve_store()
    before = set(store.run_ids())
    print(f"executing {os.path.relpath(NOTEBOOK)} in a kernel of {sys.executable} "
          f"against the store {store.home} ...", flush=True)
    t0 = time.monotonic()
    _nb, error = execute(NOTEBOOK, args.output, args.timeout)
    took = time.monotonic() - t0
    made = api.runs(store=store)
    made[:] = [r for r in made if r.id not in before]
    print(f"executed copy: {os.path.abspath(args.output)}  ({took:.1f} s)")
    print(f"runs the notebook made ({len(made)}), newest first:")
    print(made)
    if error is not None:
        print(f"quickstart: a cell failed: {str(error).strip().splitlines()[-1]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
