"""What an index of many runs keeps of each (a viewer of 100,000 runs holds
them all): one string per run id, one per sweep id, a stamp's equal times
as one int, and every value exactly as read."""

from __future__ import annotations

import os

from guild_jupyter import api
from guild_jupyter.store.entry import stamp_of
from guild_jupyter.store.index import RunIndex
from guild_jupyter.store.store import Store

from test_cold_read import _age


def test_an_index_from_the_listing_file_keeps_one_string_a_run_and_exact_stamps(project, guild_home):
    home = str(guild_home)
    made = api.run(str(project / "train.py"), "lr=[0.1,0.2,0.3]", "epochs=1", foreground=True,
                   stream=open(os.devnull, "w"), store=home)
    made += api.run(str(project / "train.py"), "lr=0.5", "epochs=1", foreground=True,
                    stream=open(os.devnull, "w"), store=home)
    for r in made:
        _age(r.dir)
    first = {e.id: (e.stamp, e.values, e.sweep) for e in RunIndex.for_store(Store(home)).listing()}
    assert len(first) == 4
    RunIndex.forget()  # a new process: from the listing file
    index = RunIndex.for_store(Store(home))
    entries = index.listing()
    assert {e.id: (e.stamp, e.values, e.sweep) for e in entries} == first
    runs_dir = os.path.join(home, "runs")
    equal = 0
    for run_id, e in index.entries.items():
        assert e.id is run_id  # the index's key, not a copy
        assert e.stamp == stamp_of(run_id, None, runs_dir)  # compacted, not changed
        g, a, _mask, _files, newest, km, _ks, _ki = e.stamp
        for x, y in ((a, g), (newest, g), (newest, a), (km, a)):
            if x == y:
                equal += 1
                assert x is y  # equal times: one int object
    assert equal  # (a run's newest time is that of .guild or attrs/: _age made them all equal)
    by_id = {e.id: e for e in entries}
    sweeps = [by_id[r.id].sweep for r in made[:3]]
    assert sweeps[0] is not None and by_id[made[3].id].sweep != sweeps[0]
    assert all(s is sweeps[0] for s in sweeps)  # one string for the sweep's id, not one a run
