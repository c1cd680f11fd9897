"""A small real sweep for the sweep view's fixtures (``tests/fixtures/
sweep_table.json``, ``sweep_scalars.json``: what the browser's tests
render) and the test that checks their shape: three trials of an
epoch-only script, one failing and retried by hand, run in the foreground."""

from __future__ import annotations

import io
import os

TRAIN = ("import sys\nlr = 0.1\nepochs = 4\n"
         "for epoch in range(1, epochs + 1):\n"
         "    print(f'epoch: {epoch}')\n"
         "    print(f'loss: {lr / epoch:.6f}')\n"
         "    print(f'acc: {1 - lr / epoch:.6f}')\n"
         "sys.exit(1 if lr > 0.25 else 0)\n")


def build_sweep(home: str, project: str) -> tuple[dict, dict]:
    """(the sweep's table, its scalars answer: loss and acc against epoch)."""
    from guild_jupyter import api

    script = os.path.join(project, "sweep_train.py")
    with open(script, "w") as f:
        f.write(TRAIN)
    trials = api.run(script, "lr=[0.1,0.2,0.3]", foreground=True, stream=io.StringIO(), store=home)
    failed = next(t for t in trials if t.refresh().status == "error")
    api.retry(failed.id, store=home)
    sweep = trials[0].sweep
    return (api.sweep_table(sweep, store=home),
            api.sweep_scalars(sweep, tags=["loss", "acc"], x="epoch", points=2000, store=home))
