"""fetch_ahead.in_order: a few fetches at once, handed on in the order given; an error at its
item's turn; the fetches in progress told to stop when the caller stops."""

import threading

import pytest

from aiclicks_pipeline.fetch_ahead import in_order


def test_results_come_in_the_order_given_however_the_fetches_finish():
    # the first item's fetch ends last: the others were fetched meanwhile, and wait their turn
    started = []
    release_first = threading.Event()
    all_started = threading.Event()

    def fetch(item, stop):
        started.append(item)
        if len(started) == 3:
            all_started.set()
        if item == 0:
            assert all_started.wait(5), "the next items were not fetched while the first was"
            release_first.set()
        return item * 10

    assert list(in_order(range(5), fetch, at_once=3)) == [(i, i * 10) for i in range(5)]
    assert release_first.is_set()


def test_never_more_than_at_once_fetches_run_together():
    running, most = 0, 0
    lock = threading.Lock()

    def fetch(item, stop):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.005)
        with lock:
            running -= 1
        return item

    assert [i for i, _ in in_order(range(20), fetch, at_once=4)] == list(range(20))
    assert 1 < most <= 4


def test_one_at_a_time_fetches_in_the_callers_thread():
    threads = set()

    def fetch(item, stop):
        threads.add(threading.current_thread())
        return item

    assert list(in_order("abc", fetch, at_once=1)) == [("a", "a"), ("b", "b"), ("c", "c")]
    assert threads == {threading.current_thread()}


def test_an_error_is_raised_at_its_items_turn_after_the_items_before_it():
    def fetch(item, stop):
        if item == 2:
            raise ValueError("item 2 failed")
        return item

    handed = []
    with pytest.raises(ValueError, match="item 2 failed"):
        for item, _ in in_order(range(6), fetch, at_once=3):
            handed.append(item)
    assert handed == [0, 1]


def test_stopping_early_tells_the_fetches_in_progress_and_drops_those_not_started():
    stops = []
    fetched = []
    blocking = threading.Event()

    def fetch(item, stop):
        fetched.append(item)
        if item >= 1:
            # a fetch in progress ends between its requests once told
            assert stop.wait(5)
            stops.append(item)
        blocking.set()
        return item

    walk = in_order(range(100), fetch, at_once=3)
    assert next(walk) == (0, 0)
    walk.close()
    for _ in range(100):  # the fetches in progress were told; they end promptly
        if len(stops) == len([i for i in fetched if i >= 1]):
            break
        threading.Event().wait(0.01)
    assert stops and sorted(stops) == sorted(i for i in fetched if i >= 1)
    assert len(fetched) <= 4  # the first three, and the one started as the first was handed on
