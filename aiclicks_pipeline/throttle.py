"""One API key's rate limit, from the API's own `X-RateLimit-*` headers (docs/api-notes.md,
Rate limit).

The limit is a fixed window per key. The throttle keeps its own count of what is left in the
key's current window, corrected by each response's `X-RateLimit-Remaining` / `X-RateLimit-Reset`,
and holds a request back for the next window *before* the budget is gone, instead of meeting a
429. It does not block by itself: the key pool (keypool.py) asks it, under the pool's lock,
whether a request fits now (`reserve`), and waits as long as it says.

`X-RateLimit-Reset` is on the server's clock: the server clock (server_clock.py) turns it into
local time. Each response gives an estimate of its window's end that is never early; the
throttle keeps the earliest of a window's estimates, the most precise. An answer tells of a
later window only when the earliest end it allows is past the one known: an answer that a busy
machine held back a second looks like the next window's, and its higher `Remaining` is from
before the answers already seen. An answer to a request sent before the window was known only
lowers the count.

While requests are in flight, a response's `Remaining` is taken less every request in flight
(which the server may not have counted yet). That is safe but short: requests sent together
are counted in any order, so some in flight were counted already, and a window ended with 2
or 3 of its 60 requests unused (5% of the rate at the real limit). Once every request of the
window is answered, the lowest `Remaining` a response stated is exact (nothing of ours is
left uncounted), and the throttle takes it back up to that.

Clocks that do not agree with each other (docs/api-notes.md, Reading: a reset that cannot be
believed) never make it wait for ever. No wait is longer than a window (`WINDOW_S`) or the
`Retry-After` a 429 gave. When a wait ends, one request probes the new window and its answer
is believed: its `Remaining`, its reset when that lies ahead. A reset that is already past when
it arrives (a server clock that stands still, a proxy that dates responses with its own clock)
or missing tells nothing of when the window turns: the budget is believed all the same, and
once it is spent one request probes again; a 429 then says, by its `Retry-After`, how long.

A key whose answers state no limit at all (no `X-RateLimit-*` header: a caller the API does
not rate-limit, docs/api-notes.md, Reading: callers without rate-limit headers; the sandbox
with its limit off) is not held back: one request probes, and once an answer without the
headers came, its requests go as they come. Held to one at a time, such a sync spent more
than half of its extraction waiting for its own answers. A 429 still waits its
`Retry-After`, then one request probes again.
"""

import heapq
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from requests import Response

from .server_clock import ClockReading, ServerClock
from .values import as_int

# a little past the reset second, so the server's window has really turned
RESET_MARGIN_S = 0.05
# the API's documented window: no wait is longer (a reset stated further away is a mistake,
# of the server or of a clock)
WINDOW_S = 60.0
# `reserve` when a request must wait for an answer in flight (its headers tell the budget)
UNTIL_AN_ANSWER = math.inf
# the window's length is the median of this many of the last gaps between window ends
MEASURED_GAPS = 9
# what `available` says of a key whose answers state no limit
NO_STATED_LIMIT = 10**6


@dataclass(frozen=True)
class Budget:
    """A key's rate limit as known now: `left` requests at once, then `limit` per window of
    `window_s` seconds, the next window starting in `reset_in_s`."""

    left: int
    limit: int
    window_s: float
    reset_in_s: float


def seconds_for(requests: int, budgets: Sequence[Budget]) -> float:
    """How long fixed windows make `requests` requests take, every key sending at once: the
    time the last of them may go out (the API's own response time not counted)."""
    needed = requests - sum(b.left for b in budgets)
    windows = [(b.reset_in_s, i) for i, b in enumerate(budgets) if b.limit > 0]
    if needed > 0 and not windows:
        return math.inf
    heapq.heapify(windows)
    at = 0.0
    while needed > 0:
        at, i = heapq.heappop(windows)
        needed -= budgets[i].limit
        heapq.heappush(windows, (at + budgets[i].window_s, i))
    return at


