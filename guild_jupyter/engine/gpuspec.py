"""GPU affinity specs (``"0"``, ``"0,1"``): validation only, cheap to import."""

from __future__ import annotations

import re

from ..errors import BadInput

_GPU_ID = re.compile(r"[0-9]+\Z", re.ASCII)


def _bad_spec(text: object) -> BadInput:
    return BadInput(
        f"bad GPU spec {str(text)!r}: expected comma-separated GPU ids like 0 or 0,1"
    )


def parse_gpu_spec(text: str | int | None) -> str | None:
    """Validates a GPU affinity spec and returns it normalised, or None.

    ``None`` or an empty/blank string means no affinity. Otherwise the spec
    is comma-separated non-negative integer GPU ids, without duplicates;
    blanks around ids are dropped, leading zeros removed, the user's order
    kept: ``" 1, 2 "`` -> ``"1,2"``. An int (``gpus=0`` parsed as a number)
    is accepted as that id. Anything else raises :class:`BadInput`.
    """
    if text is None:
        return None
    if isinstance(text, bool):
        raise _bad_spec(text)
    if isinstance(text, int):
        text = str(text)
    if not isinstance(text, str):
        raise _bad_spec(text)
    if not text.strip():
        return None
    ids: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not _GPU_ID.match(part):
            raise _bad_spec(text)
        gpu = str(int(part))
        if gpu in ids:
            raise _bad_spec(text)
        ids.append(gpu)
    return ",".join(ids)
