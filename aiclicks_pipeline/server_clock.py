"""The server's clock, as its responses tell it.

The API states times on its own clock: `X-RateLimit-Reset` (epoch seconds), `generated_at`.
A laptop's clock may be off by seconds or minutes, so a reset compared with the local clock
makes a sync wait far too long (local clock behind) or ask too early and meet 429s (ahead).

Every response's `Date` header (whole seconds, rounded down) bounds the offset between the two
clocks: the server read at least `Date` by the time the response arrived, and less than
`Date + 1` when the request went out. The bounds of many responses narrow the offset down;
they are started over when a response contradicts them (the server's clock jumped, or stands
still like a frozen test server's).

The envelope's `generated_at` is not used: a cached response carries an old one.
"""

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Optional, Tuple

# Within this many seconds the two clocks are taken to agree: `Date` cannot tell finer, and
# the local clock is then the more precise of the two (it has sub-second resolution).
AGREEMENT_S = 2.0


@dataclass(frozen=True)
class ClockReading:
    """What one response tells of the server's clock."""

    server_at: Optional[float]  # its `Date`, epoch seconds; None without a readable one
    sent_at: float  # local epoch seconds the request went out
    received_at: float  # local epoch seconds the response was in


def parse_http_date(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class ServerClock:
    """The estimate of the server's clock a session keeps, updated by every response."""

    def __init__(self, clock: Callable[[], float] = time.time, agreement_s: float = AGREEMENT_S):
        self.clock = clock
        self.agreement_s = agreement_s
        # bounds of (server clock - local clock), in seconds
        self._low: Optional[float] = None
        self._high: Optional[float] = None
        self._lock = threading.Lock()

    def observe(self, date_header: Optional[str], sent_at: float, received_at: float) -> ClockReading:
        """Records one response's `Date`; returns what it says, for `local_time`."""
        reading = ClockReading(parse_http_date(date_header), sent_at, received_at)
        if reading.server_at is not None:
            low = reading.server_at - received_at
            high = reading.server_at + 1.0 - sent_at
            with self._lock:
                if self._low is None or self._high is None or low > self._high or high < self._low:
                    self._low, self._high = low, high
                else:
                    self._low, self._high = max(self._low, low), min(self._high, high)
        return reading

    @property
    def agrees(self) -> bool:
        """True while the local clock agrees with the server's (or nothing is known yet)."""
        low, high = self._low, self._high
        return low is None or high is None or abs((low + high) / 2) <= self.agreement_s

    @property
    def offset(self) -> float:
        """Seconds the server's clock is ahead of ours (negative: behind); 0 while they agree.
        Never more than the server's lead, so `time()` is never ahead of the server."""
        low = self._low
        return 0.0 if self.agrees or low is None else low

    def time(self) -> float:
        """The server's now, epoch seconds."""
        return self.clock() + self.offset

    def now(self) -> datetime:
        """The server's now, an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), timezone.utc)

    def local_time(self, server_epoch: float, reading: ClockReading) -> float:
        """The local time by which the server's clock has reached `server_epoch`, a time the
        response of `reading` stated (such as its `X-RateLimit-Reset`); never early.

        Where the clocks agree (a steady server clock), less the lowest offset the `Date`s of
        every response allow: never early, and late by a response's time once a few came in.
        Otherwise the time the response arrived plus what it said was left: `Date` is rounded
        down, so that is never early, and at most a second late (the earliest of several such
        estimates is the best; a clock that stands still gives no offset to keep). A
        response without a readable `Date` (none, or two a proxy left side by side) goes by the
        offset the others told.
        """
        return self.local_span(server_epoch, reading)[1]

    def local_span(self, server_epoch: float, reading: ClockReading) -> Tuple[float, float]:
        """The earliest and the latest local time at which the server's clock reaches
        `server_epoch` (`local_time` is the latest). Through `Date`, the response was written
        at most a second after its `Date` and not before its request went out: a response
        that took long to arrive tells its reset only roughly (a window's answer delayed by a
        busy machine may look like the next window's)."""
        if reading.server_at is None:
            at = float(server_epoch) - self.offset
            return at, at
        if self.agrees:
            # the bounds of every response so far: as precise as the local clock once a few
            # came in, and never early when the server's clock is a second behind ours
            low, high = self._low, self._high
            if low is None or high is None:
                return float(server_epoch), float(server_epoch)
            return server_epoch - high, server_epoch - low
        left = server_epoch - reading.server_at
        return reading.sent_at + left - 1.0, reading.received_at + left
