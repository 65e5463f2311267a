"""Client-side rate limiting from the API's own `X-RateLimit-*` headers
(docs/api-notes.md, Rate limit).

The limit is a fixed window per key. The throttle keeps its own count of what is left in the
current window, shared by every thread of a run, corrected by each response's
`X-RateLimit-Remaining` / `X-RateLimit-Reset`, and makes a request wait for the next window
*before* the budget is gone, instead of meeting a 429. Until the first response arrives it
knows nothing and lets one request through at a time.

`X-RateLimit-Reset` is on the server's clock: the server clock (server_clock.py) turns it into
local time. Each response gives an estimate of its window's end that is never early; the
throttle keeps the earliest of a window's estimates, the most precise. No wait is longer than
a window.

While requests are in flight, a response's `Remaining` is taken less every request in flight
(which the server may not have counted yet). That is safe but short: requests sent together
are counted in any order, so some in flight were counted already, and a window ended with 2
or 3 of its 60 requests unused (5% of the rate at the real limit). Once every request of the
window is answered, the lowest `Remaining` a response stated is exact (nothing of ours is
left uncounted), and the throttle takes it back up to that.
"""

import threading
import time
from typing import Callable, Optional

from requests import Response

from .server_clock import ClockReading, ServerClock
from .sync import SyncStopped
from .values import as_int

# a little past the reset second, so the server's window has really turned
RESET_MARGIN_S = 0.05
# the API's documented window: no wait is longer (a reset stated further away is a mistake,
# of the server or of a clock)
WINDOW_S = 60.0


class RateLimitThrottle:
    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        server_clock: Optional[ServerClock] = None,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.server_clock = server_clock or ServerClock(clock)
        self.limit: Optional[int] = None
        self.remaining: Optional[int] = None
        self.reset_at: Optional[float] = None  # local time the current window ends
        # the lowest Remaining stated for the current window, and whether it is exact once
        # nothing is in flight (not when a request may have been counted unseen)
        self.window_low: Optional[int] = None
        self.window_exact = True
        self.in_flight = 0
        # the longest time to a reset a response stated: a window's length, or close to it
        # (time-scaled test servers have shorter windows)
        self.longest_window_s = 0.0
        # wall time during which a request was held by the limit
        self._held = 0
        self._held_since = 0.0
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

    def acquire(self) -> float:
        """Blocks until a request fits in the current window, then reserves it. Returns the
        seconds of wall time this call ended of the sync being held by the limit."""
        held_for = 0.0
        with self._cond:
            holding = False
            while True:
                if self._cancelled:
                    self.waiting_until = None
                    if holding:
                        self._end_hold()
                    raise SyncStopped("the sync was asked to stop")
                now = self.clock()
                if self.reset_at is not None and now >= self.reset_at:
                    # a new window: its budget is the limit; responses correct it
                    self.remaining = self.limit
                    self.reset_at = None
                    self._new_window(None)
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
                wait = min(max(wait, 0.01), WINDOW_S)
                if not holding:
                    holding = True
                    self._begin_hold(now)
                self.waiting_until = now + wait
                self._cond.wait(timeout=wait)
            self.waiting_until = None
            if holding:
                held_for = self._end_hold()
            self.in_flight += 1
        return held_for

    def sit_out(self, seconds: float, sleep: Optional[Callable[[float], None]] = None) -> float:
        """Sleeps `seconds` the server asked for (a 429's `Retry-After`), counted as held by the
        limit; returns the wall time it ended of the sync being held."""
        with self._cond:
            self._begin_hold(self.clock())
        try:
            (sleep or self.sleep)(seconds)
        finally:
            with self._cond:
                held_for = self._end_hold()
        return held_for

    def release(self, response: Optional[Response], reading: Optional[ClockReading] = None) -> None:
        """Records a finished request and what its headers say of the budget."""
        with self._cond:
            self.in_flight = max(self.in_flight - 1, 0)
            if response is None:
                self.window_exact = False  # it may have reached the server and been counted
            else:
                self._observe(response, reading)
            if self.in_flight == 0 and self.window_exact and self.window_low is not None \
                    and self.reset_at is not None and self.clock() < self.reset_at:
                # every request answered: the lowest Remaining is what is left (see above)
                self.remaining = max(self.remaining or 0, self.window_low)
            self._cond.notify_all()

    def _new_window(self, remaining: Optional[int]) -> None:
        self.window_low = remaining
        self.window_exact = True

    def _begin_hold(self, now: float) -> None:
        if self._held == 0:
            self._held_since = now
        self._held += 1

    def _end_hold(self) -> float:
        self._held -= 1
        return max(self.clock() - self._held_since, 0.0) if self._held == 0 else 0.0

    def _observe(self, response: Response, reading: Optional[ClockReading]) -> None:
        headers = response.headers
        limit = as_int(headers.get("X-RateLimit-Limit"))
        remaining = as_int(headers.get("X-RateLimit-Remaining"))
        reset = as_int(headers.get("X-RateLimit-Reset"))
        if limit is not None:
            self.limit = limit
        now = self.clock()
        if response.status_code == 429:
            retry_after = min(as_int(headers.get("Retry-After")) or 1, WINDOW_S)
            self.remaining = 0
            self.reset_at = max(self.reset_at or 0, now + retry_after)
            self._new_window(0)
            return
        if remaining is None or reset is None:
            self.window_exact = False  # counted, but it did not say how much is left
            return
        reading = reading or ClockReading(None, now, now)
        reset_at = min(self.server_clock.local_time(reset, reading), reading.received_at + WINDOW_S)
        self.longest_window_s = max(self.longest_window_s, reset_at - reading.received_at)
        if reset_at <= now:
            return  # its window has ended already (a response that arrived late)
        budget = max(remaining - self.in_flight, 0)
        # the estimates of one window's end lie within a second or two of each other, those of
        # consecutive windows a window apart
        half_window = self.longest_window_s / 2
        if self.reset_at is None or reset_at >= self.reset_at + half_window:
            # a newer window than we knew: trust the server, less what is already in flight
            self.reset_at = reset_at
            self.remaining = budget
            self._new_window(remaining)
        elif reset_at > self.reset_at - half_window:
            # the same window: each estimate is never early, the earliest is the most precise
            self.reset_at = min(self.reset_at, reset_at)
            if self.remaining is not None:
                self.remaining = min(self.remaining, budget)
            self.window_low = remaining if self.window_low is None else min(self.window_low, remaining)
