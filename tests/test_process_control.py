"""A run's processes, its output and its outcome, however the run ends.

Real processes only: scripts that start children in sessions of their own,
ignore SIGTERM, keep the output pipe open, flood it with ``\\r`` progress
output or fill the disk; supervisors killed with SIGKILL. Every wait is on a
condition with a deadline.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import complete_lines, guild, wait_for
from guild_jupyter import api
from guild_jupyter.store.scalars import writer as scalarlib
from guild_jupyter.procs import Identity
from guild_jupyter.store import transitions
from guild_jupyter.store.scalars.reader import last_scalars
from guild_jupyter.store.run import Run
from guild_jupyter.store.store import Store


@pytest.fixture(autouse=True)
def _no_leftovers(guild_home):
    """Whatever a failing test left running is ended (not part of any check)."""
    yield
    runs = os.path.join(str(guild_home), "runs")
    for name in os.listdir(runs) if os.path.isdir(runs) else ():
        r = Run(os.path.join(runs, name))
        if os.path.exists(r.path("LOCK")):
            try:
                transitions.end_tree_and_record(Store(str(guild_home)), r, -9, "test cleanup")
            except Exception:  # noqa: BLE001
                pass


def _start(project, name: str, source: str, *assignments: str) -> Run:
    (project / name).write_text(textwrap.dedent(source))
    return api.run(str(project / name), *assignments)[0]


def _pid_after(run: Run, word: str, timeout: float = 30) -> Identity:
    """The process whose pid the script printed as ``WORD PID``."""
    def find():
        for line in complete_lines(api.output(run.id)):
            parts = line.split()
            if len(parts) == 2 and parts[0] == word and parts[1].isdigit():
                return parts[1]
        return None

    pid = int(wait_for(find, timeout=timeout, message=f"'{word} PID' in the output"))
    ident = Identity.of(pid)
    assert ident is not None, f"process {word} ({pid}) already gone"
    return ident


def _wait_ended(run: Run, timeout: float = 30) -> None:
    """Until the run's outcome is recorded in full and its LOCK is gone."""
    wait_for(lambda: run.refresh().status != "running" and run.get("stopped") is not None
             and not os.path.exists(run.path("LOCK")), timeout=timeout, message="the run ends")


def _all_gone(idents, timeout: float = 10) -> None:
    wait_for(lambda: not any(i.alive() for i in idents), timeout=timeout,
             message=f"processes {[i.pid for i in idents]} to be gone")


def _guild_status(run: Run) -> str:
    out = guild("runs", "--all").stdout
    line = next(ln for ln in out.splitlines() if run.id[:8] in ln)
    return line


# A child in a session of its own that ignores SIGTERM and keeps the run's
# stdout (inherited) open; the main process waits.
ESCAPED_CHILD = """\
import os, subprocess, sys, time
code = ("import os, signal, time\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "os.write(1, b'up\\\\n')\\n"
        "while True:\\n"
        "    time.sleep(0.05)\\n")
child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
os.write(1, b"child %d\\n" % child.pid)  # one write: lines of several processes never mix
while True:
    time.sleep(0.05)
"""


def test_stop_ends_escaped_child_holding_output(project, monkeypatch, launcher):
    """C: stop ends everything, the supervisor itself within its grace,
    although a child in its own session ignores SIGTERM and holds the output
    pipe; the run is terminated, and the real guild CLI agrees. (How long a
    stop takes: bench/bench_latencies.py.)"""
    monkeypatch.setenv("GUILD_JUPYTER_STOP_GRACE", "1")
    r = _start(project, "escaped.py", ESCAPED_CHILD)
    child = _pid_after(r, "child")
    wait_for(lambda: "up" in api.output(r.id).splitlines(), message="child ignores SIGTERM")
    main = Identity.of(_script_pid(r))
    stopped = api.stop(r.id)[0]
    assert stopped.status == "terminated" and stopped.exit_status < 0
    # Ended by the supervisor itself, within its grace: not by the caller's last resort after it.
    assert "did not end within its grace" not in api.output(r.id)
    _all_gone([child, main], timeout=2)
    wait_for(lambda: not os.path.exists(r.path("LOCK")), timeout=2, message="LOCK removed")
    assert "terminated" in _guild_status(r)


