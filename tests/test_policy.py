"""The queue's pure decisions: the seed's rules, without processes or files."""

from __future__ import annotations

import pytest

from guild_jupyter.queueing import policy
from guild_jupyter.queueing.config import parse_queue_flags
from guild_jupyter.errors import BadInput

S = policy.StagedRun
Q = policy.QueueConfig


def test_oldest_first_and_one_at_a_time():
    staged = [S("a", None, 1), S("b", None, 2)]
    assert policy.next_run(staged, Q(), busy=False).start.id == "a"
    assert policy.next_run(staged, Q(), busy=True).start is None


@pytest.mark.parametrize(
    "run_gpus, queue_gpus, starts, assigned",
    [
        (None, None, True, None),
        ("0", None, False, None),
        (None, "0", True, "0"),
        ("0", "0", True, None),
        ("1", "0", False, None),
        ("0,1", "0,1", True, None),
        ("0", "0,1", False, None),
    ],
)
def test_gpu_affinity(run_gpus, queue_gpus, starts, assigned):
    d = policy.next_run([S("r", run_gpus)], Q(gpus=queue_gpus), busy=False)
    assert (d.start is not None) == starts
    assert d.assign_gpus == assigned
    if not starts:
        assert d.skipped and d.skipped[0][0] == "r"


def test_skips_mismatched_and_takes_next():
    d = policy.next_run([S("pinned", "1"), S("free", None)], Q(gpus="0"), busy=False)
    assert d.start.id == "free" and d.assign_gpus == "0"
    assert [s[0] for s in d.skipped] == ["pinned"]


def test_wait_for_running():
    staged = [S("a", None)]
    d = policy.next_run(staged, Q(wait_for_running=True), busy=False, running_others=["x"])
    assert d.start is None and d.blocked_by == ("x",)
    assert policy.next_run(staged, Q(wait_for_running=False), False, ["x"]).start.id == "a"
    assert policy.next_run(staged, Q(wait_for_running=True), False, []).start.id == "a"


def test_waiting_reasons():
    r = S("r", "2")
    assert policy.waiting_reason(r, [], []) == "no queue is running"
    qs = [policy.QueueView("q", "0", False, False)]
    assert policy.waiting_reason(r, qs, []) == "no queue serves runs for GPU 2"
    assert policy.waiting_reason(S("u", None), [], []) == "no queue is running"
    assert policy.waiting_reason(S("p", "0,1"), qs, []) == "no queue serves runs for GPUs 0,1"
    # a pinned queue also starts unpinned runs
    assert policy.waiting_reason(S("u", None), [policy.QueueView("q", "1", False, False)], []) == "next to start"
    busy = [policy.QueueView("q1234567890", "1", False, True)]
    assert policy.waiting_reason(S("u", None), busy, []) == "waiting for queue q1234567 (GPU 1) to finish its run"
    both = busy + [policy.QueueView("other", None, False, True)]
    assert policy.waiting_reason(S("u", None), both, []) == (
        "waiting for queues q1234567 (GPU 1), other (any GPU) to finish their runs")
    wfr = [policy.QueueView("q", None, True, False)]
    assert policy.waiting_reason(S("u", None), wfr, ["x"]) == "waiting for running runs to end (wait-for-running)"
    assert policy.waiting_reason(S("u", None), wfr, [], ahead=2) == "2 staged runs ahead of it"
    assert policy.waiting_reason(S("u", None), wfr, [], ahead=1) == "1 staged run ahead of it"
    # "any GPU" is one wording everywhere
    assert policy.QueueConfig().describe() == policy.ANY_GPU == "any GPU"
    assert policy.QueueConfig(gpus="0,1").describe() == "GPUs 0,1"


def test_parse_queue_flags():
    c = parse_queue_flags(["gpus=0,1", "wait-for-running=yes", "run-once=no", "poll-interval=2.5"])
    assert c == Q(gpus="0,1", wait_for_running=True, run_once=False, poll_interval=2.5)
    assert parse_queue_flags([], run_once=True) == Q(run_once=True)


@pytest.mark.parametrize(
    "args",
    [["foo=1"], ["gpus=a"], ["gpus=-1"], ["poll-interval=0"], ["poll-interval=-3"], ["poll-interval=x"],
     ["run-once=maybe"], ["wait-for-running=2"], ["gpus"]],
)
def test_parse_queue_flags_rejects(args):
    with pytest.raises(BadInput):
        parse_queue_flags(args)


