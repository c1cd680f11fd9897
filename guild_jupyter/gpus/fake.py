"""A fake NVML for machines without an NVIDIA GPU: tests and demos.

:class:`FakeNvml` stands in for the ``pynvml`` module (same function names,
its own ``NVMLError``), so ``NvmlProbe(nvml=FakeNvml(devices))`` runs exactly
the code path the real module runs. ``$GUILD_JUPYTER_FAKE_GPUS`` (a JSON
list of device dicts, or ``{"devices": [...], "init_error": ..., "fail":
...}``) makes ``gpus.nvml.default_probe()`` use one in every process that
inherits it: kernels, the Jupyter server, queues.

Device dicts for :class:`FakeNvml` (all keys optional)::

    {"name": "NVIDIA H100",            # str, or bytes (older pynvml)
     "uuid": "GPU-0000...",
     "memory": {"total": 80 * 2**30, "used": 2**30},   # bytes
     "utilization": {"gpu": 37, "memory": 12},          # percent
     "processes": [{"pid": 1234, "usedGpuMemory": 2**30}],
     "fail": ["nvmlDeviceGetUtilizationRates"]}         # calls that raise

``memory_total``/``memory_used``/``gpu_util`` are accepted as flat
alternatives to ``memory``/``utilization``. Without a ``used`` value, the
memory used is what the processes listed use (other users' work, as NVML
counts it against the device's free memory).
"""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any, Iterable, Mapping

__all__ = ["FakeNvml", "FAKE_GPUS_ENV", "fake_nvml_from_env"]

FAKE_GPUS_ENV = "GUILD_JUPYTER_FAKE_GPUS"


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
        used = mem.get("used", d.get("memory_used"))
        if used is None:
            used = sum(int(p.get("usedGpuMemory") or 0) for p in d.get("processes") or ())
        used = int(used)
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



def fake_nvml_from_env(value: str) -> FakeNvml:
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
