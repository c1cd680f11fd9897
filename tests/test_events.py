"""The events (issue 21 item 2) from real runs and queues: one watcher class
turns successive looks at a store into numbered events, each with the one
sentence every viewer shows, kept so a reload shows them."""

from __future__ import annotations

import io
import re
import textwrap
import threading
import time

import pytest

from conftest import cli, guild, wait_for
from guild_jupyter import api, views
from guild_jupyter.events import KEEP, EventLog

TICKER_PY = textwrap.dedent(
    """\
    import sys, time
    secs = 0.0
    fail = False
    print("loss: 0.5", flush=True)
    time.sleep(secs)
    if fail:
        print("Traceback: the model diverged", flush=True)
        sys.exit(2)
    """
)


@pytest.fixture
def script(project):
    (project / "ticker.py").write_text(TICKER_PY)
    return str(project / "ticker.py")


@pytest.fixture
def watcher(guild_home):
    w = api.EventWatcher(api.monitor())
    assert w.look() == []  # the first look only learns the store
    return w


def _kinds(events):
    return [e["kind"] for e in events]


def look_until(watcher, kind: str, timeout: float = 30.0) -> list[dict]:
    """Looks until an event of ``kind`` came; returns every event seen."""
    seen: list = []

    def came():
        seen.extend(watcher.look())
        return any(e["kind"] == kind for e in seen)

    wait_for(came, timeout=timeout, message=f"a {kind} event")
    return seen


def test_run_ended_events_say_how_each_run_ended(script, project, watcher):
    ok = api.run(script, foreground=True, stream=io.StringIO())[0]
    bad = api.run(script, "fail=yes", foreground=True, stream=io.StringIO())[0]
    events = watcher.look()
    assert _kinds(events) == ["run-ended", "run-ended"] and [e["run"] for e in events] == [ok.id, bad.id]
    done, failed = events
    assert done["level"] == "success" and re.fullmatch(rf"ticker\.py \({ok.id[:8]}\) completed in \d+s", done["text"])
    assert done["tail"] == "" and done["seq"] == 1 and failed["seq"] == 2
    assert failed["level"] == "error" and failed["status_text"] == "error (exit 2)"
    assert re.fullmatch(rf"ticker\.py fail=yes \({bad.id[:8]}\) failed after \d+s \(exit 2\)", failed["text"])
    assert "the model diverged" in failed["tail"]
    assert failed["actions"] == [views.output_action(bad.id)]
    assert watcher.look() == []  # each end is noticed once
    assert watcher.log.since(0) == events and watcher.log.since(1) == [failed] and watcher.log.last == 2

    # Stopped by the user (any front end: api.stop) against the real `guild stop`
    by_you = api.run(script, "secs=60")[0]
    by_guild = started_by_cli(cli("run", "ticker.py", "secs=60", cwd=project, check=0).stdout)
    api.stop(by_you.id, timeout=30)
    guild("stop", "-y", by_guild.id)
    seen: list = []
    wait_for(lambda: seen.extend(watcher.look()) or len(seen) >= 2, timeout=30, message="both ends")
    by = {e["run"]: e for e in seen}
    assert by[by_you.id]["level"] == "info" and by[by_you.id]["status_text"] == "stopped by you"
    assert re.fullmatch(rf"ticker\.py secs=60 \({by_you.id[:8]}\) stopped by you after \d+s", by[by_you.id]["text"])
    assert by[by_guild.id]["level"] == "warning" and by[by_guild.id]["status_text"] == "terminated"
    assert re.fullmatch(rf"ticker\.py secs=60 \({by_guild.id[:8]}\) terminated after \d+s", by[by_guild.id]["text"])


def test_an_unstaged_run_is_no_event_and_a_run_that_ended_before_the_first_look_neither(script, guild_home):
    before = api.run(script, foreground=True, stream=io.StringIO())[0]
    w = api.EventWatcher(api.monitor())
    assert w.look() == []
    (staged,) = api.run(script, stage=True)
    w.look()
    api.unstage(staged.id)
    assert w.look() == [] and w.look() == []
    assert before.id not in {e.get("run") for e in w.log.since(0)}


def test_a_sweep_ends_with_its_counts(script, watcher):
    trials = api.run(script, "fail=[no,yes,no]", stage=True)
    q = api.queue(run_once=True)
    assert q.join(60)
    events = look_until(watcher, "sweep-ended")
    (sweep,) = [e for e in events if e["kind"] == "sweep-ended"]
    assert sweep["counts"] == {"completed": 2, "error": 1} and sweep["level"] == "error"
    assert sweep["text"] == "sweep of 3 runs of ticker.py ended: 1 failed, 2 completed" or \
        sweep["text"] == "sweep of 3 runs of ticker.py ended: 2 completed, 1 failed"
    failed = next(t for t in trials if t.refresh().status == "error")
    assert sweep["ids"] == [t.id for t in sorted(trials, key=lambda t: t.get("initialized"))]
    assert sweep["run"] == failed.id and sweep["actions"] == [views.output_action(failed.id)]
    assert sorted(e["run"] for e in events if e["kind"] == "run-ended") == sorted(t.id for t in trials)
    ended = look_until(watcher, "queue-ended") if "queue-ended" not in _kinds(events) else events
    (qend,) = [e for e in ended if e["kind"] == "queue-ended"]
    assert qend["run"] == q.id and qend["text"] == f"queue {q.id[:8]} · any GPU ended: completed"