# -- GPU slots (gpus=auto) --------------------------------------------------------------

G = policy.GpuState
GiB = 2**30
AUTO2 = Q(gpus="auto", per_gpu=2)


def test_auto_queue_gives_the_least_used_gpu_with_a_free_slot():
    staged = [S("a", None, 1), S("b", None, 2)]
    d = policy.next_run(staged, AUTO2, busy=False, gpus=[G("0", 2), G("1", 1), G("2", 1)])
    assert d.start.id == "a" and d.assign_gpus == "1"  # GPU 0 is full; 1 and 2 tie: the lower index
    d = policy.next_run(staged, AUTO2, busy=False, gpus=[G("0", 1), G("1", 0)])
    assert d.assign_gpus == "1"
    d = policy.next_run(staged, AUTO2, busy=False, gpus=[G("0", 2), G("1", 2)])
    assert d.start is None and [h[0] for h in d.held] == ["a", "b"] and not d.skipped
    assert "GPU 0 has 2 of 2 slot(s) in use" in d.held[0][1]


def test_auto_n_takes_n_free_gpus_at_once_and_younger_runs_fit_meanwhile():
    staged = [S("two", "auto:2", 1), S("one", None, 2)]
    gpus = [G("0", 1), G("1", 2), G("2", 0)]
    d = policy.next_run(staged, AUTO2, busy=False, gpus=gpus)
    assert d.start.id == "two" and d.assign_gpus == "2,0"  # the emptier first
    d = policy.next_run(staged, AUTO2, busy=False, gpus=[G("0", 2), G("1", 2), G("2", 0)])
    assert d.start.id == "one" and d.assign_gpus == "2" and d.held[0][0] == "two"
    # more GPUs than the queue serves: never, so skipped rather than held
    d = policy.next_run([S("four", "auto:4")], AUTO2, busy=False, gpus=gpus)
    assert d.start is None and d.skipped[0][0] == "four" and not d.held


def test_memory_and_utilisation_rules():
    cfg = Q(gpus="auto", per_gpu=2, min_free_memory=4 * GiB, max_util=50)
    gpus = [G("0", 0, free_memory=1 * GiB, utilization=0), G("1", 0, 20 * GiB, 90), G("2", 1, 8 * GiB, 50)]
    d = policy.next_run([S("r", None)], cfg, busy=False, gpus=gpus)
    assert d.assign_gpus == "2"
    d = policy.next_run([S("r", None)], cfg, busy=False, gpus=gpus[:2])
    assert d.start is None and "1.0 GiB free" in d.held[0][1] and "90% busy" in d.held[0][1]
    # unknown utilisation (a MIG device) does not hold a run back; unknown memory does
    assert policy.gpu_unfit(G("0", 0, 8 * GiB, None), cfg) is None
    assert policy.gpu_unfit(G("0", 0, None, 0), cfg) == "GPU 0: free memory unknown"


def test_pinned_runs_in_an_auto_queue_respect_slots():
    cfg = Q(gpus="auto:0,1", per_gpu=1)
    assert policy.next_run([S("p", "1")], cfg, False, gpus=[G("0"), G("1")]).start.id == "p"
    assert policy.next_run([S("p", "1")], cfg, False, gpus=[G("0"), G("1")]).assign_gpus is None
    d = policy.next_run([S("p", "1")], cfg, False, gpus=[G("0"), G("1", 1)])
    assert d.start is None and d.held[0][0] == "p"
    d = policy.next_run([S("p", "3")], cfg, False, gpus=[G("0"), G("1")])
    assert d.skipped == (("p", "run is pinned to GPUs 3, queue serves 0,1"),)
    # gpus=auto (every GPU): a run pinned to a GPU it does not serve is skipped, never held
    d = policy.next_run([S("p", "GPU-8f3c")], Q(gpus="auto"), False, gpus=[G("0"), G("1")])
    assert d.skipped == (("p", "run is pinned to GPUs GPU-8f3c, queue serves 0,1"),) and not d.held


def test_auto_runs_only_in_auto_queues():
    for q in (Q(), Q(gpus="0")):
        d = policy.next_run([S("a", "auto:2")], q, busy=False)
        assert d.start is None and "only a gpus=auto queue" in d.skipped[0][1]


