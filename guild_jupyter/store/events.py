"""Reading scalars back from a run's TensorBoard event files."""

from __future__ import annotations

import os
import struct


def _records(path: str):
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = f.read(length)
            f.read(4)  # data crc
            if len(data) < length:
                return
            yield data


def last_scalars(run_dir: str) -> dict:
    """{tag: (step, value)} of the last value of each scalar under ``.guild``."""
    from tensorboardX.proto import event_pb2

    out: dict = {}
    gdir = os.path.join(run_dir, ".guild")
    try:
        names = sorted(n for n in os.listdir(gdir) if n.startswith("events.out.tfevents"))
    except OSError:
        return out
    for name in names:
        try:
            for data in _records(os.path.join(gdir, name)):
                ev = event_pb2.Event()
                ev.ParseFromString(data)
                for v in ev.summary.value:
                    if v.HasField("simple_value"):
                        out[v.tag] = (ev.step, v.simple_value)
        except (OSError, Exception):  # a truncated file still gives what it had
            continue
    return out
