"""GPU affinity specs and the NVML probe (driven by FakeNvml; no GPU needed)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from guild_jupyter.gpus import nvml as gpus_mod
from guild_jupyter.gpus.nvml import GpuInfo, GpuReport, NvmlProbe, default_probe, parse_gpu_spec
from guild_jupyter.gpus.fake import FakeNvml
from guild_jupyter.errors import BadInput

GiB = 2**30

DEVICES = [
    {
        "name": b"NVIDIA A100-SXM4-40GB",
        "uuid": b"GPU-aaaa",
        "memory": {"total": 40 * GiB, "used": 3 * GiB},
        "utilization": {"gpu": 87, "memory": 40},
        "processes": [
            {"pid": 1234, "usedGpuMemory": 2 * GiB},
            {"pid": 5678, "usedGpuMemory": GiB},
        ],
    },
    {
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": "GPU-bbbb",
        "memory": {"total": 80 * GiB, "used": 0},
        "utilization": {"gpu": 0, "memory": 0},
        "processes": [],
    },
]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# -- parse_gpu_spec -----------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", "0"),
        ("0,1", "0,1"),
        (" 1, 2 ", "1,2"),
        ("2,0", "2,0"),  # the user's order is kept
        ("10", "10"),
        ("01", "1"),
        (0, "0"),  # gpus=0 parsed as a number
        (3, "3"),
        ("GPU-8f3c2a1b-0d4e-4c2f-9a7b-1e2d3c4b5a69", "GPU-8f3c2a1b-0d4e-4c2f-9a7b-1e2d3c4b5a69"),
        ("GPU-8f3c, 1", "GPU-8f3c,1"),  # a UUID prefix, as CUDA_VISIBLE_DEVICES takes it
        ("MIG-5c1d", "MIG-5c1d"),
    ],
)
def test_parse_gpu_spec_valid(text, expected):
    assert parse_gpu_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["a", "-1", "0,,1", "1.5", "0,0", ",", "0,", "0 1", "1,01", "²", "GPU-x", "GPU-", "gpu-12", True, 1.0],
)
def test_parse_gpu_spec_invalid(text):
    with pytest.raises(BadInput) as exc:
        parse_gpu_spec(text)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"bad GPU spec {str(text)!r}")
    assert "comma-separated GPU indices or UUIDs like 0, 0,1 or GPU-8f3c" in msg


def test_parse_gpu_spec_message_example():
    with pytest.raises(BadInput, match=r"^bad GPU spec 'a': expected comma-separated"):
        parse_gpu_spec("a")


# -- probe with FakeNvml -------------------------------------------------------


def test_fake_probe_reads_devices():
    report = NvmlProbe(nvml=FakeNvml(DEVICES)).read()
    assert report.error is None and report.ok
    assert report.gpus == [
        GpuInfo(
            index=0,
            name="NVIDIA A100-SXM4-40GB",  # bytes decoded
            uuid="GPU-aaaa",
            memory_used=3 * GiB,
            memory_total=40 * GiB,
            utilization=87,
            pids=(1234, 5678),
        ),
        GpuInfo(
            index=1,
            name="NVIDIA H100 80GB HBM3",  # str kept
            uuid="GPU-bbbb",
            memory_used=0,
            memory_total=80 * GiB,
            utilization=0,
            pids=(),
        ),
    ]
    assert all(isinstance(g.name, str) and isinstance(g.uuid, str) for g in report.gpus)


def test_gpu_info_is_frozen():
    info = NvmlProbe(nvml=FakeNvml(DEVICES)).read().gpus[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.index = 3  # type: ignore[misc]


def test_flat_device_keys_and_defaults():
    fake = FakeNvml([{"memory_total": 8 * GiB, "memory_used": GiB, "gpu_util": 5}, {}])
    gpus = NvmlProbe(nvml=fake).read().gpus
    assert (gpus[0].memory_total, gpus[0].memory_used, gpus[0].utilization) == (8 * GiB, GiB, 5)
    assert gpus[1].name and gpus[1].uuid and gpus[1].pids == ()


def test_init_once():
    fake = FakeNvml(DEVICES)
    probe = NvmlProbe(nvml=fake)
    for _ in range(5):
        assert probe.read().ok
    assert fake.calls["nvmlInit"] == 1
    assert fake.calls["nvmlDeviceGetCount"] == 5


def test_init_failure_gives_error_report():
    fake = FakeNvml(DEVICES, init_error="Driver Not Loaded")
    report = NvmlProbe(nvml=fake).read()
    assert isinstance(report, GpuReport)
    assert report.gpus == []
    assert report.error == "no NVIDIA GPU found (NVML: Driver Not Loaded)"
    assert not report.ok


def test_failed_init_is_cached_then_retried():
    clock = Clock()
    fake = FakeNvml(DEVICES, init_error="Driver Not Loaded")
    probe = NvmlProbe(nvml=fake, retry_after=30.0, clock=clock)
    for _ in range(10):  # a panel refreshing every second
        assert "no NVIDIA GPU" in probe.read().error
        clock.now += 1
    assert fake.calls["nvmlInit"] == 1
    clock.now += 25  # 35 s after the failure: tried again
    fake.init_error = None
    report = probe.read()
    assert fake.calls["nvmlInit"] == 2
    assert report.ok and len(report.gpus) == 2
    probe.read()
    assert fake.calls["nvmlInit"] == 2


def test_failed_init_retried_after_delay_still_failing():
    clock = Clock()
    fake = FakeNvml(init_error="Unknown Error")
    probe = NvmlProbe(nvml=fake, retry_after=30.0, clock=clock)
    probe.read()
    clock.now += 31
    probe.read()
    probe.read()
    assert fake.calls["nvmlInit"] == 2


def test_per_device_utilization_failure_gives_none():
    devices = [dict(DEVICES[0], fail=["nvmlDeviceGetUtilizationRates"]), DEVICES[1]]
    report = NvmlProbe(nvml=FakeNvml(devices)).read()
    assert report.ok
    assert report.gpus[0].utilization is None
    assert report.gpus[0].pids == (1234, 5678)
    assert report.gpus[1].utilization == 0


def test_processes_failure_gives_empty_pids():
    fake = FakeNvml(DEVICES, fail={"nvmlDeviceGetComputeRunningProcesses": "Not Supported"})
    report = NvmlProbe(nvml=fake).read()
    assert report.ok
    assert [g.pids for g in report.gpus] == [(), ()]
    assert report.gpus[0].utilization == 87


def test_required_query_failure_on_one_device():
    devices = [DEVICES[0], dict(DEVICES[1], fail={"nvmlDeviceGetMemoryInfo": "GPU is lost"})]
    report = NvmlProbe(nvml=FakeNvml(devices)).read()
    assert [g.index for g in report.gpus] == [0]
    assert "GPU 1: GPU is lost" in report.error


def test_count_failure_gives_error_report():
    fake = FakeNvml(DEVICES, fail={"nvmlDeviceGetCount": "Driver Not Loaded"})
    report = NvmlProbe(nvml=fake).read()
    assert report.gpus == []
    assert "no NVIDIA GPU found" in report.error


def test_zero_devices():
    report = NvmlProbe(nvml=FakeNvml([])).read()
    assert report.gpus == []
    assert "no NVIDIA GPU found" in report.error


def test_unexpected_exception_never_raises():
    class Broken(FakeNvml):
        def nvmlDeviceGetName(self, handle):
            raise RuntimeError("boom")

    report = NvmlProbe(nvml=Broken(DEVICES)).read()
    assert report.gpus == [] and "boom" in report.error


def test_fake_nvml_requires_init():
    fake = FakeNvml(DEVICES)
    with pytest.raises(fake.NVMLError):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    assert fake.nvmlDeviceGetCount() == 2
    with pytest.raises(FakeNvml.NVMLError):
        fake.nvmlDeviceGetHandleByIndex(5)


# -- the real NVML on this (GPU-less) machine -----------------------------------


def test_module_does_not_import_pynvml():
    code = (
        "import sys, guild_jupyter.gpus.nvml as g; "
        "assert 'pynvml' not in sys.modules; g.parse_gpu_spec('0'); "
        "assert 'pynvml' not in sys.modules; "
        "assert 'guild_jupyter.gpus.fake' not in sys.modules  # the fake loads only when asked for"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _has_nvidia_gpu() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount() > 0
    except Exception:
        return False


def test_real_probe():
    report = NvmlProbe().read()  # never raises
    if _has_nvidia_gpu():
        assert report.ok and report.gpus
        g = report.gpus[0]
        assert g.index == 0 and g.name and g.memory_total > 0
    else:
        assert report.gpus == []
        assert "no NVIDIA GPU" in report.error
        assert "\n" not in report.error


def test_real_probe_without_pynvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    report = NvmlProbe().read()
    assert report.gpus == []
    assert report.error.startswith("no NVIDIA GPU found (NVML: pynvml not available")


# -- default_probe and $GUILD_JUPYTER_FAKE_GPUS --------------------------------


def _json_devices():
    return [dict(d, name=d["name"].decode() if isinstance(d["name"], bytes) else d["name"],
                 uuid=d["uuid"].decode() if isinstance(d["uuid"], bytes) else d["uuid"])
            for d in DEVICES]


def test_default_probe_from_env(monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", json.dumps(_json_devices()))
    probe = default_probe()
    assert isinstance(probe._nvml, FakeNvml)
    assert default_probe() is probe  # shared while the value is unchanged
    report = probe.read()
    assert report.ok
    assert [g.name for g in report.gpus] == ["NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"]
    assert report.gpus[0].pids == (1234, 5678)
    assert report.gpus[0].memory_total == 40 * GiB

    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", json.dumps(_json_devices()[:1]))
    assert len(default_probe().read().gpus) == 1


def test_default_probe_env_init_error_and_bad_json(monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", json.dumps({"init_error": "Driver Not Loaded"}))
    assert default_probe().read().error == "no NVIDIA GPU found (NVML: Driver Not Loaded)"
    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", "not json")
    report = default_probe().read()
    assert report.gpus == [] and "GUILD_JUPYTER_FAKE_GPUS" in report.error


def test_default_probe_real_is_shared(monkeypatch):
    monkeypatch.delenv("GUILD_JUPYTER_FAKE_GPUS", raising=False)
    probe = default_probe()
    assert probe is default_probe()
    assert probe._nvml is None or not isinstance(probe._nvml, FakeNvml)
    assert isinstance(probe.read(), GpuReport)


def test_default_probe_env_in_subprocess(monkeypatch):
    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", json.dumps([{"name": "Fake", "gpu_util": 7}]))
    code = (
        "from guild_jupyter.gpus.nvml import default_probe; "
        "r = default_probe().read(); print(r.gpus[0].name, r.gpus[0].utilization)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["Fake", "7"]


def test_module_constants():
    from guild_jupyter.gpus import fake as gpus_fake

    assert gpus_mod.FAKE_GPUS_ENV == gpus_fake.FAKE_GPUS_ENV == "GUILD_JUPYTER_FAKE_GPUS"
    assert not hasattr(gpus_mod, "FakeNvml")  # the fake lives outside the probe module


FAKE_TWO = json.dumps([{"name": "Fake A100", "uuid": "GPU-aaaa1111-0000", "memory_total": 80 << 30},
                       {"name": "Fake A100", "uuid": "GPU-bbbb2222-0000", "memory_total": 80 << 30}])


def test_pinned_runs_get_pci_bus_order_and_uuids_work(project, monkeypatch):
    """A run pinned by index or UUID sees CUDA_VISIBLE_DEVICES as given and
    CUDA_DEVICE_ORDER=PCI_BUS_ID (CUDA's numbering = NVML's); Guild gets the
    same in the op's env."""
    from conftest import cli, shown_ids

    (project / "env.py").write_text(
        'import os\nprint(os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("CUDA_DEVICE_ORDER"))\n')
    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", FAKE_TWO)
    for gpus, want in (("1", "1 PCI_BUS_ID"), ("GPU-bbbb2222", "GPU-bbbb2222 PCI_BUS_ID"), (None, "None None")):
        args = ["run", project / "env.py", "--foreground"] + (["--gpus", gpus] if gpus else [])
        p = cli(*args, check=0)
        # stdout: the run's output only; stderr: the run it was, as `runs` lists it, and no warning.
        assert p.stdout.strip() == want, (gpus, p.stdout, p.stderr)
        assert len(p.stderr.splitlines()) == 1 and shown_ids(p.stderr) and "completed" in p.stderr, p.stderr
    from guild_jupyter import api

    (staged,) = api.run(str(project / "env.py"), gpus="GPU-aaaa1111", stage=True)
    env = staged.get("op")["op-cmd"]["cmd-env"]
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-aaaa1111" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_a_gpu_nvml_does_not_report_is_a_warning(project, monkeypatch):
    from conftest import cli

    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", FAKE_TWO)
    p = cli("run", project / "train.py", "--gpus", "3", "--stage", check=0)
    assert p.stderr == "guild-jupyter: warning: GPU 3 is not among the GPUs NVML reports on this machine (0, 1)\n"
    p = cli("run", project / "train.py", "--gpus", "GPU-cccc", "--stage", check=0)
    assert "GPU GPU-cccc is not among" in p.stderr
    p = cli("queue", "gpus=3", "run-once=yes", "--background", check=0)
    assert "GPU 3 is not among" in p.stderr
    cli("stop", "--queues", check=0)
    assert cli("run", project / "train.py", "--gpus", "1", "--stage", check=0).stderr == ""
    # No NVML (no fake, no driver): silent.
    monkeypatch.setenv("GUILD_JUPYTER_FAKE_GPUS", json.dumps({"init_error": "NVML Shared Library Not Found"}))
    assert cli("run", project / "train.py", "--gpus", "3", "--stage", check=0).stderr == ""
