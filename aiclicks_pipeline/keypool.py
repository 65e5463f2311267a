"""The API keys of one sync, each with its own rate limit (docs/api-notes.md, Rate limit: the
limit is counted per key, and a second key of a team has its own budget).

Every request of a sync asks the pool for a key. Each key has its own throttle (throttle.py),
fed by its own `X-RateLimit-*` headers; a request goes to whichever key has budget now (one
not heard of yet first, then the one with the most left), else waits for the soonest to have
some, with every thread of
the run under one lock. A key the API refuses as a whole (401, or a 403 for the key's team) is
named and set aside, and the others carry on; once none is left nothing more is sent, and
every request, in any thread, raises the refusal (the run stops: exit 1). With one key that is
the first 401.

A key is named by its position in the configuration and a fingerprint (the first hex digits
of its SHA-256, which do not give the key away), never by the key itself: `aiclicks-pipeline
validate` prints both beside the name the key was given in the dashboard.
"""

import hashlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Deque, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

import dlt
from requests import PreparedRequest, Response

from .errors import AIclicksHTTPError
from .server_clock import ClockReading, ServerClock
from .sync import SyncStopped
from .throttle import Budget, RateLimitThrottle, seconds_for

logger = logging.getLogger("aiclicks_pipeline")

# a key whose requests were refused (403) for this many domains in a row, without one answer
# in between, is taken as refused as a whole (docs/api-notes.md, Reading: a 403 for one domain)
REFUSED_DOMAINS_FOR_A_KEY = 3
# how often a request waiting for an answer in flight looks again (an answer wakes it anyway)
ANSWER_POLL_S = 0.5
# dlt extracts with 5 threads; k keys answer k times the requests, so k times the threads
# keep as many in flight (4 keys of 60 / 6 s at 150 ms a request: extraction 12.6 s -> 5.6 s
# against a floor of 5.0 s)
EXTRACT_WORKERS_PER_KEY = 5
# each endpoint fetches this many domains at a time a key (fetch_ahead.py): a domain's pages
# follow one another, so one at a time left the keys budget to spare (2 / 4 keys: 1.25 / 1.77 x
# the keys' floor, now 1.00 / 0.95 x)
DOMAINS_AT_ONCE_PER_KEY = 2
# Little's law: a run keeps its rate times the answers' latency in flight. Where one request
# at a time per endpoint answers at least twice as fast as the keys' limit asks (latency x rate
# <= ONE_AT_A_TIME_UP_TO), or, with no limit told, the API answers within LOCAL_ANSWER_S (a
# server on this machine or its network: the sandbox, a mirror; the client's own work is 1-2 ms
# an answer), more threads add no answers and only contend for Python's lock: 500 sandbox
# domains without a rate limit, extraction 11.3 -> 8.2 s and context switches 287,000 ->
# 88,000 with FEW_WORKERS threads and one domain at a time against 5 x 2 (bench/RESULTS.md)
ONE_AT_A_TIME_UP_TO = 0.5
LOCAL_ANSWER_S = 0.005
FEW_WORKERS = 2
# the latency is the tenth-fastest of the latest answers: each is timed by the thread that
# sent it, which may wait for Python's lock before it reads the answer, the longer the more
# threads are busy (100 sandbox domains, two threads: 0.5-14 ms, median 2-3 ms, the server's
# own time about 1 ms); the fastest tell the API's own time, the slowest the client's load
LATENCY_ANSWERS = 50


