"""A server whose clock is not ours: the rate limit's reset is on the server's clock. The server
clock's estimate and the throttle's bookkeeping, without a server: unit/test_server_clock.py,
unit/test_throttle.py."""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

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


def test_a_sync_through_a_proxy_to_a_frozen_server_clock_ends(tmp_path, monkeypatch):
    """The issue's case, scaled down: `sandbox --frozen --rate-limit 20 --rate-window 2`
    reached through a plain forwarding proxy, which adds a `Date` of its own beside the
    server's. The sync sent nothing more after its first 429 and never ended; now it ends
    equal to a clean load, at a few seconds a window."""
    from aiclicks_pipeline.checkpoints import run_sync
    from aiclicks_pipeline.interrupts import StopRequest

    from .support import Warehouse, assert_equals_clean_load, forwarding_proxy

    warehouse = Warehouse(tmp_path)
    with run_sandbox(seed=5, domains=6, prompts=(20, 40), frozen=True, rate_limit=LIMIT,
                     rate_window=WINDOW) as sandbox, forwarding_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        through = requests.get(f"{sandbox.base_url}/api/v1/domains",
                               headers={"Authorization": f"Bearer {sandbox.api_key}"}, timeout=10)
        assert through.headers["Date"].count("GMT") == 2  # the proxy's Date and the server's
        stop, outcome = StopRequest(), {}

        def sync():
            try:
                outcome["result"] = run_sync(warehouse.pipeline, base_url=sandbox.base_url,
                                             api_key=sandbox.api_key, stop=stop)
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        worker = threading.Thread(target=sync, daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(timeout=240)
        if worker.is_alive():
            stop.request(15)
            worker.join(timeout=30)
            pytest.fail(f"the sync did not end: {sandbox.stats.requests} requests, "
                        f"429s {dict(sandbox.stats.rate_limited)}")
        result = outcome.get("result")
        assert result is not None, outcome.get("error")
        elapsed = time.monotonic() - started
        rate_limited = sandbox.stats.rate_limited.get("real", 0)
        print(f"through a proxy to a frozen clock: {result.stats.requests} requests in "
              f"{elapsed:.1f} s (floor {result.stats.requests / LIMIT * WINDOW:.1f} s), "
              f"{rate_limited} x 429")
        assert result.status == "success"
        # where no reset can be believed, a spent window is found out by a probe's 429 (one
        # a window, or a few where several threads spent it together)
        assert rate_limited <= 2 * (elapsed / WINDOW + 1)
        assert_equals_clean_load(warehouse, sandbox)
