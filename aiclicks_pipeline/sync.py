"""What one sync knows while it runs: the per-domain cursors, the server's clock, what it met.

dlt keeps one incremental cursor per resource; AIclicks needs one per resource *and domain*, so
that a domain added later gets its own backfill. The cursors live in each resource's dlt state
(`cursors: {domain_id: generated_at}`), so they are committed with the load and move only
when a load commits. A sync reads them once, when `/domains` answers, and every later
decision of the run (the `days` to ask, which responses are already loaded) is taken against
that snapshot, never against values the same run wrote.
"""

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Optional

from .settings import (
    DEFAULT_INITIAL_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SNAPSHOT_DAYS,
    ENDPOINTS,
)
from .windows import covering_bucket, incremental_days, parse_timestamp, utc_now

logger = logging.getLogger("aiclicks_pipeline")

CURSORS_KEY = "cursors"


@dataclass
class SyncStats:
    requests: int = 0
    responses_by_status: Dict[int, int] = field(default_factory=dict)
    rate_limited: int = 0
    connection_errors: int = 0
    skipped_responses: int = 0
    # wall-clock seconds the sync was held by the rate limit (waiting for a window to turn)
    rate_limit_wait_s: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        return {
            "requests": self.requests,
            "responses_by_status": dict(sorted(self.responses_by_status.items())),
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
        self.initial_days = initial_days
        self.lookback_days = lookback_days
        self.set_snapshot_days(snapshot_days)
        self.server_now: Optional[datetime] = None
        self.start_cursors: Optional[Dict[str, Dict[str, str]]] = None
        self.skipped_domains: Dict[str, str] = {}
        # the `days` each resource asked for, for the summary
        self.windows_asked: Dict[str, set] = {}
        self.stats = SyncStats()
        self.lock = threading.Lock()

    def set_snapshot_days(self, snapshot_days: int) -> None:
        self.snapshot_days = covering_bucket(snapshot_days)

    # one object per sync, whatever dlt deep-copies (paginators are copied per domain)
    def __deepcopy__(self, memo: Dict[int, Any]) -> "SyncContext":
        return self

    def __copy__(self) -> "SyncContext":
        return self

    def begin(self, server_generated_at: Optional[str], resource_states: Dict[str, Dict[str, Any]]) -> None:
        """Called once `/domains` answered: fixes the server's clock and the cursor snapshot."""
        with self.lock:
            now = utc_now()
            if server_generated_at:
                # the server's clock decides windows (a sandbox, or a skewed client clock);
                # a cached `/domains` is at most an hour old, inside any look-back
                now = parse_timestamp(server_generated_at)
            if self.server_now is None or now > self.server_now:
                self.server_now = now
            if self.start_cursors is None:
                self.start_cursors = {
                    name: dict(state.get(CURSORS_KEY, {})) for name, state in resource_states.items()
                }

    def start_cursor(self, resource: str, domain_id: str) -> Optional[str]:
        return (self.start_cursors or {}).get(resource, {}).get(domain_id)

    def window_days(self, resource: str, domain_id: Optional[str]) -> Optional[int]:
        window = ENDPOINTS[resource].get("window")
        if window == "snapshot":
            days = self.snapshot_days
        elif window == "incremental":
            days = incremental_days(
                self.start_cursor(resource, domain_id) if domain_id else None,
                self.server_now or utc_now(),
                self.initial_days,
                self.lookback_days,
            )
        else:
            return None
        with self.lock:
            self.windows_asked.setdefault(resource, set()).add(days)
        return days

    def is_already_loaded(self, resource: str, domain_id: str, generated_at: Optional[str]) -> bool:
        """A response not newer than the cursor the run started with (a server cache hit)."""
        cursor = self.start_cursor(resource, domain_id)
        if cursor is None or not generated_at:
            return False
        return parse_timestamp(generated_at) <= parse_timestamp(cursor)

    def skip_domain(self, domain_id: str, reason: str) -> None:
        with self.lock:
            first = domain_id not in self.skipped_domains
            self.skipped_domains.setdefault(domain_id, reason)
        if first:
            logger.warning("Skipping domain %s: %s", domain_id, reason)

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

    def count_rate_limit_wait(self, seconds: float) -> None:
        with self.lock:
            self.stats.rate_limit_wait_s += seconds

    def count_connection_error(self) -> None:
        with self.lock:
            self.stats.requests += 1
            self.stats.connection_errors += 1
