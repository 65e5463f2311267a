"""A server whose clock is not ours: the rate limit's reset is on the server's clock. The server
clock's estimate and the throttle's bookkeeping, without a server: unit/test_server_clock.py,
unit/test_throttle.py."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from aiclicks_pipeline.sandbox import run_sandbox

LIMIT, WINDOW = 20, 2.0


@pytest.mark.parametrize("skew_s", [30, -30, 0])
def test_a_sync_against_a_skewed_server_clock_meets_no_429_and_takes_the_floor(warehouse, skew_s):
    """The sandbox clock runs `skew_s` from real time (its Date, generated_at and rate-limit
    reset on that clock); the limit is time-scaled (20 requests / 2 s). Trusting the reset
    against the local clock, 30 s ahead took 100 s here, 30 s behind met 8 x 429."""
    start = datetime.now(timezone.utc) + timedelta(seconds=skew_s)
    with run_sandbox(seed=3, domains=6, prompts=(20, 60), start=start, rate_limit=LIMIT,
                     rate_window=WINDOW) as sandbox:
        started = time.monotonic()
        result = warehouse.sync(sandbox)
        elapsed = time.monotonic() - started

        requests = sandbox.stats.requests
        floor_s = requests / LIMIT * WINDOW
        (extract,) = [s for s in warehouse.pipeline.last_trace.steps if s.step == "extract"]
        extract_s = (extract.finished_at - extract.started_at).total_seconds()
        print(f"skew {skew_s:+d} s: {requests} requests, extract {extract_s:.1f} s, sync "
              f"{elapsed:.1f} s (floor {floor_s:.1f} s), 429s {dict(sandbox.stats.rate_limited)}, "
              f"held by the limit {result.stats.rate_limit_wait_s:.1f} s")
        assert requests > 2 * LIMIT
        assert sandbox.stats.rate_limited.get("real", 0) == 0
        assert result.stats.rate_limited == 0
        assert result.stats.rate_limit_wait_s > 0
        # fixed windows: the first is whatever was left of it when the sync began, the last
        # one may take a handful of requests
        assert extract_s <= floor_s + 2 * WINDOW, (extract_s, floor_s)
        assert elapsed <= 2 * floor_s + 2 * WINDOW, (elapsed, floor_s)
        now = sandbox.clock.now()
        listed = {p["id"] for d in sandbox.account.domain_ids() for p in sandbox.account.prompts(d, now)}
        assert listed <= {prompt_id for _, prompt_id in warehouse.keyed("prompts")}


