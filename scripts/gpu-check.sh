#!/usr/bin/env bash
# GPU slots on real GPUs: stages runs that allocate GPU memory, drains them
# through a `gpus=auto per-gpu=2` queue, and checks from NVML's per-process
# attribution that each run ran on the GPU it recorded (run_params.gpus) and
# that no GPU ever had more than 2 of them at once.
#
#   scripts/gpu-check.sh            (GPU_CHECK_RUNS=N to stage N runs)
#
# Each run allocates (k+1) GiB on its one visible device, with torch or cupy
# when importable, else straight through the CUDA driver (libcuda, ctypes),
# and holds it a few seconds. A run is recognised in NVML by its pid, or, when
# NVML reports pids of another pid namespace (a container), by its size.
# Without an NVIDIA GPU it says so and exits 0, doing nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
unset GUILD_JUPYTER_FAKE_GPUS CUDA_VISIBLE_DEVICES  # real GPUs only, all of them
exec "$PY" - "$@" <<'EOF'
import json, os, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.getcwd())
from guild_jupyter.gpus.nvml import default_probe

report = default_probe().read()
if not report.gpus:
    print(f"gpu-check: no NVIDIA GPU here ({report.error}); nothing to check")
    sys.exit(0)
import pynvml

GiB = 2**30
n_gpus = len(report.gpus)
n_runs = int(os.environ.get("GPU_CHECK_RUNS", 2 * n_gpus + 2))
home = tempfile.mkdtemp(prefix="gpu-check-")
proj, marks = os.path.join(home, "project"), os.path.join(home, "marks")
os.makedirs(proj)
os.makedirs(marks)
with open(os.path.join(proj, "alloc.py"), "w") as f:
    f.write('''import ctypes, json, os, time
k = 0
hold = 4.0
size = (k + 1) * 2**30

def alloc():
    try:
        import torch
        if torch.cuda.is_available():
            return "torch", torch.empty(size, dtype=torch.uint8, device="cuda")
    except ImportError:
        pass
    try:
        import cupy
        return "cupy", cupy.empty(size, dtype=cupy.uint8)
    except ImportError:
        pass
    cuda = ctypes.CDLL("libcuda.so.1")
    dev, ctx, ptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
    for call in (lambda: cuda.cuInit(0), lambda: cuda.cuDeviceGet(ctypes.byref(dev), 0),
                 lambda: cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev),
                 lambda: cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(size))):
        rc = call()
        if rc:
            raise SystemExit(f"CUDA driver call failed ({rc})")
    return "libcuda", (ctx, ptr)

how, buf = alloc()
mark = {"pid": os.getpid(), "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"), "how": how, "k": k, "t0": time.time()}
time.sleep(hold)
mark["t1"] = time.time()
with open(os.path.join(os.environ["MARKS"], os.environ["RUN_ID"]), "w") as f:
    json.dump(mark, f)
''')
env = dict(os.environ, GUILD_HOME=home, MARKS=marks)
cli = [sys.executable, "-m", "guild_jupyter"]
subprocess.run(cli + ["run", "alloc.py", f"k=range[0:{n_runs - 1}]", "--stage"], cwd=proj, env=env, check=True,
               stdout=subprocess.DEVNULL)
print(f"gpu-check: {n_gpus} GPU(s) ({report.gpus[0].name}); {n_runs} runs of 1..{n_runs} GiB "
      f"through a gpus=auto per-gpu=2 queue")

pynvml.nvmlInit()
handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
snapshots = []  # [(time, {gpu index: [(pid, used bytes)]})]
done = threading.Event()


def watch():
    while not done.is_set():
        snap = {}
        for i, h in enumerate(handles):
            try:
                snap[i] = [(p.pid, p.usedGpuMemory or 0) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)]
            except pynvml.NVMLError:
                snap[i] = []
        snapshots.append((time.time(), snap))
        time.sleep(0.1)


t = threading.Thread(target=watch, daemon=True)
t.start()
q = subprocess.run(cli + ["queue", "gpus=auto", "per-gpu=2", "run-once=yes", "poll-interval=1"], cwd=proj, env=env,
                   capture_output=True, text=True, timeout=600)
done.set()
t.join()

from guild_jupyter.store.run import Run

runs = [Run(os.path.join(home, "runs", i)) for i in os.listdir(os.path.join(home, "runs"))]
runs = [r for r in runs if not r.is_queue]
mark_of = {}
for r in runs:
    try:
        mark_of[r.id] = json.load(open(os.path.join(marks, r.id)))
    except OSError:
        pass
by_pid = {m["pid"]: rid for rid, m in mark_of.items()}
k_of = {m["k"]: rid for rid, m in mark_of.items()}
seen_pids = {pid for _t, s in snapshots for procs in s.values() for pid, _u in procs}
by_size = not (seen_pids & set(by_pid))  # another pid namespace: tell runs by their size


def who(pid, used):
    if not by_size:
        return by_pid.get(pid)
    return k_of.get(int(used // GiB) - 1)  # (k+1) GiB and a context of under 1 GiB


seen_on = {}  # run id -> GPUs NVML saw it on
peak = {}
for _t, snap in snapshots:
    for gpu, procs in snap.items():
        ours = {who(pid, used) for pid, used in procs} - {None}
        peak[gpu] = max(peak.get(gpu, 0), len(ours))
        for rid in ours:
            seen_on.setdefault(rid, set()).add(gpu)

problems = []
if q.returncode != 0:
    problems.append(f"the queue ended with exit status {q.returncode}: {q.stderr.strip()[-300:]}")
for r in sorted(runs, key=lambda r: r.flags.get("k", 0)):
    m = mark_of.get(r.id)
    rec = r.gpus
    saw = ",".join(str(g) for g in sorted(seen_on.get(r.id, ()))) or "-"
    line = (f"  run {r.id[:8]} k={r.flags.get('k')} {r.status:9s} recorded gpus={rec} "
            f"CUDA_VISIBLE_DEVICES={m and m['cvd']} NVML saw it on GPU {saw} ({m and m['how']})")
    print(line)
    if r.status != "completed" or m is None:
        problems.append(f"run {r.id[:8]} is {r.status}" + ("" if m else " and left no mark"))
    elif m["cvd"] != rec or saw != rec:
        problems.append(f"run {r.id[:8]} recorded GPU {rec}, had CUDA_VISIBLE_DEVICES={m['cvd']}, NVML saw it on {saw}")
print(f"  most of our runs on one GPU at once, per GPU: {peak}"
      + ("  (runs told apart by size: NVML pids are another namespace's)" if by_size else ""))
if any(v > 2 for v in peak.values()):
    problems.append(f"more than 2 runs at once on a GPU: {peak}")
if problems:
    print("gpu-check: FAILED\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"gpu-check: OK: {len(runs)} runs each ran on the GPU it recorded, at most 2 per GPU (store: {home})")
EOF
