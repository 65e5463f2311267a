"""throttle.py's bookkeeping: the budget left in the rate limit's window, its end, and the
requests in flight, from each response's headers (no request sent, no time waited)."""

import pytest
import requests

from aiclicks_pipeline.sync import SyncStopped
from aiclicks_pipeline.throttle import WINDOW_S, RateLimitThrottle

from ..support import http_date


def rate_limited_response(remaining, reset, date_epoch):
    response = requests.Response()
    response.status_code = 200
    response.headers.update({
        "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset), "Date": http_date(date_epoch),
    })
    return response


def test_no_wait_is_longer_than_a_window():
    local = [1000.0]
    throttle = RateLimitThrottle(clock=lambda: local[0])
    throttle.acquire()
    # clocks that agree, and a reset an hour away (a server that misstates it)
    response = rate_limited_response(0, 4600, 1000.0)
    reading = throttle.server_clock.observe(response.headers["Date"], 999.9, 1000.0)
    throttle.release(response, reading)
    assert throttle.reset_at == pytest.approx(1000.0 + WINDOW_S)


def test_the_earliest_estimate_of_a_windows_end_wins_and_a_new_window_is_told_apart():
    local = [1000.0]
    throttle = RateLimitThrottle(clock=lambda: local[0])
    offset = 500.0  # the server's clock is ahead: every estimate goes through Date
    for received, remaining in ((1000.1, 50), (1000.45, 49), (1000.8, 48)):
        local[0] = received
        throttle.acquire()
        response = rate_limited_response(remaining, 1060 + int(offset), received + offset)
        throttle.release(response, throttle.server_clock.observe(
            response.headers["Date"], received - 0.01, received))
    # the window ends at 1060 local; each estimate is late by the Date's fraction, the best
    # one by the smallest
    assert 1060.0 <= throttle.reset_at <= 1060.25
    assert throttle.remaining == 48
    # a response of the next window (its end a window later) starts a new count
    local[0] = 1060.3
    throttle.acquire()
    response = rate_limited_response(58, 1120 + int(offset), local[0] + offset)
    throttle.release(response, throttle.server_clock.observe(response.headers["Date"], 1060.29, 1060.3))
    assert 1120.0 <= throttle.reset_at <= 1121.0 and throttle.remaining == 58


def test_a_window_is_used_to_its_last_request_once_nothing_is_in_flight():
    """Requests sent together are counted in any order: while they are in flight the throttle
    takes each `Remaining` less everything in flight (safe, but short of the server's count);
    once all are answered, the lowest `Remaining` is what is left, to the request."""
    local = [1000.0]
    throttle = RateLimitThrottle(clock=lambda: local[0])

    def answer(remaining, received):
        local[0] = received
        response = rate_limited_response(remaining, 1060, received)
        throttle.release(response, throttle.server_clock.observe(
            response.headers["Date"], received - 0.01, received))

    throttle.acquire()
    answer(59, 1000.1)
    for _ in range(3):
        throttle.acquire()
    # counted 58, 57, 56; the last one counted is answered first, then the others
    answer(56, 1000.3)
    assert throttle.remaining == 54  # 56 less the two still in flight: maybe counted, maybe not
    answer(58, 1000.31)
    answer(57, 1000.32)
    assert throttle.in_flight == 0 and throttle.remaining == 56

    # a request that failed unseen may have been counted: the count stays short
    throttle.acquire()
    throttle.acquire()
    answer(55, 1000.4)
    throttle.release(None)
    assert throttle.in_flight == 0 and throttle.remaining == 54



def answer(throttle, response, sent, received):
    """A request sent at `sent` answered at `received` (local times)."""
    reading = throttle.server_clock.observe(response.headers["Date"], sent, received)
    throttle.release(response, reading)


def test_until_a_response_tells_the_budget_one_request_goes_at_a_time():
    throttle = RateLimitThrottle(clock=lambda: 1000.0)
    assert throttle.acquire() == 0.0
    assert throttle.remaining is None and throttle.in_flight == 1
    answer(throttle, rate_limited_response(59, 1060, 1000.0), 999.9, 1000.0)
    assert throttle.in_flight == 0 and throttle.limit == 60 and throttle.remaining == 59
    throttle.acquire()
    assert throttle.remaining == 58 and throttle.in_flight == 1


def test_a_429_empties_the_budget_until_retry_after_then_a_new_window_has_the_limit():
    local = [1000.0]
    throttle = RateLimitThrottle(clock=lambda: local[0])
    throttle.acquire()
    answer(throttle, rate_limited_response(10, 1060, 1000.0), 999.9, 1000.0)
    throttle.acquire()
    limited = requests.Response()
    limited.status_code = 429
    limited.headers.update({"Retry-After": "5", "Date": http_date(1000.0)})
    throttle.release(limited)
    assert throttle.remaining == 0 and throttle.reset_at >= 1005.0
    local[0] = throttle.reset_at + 0.01  # the window has turned: no wait
    assert throttle.acquire() == 0.0
    assert throttle.remaining == 59


def test_a_wait_the_server_asked_for_is_slept_and_counted_as_held_by_the_limit():
    local = [1000.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        local[0] += seconds

    throttle = RateLimitThrottle(clock=lambda: local[0], sleep=sleep)
    assert throttle.sit_out(3.0) == 3.0 and slept == [3.0]
    assert throttle.waiting_s() == 0.0


def test_a_cancelled_throttle_stops_every_later_request():
    throttle = RateLimitThrottle(clock=lambda: 1000.0)
    throttle.cancel()
    with pytest.raises(SyncStopped):
        throttle.acquire()
    assert throttle.in_flight == 0
