"""`days` snapping and echo; the response cache (HIT/MISS/BYPASS, byte identity, expiry)."""

import pytest
from sandbox_support import START, Client

from aiclicks_pipeline.sandbox import RESTRICTED_API_KEY, Account, run_sandbox


@pytest.mark.parametrize(
    "days, bucket",
    [(1, 1), (4, 1), (5, 7), (10, 7), (11, 14), (22, 14), (23, 30), (60, 30), (61, 90),
     (135, 90), (136, 180), (225, 180), (226, 270), (317, 270), (318, 365), (365, 365)],
)
def test_snap_days(days, bucket):
    assert Account.snap_days(days) == bucket


@pytest.mark.parametrize("days, bucket", [(10, 7), (60, 30), (89, 90), (90, 90)])
def test_days_are_snapped_and_echoed_raw(client, domain_id, days, bucket):
    body = client.get("visibility_daily", {"domain_id": domain_id, "days": days}).json()
    assert body["days"] == days
    assert len(body["data"]["items"]) == bucket


@pytest.mark.parametrize("days, bucket", [(91, 90), (200, 180), (365, 365)])
def test_the_endpoint_pages_reading_serves_up_to_365_days(days, bucket):
    with run_sandbox(seed=7, start=START, frozen=True, rate_limit=None, max_days=365) as sandbox:
        client = Client(sandbox)
        domain_id = client.data("domains")["items"][0]["id"]
        body = client.get("visibility_daily", {"domain_id": domain_id, "days": days}).json()
        assert body["days"] == days and len(body["data"]["items"]) == bucket
        assert client.get("visibility_daily", {"domain_id": domain_id, "days": 366}).status_code == 422


def test_days_default_and_out_of_range(client, domain_id):
    assert client.get("citability_daily", {"domain_id": domain_id}).json()["days"] == 30
    assert client.get("citability_daily", {"domain_id": domain_id, "days": 400}).status_code == 422


@pytest.mark.parametrize("name", ["visibility_daily", "fanout_queries", "citations"])
def test_days_above_90_are_refused_as_the_api_introduction_says(client, domain_id, name):
    response = client.get(name, {"domain_id": domain_id, "days": 180})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["query", "days"] and problem["type"] == "less_than_equal"
    assert problem["msg"] == "Input should be less than or equal to 90"


def test_cache_hit_is_byte_identical_with_the_original_generated_at(sandbox, client, domain_id):
    params = {"domain_id": domain_id, "days": 30}
    sandbox.reset_stats()
    first = client.get("brand_rankings", params)
    sandbox.advance(seconds=1800)
    second = client.get("brand_rankings", params)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert second.content == first.content
    assert second.json()["generated_at"] == "2026-06-17T10:00:00.000Z"
    assert second.headers["Date"] == "Wed, 17 Jun 2026 10:30:00 GMT"  # the clock did move
    assert (sandbox.stats.cache_hits, sandbox.stats.cache_misses) == (1, 1)


def test_cache_key_is_the_raw_query_string(sandbox, client, domain_id):
    assert client.raw(f"/api/v1/mentions-time-series?domain_id={domain_id}&days=7").headers["X-Cache"] == "MISS"
    assert client.raw(f"/api/v1/mentions-time-series?days=7&domain_id={domain_id}").headers["X-Cache"] == "MISS"
    assert client.raw(f"/api/v1/mentions-time-series?domain_id={domain_id}&days=7").headers["X-Cache"] == "HIT"


def test_cache_expires_after_the_ttl_of_sandbox_time(sandbox, client, domain_id):
    params = {"domain_id": domain_id}
    first = client.get("model_leaderboard", params)
    sandbox.advance(seconds=3599)
    assert client.get("model_leaderboard", params).headers["X-Cache"] == "HIT"
    sandbox.advance(seconds=1)
    again = client.get("model_leaderboard", params)
    assert again.headers["X-Cache"] == "MISS"
    assert again.json()["generated_at"] == "2026-06-17T11:00:00.000Z" != first.json()["generated_at"]


def test_validate_is_never_cached_and_errors_are_not_cached(client, domain_id):
    assert [client.get("validate").headers["X-Cache"] for _ in range(2)] == ["BYPASS", "BYPASS"]
    bad = {"domain_id": domain_id, "days": "x"}
    assert [client.get("citations", bad).headers["X-Cache"] for _ in range(2)] == ["BYPASS"] * 2


def test_cache_is_not_shared_between_key_scopes(sandbox, client):
    assert client.get("domains").headers["X-Cache"] == "MISS"
    restricted = Client(sandbox, RESTRICTED_API_KEY).get("domains")
    assert restricted.headers["X-Cache"] == "MISS"  # its listing differs: never served another's
    assert len(restricted.json()["data"]["items"]) < len(client.data("domains")["items"])


def test_a_long_running_cache_purges_what_expired_as_it_doubles_not_at_every_put(monkeypatch):
    """Past PURGE_AT entries a purge scans them all: at every put, a 2,000-domain sync with a
    frozen clock (nothing expires) got slower with every response. Now a purge comes when the
    cache has doubled since the last one, and still drops what expired."""
    from aiclicks_pipeline.sandbox import cache as cache_module
    from aiclicks_pipeline.sandbox.clock import SandboxClock

    monkeypatch.setattr(cache_module, "PURGE_AT", 4)
    clock = SandboxClock(START, frozen=True)
    cache = cache_module.ResponseCache(clock, ttl=60)
    purges, entries = 0, cache._entries
    for number in range(1000):
        cache.put(number, b"body")
        purges += cache._entries is not entries
        entries = cache._entries
    assert all(cache.get(number) == b"body" for number in range(1000))  # nothing expired
    assert purges <= 9  # 4, 8, 16, ... 512: not one per put past the 4th

    clock.advance(seconds=61)
    fresh = 1000
    while cache._entries is entries:  # new entries until the next purge
        cache.put(fresh, b"body")
        fresh += 1
    assert sorted(cache._entries) == list(range(1000, fresh))  # the expired ones dropped
