"""Reading view-model snapshots (``api.monitor().snapshot()``, ``GET
/guild/api/state``) in tests: the groups are an ordered list."""

from __future__ import annotations


def group(snap: dict, name: str) -> dict:
    """The group ``name`` of a snapshot."""
    for g in snap["groups"]:
        if g["name"] == name:
            return g
    raise AssertionError(f"no group {name!r} in {[g['name'] for g in snap['groups']]}")


def rows(snap: dict, name: str) -> list[dict]:
    """The rows of group ``name`` on the page the snapshot shows."""
    return group(snap, name)["rows"]
