"""The fixed-window rate limit on real time: headers, 429s, recovery, what counts."""

import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from sandbox_support import START, Client

from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import ERROR_DETAILS

LIMIT, WINDOW = 5, 2.0


@pytest.fixture
def limited():
    with run_sandbox(seed=7, start=START, frozen=True, rate_limit=LIMIT, rate_window=WINDOW) as box:
        # Start early in a window so a test's burst of requests does not straddle a reset.
        if WINDOW - time.time() % WINDOW < 1.2:
            time.sleep(WINDOW - time.time() % WINDOW)
        yield box


def remaining(response) -> int:
    return int(response.headers["X-RateLimit-Remaining"])


def test_429_with_retry_after_and_recovery(limited):
    client = Client(limited)
    responses = [client.get("domains") for _ in range(LIMIT)]
    assert [remaining(r) for r in responses] == [4, 3, 2, 1, 0]
    assert all(r.headers["X-RateLimit-Limit"] == "5" for r in responses)
    # the reset is on the sandbox's (frozen) clock, like its Date: their difference is what is
    # left of the real-time window
    reset = int(responses[-1].headers["X-RateLimit-Reset"])
    date = parsedate_to_datetime(responses[-1].headers["Date"]).timestamp()
    assert date == datetime.fromisoformat(START.replace("Z", "+00:00")).timestamp()
    assert 0 < reset - date <= WINDOW

    refused = client.get("domains")
    assert refused.status_code == 429
    assert refused.json() == {"detail": ERROR_DETAILS[429]}
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW and refused.headers["X-Cache"] == "BYPASS"
    assert limited.stats.rate_limited["real"] == 1

    deadline = time.monotonic() + 3 * WINDOW
    while client.get("domains").status_code == 429:  # honour Retry-After, bounded
        assert time.monotonic() < deadline, "the window never reset"
        time.sleep(0.05)


def test_cache_hits_validate_and_4xx_count_but_5xx_do_not(limited):
    client = Client(limited)
    assert remaining(client.get("domains")) == 4
    assert client.get("domains").headers["X-Cache"] == "HIT"
    limited.fail_next("500")
    failed = client.get("domains")
    assert failed.status_code == 500 and remaining(failed) == 3  # refunded
    assert remaining(client.get("validate")) == 2
    assert client.data("validate")["rate_limit"]["remaining"] == 1
    assert remaining(client.get("prompts")) == 0  # a 400 counts too
    assert client.get("domains").status_code == 429


def test_injected_429_bursts_count_and_differ_from_the_real_limit(sandbox):
    sandbox.set_faults(burst_429_every=3, burst_429_len=2, burst_retry_after=4)
    client = Client(sandbox)
    statuses = [client.get("domains").status_code for _ in range(10)]
    assert statuses == [200, 200, 200, 429, 429, 200, 200, 200, 429, 429]
    assert client.get("domains").status_code == 200
    refused = [r for r in sandbox.stats.log if r["status"] == 429]
    assert len(refused) == 4 and sandbox.stats.rate_limited == {"injected": 4}
    sandbox.fail_next("429")
    response = client.get("domains")
    assert response.status_code == 429 and response.headers["Retry-After"] == "4"


def test_rate_limit_can_be_disabled():
    with run_sandbox(start=START, frozen=True, rate_limit=0) as box:
        client = Client(box)
        responses = [client.get("validate") for _ in range(70)]
        assert all(r.status_code == 200 for r in responses)
        assert "X-RateLimit-Limit" not in responses[-1].headers
        assert responses[-1].json()["data"]["rate_limit"]["remaining"] is None


@pytest.mark.parametrize("skew_s", [30, -30, 0])
def test_a_skewed_clock_states_the_reset_on_that_clock(skew_s):
    """A sandbox clock 30 s from real time: Date and Reset both on it, windows on real time;
    the reset is the exact second the window ends on that clock (not a second later)."""
    start = datetime.now(timezone.utc) + timedelta(seconds=skew_s)
    with run_sandbox(seed=7, start=start, rate_limit=LIMIT, rate_window=WINDOW) as box:
        before = time.time()
        response = Client(box).get("domains")
        after = time.time()
    reset = int(response.headers["X-RateLimit-Reset"])
    date = parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert abs(date - (before + skew_s)) <= 1.5
    assert 0 < reset - date <= WINDOW + 1
    # the real-time window the request fell in, moved by the skew
    window_ends = {(moment // WINDOW + 1) * WINDOW + skew_s for moment in (before, after)}
    assert reset in window_ends, (reset, window_ends)
