"""Live output and waiting: ``follow`` (``%guild output RUN --follow``,
``guild-jupyter output -f``), ``output_since`` (the REST API's
``?since=OFFSET``) and ``wait`` (``%guild wait``), on real runs."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
from IPython.core.error import UsageError

from conftest import cli, run_dirs, wait_for, write_script
from guild_jupyter import api
from guild_jupyter.errors import BadInput, WaitTimeout
from guild_jupyter.frontends.magics import GuildMagics

N = 40
TICKER = (
    "import sys, time\n"
    "n = 40\n"
    "rate = 20.0\n"
    "fail = False\n"
    "for i in range(n):\n"
    "    print(f'line {i} loss: {1.0 / (i + 1):.4f}', flush=True)\n"
    "    time.sleep(1.0 / rate)\n"
    "if fail:\n"
    "    raise SystemExit(3)\n"
)


@pytest.fixture
def ticker(project):
    return write_script(project, TICKER)


def lines_of(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("line ")]


def expected(n: int = N) -> list[str]:
    return [f"line {i} loss: {1.0 / (i + 1):.4f}" for i in range(n)]


def test_follow_captures_every_line_and_returns_soon_after_the_run_ends(ticker):
    run = api.run(ticker)[0]  # returns once the run is running
    out = io.StringIO()
    done = api.follow(run.id, out)
    returned_us = time.time_ns() // 1000
    assert done.status == "completed"
    assert lines_of(out.getvalue()) == expected()  # every line, in order, once
    assert out.getvalue().endswith(f"run {run.id[:8]} completed (exit status 0)\n")
    # A bound for correctness (not a timing goal): the run's end is noticed.
    assert returned_us - done.stopped < 5_000_000, (returned_us - done.stopped) / 1e6


def test_follow_in_the_ipython_shell(ipython, ticker, capsys, project, monkeypatch):
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    run = api.run(ticker, "n=30")[0]
    capsys.readouterr()
    assert ipython.run_line_magic("guild", f"output {run.id[:8]} --follow") is None
    returned_us = time.time_ns() // 1000
    out = capsys.readouterr().out
    run.refresh()
    assert run.status == "completed"
    assert lines_of(out) == expected(30)
    assert out.rstrip().endswith(f"run {run.id[:8]} completed (exit status 0)")
    assert returned_us - run.stopped < 5_000_000
    with pytest.raises(UsageError, match="--tail or --follow"):
        ipython.run_line_magic("guild", f"output {run.id[:8]} --follow --tail 3")


def test_follow_of_a_staged_run_waits_for_it_and_says_so(ticker, guild_home):
    staged = api.run(ticker, "n=10", stage=True)[0]
    out = io.StringIO()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("run", api.follow(staged.id, out)), daemon=True)
    t.start()
    wait_for(lambda: "waiting for run" in out.getvalue(), message="the follow says it waits")
    assert out.getvalue() == f"waiting for run {staged.id[:8]} to start (it is staged)\n"
    assert staged.refresh().status == "staged"  # following changed nothing
    q = api.queue(run_once=True)
    t.join(60)
    assert not t.is_alive()
    assert result["run"].status == "completed"
    assert lines_of(out.getvalue()) == expected(10)
    assert out.getvalue().endswith(f"run {staged.id[:8]} completed (exit status 0)\n")
    q.join(timeout=30)


def test_follow_of_a_finished_run_prints_it_and_returns(ticker):
    run = api.run(ticker, "n=5", "rate=200", "fail=True")[0]
    api.wait(run, timeout=60)
    out = io.StringIO()
    assert api.follow(run, out).status == "error"
    assert lines_of(out.getvalue()) == expected(5)
    assert out.getvalue().endswith(f"run {run.id[:8]} error (exit status 3)\n")
    assert api.output(run.id, follow=True, stream=io.StringIO()).status == "error"  # the API's twin


def test_cli_output_follow(ticker):
    run = api.run(ticker, "n=20")[0]
    p = cli("output", run.id[:8], "-f", check=0)
    assert lines_of(p.stdout) == expected(20)
    assert "completed" not in p.stdout  # the outcome goes to stderr: stdout is the run's output
    assert p.stderr.strip() == f"run {run.id[:8]} completed (exit status 0)"
    failed = api.run(ticker, "n=3", "rate=200", "fail=True")[0]
    p = cli("output", failed.id[:8], "--follow", check=1)
    assert p.stderr.strip() == f"run {failed.id[:8]} error (exit status 3)"
    p = cli("output", failed.id[:8], "-f", "--tail", "2", check=2)
    assert "--tail or --follow" in p.stderr


def test_output_since_gives_every_byte_once_then_done(ticker):
    staged = api.run(ticker, "n=3", stage=True)[0]
    assert api.output_since(staged.id) == {"text": "", "offset": 0, "status": "staged", "done": False}
    run = api.run(ticker, "n=30")[0]
    text, offset, pieces = "", 0, 0
    deadline = time.monotonic() + 60
    while True:
        got = api.output_since(run.id, offset, limit=64)
        assert got["offset"] == offset + len(got["text"].encode())
        text += got["text"]
        offset = got["offset"]
        pieces += bool(got["text"])
        if got["done"]:
            assert got["status"] == "completed"
            break
        assert got["status"] in ("running", "completed")
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert text == api.output(run.id)
    assert lines_of(text) == expected(30) and pieces > 1
    with pytest.raises(BadInput):
        api.output_since(run.id, -1)


def test_wait_for_a_sweep_returns_its_trials_ended(ticker):
    sweep = api.run(ticker, "n=[3,4,5]", "rate=100")  # in the background, one after another
    done = api.wait(sweep)  # no limit by default
    assert sorted(r.id for r in done) == sorted(r.id for r in sweep)
    assert [r.status for r in done] == ["completed"] * 3
    assert [len(lines_of(api.output(r.id))) for r in sorted(done, key=lambda r: r.flags["n"])] == [3, 4, 5]


def test_wait_timeout_and_bad_input_change_nothing(ticker, guild_home):
    staged = api.run(ticker, "n=3", stage=True)[0]
    before = run_dirs(guild_home)
    with pytest.raises(WaitTimeout, match=staged.id[:8]) as e:
        api.wait(staged, timeout=0.3)
    assert e.value.timeout == 0.3 and staged.refresh().status == "staged"
    with pytest.raises(BadInput, match="unknown status"):
        api.wait(staged, status="finished")
    with pytest.raises(BadInput):
        api.wait(staged, timeout=-1)
    with pytest.raises(BadInput):
        api.wait()
    assert run_dirs(guild_home) == before and staged.refresh().status == "staged"
    assert api.wait(staged, status="staged", timeout=None)[0].id == staged.id


def test_wait_magic_and_cli(ipython, ticker, project, monkeypatch):
    monkeypatch.chdir(project)
    ipython.extension_manager.load_extension("guild_jupyter")
    ipython.register_magics(GuildMagics(ipython))
    run = api.run(ticker, "n=3", "rate=100")[0]
    listing = ipython.run_line_magic("guild", f"wait {run.id[:8]} --timeout 60")
    assert [r.status for r in listing] == ["completed"]
    failed = api.run(ticker, "n=2", "rate=100", "fail=True")[0]
    p = cli("wait", run.id, failed.id, check=1)  # 1: not every run completed
    assert f"{failed.id[:8]}" in p.stdout and "error" in p.stdout
    staged = api.run(ticker, stage=True)[0]
    p = cli("wait", staged.id, "--timeout", "0.2", check=2)
    assert "timed out" in p.stderr and staged.refresh().status == "staged"
    assert os.path.isdir(staged.dir)


class _InterruptAfter(io.StringIO):
    """A stream that raises KeyboardInterrupt (Ctrl-C) once it got ``n`` lines."""

    def __init__(self, n):
        super().__init__()
        self.n = n

    def write(self, text):
        super().write(text)
        if self.getvalue().count("\n") >= self.n:
            raise KeyboardInterrupt


def test_ctrl_c_stops_the_following_not_the_run(ticker, ipython, capsys, project, monkeypatch):
    import signal
    import subprocess
    import sys

    run = api.run(ticker, "n=2000")[0]  # 100 s; stopped at the end
    try:
        note = io.StringIO()
        with pytest.raises(KeyboardInterrupt):
            api.follow(run.id, _InterruptAfter(3), note=note)
        assert note.getvalue() == f"\nstopped following run {run.id[:8]}; it is running\n"
        assert run.refresh().status == "running"

        # In a cell: the magic returns, the run goes on.
        monkeypatch.chdir(project)
        ipython.extension_manager.load_extension("guild_jupyter")
        ipython.register_magics(GuildMagics(ipython))
        real, sys.stdout = sys.stdout, _InterruptAfter(2)
        try:
            assert ipython.run_line_magic("guild", f"output {run.id} --follow") is None
        finally:
            said, sys.stdout = sys.stdout.getvalue(), real
        assert f"stopped following run {run.id[:8]}; it is running" in said

        # In a terminal: a real SIGINT; exit status 130.
        p = subprocess.Popen([sys.executable, "-m", "guild_jupyter", "output", run.id, "-f"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: p.stdout.readline().startswith("line "), message="the CLI follows")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 130 and f"stopped following run {run.id[:8]}; it is running" in err
        assert run.refresh().status == "running"
    finally:
        if run.refresh().status == "running":  # a slow machine may have let it end: keep the real failure
            api.stop(run.id, timeout=15)
