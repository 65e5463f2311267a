"""What the sandbox served: counters and a request log, for tests and the admin endpoint."""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from typing import Any, Dict, List, Optional


class Stats:
    """Thread-safe counters of API requests (admin requests are not counted).

    ``rate_limited`` counts 429s by origin: "real" (the key's budget) or "injected" (a fault);
    ``faults`` counts injected faults by kind; ``after_first_401`` counts, per key (its name),
    the requests with it that arrived after its first 401 was answered (a client that saw it
    sends nothing more with that key). ``max_in_flight`` is the most API requests it was
    serving at once (a client's concurrency).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests = 0
            self.by_path: Counter = Counter()
            self.by_status: Counter = Counter()
            self.cache: Counter = Counter()
            self.rate_limited: Counter = Counter()
            self.faults: Counter = Counter()
            self.log: List[Dict[str, Any]] = []
            self.first_401_at: Dict[Optional[str], float] = {}
            self.after_first_401: Counter = Counter()
            self.max_in_flight = 0

    def record(
        self,
        path: str,
        query: Dict[str, str],
        status: int,
        request_id: str,
        x_cache: Optional[str],
        fault: Optional[str] = None,
        rate_limited: Optional[str] = None,
        arrived_at: Optional[float] = None,
        key: Optional[str] = None,
    ) -> None:
        """One answered API request; `arrived_at` (time.monotonic()) when it came in, `key`
        the name of the key it was sent with (None: no known key)."""
        with self._lock:
            first_401_at = self.first_401_at.get(key)
            if first_401_at is not None and arrived_at is not None and arrived_at > first_401_at:
                self.after_first_401[key] += 1
            if status == 401 and first_401_at is None:
                self.first_401_at[key] = time.monotonic()
            self.requests += 1
            self.by_path[path] += 1
            self.by_status[status] += 1
            if x_cache:
                self.cache[x_cache] += 1
            if fault:
                self.faults[fault] += 1
            if rate_limited:
                self.rate_limited[rate_limited] += 1
            self.log.append(
                {
                    "path": path,
                    "query": dict(query),
                    "status": status,
                    "request_id": request_id,
                    "x_cache": x_cache,
                    "fault": fault,
                    "key": key,
                }
            )

    def serving(self, requests: int) -> None:
        """`requests` API requests are being served now."""
        with self._lock:
            self.max_in_flight = max(self.max_in_flight, requests)

    @property
    def cache_hits(self) -> int:
        return self.cache["HIT"]

    @property
    def cache_misses(self) -> int:
        return self.cache["MISS"]

    def snapshot(self) -> Dict[str, Any]:
        """A JSON-ready copy (status codes as string keys)."""
        with self._lock:
            return {
                "requests": self.requests,
                "by_path": dict(self.by_path),
                "by_status": {str(k): v for k, v in self.by_status.items()},
                "cache": dict(self.cache),
                "rate_limited": dict(self.rate_limited),
                "faults": dict(self.faults),
                "after_first_401": dict(self.after_first_401),
                "max_in_flight": self.max_in_flight,
                "log": copy.deepcopy(self.log),
            }
