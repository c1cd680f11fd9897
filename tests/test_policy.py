"""The queue's pure decisions: the seed's rules, without processes or files."""

from __future__ import annotations

import pytest

from guild_jupyter.engine import policy
from guild_jupyter.engine.config import parse_queue_flags
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
