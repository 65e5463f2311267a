"""Client-side rate limiting from the API's own `X-RateLimit-*` headers
(docs/api-notes.md, Rate limit).

The limit is a fixed window per key. The throttle keeps its own count of what is left in the
current window, shared by every thread of a run, corrected by each response's
`X-RateLimit-Remaining` / `X-RateLimit-Reset`, and makes a request wait for the next window
*before* the budget is gone, instead of meeting a 429. Until the first response arrives it
knows nothing and lets one request through at a time.
"""

import threading
import time
from typing import Callable, Optional

from requests import Response

from .sync import SyncStopped
from .values import as_int

# a little past the reset second, so the server's window has really turned
RESET_MARGIN_S = 0.05


class RateLimitThrottle:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.limit: Optional[int] = None
        self.remaining: Optional[int] = None
        self.reset_at: Optional[float] = None
        self.in_flight = 0
        # when a request waits for the next window: until when (this clock), for the display
        self.waiting_until: Optional[float] = None
        self._cancelled = False
        self._cond = threading.Condition()

    def cancel(self) -> None:
        """Wakes every waiting request and makes it (and every later one) raise SyncStopped."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def waiting_s(self) -> float:
        """Seconds left of the current wait for the rate limit (0 when nothing waits)."""
        until = self.waiting_until
        return max(until - self.clock(), 0.0) if until is not None else 0.0

    def acquire(self) -> None:
        """Blocks until a request fits in the current window, then reserves it."""
        with self._cond:
            while True:
                if self._cancelled:
                    self.waiting_until = None
                    raise SyncStopped("the sync was asked to stop")
                now = self.clock()
                if self.reset_at is not None and now >= self.reset_at:
                    # a new window: its budget is the limit, minus what is still in flight
                    self.remaining = self.limit
                    self.reset_at = None
                if self.remaining is None:
                    # nothing known yet: one request at a time until headers tell the budget
                    if self.in_flight == 0:
                        break
                    self._cond.wait(timeout=0.5)
                    continue
                if self.remaining > 0:
                    self.remaining -= 1
                    break
                wait = (self.reset_at - now + RESET_MARGIN_S) if self.reset_at else 0.5
                wait = max(wait, 0.01)
                self.waiting_until = now + wait
                self._cond.wait(timeout=wait)
            self.waiting_until = None
            self.in_flight += 1

    def release(self, response: Optional[Response]) -> None:
        """Records a finished request and what its headers say of the budget."""
        with self._cond:
            self.in_flight = max(self.in_flight - 1, 0)
            if response is not None:
                self._observe(response)
            self._cond.notify_all()

    def _observe(self, response: Response) -> None:
        headers = response.headers
        limit = as_int(headers.get("X-RateLimit-Limit"))
        remaining = as_int(headers.get("X-RateLimit-Remaining"))
        reset_at = as_int(headers.get("X-RateLimit-Reset"))
        if limit is not None:
            self.limit = limit
        if response.status_code == 429:
            retry_after = as_int(response.headers.get("Retry-After"))
            now = self.clock()
            self.remaining = 0
            self.reset_at = max(self.reset_at or 0, now + (retry_after or 1))
            return
        if remaining is None or reset_at is None:
            return
        if self.reset_at is None or reset_at > self.reset_at:
            # a newer window than we knew: trust the server, less what is already in flight
            self.reset_at = float(reset_at)
            self.remaining = max(remaining - self.in_flight, 0)
        elif reset_at == self.reset_at and self.remaining is not None:
            self.remaining = min(self.remaining, max(remaining - self.in_flight, 0))
