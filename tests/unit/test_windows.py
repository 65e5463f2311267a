"""windows.py: the API's timestamps and the `days` window of a request."""

from datetime import date, datetime, timedelta, timezone

import pytest

from aiclicks_pipeline.settings import MAX_DAYS, REQUEST_DAYS_BUCKETS
from aiclicks_pipeline.windows import (
    covering_bucket,
    incremental_days,
    parse_timestamp,
    snapshot_date,
)

NOW = datetime(2026, 6, 17, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", [
    "2026-06-17T10:00:00.218Z", "2026-06-17T10:00:00.218+00:00", "2026-06-17T12:00:00.218+02:00",
])
def test_both_timestamp_formats_the_api_sends_are_one_utc_instant(text):
    parsed = parse_timestamp(text)
    assert parsed == datetime(2026, 6, 17, 10, 0, 0, 218000, tzinfo=timezone.utc)
    assert parsed.utcoffset() == timedelta(0)


def test_a_naive_timestamp_is_utc_and_an_aware_one_is_converted():
    assert parse_timestamp(datetime(2026, 6, 17, 10)) == NOW
    assert parse_timestamp(datetime(2026, 6, 17, 3, tzinfo=timezone(timedelta(hours=-7)))) == NOW


def test_a_snapshot_is_dated_by_the_utc_day_of_generated_at():
    assert snapshot_date("2026-06-17T23:59:59+00:00") == date(2026, 6, 17)
    assert snapshot_date("2026-06-17T23:30:00-01:00") == date(2026, 6, 18)


def test_a_window_is_always_a_bucket_that_covers_the_days_asked_up_to_the_horizon():
    for days in range(0, 400):
        bucket = covering_bucket(days)
        assert bucket in REQUEST_DAYS_BUCKETS and bucket <= MAX_DAYS
        assert bucket >= min(days, MAX_DAYS), days


def test_the_window_is_the_smallest_bucket_covering_the_days():
    days = (1, 2, 7, 8, 30, 31, 90, 91, 365, 366)
    assert [covering_bucket(d) for d in days] == [1, 7, 7, 14, 30, 90, 90, 90, 90, 90]


def test_the_first_run_covers_the_initial_days():
    assert incremental_days(None, NOW, initial_days=90, lookback_days=2) >= 90


@pytest.mark.parametrize("elapsed_days", [0, 1, 3, 6, 20, 100, 400])
def test_a_later_run_covers_the_days_since_the_last_response_and_the_look_back(elapsed_days):
    last = (NOW - timedelta(days=elapsed_days)).isoformat()
    days = incremental_days(last, NOW, initial_days=90, lookback_days=2)
    # the look-back, the days since, and today's partial day: at most the API's horizon
    assert days in REQUEST_DAYS_BUCKETS
    assert days >= min(elapsed_days + 2 + 1, MAX_DAYS)


def test_a_last_response_ahead_of_the_server_clock_counts_as_now():
    ahead = (NOW + timedelta(days=2)).isoformat()
    assert incremental_days(ahead, NOW, 90, 2) == incremental_days(NOW.isoformat(), NOW, 90, 2)
