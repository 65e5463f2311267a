"""The sandbox's notion of "now": real UTC time, a moving start, or a frozen instant."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Optional, Union


def parse_instant(value: Union[datetime, str]) -> datetime:
    """An aware UTC datetime from a datetime (naive means UTC) or an ISO-8601 string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class SandboxClock:
    """Thread-safe clock the sandbox serves data "as of".

    * ``SandboxClock()``: real UTC time.
    * ``SandboxClock(start)``: starts at ``start`` and runs with real elapsed time.
    * ``SandboxClock(start, frozen=True)``: stands still; only ``advance`` moves it.

    ``advance`` works in every mode (it adds an offset), so a test can jump a day ahead.
    """

    def __init__(self, start: Optional[Union[datetime, str]] = None, frozen: bool = False):
        self._lock = threading.Lock()
        self._frozen = frozen
        self._start = parse_instant(start) if start is not None else datetime.now(timezone.utc)
        self._started_monotonic = time.monotonic()
        self._offset = timedelta(0)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> datetime:
        with self._lock:
            elapsed = timedelta(0)
            if not self._frozen:
                elapsed = timedelta(seconds=time.monotonic() - self._started_monotonic)
            return self._start + elapsed + self._offset

    def advance(self, days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
        """Move the clock forward (negative values move it back) and return the new now."""
        with self._lock:
            self._offset += timedelta(days=days, hours=hours, seconds=seconds)
        return self.now()
