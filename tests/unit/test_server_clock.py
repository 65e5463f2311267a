"""server_clock.py: the server's clock estimated from its `Date` headers, and a rate limit's
reset (on the server's clock) turned into local time."""

import math

import pytest

from aiclicks_pipeline.server_clock import ServerClock

from ..support import http_date


def test_the_server_clock_narrows_its_offset_and_never_runs_ahead():
    local = [1000.0]
    server_clock = ServerClock(clock=lambda: local[0])
    offset = 30.37
    for step in range(40):  # responses arriving at various fractions of a second
        sent = 1000.0 + step * 0.13
        received = sent + 0.01
        server_clock.observe(http_date(sent + 0.005 + offset), sent, received)
    local[0] = 1010.0
    assert not server_clock.agrees
    assert offset - 0.05 <= server_clock.offset <= offset
    assert server_clock.time() <= local[0] + offset
    assert server_clock.now().tzinfo is not None


def test_clocks_within_a_second_or_two_agree():
    server_clock = ServerClock(clock=lambda: 1000.0)
    reading = server_clock.observe(http_date(1000.7), 1000.0, 1000.1)
    assert server_clock.agrees and server_clock.offset == 0.0
    # one response: the server's clock is between 0.1 s behind ours and a second ahead
    assert server_clock.local_span(1042, reading) == pytest.approx((1041.0, 1042.1))


@pytest.mark.parametrize("offset", [-1.5, -0.6, 0.0, 0.4, 1.5])
def test_a_reset_of_an_agreeing_clock_is_never_early_and_late_by_a_response_time(offset):
    """Clocks a second or so apart are taken to agree; a reset believed as stated was early
    by as much as the server's clock was behind ours."""
    server_clock = ServerClock()
    window_end = 1061.3  # local time the server's window ends
    for step in range(30):  # responses at various fractions of a second, 20 ms each
        sent = 1000.0 + step * 0.37
        reading = server_clock.observe(http_date(sent + 0.01 + offset), sent, sent + 0.02)
    assert server_clock.agrees
    reset = math.ceil(window_end + offset)  # what the server states
    stated_late = reset - (window_end + offset)
    assert window_end <= server_clock.local_time(reset, reading) <= window_end + stated_late + 0.1


@pytest.mark.parametrize("offset", [30.0, -30.0, 3600.25])
def test_a_reset_in_local_time_is_never_early_and_at_most_a_second_late(offset):
    server_clock = ServerClock()
    window_end = 1060.0  # local time the server's window ends
    for sent in (1000.0, 1000.3, 1000.6, 1000.9, 1001.2):
        received = sent + 0.02
        server_at = sent + 0.01 + offset
        reading = server_clock.observe(http_date(server_at), sent, received)
        reset = math.ceil(window_end + offset)  # what the server states
        local_reset = server_clock.local_time(reset, reading)
        assert window_end <= local_reset <= window_end + (reset - (window_end + offset)) + 1.05


def test_a_frozen_server_clock_starts_the_estimate_over():
    server_clock = ServerClock()
    server_clock.observe(http_date(5000.0), 100.0, 100.1)
    server_clock.observe(http_date(5000.0), 102.0, 102.1)  # 2 s later, the same Date
    assert server_clock.offset == pytest.approx(5000.0 - 102.1)

