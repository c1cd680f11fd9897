"""The one view model (views.py) and the display types (display.py), on a
real temporary store: what a person reads in every front end."""

from __future__ import annotations

import io

from guild_jupyter import api, views
from guild_jupyter.display import QueueList, RunListing, Trials


def test_varying_flags_and_flags_text():
    runs = [{"batch": 16, "epochs": 40, "lr": 0.001}, {"batch": 32, "epochs": 40, "lr": 0.001},
            {"batch": 16, "epochs": 40, "lr": 0.0001}]
    assert views.varying_flags(runs) == ["batch", "lr"]
    assert views.varying_flags(runs[:1]) == []
    assert views.varying_flags([{"a": 1}, {"a": 1, "b": 2}]) == ["b"]  # missing counts as varying
    assert views.varying_flags([{"a": 1}, {"a": 1.0}]) == ["a"]  # 1 and 1.0 read differently
    assert views.flags_text(runs[0], first=["lr", "batch"]) == "lr=0.001 batch=16 epochs=40"


def test_one_wording_for_any_gpu():
    assert views.ANY_GPU == "any GPU" == views.gpus_text(None) == views.gpus_phrase(None)
    assert views.gpus_phrase("1") == "GPU 1" and views.gpus_phrase("0,1") == "GPUs 0,1"


def test_run_rows_times_follow_the_order_and_unstaged_has_no_elapsed(project, guild_home):
    done = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=io.StringIO())[0]
    gone = api.run(str(project / "train.py"), "lr=[0.5,0.6]", stage=True, label="grid")
    api.unstage(gone[0].id)
    done, unstaged = done.refresh(), gone[0].refresh()

    row = views.run_row(done, order="ended")
    assert (row["status"], row["time_kind"], row["time"]) == ("completed", "ended", done.stopped)
    assert row["elapsed"] is not None and row["elapsed_text"]
    row = views.run_row(done)  # Guild's order: by start
    assert (row["time_kind"], row["time"]) == ("started", done.started)

    row = views.run_row(unstaged, order="ended", varying=["lr"])
    assert row["status"] == "unstaged" and row["guild_status"] == "terminated"
    assert row["elapsed"] is None and row["elapsed_text"] == ""
    assert (row["time_kind"], row["time"]) == ("ended", unstaged.stopped)  # when it was taken off the queue
    assert views.run_row(unstaged)["time_kind"] == "staged"
    lr = views.format_flag(unstaged.flags["lr"])
    assert row["flags_text"].startswith(f"lr={lr} ") and row["varying_text"] == f"lr={lr}"
    assert row["label_text"] == "grid" and row["gpus_text"] == "any GPU"
    assert views.label_text("lr=0.5 epochs=2", {"lr": 0.5, "epochs": 2}) == ""  # only repeats the flags


def test_a_label_never_hides_the_flags_and_varying_flags_come_first(project, guild_home):
    api.run(str(project / "train.py"), "lr=[0.1,0.2]", "epochs=[1,2]", stage=True, label="grid")
    listing = RunListing(api.runs())
    text = str(listing)
    for line in text.splitlines():
        assert "(grid)" in line and line.index("lr=") < line.index("name=") and "epochs=" in line
    html = listing._repr_html_()
    assert "<th>flags</th>" in html and "<b class='gj-vary'>lr=0.1</b>" in html and "grid" in html
    trials = Trials(api.run(str(project / "train.py"), "lr=[1,2]", dry_run=True))
    assert str(trials).splitlines()[0].startswith("trial 1: lr=1 ")


def test_delete_says_moved_to_trash_with_the_runs_real_op(project, guild_home):
    (run,) = api.run(str(project / "train.py"), "epochs=1", foreground=True, stream=io.StringIO())
    deleted = api.delete(run.id)
    text = str(RunListing(deleted))  # as %guild delete shows it
    assert text.splitlines()[0].startswith("moved to Guild's trash")
    assert f"{run.id[:8]}]  train.py  " in text and "completed" in text and "?" not in text


def test_a_queue_reads_as_a_sentence(project, guild_home):
    q = api.queue(run_once=True)
    try:
        assert q.join(30)
        text = repr(q)
        assert text.startswith(f"queue {q.id[:8]} · thread (this kernel) · any GPU · ") and "run-once" in text
        listing = api.queues(include_finished=True)
        assert isinstance(listing, QueueList) and str(listing).startswith(f"queue {q.id[:8]}")
        assert "<th>gpus</th>" in listing._repr_html_() and "any GPU" in listing._repr_html_()
        assert q in api.queue_registry.list()
    finally:
        q.stop()