def _script_pid(run: Run) -> int:
    import psutil

    children = psutil.Process(run.lock_pid()).children()
    assert children, "the supervisor has no child"
    return children[0].pid


LEFTOVERS = """\
import os, subprocess, sys, time
ignore = ("import os, signal, sys, time\\n"
          "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
          "os.write(1, sys.argv[1].encode() + b' up\\\\n')\\n"
          "while True:\\n"
          "    time.sleep(0.05)\\n")
group = subprocess.Popen([sys.executable, "-c", ignore, "group"])
escaped = subprocess.Popen([sys.executable, "-c", ignore, "escaped"], start_new_session=True)
os.write(1, b"group %d\\nescaped %d\\n" % (group.pid, escaped.pid))
deadline = time.monotonic() + 20
while time.monotonic() < deadline:  # both ignore SIGTERM now
    out = open(os.environ["RUN_DIR"] + "/.guild/output").read().split("\\n")
    if "group up" in out and "escaped up" in out:
        break
    time.sleep(0.02)
os.write(1, b"main done\\n")
"""


def test_main_exit_ends_leftovers(project):
    """B: the main process exits normally; what it left (a child in its
    group and one in its own session, both ignoring SIGTERM, both holding
    the output pipe) is killed and the run completes (without them its
    output would never close)."""
    r = _start(project, "leftovers.py", LEFTOVERS)
    group, escaped = _pid_after(r, "group"), _pid_after(r, "escaped")
    _wait_ended(r, timeout=15)
    assert r.status == "completed", api.output(r.id)
    _all_gone([group, escaped], timeout=2)
    out = api.output(r.id)
    assert "main done" in out


ORPHANS = """\
import os, sys, time
def wait_file(name):
    while not os.path.exists(name):
        time.sleep(0.02)
for i in range(4):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:  # orphaned when its parent exits at once
            os.write(1, b"orphan %d\\n" % os.getpid())
            wait_file("release")
            os._exit(0)
        os._exit(0)
    os.waitpid(pid, 0)
wait_file("go")
sys.exit(7)
"""


def test_orphans_reparented_and_reaped_main_status_kept(project):
    """A+B: orphans of the script become the supervisor's children (it is a
    subreaper), are reaped as they exit, and the main exit status is kept."""
    import psutil

    r = _start(project, "orphans.py", ORPHANS)
    sup = psutil.Process(r.lock_pid())
    main = _script_pid(r)
    orphans = wait_for(lambda: [ln for ln in complete_lines(api.output(r.id)) if ln.startswith("orphan")][3:] and
                       [int(ln.split()[1]) for ln in complete_lines(api.output(r.id)) if ln.startswith("orphan")],
                       message="4 orphans")
    wait_for(lambda: set(orphans) <= {c.pid for c in sup.children()}, message="orphans reparented to the supervisor")
    open(os.path.join(r.dir, "release"), "w").close()

    def reaped():
        kids = []
        for k in sup.children():  # a zombie is a child not reaped yet
            try:
                kids.append((k.pid, k.status()))
            except psutil.NoSuchProcess:  # reaped between children() and status()
                pass
        return len(kids) == 1 and kids[0][0] == main and kids[0][1] != psutil.STATUS_ZOMBIE

    wait_for(reaped, message="exited orphans reaped (no zombies)")
    open(os.path.join(r.dir, "go"), "w").close()
    _wait_ended(r)
    assert r.status == "error" and r.exit_status == 7