def test_queue_events_pause_resume_drain_end(script, watcher):
    q = api.queue(poll_interval=60)
    try:
        watcher.look()
        (long,) = api.run(script, "secs=60", stage=True)
        wait_for(lambda: long.refresh().status == "running", timeout=30, message="the queue starts the run")
        watcher.look()
        api.pause_queue(q)
        (paused,) = look_until(watcher, "queue-paused")
        assert paused["text"] == f"queue {q.id[:8]} · any GPU paused: it starts no staged run until resumed"
        assert paused["run"] == q.id and paused["level"] == "info"
        api.resume_queue(q)
        (resumed,) = look_until(watcher, "queue-resumed")
        assert resumed["text"] == f"queue {q.id[:8]} · any GPU resumed"
        api.drain_queue(q)  # its run still runs: the queue drains, then ends
        (draining,) = look_until(watcher, "queue-draining")
        assert draining["text"] == f"queue {q.id[:8]} · any GPU is draining: it stops once its runs have ended"
        api.stop(long.id, timeout=30)
        events = look_until(watcher, "queue-ended")
        assert _kinds(events)[-1] == "queue-ended"
        assert events[-1]["text"] == f"queue {q.id[:8]} · any GPU ended: completed" and events[-1]["level"] == "success"
        assert [e["run"] for e in events if e["kind"] == "run-ended"] == [long.id]
        seqs = [e["seq"] for e in watcher.log.since(0)]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        q.stop(timeout=20)


def test_retries_staged_by_a_queue_and_by_hand(script, watcher):
    (first,) = api.run(script, "fail=yes", stage=True, retries=1)
    q = api.queue(run_once=True)
    assert q.join(60)
    events = look_until(watcher, "retry-staged")
    (by_queue,) = [e for e in events if e["kind"] == "retry-staged"]
    chain = [r for r in api.runs() if r.get("retry_of") == first.id]
    assert len(chain) == 1
    assert by_queue["run"] == chain[0].id and by_queue["retry_of"] == first.id
    assert by_queue["text"] == f"ticker.py fail=yes ({chain[0].id[:8]}) staged: retry 1/1 of {first.id[:8]}"
    # By hand: the queue's retry, which failed too with no retry left, once more (its
    # failure's retry is staged already, so the first run takes none)
    wait_for(lambda: chain[0].refresh().status == "error", timeout=60, message="the retry failing too")
    before = sorted(api.resolve_store(None).run_ids())
    with pytest.raises(api.WrongState, match=f"run {first.id[:8]} was retried already: run {chain[0].id[:8]}"):
        api.retry(first.id)
    assert sorted(api.resolve_store(None).run_ids()) == before
    (by_hand,) = api.retry(chain[0].id)
    events = look_until(watcher, "retry-staged")
    (event,) = [e for e in events if e["kind"] == "retry-staged"]
    assert event["run"] == by_hand.id and by_hand.get("retry_attempt") == 2
    assert event["text"] == f"ticker.py fail=yes ({by_hand.id[:8]}) staged: retry 2 of {first.id[:8]}"
    assert by_hand.get("retry_origin") == first.id and chain[0].refresh().get("retried_as") == by_hand.id
    with pytest.raises(api.WrongState, match="only a failed run can be retried"):
        api.retry(by_hand.id)  # staged, not failed
    rows = {r["id"]: r for g in api.monitor(page_size=50).snapshot()["groups"] for r in g["rows"]}
    assert "retry" not in [a["verb"] for a in rows[first.id]["actions"]]  # retried already: no second one
    assert "retry" not in [a["verb"] for a in rows[chain[0].id]["actions"]]


def test_the_log_keeps_the_recent_events_and_waits_for_new_ones():
    log = EventLog()
    assert KEEP >= 200 and log.last == 0 and log.since(0) == []
    log.add([{"kind": "run-ended", "text": str(i)} for i in range(KEEP + 5)])
    kept = log.since(0)
    assert len(kept) == KEEP and kept[0]["seq"] == 6 and kept[-1]["seq"] == KEEP + 5 == log.last
    assert log.since(log.last) == [] and log.since(log.last + 100) == []
    t0 = time.monotonic()
    assert log.wait(log.last, 0.2) == [] and time.monotonic() - t0 >= 0.2
    later = threading.Timer(0.2, lambda: log.add([{"kind": "queue-ended", "text": "x"}]))
    later.start()
    (event,) = log.wait(log.last, 30)
    assert event["kind"] == "queue-ended" and event["seq"] == KEEP + 6
    assert EventLog().boot != log.boot  # a new log (a server start) is told apart
    answer = log.answer(KEEP + 5)
    assert answer == {"events": [event], "last": KEEP + 6, "boot": log.boot}


def test_the_servers_thread_sees_runs_guild_itself_ran(script, project, guild_home):
    """A run of the real ``guild run`` touches nothing of ours when it ends:
    the thread's pass over active runs (every ``settle`` seconds) finds it."""
    from guild_jupyter.events import WatchThread

    changes = []
    w = api.EventWatcher(api.monitor())
    thread = WatchThread(w, tick=0.05, settle=0.3, on_change=lambda: changes.append(w.last)).start()
    try:
        wait_for(lambda: w.moved, timeout=10, message="the first look")
        guild("run", "ticker.py", "secs=1", "-y", cwd=project)
        (run,) = [r for r in api.runs() if r.op_name == "ticker.py"]
        event = wait_for(lambda: next((e for e in w.log.since(0) if e.get("run") == run.id), None), timeout=30,
                         message="the end of Guild's own run")
        assert event["kind"] == "run-ended" and event["level"] == "success" and event["text"].startswith("ticker.py ")
        assert changes and changes[-1] >= event["seq"]  # the long-polls were woken
    finally:
        thread.stop()
    assert not thread.alive


def started_by_cli(stdout: str):
    """The run ``guild-jupyter run`` printed (``[1:ab12cd34]  op ...``)."""
    short = re.search(r"\[\d+:([0-9a-f]{8})\]", stdout).group(1)
    return api.resolve_store(None).resolve(short, indices=False)
