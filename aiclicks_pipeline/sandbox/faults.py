"""Injected failures: switches (rates, bursts, vanished domains) and a deterministic queue."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Set

# What ``fail_next`` can force on the next API requests.
FAULT_KINDS = ("500", "502", "503", "429", "drop", "malformed")
SERVER_ERRORS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Faults:
    """All off by default. Change at run time with ``update`` (or POST /_sandbox/faults)."""

    latency_ms: int = 0  # sleep before answering every API request
    error_rate: float = 0.0  # share of requests answered 500/502/503
    burst_429_every: int = 0  # after every N requests ...
    burst_429_len: int = 1  # ... the next M get an injected 429 ...
    burst_retry_after: int = 1  # ... with this Retry-After
    drop_rate: float = 0.0  # full Content-Length, half the body, then the connection closes
    malformed_rate: float = 0.0  # 200 with a truncated JSON body
    extra_fields: bool = False  # unknown fields on the envelope and every object in `data`
    changed_types: bool = False  # a field changes type (a count sent as a "8.1k" string)
    # >0: a lower max `size` than documented, larger ones get 422
    # (docs/api-notes.md, Reading: page size of /prompts)
    page_size_cap: int = 0
    # >1: once, just before page N of a `/prompts` list is served, that domain gets a new prompt
    # (the newest, top of the list) and loses its oldest (not served yet): the list changes
    # while it is walked, its `total` does not. Back to 0 once it happened.
    churn_on_page: int = 0
    vanished_domains: Set[str] = field(default_factory=set)  # 404 everywhere, gone from /domains
    hidden_404_domains: Set[str] = field(default_factory=set)  # listed, but 404 on their endpoints
    # listed by /domains, but 403 "Access to this domain is not allowed for this API key." on
    # their endpoints: the key's allowlist changed (docs/api-notes.md, Reading: a 403 for one
    # domain); counted against the rate limit like any 4xx
    forbidden_domains: Set[str] = field(default_factory=set)
    forbidden_for_keys: Set[str] = field(default_factory=set)  # those keys only (all when empty)
    relisted_domains: Set[str] = field(default_factory=set)  # listed twice by /domains
    key_revoked: bool = False  # every key gets 401, as a key revoked in the dashboard
    # every key gets the team's 403, as when an admin turns the team's developer access off
    team_access_off: bool = False
    # >0: the keys of `revoke_keys` (every key when empty) are revoked once the sandbox served
    # this many API requests; a key's first 401s are held until its other requests in the
    # server were answered and none came for a moment (server.REVOKE_SETTLE_S), so that a
    # request of it arriving after one was sent after the client could see it
    revoke_after_requests: int = 0
    revoke_keys: Set[str] = field(default_factory=set)

    def update(self, changes: Mapping[str, Any]) -> "Faults":
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault switch(es): {sorted(unknown)}")
        for name, value in changes.items():
            if name in SET_SWITCHES:
                value = set(value or ())
            setattr(self, name, value)
        return self

    def as_json(self) -> Dict[str, Any]:
        data = asdict(self)
        for name in SET_SWITCHES:
            data[name] = sorted(data[name])
        return data


SET_SWITCHES = tuple(
    f.name for f in fields(Faults) if f.name.endswith("_domains") or f.name.endswith("_keys")
)


class FaultInjector:
    """Decides, per API request that passed auth and the rate limit, which fault (if any) hits it.

    The queue from ``fail_next`` goes first, then a running 429 burst, then the random rates,
    drawn from one RNG seeded with ``seed`` (reproducible for a sequential client).
    """

    def __init__(self, faults: Faults, seed: int = 0):
        self.faults = faults
        self._random = random.Random(seed)
        self._queue: deque = deque()
        self._since_burst = 0
        self._burst_left = 0
        self._lock = threading.Lock()

    def fail_next(self, kind: str, count: int = 1) -> None:
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        with self._lock:
            self._queue.extend([kind] * count)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._since_burst = self._burst_left = 0

    def take_churn(self, page: int) -> bool:
        """True once, for the page ``churn_on_page`` names (then the switch is off)."""
        with self._lock:
            if self.faults.churn_on_page > 1 and page == self.faults.churn_on_page:
                self.faults.churn_on_page = 0
                return True
            return False

    def decide(self) -> Optional[str]:
        """A kind from FAULT_KINDS, or None to serve normally."""
        faults = self.faults
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self._burst_left:
                self._burst_left -= 1
                return "429"
            if faults.burst_429_every > 0:
                self._since_burst += 1
                if self._since_burst >= faults.burst_429_every:
                    self._since_burst = 0
                    self._burst_left = faults.burst_429_len
            draw = self._random.random()
            if draw < faults.error_rate:
                return self._random.choice(("500", "502", "503"))
            draw -= faults.error_rate
            if draw < faults.drop_rate:
                return "drop"
            draw -= faults.drop_rate
            if draw < faults.malformed_rate:
                return "malformed"
            return None