class RateLimitThrottle:
    """One key's budget in its current window. Not locked by itself: its key pool's lock
    guards every call."""

    def __init__(
        self, clock: Callable[[], float] = time.time, server_clock: Optional[ServerClock] = None
    ) -> None:
        self.clock = clock
        self.server_clock = server_clock or ServerClock(clock)
        self.limit: Optional[int] = None
        self.remaining: Optional[int] = None  # None: unknown; one request at a time probes
        self.reset_at: Optional[float] = None  # local time the current window ends, if known
        self.reset_stated: Optional[float] = None  # its reset on the server's clock, if agreeing
        # requests sent from this local time on are counted in the current window or a later
        # one: the answer that told of the window had arrived (or its predecessor had ended)
        self.window_from = -math.inf
        # the lowest Remaining stated for the current window, and whether it is exact once
        # nothing is in flight (not when a request may have been counted unseen)
        self.window_low: Optional[int] = None
        self.window_exact = True
        self.in_flight = 0
        # the last answer stated no limit (no X-RateLimit-* header): nothing is held back
        self.no_stated_limit = False
        # the longest time to a reset a response stated: a window's length, or close to it
        self.longest_window_s = 0.0
        # the window's length, measured between the ends of windows (`_measure`); None until
        # two were seen, the documented 60 s is assumed until then
        self.measured_window_s: Optional[float] = None
        self._last_end: Optional[float] = None
        self._gaps: List[float] = []

    # --- what the pool asks -----------------------------------------------------------------

    def reserve(self) -> float:
        """Reserves a request when one fits now (returns 0), else the seconds to wait before
        asking again (`UNTIL_AN_ANSWER`: until a request in flight is answered)."""
        now = self.clock()
        if self.reset_at is not None and now >= self.reset_at:
            # the window turned, or the wait for it is over: a probe, whose answer is believed
            self.remaining = None
            self.reset_at = None
            self.window_from = now
            self.no_stated_limit = False  # what it says now, not before a 429
            self._new_window(None)
        if self._unlimited:
            pass
        elif self.remaining is None or (self.remaining <= 0 and self.reset_at is None):
            # nothing known, or spent with no end known: one request at a time asks
            if self.in_flight:
                return UNTIL_AN_ANSWER
        elif self.remaining > 0:
            self.remaining -= 1
        else:
            return max(self.reset_at - now + RESET_MARGIN_S, 0.01)
        self.in_flight += 1
        return 0.0

    def release(self, response: Optional[Response], reading: Optional[ClockReading] = None) -> None:
        """Records a finished request and what its headers say of the budget."""
        self.in_flight = max(self.in_flight - 1, 0)
        if response is None:
            self.window_exact = False  # it may have reached the server and been counted
        else:
            self._observe(response, reading)
        if self.in_flight == 0 and self.window_exact and self.window_low is not None \
                and self.reset_at is not None and self.clock() < self.reset_at:
            # every request answered: the lowest Remaining is what is left (see above)
            self.remaining = max(self.remaining or 0, self.window_low)

    def available(self) -> int:
        """Requests this key may send now without waiting (a probe counts as one)."""
        if self._unlimited:
            return NO_STATED_LIMIT
        if self.remaining is None or (self.remaining <= 0 and self.reset_at is None):
            return 0 if self.in_flight else 1
        if self.reset_at is not None and self.clock() >= self.reset_at:
            return 1
        return max(self.remaining, 0)

    @property
    def _unlimited(self) -> bool:
        """No limit stated, and no 429 to wait out: nothing is held back."""
        return self.no_stated_limit and self.reset_at is None

    @property
    def window_s(self) -> float:
        """The window's length: measured once two windows were seen, else the documented one."""
        return self.measured_window_s or WINDOW_S

    def requests_per_second(self) -> Optional[float]:
        """The key's sustained rate: its limit per window; None before a response told it."""
        return self.limit / self.window_s if self.limit else None

    def budget(self) -> Optional[Budget]:
        """What the key may send from now on; None before a response told its limit."""
        if not self.limit:
            return None
        reset_in = self.reset_at - self.clock() if self.reset_at is not None else self.window_s
        return Budget(self.available(), self.limit, self.window_s, max(reset_in, 0.0))

    # --- what the responses say -------------------------------------------------------------

    def _new_window(self, remaining: Optional[int]) -> None:
        self.window_low = remaining
        self.window_exact = True

    def _observe(self, response: Response, reading: Optional[ClockReading]) -> None:
        headers = response.headers
        limit = as_int(headers.get("X-RateLimit-Limit"))
        remaining = as_int(headers.get("X-RateLimit-Remaining"))
        reset = as_int(headers.get("X-RateLimit-Reset"))
        if limit is not None:
            self.limit = limit
        now = self.clock()
        self.no_stated_limit = (
            response.status_code != 429 and limit is None and remaining is None and reset is None
        )
        if response.status_code == 429:
            retry_after = min(as_int(headers.get("Retry-After")) or 1, WINDOW_S)
            self.remaining = 0
            self.reset_at = max(self.reset_at or 0, now + retry_after)
            self._new_window(0)
            return
        if remaining is None:
            self.window_exact = False  # counted, but it did not say how much is left
            return
        budget = max(remaining - self.in_flight, 0)
        reading = reading or ClockReading(None, now, now)
        earliest = latest = None
        if reset is not None:
            cap = reading.received_at + WINDOW_S
            earliest, latest = (min(t, cap) for t in self.server_clock.local_span(reset, reading))
            self.longest_window_s = max(self.longest_window_s, latest - reading.received_at)
        # sent before the window we know was told or begun: the answer may be an earlier
        # window's, late (a busy machine delays answers by seconds)
        sent_late = reading.sent_at < self.window_from
        if latest is None or latest <= now or (self.reset_at is None and sent_late):
            # no end it can wait for: a late answer of a window that has ended, or a reset no
            # clock makes sense of. With no window's end known the budget is believed (never
            # raised: answers come in any order); with one known, this is an old window's.
            if self.reset_at is None:
                self.remaining = budget if self.remaining is None else min(self.remaining, budget)
                self.window_exact = False
            return
        # where the clocks agree, a window is told by its reset as the server states it (on a
        # steady clock, one window's answers all state the same); otherwise by our estimates
        stated = float(reset) if self.server_clock.agrees else None
        by_stated = stated is not None and self.reset_stated is not None
        if self.reset_at is None or (stated > self.reset_stated if by_stated else earliest > self.reset_at):
            # a later window than the one we knew, for certain: trust the server, less what
            # is already in flight. Its length is measured on the server's clock where the
            # clocks agree (our estimates move as the offset between them is narrowed down)
            self._measure(stated if stated is not None else latest)
            self.reset_at, self.reset_stated = latest, stated
            self.window_from = reading.received_at
            self.remaining = budget
            self._new_window(remaining)
            return
        # the window we know (or an earlier one, sent late): the count only goes down
        if self.remaining is not None:
            self.remaining = min(self.remaining, budget)
        self.window_low = remaining if self.window_low is None else min(self.window_low, remaining)
        if not sent_late and not (by_stated and stated < self.reset_stated):
            # each estimate of the window's end is never early, the earliest the most precise
            self.reset_at = min(self.reset_at, latest)
            if stated is None:  # measured on our estimates (`_measure`)
                self._last_end = self.reset_at

    def _measure(self, window_end: float) -> None:
        """A new window's end: the time since the last one seen is the window, or a multiple
        of it when windows went unused. Each end is known to a second or so (a `Date` is whole
        seconds), so the window is the median of the last gaps, those of skipped windows left
        out."""
        last, self._last_end = self._last_end, window_end
        # a window lasts at least as long as the longest time to a reset stated (each a second
        # late at most): a shorter gap is two estimates of one window told apart by mistake
        if last is None or window_end - last < max(0.5, self.longest_window_s - 1.0):
            return
        self._gaps = (self._gaps + [min(window_end - last, WINDOW_S)])[-MEASURED_GAPS:]
        # the shortest gaps are one window each, a gap half as long again or more is windows
        # that went by unused (the first gap measured may be one: a busy machine, a short sync)
        one_window = 1.5 * min(self._gaps) + 0.5
        self.measured_window_s = statistics.median(g for g in self._gaps if g < one_window)
