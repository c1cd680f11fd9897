"""GPU affinity specs (``"0"``, ``"0,1"``, ``"GPU-8f3c..."``): validation
only, cheap to import.

GPUs are named as CUDA_VISIBLE_DEVICES names them (and Guild accepts them):
by index (with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` set for every pinned run,
CUDA's index is NVML's, the panel's) or by UUID, ``GPU-`` followed by hex
digits and dashes (``MIG-`` for a MIG instance), a unique prefix allowed.
"""

from __future__ import annotations

import re

from ..errors import BadInput

_GPU_ID = re.compile(r"[0-9]+\Z", re.ASCII)
_GPU_UUID = re.compile(r"(GPU|MIG)-[0-9a-fA-F][0-9a-fA-F-]*\Z", re.ASCII)


def _bad_spec(text: object) -> BadInput:
    return BadInput(
        f"bad GPU spec {str(text)!r}: expected comma-separated GPU indices or UUIDs like 0, 0,1 or GPU-8f3c..."
    )


def parse_gpu_spec(text: str | int | None) -> str | None:
    """Validates a GPU affinity spec and returns it normalised, or None.

    ``None`` or an empty/blank string means no affinity. Otherwise the spec
    is comma-separated GPU indices (non-negative integers) or UUIDs, without duplicates;
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
        if _GPU_UUID.match(part):
            gpu = part
        elif _GPU_ID.match(part):
            gpu = str(int(part))
        else:
            raise _bad_spec(text)
        if gpu in ids:
            raise _bad_spec(text)
        ids.append(gpu)
    return ",".join(ids)


def unknown_gpus(spec: str | None, reported) -> list[str]:
    """The GPUs of ``spec`` that are not among ``reported`` (GpuInfo-likes
    with ``index`` and ``uuid``); a UUID may be given as a unique prefix."""
    if not spec:
        return []
    out = []
    for gpu in spec.split(","):
        if gpu.isdigit():
            found = any(g.index == int(gpu) for g in reported)
        else:
            found = sum(str(g.uuid).startswith(gpu) for g in reported) == 1
        if not found:
            out.append(gpu)
    return out


#: The one wording for "no GPU affinity": a run without ``--gpus`` runs on
#: any GPU, a queue without ``gpus`` serves such runs only. Every front end
#: says it this way (``views.ANY_GPU``).
ANY_GPU = "any GPU"


def gpus_phrase(gpus: str | None) -> str:
    """``any GPU``, ``GPU 2`` or ``GPUs 0,1``."""
    if not gpus:
        return ANY_GPU
    return f"GPUs {gpus}" if "," in str(gpus) else f"GPU {gpus}"
