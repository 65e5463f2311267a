"""Time helpers: parsing the API's timestamps and choosing the `days` window of a request."""

from datetime import date, datetime, timezone
from typing import Optional, Union

from .settings import DAYS_BUCKETS


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
    """The smallest `days` bucket that covers `days`; 365 when nothing larger exists.

    Only bucket values are ever sent, so the server's snapping (docs/api-notes.md, The days window) cannot shrink a window.
    """
    for bucket in DAYS_BUCKETS:
        if bucket >= days:
            return bucket
    return DAYS_BUCKETS[-1]


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


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
