"""What one sync knows while it runs: the per-domain cursors, the server's clock, what it met.

dlt keeps one incremental cursor per resource; AIclicks needs one per resource *and domain*, so
that a domain added later gets its own backfill. Each resource's dlt state holds, per domain,
`cursors: {domain_id: generated_at}` (the newest envelope loaded) and
`synced_at: {domain_id: epoch seconds}` (when, on the server's clock, it was last synced), so
they are committed with the load and move only when a load commits. A sync reads them once,
before its first checkpoint, and every later decision of the run (the `days` to ask, which
responses are already loaded, which domains are still fresh) is taken against that snapshot,
never against values the same run wrote.

One context serves every checkpoint of a run: the HTTP session (and with it the throttle's
knowledge of the rate limit), the counters and the stop flag live here, not in a checkpoint.
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Dict, Iterable, Optional, Set, Tuple

from .settings import (
    DEFAULT_INITIAL_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SNAPSHOT_DAYS,
    ENDPOINTS,
)
from .windows import (
    check_windows,
    covering_bucket,
    horizon_gap,
    incremental_days,
    parse_timestamp,
    utc_now,
)

logger = logging.getLogger("aiclicks_pipeline")

CURSORS_KEY = "cursors"
SYNCED_KEY = "synced_at"
# A cursor or sync time later than the server's now (by more than a cached response's age)
# was stamped by a clock that ran ahead and was set right since: not trusted, or every
# response would pass for a cache hit, and every domain for fresh, until the clock caught up.
FUTURE_TOLERANCE = timedelta(hours=2)


class SyncStopped(Exception):
    """The run was asked to stop (a signal): raised where a request would otherwise start or
    wait, so that the checkpoint in flight ends at once and nothing of it is committed."""


@dataclass
class SyncStats:
    requests: int = 0
    responses_by_status: Dict[int, int] = field(default_factory=dict)
    rate_limited: int = 0
    connection_errors: int = 0
    skipped_responses: int = 0
    rows_extracted: int = 0
    # wall-clock seconds the sync was held by the rate limit (waiting for a window to turn)
    rate_limit_wait_s: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        return {
            "requests": self.requests,
            "responses_by_status": {str(k): v for k, v in sorted(self.responses_by_status.items())},
            "rate_limited": self.rate_limited,
            "connection_errors": self.connection_errors,
            "skipped_responses": self.skipped_responses,
            "rate_limit_wait_s": round(self.rate_limit_wait_s, 3),
        }


class SyncContext:
    """Shared by every resource and every copy of a paginator in one sync."""

    def __init__(
        self,
        initial_days: int = DEFAULT_INITIAL_DAYS,
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
        snapshot_days: int = DEFAULT_SNAPSHOT_DAYS,
    ) -> None:
        self.set_windows(initial_days, lookback_days, snapshot_days)
        self.server_now: Optional[datetime] = None
        self._server_now_at = time.monotonic()
        self.start_cursors: Optional[Dict[str, Dict[str, str]]] = None
        self.start_synced: Dict[str, Dict[str, float]] = {}
        # made by the first source of the run, reused by every checkpoint's source
        self.session: Any = None
        self.auth: Any = None
        self.base_url: Optional[str] = None
        self.stop = threading.Event()
        self.skipped_domains: Dict[str, str] = {}
        # per domain, the resource states this run changed (rolled back if the domain is skipped)
        self._changed_states: Dict[str, Dict[str, Dict[str, Any]]] = {}
        # the `days` each resource asked for, for the summary
        self.windows_asked: Dict[str, set] = {}
        # per domain, the dates (first, last) its incremental windows needed but that lie
        # before the API's horizon: lost for good (windows.horizon_gap)
        self.horizon_gaps: Dict[str, Tuple[date, date]] = {}
        self.stats = SyncStats()
        self.lock = threading.Lock()

    def set_windows(self, initial_days: int, lookback_days: int, snapshot_days: int) -> None:
        """The `days` options, checked before any request: no window may pass the API's
        horizon (settings.MAX_DAYS)."""
        self.initial_days, self.lookback_days, snapshot_days = check_windows(
            initial_days, lookback_days, snapshot_days
        )
        self.snapshot_days = covering_bucket(snapshot_days)

    # one object per sync, whatever dlt deep-copies (paginators are copied per domain)
    def __deepcopy__(self, memo: Dict[int, Any]) -> "SyncContext":
        return self

    def __copy__(self) -> "SyncContext":
        return self

    def begin(self, server_generated_at: Optional[Any], resource_states: Dict[str, Dict[str, Any]]) -> None:
        """Called once `/domains` answered: fixes the server's clock and the state snapshot."""
        with self.lock:
            now = utc_now()
            if server_generated_at:
                # the server's clock decides windows (a sandbox, or a skewed client clock);
                # a cached `/domains` is at most an hour old, inside any look-back
                now = parse_timestamp(server_generated_at)
            if self.server_now is None or now > self.server_now:
                self.server_now = now
                self._server_now_at = time.monotonic()
            if self.start_cursors is None:
                latest = now + FUTURE_TOLERANCE
                self.start_cursors = {
                    name: {d: c for d, c in state.get(CURSORS_KEY, {}).items() if parse_timestamp(c) <= latest}
                    for name, state in resource_states.items()
                }
                self.start_synced = {
                    name: {d: t for d, t in state.get(SYNCED_KEY, {}).items() if float(t) <= latest.timestamp()}
                    for name, state in resource_states.items()
                }

    def now(self) -> datetime:
        """The server's clock now (the session's estimate from the `Date` of its responses)."""
        if self.session is not None:
            return self.session.server_clock.now()
        if self.server_now is None:
            return utc_now()
        return self.server_now + timedelta(seconds=time.monotonic() - self._server_now_at)

    def synced_age_s(self, resource: str, domain_id: str) -> Optional[float]:
        """Seconds since `resource` of `domain_id` was last synced (server clock), or None."""
        synced = self.start_synced.get(resource, {}).get(domain_id)
        if synced is None:
            return None
        return self.now().timestamp() - float(synced)

    def due_resources(
        self, domain_id: str, resources: Iterable[str], resync_after_s: float
    ) -> Set[str]:
        """The resources of a domain not synced within `resync_after_s` (all when 0: also
        those synced "just now" by a clock estimate a little ahead of this one)."""
        if resync_after_s <= 0:
            return set(resources)
        due = set()
        for name in resources:
            age = self.synced_age_s(name, domain_id)
            if age is None or age >= resync_after_s:
                due.add(name)
        return due

    def record_response(
        self, resource: str, resource_state: Dict[str, Any], domain_id: str, generated_at: Optional[str]
    ) -> bool:
        """Records, in the resource's state being extracted, that the domain was synced now and
        moves its cursor to `generated_at` (committed with the checkpoint's load). False when
        the domain was skipped in this run: nothing of it counts as synced."""
        with self.lock:
            if domain_id in self.skipped_domains:
                return False
            self._changed_states.setdefault(domain_id, {})[resource] = resource_state
            now = self.now()
            resource_state.setdefault(SYNCED_KEY, {})[domain_id] = int(now.timestamp())
            if generated_at:
                cursors = resource_state.setdefault(CURSORS_KEY, {})
                current = cursors.get(domain_id)
                if (
                    current is None
                    or parse_timestamp(generated_at) > parse_timestamp(current)
                    or parse_timestamp(current) > now + FUTURE_TOLERANCE  # not trusted (begin)
                ):
                    cursors[domain_id] = generated_at
            return True

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise SyncStopped("the sync was asked to stop")

    def start_cursor(self, resource: str, domain_id: str) -> Optional[str]:
        return (self.start_cursors or {}).get(resource, {}).get(domain_id)

    def window_days(self, resource: str, domain_id: Optional[str]) -> Optional[int]:
        window = ENDPOINTS[resource].get("window")
        if window == "snapshot":
            days = self.snapshot_days
        elif window == "incremental":
            cursor = self.start_cursor(resource, domain_id) if domain_id else None
            server_now = self.server_now or utc_now()
            days = incremental_days(cursor, server_now, self.initial_days, self.lookback_days)
            gap = horizon_gap(cursor, server_now, self.lookback_days)
            if gap is not None and domain_id:
                self._record_gap(domain_id, gap)
        else:
            return None
        with self.lock:
            self.windows_asked.setdefault(resource, set()).add(days)
        return days

    def _record_gap(self, domain_id: str, gap: Tuple[date, date]) -> None:
        with self.lock:
            known = self.horizon_gaps.get(domain_id)
            if known is not None:
                gap = (min(known[0], gap[0]), max(known[1], gap[1]))
            self.horizon_gaps[domain_id] = gap

    def is_already_loaded(self, resource: str, domain_id: str, generated_at: Optional[str]) -> bool:
        """A response not newer than the cursor the run started with (a server cache hit)."""
        cursor = self.start_cursor(resource, domain_id)
        if cursor is None or not generated_at:
            return False
        return parse_timestamp(generated_at) <= parse_timestamp(cursor)

    def skip_domain(self, domain_id: str, reason: str) -> None:
        """The domain is left out of this run. What it answered before (a first page, another
        endpoint) may still be loaded, but its cursors and sync times go back to where the run
        found them, so the next run asks for all of it again."""
        with self.lock:
            first = domain_id not in self.skipped_domains
            self.skipped_domains.setdefault(domain_id, reason)
            for resource, state in self._changed_states.pop(domain_id, {}).items():
                for key, start in ((CURSORS_KEY, self.start_cursors or {}), (SYNCED_KEY, self.start_synced)):
                    values = state.setdefault(key, {})
                    if domain_id in start.get(resource, {}):
                        values[domain_id] = start[resource][domain_id]
                    else:
                        values.pop(domain_id, None)
        if first:
            logger.warning("Skipping domain %s: %s", domain_id, reason)

    def checkpoint_committed(self) -> None:
        """Forgets the states of the checkpoint just committed: nothing rolls them back now,
        and each is dlt's copy of every domain's cursors (kept, they grew a long sync's memory
        with the square of the account: 154 copies at 2,000 domains)."""
        with self.lock:
            self._changed_states.clear()

    def count_response(self, status_code: int) -> None:
        with self.lock:
            self.stats.requests += 1
            by_status = self.stats.responses_by_status
            by_status[status_code] = by_status.get(status_code, 0) + 1
            if status_code == 429:
                self.stats.rate_limited += 1

    def count_skipped_response(self) -> None:
        with self.lock:
            self.stats.skipped_responses += 1

    def count_rows(self, rows: int) -> None:
        with self.lock:
            self.stats.rows_extracted += rows

    def count_rate_limit_wait(self, seconds: float) -> None:
        with self.lock:
            self.stats.rate_limit_wait_s += seconds

    def count_connection_error(self) -> None:
        with self.lock:
            self.stats.requests += 1
            self.stats.connection_errors += 1
