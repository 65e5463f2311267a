"""Time helpers: parsing the API's timestamps and choosing the `days` window of a request.

No request asks more than `settings.MAX_DAYS` (the API's horizon by its strictest reading): a
domain that has not synced for longer gets the horizon, and the dates before it that it would
have needed are reported as lost (`horizon_gap`), not asked for.
"""

from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

from .errors import DaysOutOfRangeError
from .settings import (
    DEFAULT_INITIAL_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SNAPSHOT_DAYS,
    MAX_DAYS,
    REQUEST_DAYS_BUCKETS,
)


def parse_timestamp(value: Union[str, datetime]) -> datetime:
    """Parses both formats the API uses (docs/api-notes.md, Reading: timestamp
    formats): `...218Z` and `...268809+00:00`."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def snapshot_date(generated_at: Union[str, datetime]) -> date:
    """The UTC date of an envelope's `generated_at`: the grain of window aggregates."""
    return parse_timestamp(generated_at).date()


def covering_bucket(days: float) -> int:
    """The smallest `days` bucket that covers `days`; the horizon (`MAX_DAYS`) when none does.

    Only bucket values are ever sent, so the server's snapping (docs/api-notes.md, The days
    window) cannot shrink a window.
    """
    for bucket in REQUEST_DAYS_BUCKETS:
        if bucket >= days:
            return bucket
    return REQUEST_DAYS_BUCKETS[-1]


def check_windows(
    initial_days: int = DEFAULT_INITIAL_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    snapshot_days: int = DEFAULT_SNAPSHOT_DAYS,
) -> Tuple[int, int, int]:
    """The `days` options, when the API can serve them (checked before any request)."""
    for option, value in (("initial_days", initial_days), ("snapshot_days", snapshot_days)):
        if not 1 <= int(value) <= MAX_DAYS:
            raise DaysOutOfRangeError(
                f"{option} must be between 1 and {MAX_DAYS}, got {value}: the AIclicks API "
                f"serves the last {MAX_DAYS} days at most"
            )
    if not 0 <= int(lookback_days) < MAX_DAYS:
        raise DaysOutOfRangeError(
            f"lookback_days must be between 0 and {MAX_DAYS - 1}, got {lookback_days}"
        )
    return int(initial_days), int(lookback_days), int(snapshot_days)


def incremental_days(
    last_generated_at: Optional[Union[str, datetime]],
    server_now: datetime,
    initial_days: int,
    lookback_days: int,
) -> int:
    """The window of an incremental request.

    First run: `initial_days`. Later runs: the time since the last `generated_at`, plus a
    look-back for the recent days the API still revises, rounded up to a bucket. A window
    counts today's partial day, so `n` whole days back needs `n + 1` calendar days.
    """
    if last_generated_at is None:
        return covering_bucket(initial_days)
    last = parse_timestamp(last_generated_at)
    elapsed_days = max((server_now.date() - last.date()).days, 0)
    return covering_bucket(elapsed_days + lookback_days + 1)


def horizon_gap(
    last_generated_at: Optional[Union[str, datetime]], server_now: datetime, lookback_days: int
) -> Optional[Tuple[date, date]]:
    """The dates (first, last) an incremental request would need but that lie before the API's
    horizon (the last `MAX_DAYS` days, today's included): those the last sync did not load or
    loaded while the API still revised them (its last `lookback_days`). None when there are
    none (a first sync asks `initial_days` and lacks nothing)."""
    if last_generated_at is None:
        return None
    first_needed = parse_timestamp(last_generated_at).date() + timedelta(days=1 - lookback_days)
    horizon = server_now.date() - timedelta(days=MAX_DAYS - 1)
    if first_needed >= horizon:
        return None
    return first_needed, horizon - timedelta(days=1)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def lost_dates_line(gaps: Mapping[str, Sequence[Any]]) -> str:
    """One line for the dates before the horizon that domains' windows needed (`horizon_gap`,
    {domain_id: (first, last)}, dates or ISO dates): the span over every domain."""
    first = min(str(gap[0]) for gap in gaps.values())
    last = max(str(gap[1]) for gap in gaps.values())
    resumed = date.fromisoformat(last) + timedelta(days=1)
    return (
        f"NOT RECOVERABLE: {first} to {last} of {len(gaps)} domain(s) lies before the "
        f"{MAX_DAYS} days the API serves (synced too long ago); loaded from {resumed} on"
    )
