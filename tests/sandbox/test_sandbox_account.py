"""The synthetic account: determinism, believable and consistent values."""

import time

import pytest
from sandbox_support import START

from aiclicks_pipeline.sandbox import Account
from aiclicks_pipeline.sandbox.clock import parse_instant
from aiclicks_pipeline.settings import CHANNELS, CITATION_MODEL_SLUGS

NOW = parse_instant(START)


def snapshot(account: Account) -> dict:
    result = {"domains": account.domains(NOW)}
    for d in account.domain_ids():
        result[d] = (
            account.prompts(d, NOW),
            account.fanout(d, 30, NOW),
            [account.series(m, d, 90, NOW) for m in ("visibility", "mentions", "citability", "citations")],
            account.brand_rankings(d, 30, NOW),
            account.model_leaderboard(d, 30, NOW),
            account.citations(d, 30, NOW),
        )
    return result


def test_same_seed_same_account_different_seed_different_account():
    first = snapshot(Account(seed=11, anchor=NOW))
    assert snapshot(Account(seed=11, anchor=NOW)) == first
    assert snapshot(Account(seed=12, anchor=NOW))["domains"] != first["domains"]


def test_values_do_not_depend_on_call_order():
    forward, backward = Account(seed=5), Account(seed=5)
    ids = forward.domain_ids()
    a = [forward.brand_rankings(d, 30, NOW) for d in ids]
    b = [backward.brand_rankings(d, 30, NOW) for d in reversed(ids)][::-1]
    assert a == b


@pytest.fixture(scope="module")
def account():
    return Account(seed=3, domains=6, anchor=NOW)


def test_series_values_and_density(account):
    zero_days = 0
    for d in account.domain_ids():
        visibility = account.series("visibility", d, 90, NOW)
        mentions = account.series("mentions", d, 90, NOW)
        citability = account.series("citability", d, 90, NOW)
        citations = account.series("citations", d, 90, NOW)
        assert len(visibility) == len(citability) == 90  # dense
        assert all(0 <= i["value"] <= 100 for i in visibility + citability)
        assert all(isinstance(i["value"], int) and i["value"] >= 0 for i in mentions + citations)
        missing = {i["date"] for i in visibility} - {i["date"] for i in mentions}
        assert missing == {i["date"] for i in visibility} - {i["date"] for i in citations}
        assert all(v["value"] == 0 for v in visibility if v["date"] in missing)
        zero_days += len(missing)
    assert zero_days, "some days without responses: mentions/citations rows missing (sparse)"


def test_brand_rankings(account):
    for d in account.domain_ids():
        rows = account.brand_rankings(d, 30, NOW)
        brand, competitors = rows[0], rows[1:]
        assert brand["id"] == "brand" and brand["is_brand"] and brand["website"] is None
        assert brand["name"] == account.domain_info(d).name
        assert not any(r["is_brand"] for r in competitors)
        assert [r["mentions"] for r in competitors] == sorted((r["mentions"] for r in competitors), reverse=True)
        assert abs(sum(r["sov"] for r in rows) - 100) <= 0.05
        assert all(r["visibility"] == r["sov"] for r in rows)
        assert len({r["total_prompts"] for r in rows}) == 1
        assert all((r["avg_position"] is None) == (r["mentions"] == 0) for r in rows)
        assert all(r["prompts_mentioned"] <= r["total_prompts"] for r in rows)
        mentions = sum(i["value"] for i in account.series("mentions", d, 30, NOW))
        assert brand["mentions"] == mentions  # consistent with the time series


def test_model_leaderboard(account):
    null_with_visibility = 0
    for d in account.domain_ids():
        rows = account.model_leaderboard(d, 30, NOW)
        assert [r["model"] for r in rows if r["model"] not in CHANNELS] == []
        assert len({r["model"] for r in rows}) == len(rows) >= 3
        assert [r["visibility"] for r in rows] == sorted((r["visibility"] for r in rows), reverse=True)
        null_with_visibility += sum(r["avg_position"] is None and r["visibility"] > 0 for r in rows)
    assert null_with_visibility, "avg_position null although visibility > 0 (as in the docs' example)"


def test_citations(account):
    for d in account.domain_ids():
        rows = account.citations(d, 30, NOW)
        website = account.domain_info(d).website
        assert any(r["domain"] == website for r in rows) and any(r["domain"] != website for r in rows)
        assert [r["frequency"] for r in rows] == sorted((r["frequency"] for r in rows), reverse=True)
        assert len({r["url"] for r in rows}) == len(rows)
        for r in rows:
            assert 1 <= r["frequency"] <= r["mentions"] and r["prompt_count"] >= 1
            assert r["models"] and set(r["models"]) <= set(CITATION_MODEL_SLUGS)
        own = sum(r["frequency"] for r in rows if r["domain"] == website)
        brand_citations = sum(i["value"] for i in account.series("citations", d, 30, NOW))
        assert abs(own - brand_citations) <= 0.25 * brand_citations + 10


def test_fanout_emissions_use_the_domains_channels(account):
    for d in account.domain_ids():
        groups = account.fanout(d, 30, NOW)
        prompt_ids = {p["id"] for p in account.prompts(d, NOW)}
        assert groups and {g["id"] for g in groups} <= prompt_ids
        models = {e["model"] for g in groups for e in g["fanout_queries"]}
        assert models <= set(account.channels(d))


def test_large_account_is_fast():
    """500 domains of ~100 prompts: listing and one domain's full sync stay cheap."""
    big = Account(seed=9, domains=500, prompts=(80, 120), anchor=NOW)
    started = time.perf_counter()
    assert len(big.domains(NOW)) == 500
    for d in big.domain_ids()[:5]:
        big.prompts(d, NOW)
        for page in range(4):
            big.fanout(d, 90, NOW)
        for metric in ("visibility", "mentions", "citability", "citations"):
            big.series(metric, d, 90, NOW)
        big.brand_rankings(d, 30, NOW), big.model_leaderboard(d, 30, NOW), big.citations(d, 30, NOW)
    assert (time.perf_counter() - started) / 5 < 0.5  # per domain, generous for slow CI
