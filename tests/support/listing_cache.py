"""Reading and rewriting the listing index's file (``listing.v4``) in tests,
record by record, to damage it the ways a foreign tool or a crash could."""

from __future__ import annotations

import json
import os

from guild_jupyter.store import listing_file

FIELDS = ("id", "g", "a", "mask", "files", "newest", "key_mtime", "key_size", "key_ino", "started", "stopped",
          "timestamp", "offset", "length", "version", "status", "is_queue", "markers")


def path_of(home) -> str:
    return os.path.join(str(home), "cache", "guild_jupyter", listing_file.NAME)


def read(home) -> tuple[dict, dict]:
    """(header, {run id: [record as a dict, values as raw JSON bytes]})."""
    with open(path_of(home), "rb") as f:
        buf = f.read()
    nl = buf.index(b"\n")
    head = json.loads(buf[:nl])
    start = nl + 1
    values_at = start + head["count"] * listing_file.RECORD.size
    out = {}
    for rec in listing_file.RECORD.iter_unpack(buf[start:values_at]):
        d = dict(zip(FIELDS, rec))
        raw = buf[values_at + d["offset"]: values_at + d["offset"] + d["length"]]
        out[d["id"].hex()] = [d, raw]
    return head, out


def write(home, head: dict, entries: dict) -> None:
    recs, blobs, off = [], [], 0
    for d, raw in entries.values():
        d = dict(d)  # "offset_override" / "length_override": a record pointing elsewhere
        d["offset"] = d.pop("offset_override", off)
        d["length"] = d.pop("length_override", len(raw))
        recs.append(listing_file.RECORD.pack(*(d[k] for k in FIELDS)))
        blobs.append(raw)
        off += len(raw)
    head = dict(head, count=len(recs))
    with open(path_of(home), "wb") as f:
        f.write(json.dumps(head).encode() + b"\n" + b"".join(recs) + b"".join(blobs))
