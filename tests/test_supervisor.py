"""The supervisor keeps every run's outcome, however its processes die."""

from __future__ import annotations

import os
import signal
import subprocess
import sys


from conftest import gone, output_line, wait_for
from guild_jupyter import api
from guild_jupyter.store.scalars.reader import last_scalars


SLEEPER = (
    "import time\nseconds = 30\nprint('started', flush=True)\n"
    "for i in range(int(seconds * 10)):\n    time.sleep(0.1)\nprint('finished')\n"
)


def _start_sleeper(project, seconds=30):
    (project / "sleeper.py").write_text(SLEEPER)
    return api.run(str(project / "sleeper.py"), f"seconds={seconds}")[0]


def _script_pid(run):
    import psutil

    sup = psutil.Process(run.lock_pid())
    children = sup.children()
    assert children, "the supervisor has no child"
    return children[0].pid


def test_kill_launcher_keeps_run(project):
    """kill -9 of the process that launched a foreground run: the run goes on."""
    (project / "sleeper.py").write_text(SLEEPER)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "guild_jupyter", "run", "sleeper.py", "seconds=1.5", "--foreground"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    assert launcher.stdout.readline().strip() == b"started"
    launcher.kill()
    launcher.wait()
    r = api.runs()[0]
    assert r.flags["seconds"] == 1.5
    wait_for(lambda: r.refresh().status != "running", timeout=30, message="run ends")
    assert r.status == "completed"
    assert "finished" in api.output(r.id)


def test_kill_9_script_records_terminated(project):
    r = _start_sleeper(project)
    wait_for(lambda: "started" in api.output(r.id))
    os.kill(_script_pid(r), signal.SIGKILL)
    wait_for(lambda: r.refresh().status != "running", message="outcome recorded")
    # The outcome appears whole: whoever reads the status reads the end time too.
    assert r.status == "terminated" and r.exit_status == -9
    assert r.get("stopped") >= r.get("started")
    # LOCK goes after the outcome is written (never a moment without both): wait for the supervisor to let go.
    wait_for(lambda: not os.path.exists(r.path("LOCK")), timeout=10, message="the supervisor drops LOCK")


def test_kill_9_supervisor_shows_error_not_running(project, guild_home):
    """A dead pid alone reads ``error``: what is checked here is the outcome
    recorded once the death is noticed (a listing settles the run): exit
    status 1, ``stopped``, no LOCK, the reason in its output, the orphaned
    script ended -- and the real guild CLI agrees."""
    import psutil

    from conftest import guild

    r = _start_sleeper(project)
    wait_for(lambda: "started" in api.output(r.id))
    script = psutil.Process(_script_pid(r))
    supervisor = r.lock_pid()
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: r.refresh().status != "running", message="dead supervisor noticed")
    assert r.status == "error" and r.get("exit_status") is None  # nothing recorded yet: the dead pid says it
    listed = {x.id: x for x in api.runs()}  # the listing notices it and settles it
    assert listed[r.id].status == "error"
    r.refresh()
    assert r.exit_status == 1 and r.get("stopped") >= r.get("started")
    assert not os.path.exists(r.path("LOCK")) and not os.path.exists(r.path("LOCK.start"))
    assert f"the run's supervisor (pid {supervisor}) died; 1 process(es) it left were ended" in api.output(r.id)
    wait_for(lambda: gone(script), message="the orphaned script is ended")
    info = guild("runs", "info", r.id).stdout
    assert "status: error" in info and "exit_status: 1" in info


def test_sigterm_stops_process_group_after_grace(project, monkeypatch):
    (project / "stubborn.py").write_text(
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: print('ignoring TERM', flush=True))\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('child', child.pid, flush=True)\n"
        "while True: time.sleep(0.1)\n"
    )
    r = api.run(str(project / "stubborn.py"))[0]
    line = wait_for(lambda: output_line(r.id, "child "), message="the script's child started")
    child_pid = int(line.split()[1])
    stopped = api.stop(r.id)  # grace is 3 s in tests (GUILD_JUPYTER_STOP_GRACE)
    assert stopped[0].status == "terminated"
    assert "ignoring TERM" in api.output(r.id)
    wait_for(lambda: gone(child_pid), message="the run's whole process group is gone")


def test_output_is_tailable_and_scalars_recorded(project):
    (project / "slow.py").write_text(
        "import time, os\nsteps = 3\n"
        "for i in range(steps):\n    print(f'step: {i}', flush=True)\n    print(f'loss: {1.0/(i+1)}', flush=True)\n"
        "    print(f'acc: {0.5+i/10}', flush=True)\n    print(f'steps: {steps}')\n"
        "    while not os.path.exists('go%d' % i): time.sleep(0.01)\n"
    )
    r = api.run(str(project / "slow.py"))[0]
    wait_for(lambda: "loss: 1.0" in api.output(r.id), message="first line visible while running")
    assert r.refresh().status == "running"
    for i in range(3):
        open(os.path.join(r.dir, f"go{i}"), "w").close()
    wait_for(lambda: r.refresh().status == "completed")
    scalars = last_scalars(r.dir)
    assert scalars["loss"] == (2, 1.0 / 3) or abs(scalars["loss"][1] - 1 / 3) < 1e-6 and scalars["loss"][0] == 2
    assert abs(scalars["acc"][1] - 0.7) < 1e-6
    assert "steps" not in scalars and "step" not in scalars  # flag names and the step are not scalars


LIFECYCLE = '''import atexit, os, sys, threading, time
import helper
code = 0
atexit.register(lambda: print("atexit ran", flush=True))
def late():
    time.sleep(0.2)
    print("thread finished", flush=True)
threading.Thread(target=late).start()
print("name", __name__, "helper", helper.VALUE, "cwd-is-run", os.getcwd() == os.environ["RUN_DIR"])
print("argv0", os.path.basename(sys.argv[0]))
sys.exit(code)
'''


def test_script_runs_like_a_fresh_python(project, launcher):
    """Whether the supervisor forks the script or spawns an interpreter, the
    script sees a fresh process: __main__, its own directory importable, the
    run dir as cwd, non-daemon threads joined and atexit handlers run at the
    end, and its sys.exit status recorded."""
    (project / "life.py").write_text(LIFECYCLE)
    (project / "helper.py").write_text("VALUE = 42\n")
    ok = api.run("life.py", cwd=str(project), foreground=True, stream=open(os.devnull, "w"))[0]
    out = api.output(ok.id)
    assert "name __main__ helper 42 cwd-is-run True" in out
    assert "argv0 life.py" in out
    assert out.index("thread finished") < out.index("atexit ran")
    assert ok.status == "completed"
    bad = api.run("life.py", "code=3", cwd=str(project), foreground=True, stream=open(os.devnull, "w"))[0]
    assert bad.status == "error" and bad.exit_status == 3 and "atexit ran" in api.output(bad.id)


def test_stale_parent_output_is_never_repeated(project, capsys):
    """Bytes buffered in the launcher's stdout before the fork do not leak into the run."""
    sys.stdout.write("launcher-buffered-text")  # no newline: still in the buffer
    r = api.run(str(project / "train.py"), "epochs=1")[0]
    wait_for(lambda: r.refresh().status == "completed", message="run completes")
    assert "launcher-buffered-text" not in api.output(r.id)
