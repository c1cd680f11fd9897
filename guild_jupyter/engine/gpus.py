"""GPUs: the affinity spec users give (``--gpus 0,1``) and what NVML reports.

- :func:`parse_gpu_spec` validates and normalises a GPU affinity spec
  (SPEC §3 ``run_params.gpus``, §5 queue affinity).
- :func:`cuda_env` turns an affinity into the environment a run gets.
- :class:`NvmlProbe` reads the physical GPUs through NVML for the panel
  (SPEC §8). It never raises: without an NVIDIA GPU (or without pynvml) it
  returns a :class:`GpuReport` whose ``error`` says so. ``pynvml`` is imported
  lazily, on the first read, never when this module is imported.
- :class:`FakeNvml` is a stand-in for the ``pynvml`` module (same function
  names, its own ``NVMLError``), so ``NvmlProbe(nvml=FakeNvml(devices))`` runs
  exactly the code path the real module runs. :func:`default_probe` returns
  one fed from ``$GUILD_JUPYTER_FAKE_GPUS`` (a JSON list of device dicts) when
  that variable is set, so tests and demos work on machines without a GPU,
  in subprocesses and kernels too.

Device dicts for :class:`FakeNvml` (all keys optional)::

    {"name": "NVIDIA H100",            # str, or bytes (older pynvml)
     "uuid": "GPU-0000...",
     "memory": {"total": 80 * 2**30, "used": 2**30},   # bytes
     "utilization": {"gpu": 37, "memory": 12},          # percent
     "processes": [{"pid": 1234, "usedGpuMemory": 2**30}],
     "fail": ["nvmlDeviceGetUtilizationRates"]}         # calls that raise

``memory_total``/``memory_used``/``gpu_util`` are accepted as flat
alternatives to ``memory``/``utilization``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import types
from typing import Any, Callable, Iterable, Mapping, Protocol

from .gpuspec import _GPU_ID, _bad_spec, parse_gpu_spec  # noqa: F401 - re-exported

__all__ = [
    "FAKE_GPUS_ENV",
    "FakeNvml",
    "GpuInfo",
    "GpuProbe",
    "GpuReport",
    "NvmlProbe",
    "cuda_env",
    "default_probe",
    "parse_gpu_spec",
]

#: Environment variable holding a JSON list of fake device dicts.
FAKE_GPUS_ENV = "GUILD_JUPYTER_FAKE_GPUS"

#: Seconds a failed NVML init is remembered before it is tried again.
INIT_RETRY_SECONDS = 30.0

def cuda_env(gpus: str | None) -> dict:
    """The environment a run pinned to ``gpus`` gets (nothing when unpinned)."""
    return {"CUDA_VISIBLE_DEVICES": gpus} if gpus else {}


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
# Fake NVML


class _FakeNVMLError(Exception):
    """Stand-in for ``pynvml.NVMLError``: str() is the NVML message."""

    def __init__(self, value: Any = "Unknown Error"):
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return str(self.value)


class FakeNvml:
    """A stand-in for the ``pynvml`` module, fed with NVML-shaped data.

    ``devices``: device dicts (see the module docstring). ``init_error``:
    when set, ``nvmlInit`` raises ``NVMLError(init_error)``. ``fail``:
    names of functions that raise for every device (a mapping name ->
    message, or an iterable of names). ``calls`` counts every call by
    function name. All of these may be changed after construction.
    """

    NVMLError = _FakeNVMLError

    def __init__(
        self,
        devices: Iterable[Mapping[str, Any]] = (),
        *,
        init_error: str | None = None,
        fail: Mapping[str, str] | Iterable[str] | None = None,
    ):
        self.devices = [dict(d) for d in devices]
        self.init_error = init_error
        self.fail = _failures(fail)
        self.calls: dict[str, int] = {}
        self.initialized = False

    def _call(self, fn: str, handle: Any = None) -> dict | None:
        self.calls[fn] = self.calls.get(fn, 0) + 1
        if fn != "nvmlInit" and not self.initialized:
            raise self.NVMLError("Uninitialized")
        if fn in self.fail:
            raise self.NVMLError(self.fail[fn])
        if handle is None:
            return None
        if not isinstance(handle, _FakeHandle) or handle.owner is not self:
            raise self.NVMLError("Invalid Argument")
        device = self.devices[handle.index]
        failing = _failures(device.get("fail"))
        if fn in failing:
            raise self.NVMLError(failing[fn])
        return device

    # -- the pynvml functions NvmlProbe uses --------------------------------

    def nvmlInit(self) -> None:
        self._call("nvmlInit")
        if self.init_error:
            raise self.NVMLError(self.init_error)
        self.initialized = True

    def nvmlShutdown(self) -> None:
        self._call("nvmlShutdown")
        self.initialized = False

    def nvmlDeviceGetCount(self) -> int:
        self._call("nvmlDeviceGetCount")
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> "_FakeHandle":
        self._call("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.devices):
            raise self.NVMLError("Invalid Argument")
        failing = _failures(self.devices[index].get("fail"))
        if "nvmlDeviceGetHandleByIndex" in failing:
            raise self.NVMLError(failing["nvmlDeviceGetHandleByIndex"])
        return _FakeHandle(self, index)

    def nvmlDeviceGetName(self, handle: Any) -> str | bytes:
        d = self._call("nvmlDeviceGetName", handle)
        return d.get("name", f"Fake GPU {handle.index}")

    def nvmlDeviceGetUUID(self, handle: Any) -> str | bytes:
        d = self._call("nvmlDeviceGetUUID", handle)
        return d.get("uuid", f"GPU-fake-{handle.index:04d}")

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> types.SimpleNamespace:
        d = self._call("nvmlDeviceGetMemoryInfo", handle)
        mem = d.get("memory") or {}
        total = int(mem.get("total", d.get("memory_total", 16 * 2**30)))
        used = int(mem.get("used", d.get("memory_used", 0)))
        return types.SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> types.SimpleNamespace:
        d = self._call("nvmlDeviceGetUtilizationRates", handle)
        util = d.get("utilization") or {}
        gpu = int(util.get("gpu", d.get("gpu_util", 0)))
        return types.SimpleNamespace(gpu=gpu, memory=int(util.get("memory", 0)))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list:
        d = self._call("nvmlDeviceGetComputeRunningProcesses", handle)
        return [
            types.SimpleNamespace(
                pid=int(p["pid"]),
                usedGpuMemory=p.get("usedGpuMemory"),
                gpuInstanceId=0xFFFFFFFF,
                computeInstanceId=0xFFFFFFFF,
            )
            for p in d.get("processes") or ()
        ]


@dataclasses.dataclass(frozen=True)
class _FakeHandle:
    owner: FakeNvml
    index: int


def _failures(fail: Any) -> dict[str, str]:
    if not fail:
        return {}
    if isinstance(fail, str):
        fail = [fail]
    if isinstance(fail, Mapping):
        return {str(k): str(v) for k, v in fail.items()}
    return {str(name): "Unknown Error" for name in fail}


# ---------------------------------------------------------------------------
# Default probe

_default_lock = threading.Lock()
_default_probe: NvmlProbe | None = None
_fake_probe: tuple[str, NvmlProbe] | None = None


def _fake_from_env(value: str) -> FakeNvml:
    """FakeNvml from ``$GUILD_JUPYTER_FAKE_GPUS``: a JSON list of devices, or
    an object ``{"devices": [...], "init_error": ..., "fail": ...}``. A bad
    value becomes an init failure that says so, never an exception."""
    try:
        data = json.loads(value)
        if isinstance(data, list):
            data = {"devices": data}
        if not isinstance(data, dict):
            raise ValueError("expected a JSON list of device dicts")
        devices = data.get("devices") or []
        if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
            raise ValueError("expected a JSON list of device dicts")
        return FakeNvml(devices, init_error=data.get("init_error"), fail=data.get("fail"))
    except (ValueError, TypeError) as e:
        return FakeNvml(init_error=f"bad ${FAKE_GPUS_ENV}: {_reason(e)}")


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
                _fake_probe = (fake, NvmlProbe(nvml=_fake_from_env(fake)))
            return _fake_probe[1]
        if _default_probe is None:
            _default_probe = NvmlProbe()
        return _default_probe