def test_slot_counts():
    assert Q().slot_count() == 1
    assert Q(max_running=4).slot_count() == 4
    assert Q(gpus="auto", per_gpu=2).slot_count(3) == 6
    assert Q(gpus="auto", per_gpu=2, max_running=2).slot_count(3) == 2


def test_parse_slot_flags():
    c = parse_queue_flags(["gpus=auto:0,2", "per-gpu=2", "min-free-memory=20GiB", "max-util=50", "max-running=3"])
    assert c == Q(gpus="auto:0,2", per_gpu=2, min_free_memory=20 * GiB, max_util=50, max_running=3)
    assert parse_queue_flags(["gpus=AUTO", "min-free-memory=1.5G"]).min_free_memory == int(1.5 * GiB)
    assert parse_queue_flags(["gpus=auto", "min-free-memory=8GB"]).min_free_memory == 8 * 10**9


@pytest.mark.parametrize(
    "args, says",
    [(["max-running=0"], "max-running"), (["gpus=auto", "per-gpu=0"], "per-gpu"),
     (["gpus=auto", "min-free-memory=lots"], "min-free-memory"), (["gpus=auto", "max-util=150"], "max-util"),
     (["per-gpu=2"], "gpus=auto"), (["gpus=0", "max-util=10"], "gpus=auto"), (["gpus=auto:x"], "auto:LIST"),
     (["max-running=two"], "max-running")],
)
def test_parse_slot_flags_rejects(args, says):
    with pytest.raises(BadInput, match=says):
        parse_queue_flags(args)


# -- priorities and dependencies (SPEC 12) ------------------------------------------------------------


def test_highest_priority_first_then_oldest():
    staged = [S("old", None, 1), S("urgent", None, 5, priority=3), S("low", None, 0, priority=-1),
              S("mid", None, 2), S("urgent2", None, 4, priority=3)]
    assert [r.id for r in policy.start_order(staged)] == ["urgent2", "urgent", "old", "mid", "low"]
    assert policy.next_run(staged, Q(), busy=False).start.id == "urgent2"
    # GPU rules apply in that order: an urgent run no queue slot fits does not block the others
    pinned = [S("urgent", "1", 9, priority=5), S("plain", None, 1)]
    d = policy.next_run(pinned, Q(gpus="0"), busy=False)
    assert d.start.id == "plain" and [s[0] for s in d.skipped] == ["urgent"]
    assert policy.start_key(5, 10, "b") < policy.start_key(5, 10, "c") < policy.start_key(0, 1, "a")


D = policy.Dependency
A, B, C = "a" * 32, "b" * 32, "c" * 32


@pytest.mark.parametrize("deps, kind, reason", [
    ([], "ready", ""),
    ([D(A, "completed"), D(B, "completed")], "ready", ""),
    ([D(A, "completed"), D(B, "running")], "wait", ""),
    ([D(A, "held"), D(B, "staged")], "wait", ""),
    ([D(A, "running"), D(B, "error")], "failed", "dependency bbbbbbbb failed"),  # a failure wins over waiting
    ([D(A, "terminated")], "failed", "dependency aaaaaaaa failed (terminated)"),
    ([D(A, "unstaged")], "failed", "dependency aaaaaaaa failed (unstaged: it never started)"),
    ([D(A, "deleted")], "failed", "dependency aaaaaaaa was deleted"),
    ([D(A, "error", True), D(B, "deleted", True), D(C, "completed")], "ready", ""),  # --after-any: any end
    ([D(A, "error", True), D(B, "pending", True)], "wait", ""),
])
def test_after_verdict(deps, kind, reason):
    v = policy.after_verdict(deps)
    assert (v.kind, v.reason) == (kind, reason)
    assert [d.id for d in v.waiting] == ([d.id for d in deps if d.state not in policy.ENDED_STATES]
                                         if kind == "wait" else [])


def test_after_text():
    assert policy.after_text([]) == ""
    assert policy.after_text([D(A, "running")]) == "after aaaaaaaa (running)"
    assert policy.after_text([D(A, "running"), D(B, "held")]) == "after aaaaaaaa (running), bbbbbbbb (waiting)"
    many = [D(f"{i:x}" * 32, "staged") for i in range(1, 7)]
    assert policy.after_text(many) == "after 11111111 (staged), 22222222 (staged), 33333333 (staged) and 3 more"
