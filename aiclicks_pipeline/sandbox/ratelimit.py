"""Fixed-window rate limit per API key, on REAL time (clients really have to wait).

The windows run on real time whatever the sandbox's clock says; the headers state the reset
on the sandbox's clock (`RateState.reset_on`), as a server states it on its own clock.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple


@dataclass(frozen=True)
class RateState:
    limit: int
    remaining: int
    reset: int  # epoch seconds (ceil) when the current window ends, on real time
    retry_after: int  # whole seconds until then, at least 1
    allowed: bool = True
    ends_at: float = 0.0  # real epoch seconds the current window ends

    def reset_on(self, server_now: float, real_now: float) -> int:
        """`X-RateLimit-Reset` on the server's clock: the window's end moved by the server
        clock's offset from real time (`server_now - real_now`, read together), rounded up.
        Rounded to the millisecond first, so that a clock at real time, or a whole number of
        seconds from it, states the exact second the window ends."""
        return math.ceil(round(self.ends_at + server_now - real_now, 3))


class FixedWindowLimiter:
    """``limit`` requests per ``window`` seconds per key, each key counted apart; windows
    aligned to multiples of ``window`` in epoch time (a 60 s window resets on the minute, as a
    fixed window would), shifted by a key's phase (``phases``: a fraction of the window), so
    that the keys of a pool turn their windows at different moments. ``limit`` None or 0
    disables limiting."""

    def __init__(
        self,
        limit: Optional[int] = 60,
        window: float = 60.0,
        phases: Optional[Mapping[str, float]] = None,
    ):
        self.limit = limit or 0
        self.window = float(window)
        self.phases = dict(phases or {})
        self._counts: Dict[str, Tuple[float, int]] = {}
        self._lock = threading.Lock()

    def _window_start(self, key: str, now: float) -> float:
        shift = self.phases.get(key, 0.0) * self.window
        return math.floor((now - shift) / self.window) * self.window + shift

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def _state(self, key: str, now: float, consume: bool) -> RateState:
        start = self._window_start(key, now)
        end = start + self.window
        window_start, used = self._counts.get(key, (start, 0))
        if window_start != start:
            used = 0
        allowed = used < self.limit
        if consume and allowed:
            used += 1
        self._counts[key] = (start, used)
        return RateState(
            limit=self.limit,
            remaining=max(0, self.limit - used),
            reset=math.ceil(end),
            retry_after=max(1, math.ceil(end - now)),
            allowed=allowed,
            ends_at=end,
        )

    def acquire(self, key: str) -> RateState:
        """Count one request; ``allowed`` False (and nothing counted) once the budget is spent."""
        with self._lock:
            return self._state(key, time.time(), consume=True)

    def peek(self, key: str) -> RateState:
        with self._lock:
            return self._state(key, time.time(), consume=False)

    def refund(self, key: str) -> RateState:
        """Give back one request of the current window (a 5xx does not count; docs/api-notes.md, Rate limit)."""
        with self._lock:
            now = time.time()
            start, used = self._counts.get(key, (None, 0))
            if start == self._window_start(key, now) and used:
                self._counts[key] = (start, used - 1)
            return self._state(key, now, consume=False)
