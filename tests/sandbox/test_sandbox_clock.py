"""The sandbox clock, and what moving it does: new days, revisions, new emissions and prompts."""

import time
from datetime import datetime, timedelta, timezone

from aiclicks_pipeline.sandbox import SandboxClock


def test_frozen_clock_moves_only_when_advanced():
    clock = SandboxClock("2026-06-17T10:00:00Z", frozen=True)
    first = clock.now()
    time.sleep(0.01)
    assert clock.now() == first == datetime(2026, 6, 17, 10, tzinfo=timezone.utc)
    assert clock.advance(days=1, hours=2, seconds=3) == first + timedelta(days=1, hours=2, seconds=3)


def test_running_clocks_follow_real_time():
    started = SandboxClock("2026-06-17T10:00:00+00:00")
    real = SandboxClock()
    before = datetime.now(timezone.utc)
    time.sleep(0.01)
    assert started.now() > datetime(2026, 6, 17, 10, tzinfo=timezone.utc)
    assert before < real.now() <= datetime.now(timezone.utc)
    assert real.now().tzinfo is not None
    real.advance(days=2)
    assert real.now() - datetime.now(timezone.utc) > timedelta(days=1, hours=23)


def series_by_date(client, name, domain_id):
    return {i["date"]: i["value"] for i in client.data(name, domain_id=domain_id)["items"]}


def test_a_day_later_a_new_day_appears_and_only_the_last_two_days_change(sandbox, client):
    domains = [d["id"] for d in client.data("domains")["items"]]
    before = {d: series_by_date(client, "mentions_daily", d) for d in domains}
    visibility_before = series_by_date(client, "visibility_daily", domains[0])
    sandbox.advance(days=1)
    after = {d: series_by_date(client, "mentions_daily", d) for d in domains}
    visibility_after = series_by_date(client, "visibility_daily", domains[0])

    assert "2026-06-18" in visibility_after and "2026-05-19" not in visibility_after
    assert "2026-06-18" not in visibility_before
    revised = 0
    for d in domains:
        for date, value in before[d].items():
            if date < "2026-06-16":
                assert after[d].get(date, value) == value, (d, date)  # final: never changes
            elif date in after[d] and value:
                assert after[d][date] != value, (d, date)  # provisional: revised
                revised += 1
    assert revised >= 2, "no provisional day with mentions to compare; pick another seed"
    old_days = [day for day in visibility_before if "2026-05-20" <= day < "2026-06-16"]
    assert all(visibility_after[day] == visibility_before[day] for day in old_days)


def test_new_emissions_and_new_prompts_appear_as_time_passes(sandbox, client, domain_id):
    def emission_ids():
        pages = client.data("fanout_queries", domain_id=domain_id, days=7, size=100)
        assert pages["total_pages"] <= 1
        return {e["id"] for g in pages["items"] for e in g["fanout_queries"]}

    prompts_before = client.data("prompts", domain_id=domain_id)["total"]
    ids_before = emission_ids()
    sandbox.advance(days=1)
    ids_after = emission_ids()
    assert ids_after - ids_before, "a new day brings new emissions"
    sandbox.advance(days=30)
    assert client.data("prompts", domain_id=domain_id)["total"] > prompts_before
