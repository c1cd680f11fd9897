"""GPUs as NVML reports them (SPEC §8), behind an injectable probe.

- :class:`NvmlProbe` reads the physical GPUs through NVML for the panel.
  It never raises: without an NVIDIA GPU (or without pynvml) it returns a
  :class:`GpuReport` whose ``error`` says so. ``pynvml`` is imported lazily,
  on the first read, never when this module is imported; ``nvml=`` takes
  any module-like object with pynvml's functions.
- :func:`default_probe` is the shared probe: NVML, or, when
  ``$GUILD_JUPYTER_FAKE_GPUS`` is set, the fake NVML of
  :mod:`guild_jupyter.gpus.fake` fed from it (the documented way to show
  GPUs on a machine without one: tests, demos, every process and kernel).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, Callable, Protocol

from .spec import parse_gpu_spec  # noqa: F401 - re-exported

__all__ = ["FAKE_GPUS_ENV", "GpuInfo", "GpuProbe", "GpuReport", "NvmlProbe", "default_probe", "parse_gpu_spec"]

#: Environment variable holding a JSON list of fake device dicts (:mod:`.fake`).
FAKE_GPUS_ENV = "GUILD_JUPYTER_FAKE_GPUS"

#: Seconds a failed NVML init is remembered before it is tried again.
INIT_RETRY_SECONDS = 30.0


# ---------------------------------------------------------------------------
# Probe results


@dataclasses.dataclass(frozen=True)
class GpuInfo:
    index: int  # as NVML numbers the physical GPUs (not CUDA_VISIBLE_DEVICES)
    name: str
    uuid: str
    memory_used: int  # bytes
    memory_total: int  # bytes
    utilization: int | None  # percent; None when NVML cannot tell
    pids: tuple[int, ...] = ()  # compute processes on this GPU


@dataclasses.dataclass(frozen=True)
class GpuReport:
    gpus: list[GpuInfo] = dataclasses.field(default_factory=list)
    #: None when all went well; else a one-line reason, e.g.
    #: "no NVIDIA GPU found (NVML: NVML Shared Library Not Found)". It may
    #: also be set next to some GPUs when one device could not be read.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class GpuProbe(Protocol):
    def read(self) -> GpuReport: ...


# ---------------------------------------------------------------------------
# NVML probe


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _reason(exc: BaseException) -> str:
    try:
        msg = str(exc)
    except Exception:  # pynvml's __str__ can itself fail
        msg = ""
    msg = " ".join(msg.split())
    return msg or type(exc).__name__


def _no_gpu(reason: str) -> str:
    return f"no NVIDIA GPU found (NVML: {reason})"


class NvmlProbe:
    """Reads the physical GPUs through NVML (``pynvml`` or a stand-in).

    ``nvml=None`` imports the real ``pynvml`` on the first read. NVML is
    initialised once; a failed init (or import) is remembered for
    ``retry_after`` seconds so a panel refreshing every second does not
    retry it each time. :meth:`read` never raises and is thread-safe.
    """

    def __init__(
        self,
        nvml: Any = None,
        *,
        retry_after: float = INIT_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._nvml = nvml
        self._retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._initialized = False
        self._failed_at: float | None = None
        self._failure: str | None = None

    # -- init -------------------------------------------------------------

    def _module(self) -> Any:
        if self._nvml is None:
            import pynvml  # lazy: only where GPUs are actually probed

            self._nvml = pynvml
        return self._nvml

    def _init(self) -> tuple[Any, str | None]:
        """(nvml module, None) when ready; (None, error) otherwise."""
        if self._initialized:
            return self._nvml, None
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < self._retry_after:
            return None, self._failure
        try:
            nvml = self._module()
        except ImportError as e:
            return None, self._fail(now, f"pynvml not available: {_reason(e)}")
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as e:
            return None, self._fail(now, _reason(e))
        except Exception as e:  # a broken driver or binding: still no raise
            return None, self._fail(now, f"{type(e).__name__}: {_reason(e)}")
        self._initialized = True
        self._failed_at = self._failure = None
        return nvml, None

    def _fail(self, now: float, reason: str) -> str:
        self._failed_at = now
        self._failure = _no_gpu(reason)
        return self._failure

    # -- read -------------------------------------------------------------

    def read(self) -> GpuReport:
        with self._lock:
            try:
                return self._read()
            except Exception as e:  # never raise into the panel
                return GpuReport([], error=f"cannot read GPUs: {_reason(e)}")

    def _read(self) -> GpuReport:
        nvml, error = self._init()
        if nvml is None:
            return GpuReport([], error=error)
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as e:
            # The driver went away after init: init again, after the delay.
            self._initialized = False
            return GpuReport([], error=self._fail(self._clock(), _reason(e)))
        if count == 0:
            return GpuReport([], error=_no_gpu("0 devices"))
        gpus: list[GpuInfo] = []
        problems: list[str] = []
        for index in range(count):
            try:
                gpus.append(self._device(nvml, index))
            except nvml.NVMLError as e:
                problems.append(f"GPU {index}: {_reason(e)}")
        if problems:
            error = "cannot read " + "; ".join(problems)
            if not gpus:
                error = _no_gpu(error)
            return GpuReport(gpus, error=error)
        return GpuReport(gpus)

    @staticmethod
    def _device(nvml: Any, index: int) -> GpuInfo:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = _text(nvml.nvmlDeviceGetName(handle))
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
        mem = nvml.nvmlDeviceGetMemoryInfo(handle)
        try:
            utilization: int | None = int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except nvml.NVMLError:
            utilization = None  # e.g. Not Supported (MIG)
        try:
            procs = nvml.nvmlDeviceGetComputeRunningProcesses(handle) or ()
            pids = tuple(dict.fromkeys(int(p.pid) for p in procs))
        except nvml.NVMLError:
            pids = ()
        return GpuInfo(
            index=index,
            name=name,
            uuid=uuid,
            memory_used=int(mem.used),
            memory_total=int(mem.total),
            utilization=utilization,
            pids=pids,
        )


# ---------------------------------------------------------------------------
# Default probe

_default_lock = threading.Lock()
_default_probe: NvmlProbe | None = None
_fake_probe: tuple[str, NvmlProbe] | None = None


def default_probe() -> NvmlProbe:
    """The shared probe: NVML, or a fake when ``$GUILD_JUPYTER_FAKE_GPUS`` is set.

    The same probe is returned while the variable keeps its value, so the
    failed-init cache and NVML's one-time init are shared by all callers.
    """
    global _default_probe, _fake_probe
    fake = os.environ.get(FAKE_GPUS_ENV)
    with _default_lock:
        if fake is not None and fake.strip():
            if _fake_probe is None or _fake_probe[0] != fake:
                from .fake import fake_nvml_from_env  # lazy: only when $GUILD_JUPYTER_FAKE_GPUS asks

                _fake_probe = (fake, NvmlProbe(nvml=fake_nvml_from_env(fake)))
            return _fake_probe[1]
        if _default_probe is None:
            _default_probe = NvmlProbe()
        return _default_probe
