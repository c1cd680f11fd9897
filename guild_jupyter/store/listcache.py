"""A listing cache: what a run list shows of each finished run, kept on disk.

Listing 10,000 runs means opening some 50,000 small files. A finished run
rarely changes, so its listed values (opref, started, label, GPUs, exit
status) are kept in ``cache/guild_jupyter/listing.json`` under a stamp: the
modification times of the run's ``.guild`` and ``.guild/attrs`` directories
and of its ``label`` attr (the one attr Guild rewrites in place, with
``guild label``; every other change adds, renames or removes a file, which
moves a directory's time). The stamp is taken before the values are read,
so a change made meanwhile shows up as a stale stamp next time. Runs that
are not finished, or that had unreadable attrs, are never cached.

The file is untrusted like every other file of the store: an entry of the
wrong shape (hand-edited, written by another version, truncated) is
dropped and rebuilt from the run's own files, never used.
"""

from __future__ import annotations

import json
import os

from . import attrs as attrlib

NAME = "listing.json"
VERSION = 2
KEYS = ("started", "label", "run_params", "exit_status")
_FINISHED = ("completed", "error", "terminated")
_CACHED = KEYS + ("initialized", "status", "_opref")


def _is_int(v) -> bool:
    return type(v) is int  # not bool


def valid_values(values) -> bool:
    """Whether ``values`` has the shape ``keep`` writes: every listed attr,
    the opref as five strings, a finished status and int sort keys (label,
    run_params and exit_status are whatever the attr files hold: their
    readers check the types)."""
    if type(values) is not dict:
        return False
    for k in KEYS:
        if k not in values:
            return False
    opref = values.get("_opref")
    if type(opref) is not list or len(opref) != 5:
        return False
    for x in opref:
        if type(x) is not str:
            return False
    if values.get("status") not in _FINISHED:
        return False
    for k in ("started", "initialized"):
        v = values.get(k)
        if v is not None and not _is_int(v):
            return False
    return True


def stamp(run) -> list | None:
    try:
        g = os.stat(run.guild_dir).st_mtime_ns
        a = os.stat(run.guild_dir + "/attrs").st_mtime_ns
    except OSError:
        return None
    try:
        lab = os.stat(run.guild_dir + "/attrs/label").st_mtime_ns
    except OSError:
        lab = 0
    return [g, a, lab]


class ListingCache:
    def __init__(self, private_dir: str):
        self.path = os.path.join(private_dir, NAME)
        self.entries: dict = {}
        self.dirty = False
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
            if isinstance(data, dict) and data.get("v") == VERSION and isinstance(data.get("runs"), dict):
                self.entries = data["runs"]
        except (OSError, ValueError, RecursionError):  # RecursionError: absurdly nested JSON
            pass
        self._seen: dict = {}

    def prime(self, run) -> list | None:
        """Fill ``run``'s attr cache from the entry when its stamp still holds.
        Returns the current stamp (None when the run has no readable dirs)."""
        st = stamp(run)
        if st is None:
            return None
        e = self.entries.get(run.id)
        # The stamp comparison checks the stamp's shape too (st is three ints).
        if type(e) is list and len(e) == 2 and e[0] == st and valid_values(e[1]):
            # Only the keys keep writes: an entry cannot plant other attrs.
            values = {k: e[1][k] for k in _CACHED if k in e[1]}
            values["_opref"] = tuple(values["_opref"])
            run._cache.update(values)
            self._seen[run.id] = e
        return st

    def keep(self, run, st) -> None:
        """Remember a finished run's listed values under the stamp taken before reading them."""
        if st is None or run.id in self._seen:
            return
        values = {k: run.get(k) for k in KEYS}
        if values["started"] is None:  # the sort key falls back to it
            values["initialized"] = run.get("initialized")
        values["_opref"] = list(run.opref)
        values["status"] = run.status
        if run.warnings:
            return
        e = [st, values]
        self._seen[run.id] = e
        self.dirty = True

    def save(self) -> None:
        if not self.dirty and len(self._seen) == len(self.entries):
            return
        try:
            attrlib.write_atomic(self.path, json.dumps({"v": VERSION, "runs": self._seen}, separators=(",", ":")))
        except OSError:
            pass  # a read-only store still lists, just without the cache