def test_kill_9_supervisor_then_settle_dead_ends_everything(project):
    """A: the supervisor records the run's processes, a child in its own
    session included; after kill -9 of the supervisor, settle_dead ends
    them all and records the outcome."""
    r = _start(project, "escaped.py", ESCAPED_CHILD)
    child = _pid_after(r, "child")
    main = Identity.of(_script_pid(r))
    wait_for(lambda: {child.pid, main.pid} <= {i.pid for i in transitions.recorded_processes(r)},
             message="the child recorded as one of the run's processes")
    sup = r.lock_pid()
    os.kill(sup, signal.SIGKILL)
    wait_for(lambda: r.refresh().lock_holder() is None, message="supervisor dead")
    assert main.alive() and child.alive()  # left behind
    transitions.settle_dead(Store(), r)  # (a listing may have settled it already)
    r.refresh()
    assert r.status == "error" and r.exit_status is not None and r.get("stopped")
    assert not os.path.exists(r.path("LOCK"))
    _all_gone([main, child], timeout=5)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_stop_signals_record_terminated(project, monkeypatch, sig):
    """F: SIGINT and SIGHUP to the supervisor stop the run like SIGTERM."""
    monkeypatch.setenv("GUILD_JUPYTER_STOP_GRACE", "0.5")
    r = _start(project, "escaped.py", ESCAPED_CHILD)
    child = _pid_after(r, "child")
    main = Identity.of(_script_pid(r))
    os.kill(r.lock_pid(), sig)
    _wait_ended(r, timeout=15)
    assert r.status == "terminated" and r.exit_status < 0
    _all_gone([main, child], timeout=2)


def test_lock_taken_by_another_is_not_dropped(project, monkeypatch):
    """F: a supervisor ending after another process took the run's LOCK (as
    ``guild run --restart`` does) leaves that LOCK and the outcome alone."""
    monkeypatch.setenv("GUILD_JUPYTER_STOP_GRACE", "0.5")
    r = _start(project, "escaped.py", ESCAPED_CHILD)
    child = _pid_after(r, "child")
    sup = r.lock_pid()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(r.path("LOCK"), "w") as f:  # Guild writes a bare pid, no start record
            f.write(str(other.pid))
        os.kill(sup, signal.SIGTERM)
        wait_for(lambda: Identity.of(sup) is None, timeout=15, message="the supervisor ends")
        _all_gone([child], timeout=2)
        r.refresh()
        assert r.lock_pid() == other.pid and r.get("exit_status") is None
    finally:
        other.kill()
        other.wait()


HANDS_OFF_OUTPUT = """\
import os, socket
sock = ""
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
socket.send_fds(s, [b"x"], [1])
s.recv(1)
print("sent", flush=True)
"""

FD_HOLDER = """\
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 16, 4)
c.send(b"k")
time.sleep(60)
"""


