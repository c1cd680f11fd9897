"""Writes tests/fixtures/state_snapshot.json and events.json: the view
model's snapshot and events of a small real store (built in a temporary
directory by tests/support/viewmodel_store.py), and sweep_table.json and
sweep_scalars.json: a sweep's table and scalars answer (coord/SWEEP.md;
tests/support/sweep_store.py), which the browser's tests render. Run it again whenever the view model's fields change;
tests/test_viewmodel.py checks the files still have the shape the code
produces.

    .venv/bin/python scripts/make-viewmodel-fixtures.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))


def main() -> None:
    from support.sweep_store import build_sweep
    from support.viewmodel_store import build, shown

    with tempfile.TemporaryDirectory() as tmp:
        home, project = os.path.join(tmp, "guild-home"), os.path.join(tmp, "project")
        os.makedirs(home)
        os.makedirs(project)
        os.environ["GUILD_HOME"] = home
        snapshot, events = build(home, project)
        table, scalars = build_sweep(home, project)
        out = os.path.join(ROOT, "tests", "fixtures")
        os.makedirs(out, exist_ok=True)
        for name, data in (("state_snapshot.json", snapshot), ("events.json", events),
                           ("sweep_table.json", table), ("sweep_scalars.json", scalars)):
            with open(os.path.join(out, name), "w") as f:
                json.dump(shown(data, home), f, indent=1, ensure_ascii=False)
                f.write("\n")
            print("wrote", os.path.join("tests", "fixtures", name))


if __name__ == "__main__":
    main()
