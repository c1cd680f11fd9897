"""The cycle collector paused while a listing builds its objects
(``store.gc_pause``): on again afterwards, whatever happened inside."""

from __future__ import annotations

import gc
import threading

import pytest

from guild_jupyter import api
from guild_jupyter.store.gc_pause import paused


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_nested_pauses_restore_the_collector_only_at_the_outermost():
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_restores_it():
    with pytest.raises(ZeroDivisionError):
        with paused():
            1 / 0
    assert gc.isenabled()


def test_two_threads_pausing_at_once_leave_it_on():
    inside, release = threading.Event(), threading.Event()

    def other():
        with paused():
            inside.set()
            release.wait(10)

    t = threading.Thread(target=other)
    t.start()
    assert inside.wait(10)
    with paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread is still inside
    release.set()
    t.join(10)
    assert gc.isenabled()


def test_listings_leave_the_collector_on(project, guild_home):
    runs = api.run(str(project / "train.py"), "lr=[0.1,0.2]", stage=True)
    assert gc.isenabled()
    listed = api.runs()
    assert [r.id for r in listed] == [r.id for r in runs]
    assert [row["id"] for row in listed.to_json()] == [r.id for r in runs]
    assert str(listed).count("staged") == 2
    assert gc.isenabled()
    with pytest.raises(api.BadInput):
        api.runs(limit=0)
    assert gc.isenabled()
