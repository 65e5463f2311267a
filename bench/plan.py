"""The fewest requests a sync of an account can make, computed from the account itself.

One request per domain and endpoint, more only where a list is longer than the largest page
the API serves (docs/api-notes.md, Pagination), plus one for `/domains`. The counts come from the sandbox's ground
truth (what it would serve), the page sizes and windows from the API's documented facts, never
from the client's own code.
"""

import math
from datetime import datetime
from typing import Dict

from aiclicks_pipeline.sandbox import Account
from aiclicks_pipeline.settings import (
    DAYS_BUCKETS,
    DEFAULT_INITIAL_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SNAPSHOT_DAYS,
    DOMAIN_RESOURCES,
    ENDPOINTS,
)

# What each paged list holds, per domain and window, in the account's own terms.
LIST_LENGTHS = {
    "prompts": lambda account, domain_id, days, now: len(account.prompts(domain_id, now)),
    "fanout_queries": lambda account, domain_id, days, now: len(account.fanout(domain_id, days, now)),
    "citations": lambda account, domain_id, days, now: len(account.citations(domain_id, days, now)),
}

# A first sync asks the initial history; a sync right after it (nothing new) the smallest
# bucket that covers the look-back plus today.
FIRST_SYNC_DAYS = DEFAULT_INITIAL_DAYS
NO_CHANGE_DAYS = min(b for b in DAYS_BUCKETS if b >= DEFAULT_LOOKBACK_DAYS + 1)


def minimal_requests(account: Account, now: datetime, incremental_days: int) -> int:
    """Requests of one sync of every domain, with `incremental_days` for the incremental
    endpoints and the snapshot window for the aggregates."""
    windows = {"incremental": incremental_days, "snapshot": DEFAULT_SNAPSHOT_DAYS, None: None}
    total = 1  # /domains
    for domain in account.domains(now):
        for name in DOMAIN_RESOURCES:
            total += pages(account, name, domain["id"], windows[ENDPOINTS[name]["window"]], now)
    return total


def pages(account: Account, name: str, domain_id: str, days: int, now: datetime) -> int:
    """Pages of one endpoint for one domain at the largest page size (an empty list is one
    request too)."""
    page_size = ENDPOINTS[name].get("page_size")
    if not page_size:
        return 1
    return max(1, math.ceil(LIST_LENGTHS[name](account, domain_id, days, now) / page_size[1]))


def request_plan(account: Account, now: datetime) -> Dict[str, int]:
    """The floors of the requests figure: a first sync and a no-change sync after it."""
    return {
        "full": minimal_requests(account, now, FIRST_SYNC_DAYS),
        "no_change": minimal_requests(account, now, NO_CHANGE_DAYS),
    }