def fingerprint(token: str) -> str:
    """A short, stable, non-secret name of a key: the first 6 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:6]


def key_label(position: int, pool_size: int, token: Optional[str]) -> str:
    """`key 2 of 3 [3fa9c1]`; `the API key` when it is the only one."""
    if pool_size == 1 or token is None:
        return "the API key"
    return f"key {position} of {pool_size} [{fingerprint(token)}]"


@dataclass(eq=False)
class PoolKey:
    position: int  # 1-based, in the order the keys were configured
    pool_size: int
    token: Optional[str] = field(repr=False)  # None: the request's own Authorization is kept
    throttle: RateLimitThrottle = field(repr=False)
    refused: Optional[AIclicksHTTPError] = field(default=None, repr=False)
    # domains refused (403) since the key's last answer that was not an error
    refused_domains: Set[str] = field(default_factory=set, repr=False)
    # every domain it was refused in this run: its other requests go to other keys
    denied_domains: Set[str] = field(default_factory=set, repr=False)

    @property
    def label(self) -> str:
        return key_label(self.position, self.pool_size, self.token)

    def authorize(self, request: PreparedRequest) -> PreparedRequest:
        """`request` sent with this key."""
        if self.token is None:
            return request
        keyed = request.copy()
        keyed.headers["Authorization"] = f"Bearer {self.token}"
        return keyed

    def __repr__(self) -> str:
        return f"PoolKey({self.label})"


class Concurrency(NamedTuple):
    """An extraction's threads: dlt's extract workers (endpoints at a time) and the domains each
    endpoint fetches at a time (fetch_ahead.py)."""

    workers: int
    domains_at_once: int


class KeyPool:
    """The keys of a run and the waits for their budgets (thread-safe)."""

    def __init__(
        self,
        tokens: Sequence[Optional[str]] = (None,),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        # one server, one clock, whichever key asked
        self.server_clock = ServerClock(clock)
        self.keys = [
            PoolKey(position, len(tokens), token, RateLimitThrottle(clock, self.server_clock))
            for position, token in enumerate(tokens, start=1)
        ]
        self._failure: Optional[AIclicksHTTPError] = None
        self._cancelled = False
        # wall time during which a request was held by the limit
        self._held = 0
        self._held_since = 0.0
        # when a request waits for a budget: until when (this clock), for the display
        self.waiting_until: Optional[float] = None
        # seconds from each request to its answer's headers, the latest LATENCY_ANSWERS
        self._latencies: Deque[float] = deque(maxlen=LATENCY_ANSWERS)
        self._cond = threading.Condition()

    # --- requests ---------------------------------------------------------------------------

    def acquire(self, exclude: Collection[PoolKey] = ()) -> Tuple[PoolKey, float]:
        """Blocks until a key (not in `exclude`) has room for a request, then reserves it.
        Returns the key and the seconds of wall time this call ended of the sync being held by
        the limit. Raises the refusal once no key is left, SyncStopped once cancelled."""
        held_for = 0.0
        with self._cond:
            holding = False
            try:
                while True:
                    if self._cancelled:
                        raise SyncStopped("the sync was asked to stop")
                    chosen, wait = self._reserve(exclude)
                    if chosen is not None:
                        break
                    now = self.clock()
                    if not holding:
                        holding = True
                        self._begin_hold(now)
                    self.waiting_until = now + wait if wait != math.inf else None
                    self._cond.wait(timeout=ANSWER_POLL_S if wait == math.inf else wait)
            finally:
                self.waiting_until = None
                if holding:
                    held_for = self._end_hold()
        return chosen, held_for

    def _reserve(self, exclude: Collection[PoolKey]) -> Tuple[Optional[PoolKey], float]:
        """A key with room for a request now, reserved, or None and the seconds to wait. With
        every key left in `exclude` (set aside meanwhile by other threads) any key left will do:
        it answers as it did, and the caller decides."""
        keys = self._usable(exclude) or self._usable(())
        if not keys:
            raise self.refusal()
        wait = math.inf
        # a key not heard of yet first (its answer tells its budget), then the most left
        for key in sorted(keys, key=lambda k: (k.throttle.limit is not None, -k.throttle.available())):
            wait = min(wait, key.throttle.reserve())
            if wait == 0:
                return key, 0.0
        return None, wait

    def release(
        self, key: PoolKey, response: Optional[Response] = None, reading: Optional[ClockReading] = None
    ) -> None:
        """Records a finished request of `key` (`response` None: no answer came)."""
        with self._cond:
            key.throttle.release(response, reading)
            if response is not None:
                self._latencies.append(response.elapsed.total_seconds())
                if response.status_code < 400:
                    key.refused_domains.clear()
            self._cond.notify_all()

    def sit_out(self, seconds: float, sleep: Callable[[float], None]) -> float:
        """Sleeps `seconds` the server asked for (a 429's `Retry-After`) with `sleep`, counted
        as held by the limit; returns the wall time it ended of the sync being held."""
        with self._cond:
            self._begin_hold(self.clock())
        try:
            sleep(seconds)
        finally:
            with self._cond:
                held_for = self._end_hold()
        return held_for

    def cancel(self) -> None:
        """Wakes every waiting request and makes it (and every later one) raise SyncStopped."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    # --- keys the API refuses ---------------------------------------------------------------

    def set_aside(self, key: PoolKey, error: AIclicksHTTPError) -> bool:
        """`key` is refused as a whole (`error`): no request goes to it any more. True while
        another key is left."""
        with self._cond:
            if key.refused is None:
                key.refused = error
                left = self._usable(())
                if left:
                    logger.warning(
                        "%s is set aside, the sync goes on with %d other key(s): %s",
                        key.label, len(left), error,
                    )
                else:
                    self._failure = error
            self._cond.notify_all()
            return bool(self._usable(()))

    def refused_domain(self, key: PoolKey, domain_id: str) -> bool:
        """`key` was refused `domain_id` (403); True when that makes the key refused as a whole
        (refused several domains in a row, nothing answered in between)."""
        with self._cond:
            key.refused_domains.add(domain_id)
            key.denied_domains.add(domain_id)
            return len(key.refused_domains) >= REFUSED_DOMAINS_FOR_A_KEY

    def denying(self, domain_id: Optional[str]) -> Set[PoolKey]:
        """The keys refused `domain_id` before in this run."""
        with self._cond:
            return {k for k in self.keys if domain_id and domain_id in k.denied_domains}

    def has_other(self, exclude: Collection[PoolKey]) -> bool:
        with self._cond:
            return bool(self._usable(exclude))

    def has_budget_elsewhere(self, key: PoolKey) -> bool:
        """Another key could send a request now."""
        with self._cond:
            return any(k.throttle.available() for k in self._usable((key,)))

    def refusal(self) -> AIclicksHTTPError:
        """The error that ended the pool: the last key's refusal, naming every key's with
        several; a fresh exception each time (threads raise it at once)."""
        failure = self._failure
        assert failure is not None, "a pool ends with a refusal"
        message = failure.message
        if len(self.keys) > 1:
            message = "The API refused every key of the pool: " + "; ".join(
                f"{k.label}: {k.refused}" for k in self.keys if k.refused is not None
            )
        return type(failure)(message, failure.response)

    def _usable(self, exclude: Collection[PoolKey]) -> List[PoolKey]:
        return [k for k in self.keys if k.refused is None and k not in exclude]

    def latency_s(self) -> Optional[float]:
        """Seconds from a request to its answer: the tenth-fastest of the latest (LATENCY_ANSWERS);
        None before any answer."""
        with self._cond:
            fastest = sorted(self._latencies)
        return fastest[len(fastest) // 10] if fastest else None

    def concurrency(self) -> "Concurrency":
        """The threads an extraction needs to keep the keys busy at the answers' latency: as
        many as every key's share (before any answer, and wherever latency x rate asks for
        more than one request at a time), else a few, one domain at a time."""
        return self._concurrency_at(self.latency_s())

    def _concurrency_at(self, latency: Optional[float]) -> "Concurrency":
        rate = self.requests_per_second()
        if latency is not None and (
            latency <= LOCAL_ANSWER_S if rate is None else latency * rate <= ONE_AT_A_TIME_UP_TO
        ):
            return Concurrency(FEW_WORKERS, 1)
        return Concurrency(EXTRACT_WORKERS_PER_KEY * len(self.keys), DOMAINS_AT_ONCE_PER_KEY * len(self.keys))

    def extract_settings(self) -> Dict[str, Any]:
        """dlt settings for the next extraction (unless configured): its threads."""
        if dlt.config.get("extract.workers") is not None:
            return {}
        latency = self.latency_s()
        concurrency = self._concurrency_at(latency)
        logger.info(
            "Extracting with %d threads, %d domain(s) at a time per endpoint (answers in %s)",
            concurrency.workers, concurrency.domains_at_once,
            "?" if latency is None else f"{latency * 1000:.0f} ms",
        )
        return {"extract.workers": concurrency.workers}

    def domains_at_once(self) -> int:
        """How many domains each endpoint fetches at a time (read as its extraction starts)."""
        return self.concurrency().domains_at_once

    # --- what the display and the plan read -------------------------------------------------

    def waiting_s(self) -> float:
        """Seconds left of the current wait for the rate limit (0 when nothing waits)."""
        until = self.waiting_until
        return max(until - self.clock(), 0.0) if until is not None else 0.0

    def budgets(self) -> List[Budget]:
        """Each usable key's budget; a key not heard of yet is taken as one that was."""
        with self._cond:
            known = [(k, k.throttle.budget()) for k in self._usable(())]
        heard = [b for _, b in known if b is not None]
        if not heard:
            return []
        like = heard[0]
        return [b or Budget(0, like.limit, like.window_s, like.window_s) for _, b in known]

    def requests_per_second(self) -> Optional[float]:
        """The pool's sustained rate, every usable key's limit per window; None before any
        response told a limit."""
        budgets = self.budgets()
        return sum(b.limit / b.window_s for b in budgets) if budgets else None

    def eta_s(self, requests_left: int) -> Optional[float]:
        """Seconds the keys' limits need for `requests_left` more requests (throttle.seconds_for);
        None while no limit is known."""
        budgets = self.budgets()
        return seconds_for(requests_left, budgets) if budgets else None

    def _begin_hold(self, now: float) -> None:
        if self._held == 0:
            self._held_since = now
        self._held += 1

    def _end_hold(self) -> float:
        self._held -= 1
        return max(self.clock() - self._held_since, 0.0) if self._held == 0 else 0.0