def test_output_held_outside_the_tree_never_holds_the_run(project, tmp_path):
    """C: a pipe kept open by a process outside the run's tree (here: handed
    over by fd passing) is drained with a bounded wait, then the run ends."""
    path = str(tmp_path / "h.sock")
    holder = subprocess.Popen([sys.executable, "-c", FD_HOLDER, path], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ready"
        r = _start(project, "handoff.py", HANDS_OFF_OUTPUT, f"sock={path}")
        _wait_ended(r, timeout=10)
        assert r.status == "completed"
        assert "sent" in api.output(r.id)
        assert (r.get("stopped") - r.get("started")) / 1e6 < 5
    finally:
        holder.kill()
        holder.wait()


PROGRESS = """\
import sys
n = 60000
def chunks(n):
    for i in range(n):
        yield b"\\r%6d/%d |%-30s|" % (i, n, b"#" * (i * 30 // n))
    yield b"\\rloss: 0.25\\r\\n"
    yield bytes(range(256)) * 64
    yield b"\\nacc: 0.5"
if __name__ == "__main__":
    out = sys.stdout.buffer
    for c in chunks(n):
        out.write(c)
"""


def test_progress_and_binary_output_exact(project):
    """D: \\r progress output without newlines, binary output and a last
    line without newline: every byte lands in the output as written and the
    scalars are found. (How long it takes next to the script alone, and next
    to the real guild CLI, is measured in bench/bench_latencies.py.)"""
    (project / "progress.py").write_text(PROGRESS)
    r = api.run(str(project / "progress.py"))[0]
    _wait_ended(r)
    assert r.status == "completed"
    ns: dict = {}
    exec(PROGRESS, ns)
    with open(r.path("output"), "rb") as f:
        assert f.read() == b"".join(ns["chunks"](60000))
    s = last_scalars(r.dir)
    assert s["loss"][1] == 0.25 and s["acc"][1] == 0.5


DISK_FILLER = """\
import os, sys, time
while not os.path.exists("go"):
    time.sleep(0.01)
line = "x" * 99 + "\\n"
written = 0
while os.statvfs(".").f_bavail > 0 and written < 8 << 20:
    sys.stdout.write(line * 10)
    written += 1000
for i in range(3000):
    sys.stdout.write(line)
print("done writing", flush=True)
sys.exit(3)
"""


def test_full_disk_keeps_draining_and_records_outcome(project, tmp_path, monkeypatch):
    """E: the store's disk fills up while the script prints: the script is
    never blocked, and the run ends with its exit status recorded (in the
    space reserved at start) and its LOCK gone."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        monkeypatch.setenv("GUILD_HOME", str(mnt))
        r = _start(project, "filler.py", DISK_FILLER)
        sup = r.lock_holder()
        open(os.path.join(r.dir, "go"), "w").close()
        wait_for(lambda: not sup.alive(), timeout=30, message="the supervisor ends")
        r = Run(r.dir)
        assert r.get("exit_status") == 3 and r.get("stopped")
        assert not os.path.exists(r.path("LOCK"))
        assert 256 * 1024 < os.path.getsize(r.path("output")) < 512 * 1024
        with open(r.path("output"), "rb") as f:
            out = f.read()
        assert b"done writing" not in out  # dropped: the disk was full
        # written once LOCK and its records were dropped
        assert out.endswith(b"\nguild_jupyter: output truncated: No space left on device\n")
    finally:
        if subprocess.run(["umount", str(mnt)]).returncode:
            subprocess.run(["umount", "-l", str(mnt)])


# -- finding scalars in output of any shape ------------------------------------------------


class _Found(scalarlib.ScalarWriter):
    def __init__(self):
        super().__init__("/nonexistent", set())
        self.found = []

    def _record(self, key, value):
        self.found.append((key, value))


def _by_lines(stream: bytes) -> list:
    out = []
    for line in stream.split(b"\n"):
        if len(scalarlib.visible(line)) <= scalarlib.MAX_LINE:
            p = scalarlib.parse_line(line)
            if p:
                out.append(p)
    return out


def test_scalars_found_in_chunks_as_in_whole_lines():
    """However output is cut into chunks, the scalars found are those of its
    lines as a terminal shows them (text after the last \\r)."""
    atoms = [b"loss: 1.5", b"acc:2", b"\r", b"\n", b"\r\n", b"x", b" ", b":", b"step: 3", b"\x00\xff",
             b"a b: 1", b"lr :  .5e-3 ", b"\t", b"\rval: 7\r", b"\r\r", b"q: nan"]
    rnd = random.Random(7)
    for _ in range(1500):
        stream = b"".join(rnd.choice(atoms) for _ in range(rnd.randint(0, 40)))
        if rnd.random() < 0.2:
            stream *= rnd.randint(2, 300)
        w, i = _Found(), 0
        while i < len(stream):
            n = rnd.choice([1, 2, 3, 7, 64, 4096, 1 << 20])
            w.feed(stream[i:i + n])
            i += n
        w.finish()
        assert repr(w.found) == repr(_by_lines(stream)), stream[:200]  # repr: nan == nan


def test_scalar_line_semantics():
    p = scalarlib.parse_line
    assert p(b"loss: 0.5") == ("loss", 0.5)
    assert p(b"loss: 0.5\r") == ("loss", 0.5)  # a trailing \r is dropped
    assert p(b" 12%|###  | 3/25\rloss: 0.5") == ("loss", 0.5)  # what the terminal shows
    assert p(b"loss: 0.5\r 12%") is None
    assert p(b"loss: 0.5\r\r") is None
    assert p(b"loss: x") is None and p(b"\x00loss: 1") is None
    w = _Found()
    w.feed(b"\r" + b"#" * (scalarlib.MAX_LINE + 10))  # an overlong partial line
    w.feed(b"loss: 1\n")
    w.feed(b"acc: 2\n" + b"y" * (scalarlib.MAX_LINE + 1) + b"\rval: 3")
    w.finish()
    assert w.found == [("acc", 2.0), ("val", 3.0)]
