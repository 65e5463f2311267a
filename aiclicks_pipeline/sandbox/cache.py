"""The server-side response cache, timed by the sandbox clock."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Dict, Hashable, Optional, Tuple

from .clock import SandboxClock

# a long-running sandbox drops what expired once it holds this many entries, and again each
# time it has doubled since: a purge scans every entry, and purging at every put past the mark
# made a 2,000-domain sync with a frozen clock (nothing expires) quadratic, its second half
# three to four times slower than its first
PURGE_AT = 10_000


class ResponseCache:
    """Response bodies by key for ``ttl`` seconds of SANDBOX time, so ``advance`` expires them.
    ``ttl`` 0 disables caching."""

    def __init__(self, clock: SandboxClock, ttl: float = 3600):
        self.clock = clock
        self.ttl = timedelta(seconds=ttl)
        self._entries: Dict[Hashable, Tuple[object, bytes]] = {}
        self._lock = threading.Lock()
        self._purge_at = PURGE_AT

    def get(self, key: Hashable) -> Optional[bytes]:
        now = self.clock.now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, body = entry
            # Expired also when the clock went back before the entry (a test rewinding time).
            if not stored_at <= now < stored_at + self.ttl:
                del self._entries[key]
                return None
            return body

    def put(self, key: Hashable, body: bytes, generated_at: Optional[datetime] = None) -> None:
        """Stores `body` as of `generated_at` (default now): a body is as old as its data, also
        when the clock moved while it was made."""
        if not self.ttl:
            return
        now = generated_at or self.clock.now()
        with self._lock:
            if len(self._entries) >= self._purge_at:
                self._entries = {
                    k: (at, b) for k, (at, b) in self._entries.items() if at <= now < at + self.ttl
                }
                self._purge_at = max(PURGE_AT, 2 * len(self._entries))
            self._entries[key] = (now, body)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._purge_at = PURGE_AT
