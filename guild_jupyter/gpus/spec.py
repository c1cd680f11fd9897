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

# Patterns compiled on first use (re caches them): compiled at import they
# cost every CLI command a third of a millisecond, listings that never parse
# a GPU spec included.
_GPU_ID = r"[0-9]+\Z"
_GPU_UUID = r"(GPU|MIG)-[0-9a-fA-F][0-9a-fA-F-]*\Z"


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
        if re.match(_GPU_UUID, part, re.ASCII):
            gpu = part
        elif re.match(_GPU_ID, part, re.ASCII):
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
    """The GPUs of a run, the one phrase every front end shows: ``any GPU``,
    ``GPU 2``, ``GPUs 0,1``, ``GPU-8f3c1a2b…`` (a UUID, shortened),
    ``1 GPU, chosen by a gpus=auto queue`` / ``2 GPUs, chosen by ...``."""
    if not gpus:
        return ANY_GPU
    rest = _auto_rest(gpus)
    if rest is not None:
        n = 1 if rest == "" else rest
        return f"{n} GPU{'' if str(n) == '1' else 's'}, chosen by a gpus=auto queue"
    return _listed_phrase(str(gpus))


def queue_gpus_phrase(gpus: str | None) -> str:
    """The GPUs a queue serves: ``any GPU`` (a queue without ``gpus`` starts
    unpinned runs), ``GPU 2``, ``GPUs 0,1``, ``every GPU, one chosen per
    run`` (``gpus=auto``), ``GPUs 0,2, chosen per run`` (``gpus=auto:0,2``)."""
    if not gpus:
        return ANY_GPU
    rest = _auto_rest(gpus)
    if rest == "":
        return "every GPU, one chosen per run"
    if rest is not None:
        return _listed_phrase(rest) + ", chosen per run"
    return _listed_phrase(str(gpus))


UUID_SHOWN = 12  # characters of a GPU UUID a phrase keeps (``GPU-`` and 8 hex digits)


def _listed_phrase(spec: str) -> str:
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    shown = [p if len(p) <= UUID_SHOWN + 1 else p[:UUID_SHOWN] + "…" for p in parts]
    if len(shown) == 1:
        return shown[0] if re.match(_GPU_UUID, parts[0], re.ASCII) else f"GPU {shown[0]}"
    return "GPUs " + ",".join(shown)


# -- chosen GPUs: ``auto`` ------------------------------------------------------------------
#
# A run may ask for GPUs chosen when a queue starts it: ``auto`` (one GPU) or
# ``auto:N`` (any N GPUs at once). A queue may serve GPUs chosen per run:
# ``auto`` (every GPU NVML reports) or ``auto:LIST`` (those of LIST). The
# same word reads differently for the two (``auto:2`` is two GPUs for a run,
# GPU 2 for a queue), so each has its own parser.

AUTO = "auto"


def _auto_rest(text) -> str | None:
    """What follows ``auto`` (``""`` for plain ``auto``), or None when ``text``
    is not an auto spec."""
    if not isinstance(text, str):
        return None
    t = text.strip()
    if t.lower() == AUTO:
        return ""
    if t[:5].lower() == AUTO + ":":
        return t[5:].strip()
    return None


def parse_run_gpus(text: str | int | None) -> str | None:
    """A run's GPU affinity: as :func:`parse_gpu_spec`, or ``auto`` / ``auto:N``
    (N >= 1 GPUs chosen by a ``gpus=auto`` queue), normalised (``auto:1`` is
    ``auto``)."""
    rest = _auto_rest(text)
    if rest is None:
        return parse_gpu_spec(text)
    if rest == "":
        return AUTO
    if not re.match(_GPU_ID, rest, re.ASCII) or int(rest) < 1:
        raise BadInput(f"bad GPU spec {text!r}: auto:N asks for N >= 1 GPUs chosen by a gpus=auto queue, e.g. auto:2")
    return AUTO if int(rest) == 1 else f"{AUTO}:{int(rest)}"


def auto_count(run_gpus: str | None) -> int | None:
    """How many GPUs a run with affinity ``run_gpus`` asks a queue to choose
    (``auto`` 1, ``auto:2`` 2), or None when it asks for none (unpinned or pinned)."""
    rest = _auto_rest(run_gpus)
    if rest is None:
        return None
    return 1 if rest == "" else int(rest)


def parse_queue_gpus(text: str | int | None) -> str | None:
    """A queue's ``gpus``: as :func:`parse_gpu_spec`, or ``auto`` (every GPU
    NVML reports) / ``auto:0,2`` (those GPUs), normalised."""
    rest = _auto_rest(text)
    if rest is None:
        return parse_gpu_spec(text)
    if rest == "":
        return AUTO
    try:
        listed = parse_gpu_spec(rest)
    except BadInput:
        listed = None
    if listed is None:
        raise BadInput(f"bad GPU spec {text!r}: expected auto or auto:LIST, e.g. auto:0,2")
    return f"{AUTO}:{listed}"


def is_auto(gpus: str | None) -> bool:
    """Whether ``gpus`` (a run's or a queue's) is ``auto`` or ``auto:...``:
    GPUs a queue chooses, not GPUs pinned. The one spelling of that test."""
    return _auto_rest(gpus) is not None


def auto_list(queue_gpus: str | None) -> tuple[str, ...] | None:
    """The GPUs a ``gpus=auto:LIST`` queue names; None for ``auto`` (every
    GPU NVML reports) or a queue that is not auto."""
    rest = _auto_rest(queue_gpus)
    return tuple(rest.split(",")) if rest else None
