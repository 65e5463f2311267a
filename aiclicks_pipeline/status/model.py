"""What `status` knows of the warehouse, and how it judges a domain: the data model.

A domain's data age is the age of its oldest cursor over the tables the dataset loads: every
table of the domain holds data at least that new. A domain is stale past `max_age_hours`; one
with no cursor at all was never loaded; one missing some tables is incomplete. A domain the API
stopped listing (its `domains` row no longer refreshed while others' are) is shown apart and
does not make the data stale.
"""

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from ..settings import ENDPOINTS
from ..source import SOURCE_NAME
from ..sync import CURSORS_KEY, SYNCED_KEY
from ..windows import parse_timestamp

DEFAULT_MAX_AGE_HOURS = 36.0
# dlt's child table of citations: rows and loads only (its rows carry no generated_at)
CHILD_TABLES = ("citations__models",)
FRESH, STALE, INCOMPLETE, NEVER_LOADED, UNLISTED = "fresh", "stale", "incomplete", "never loaded", "unlisted"
# worst first
SEVERITY = {NEVER_LOADED: 0, STALE: 1, INCOMPLETE: 2, UNLISTED: 3, FRESH: 4}


@dataclass
class TableStatus:
    name: str
    rows: Optional[int]  # None: the table is not in the dataset
    last_load_at: Optional[datetime] = None
    newest_generated_at: Optional[datetime] = None


@dataclass
class DomainStatus:
    domain_id: str
    name: Optional[str]
    status: str
    # the oldest cursor over the loaded tables, and its age
    oldest_cursor: Optional[datetime] = None
    age_hours: Optional[float] = None
    # the sync time of its least recently synced table
    last_synced_at: Optional[datetime] = None
    missing: List[str] = field(default_factory=list)
    cursors: Dict[str, datetime] = field(default_factory=dict)
    synced_at: Dict[str, datetime] = field(default_factory=dict)
    skipped_by_last_run: Optional[str] = None


@dataclass
class WarehouseStatus:
    description: str
    now: datetime
    max_age_hours: float
    pipelines: Dict[str, Optional[datetime]]  # pipeline -> time of its state's load
    tables: List[TableStatus]
    domains: List[DomainStatus]
    runs: Optional[List[Dict[str, Any]]]  # None: no run history in the dataset
    # the syncs running now, as the run lock here or the run history shows them (running.py)
    running: List[Any] = field(default_factory=list)

    def by_status(self, status: str) -> List[DomainStatus]:
        return [d for d in self.domains if d.status == status]

    @property
    def skipped_by_last_run(self) -> List[DomainStatus]:
        return [d for d in self.domains if d.skipped_by_last_run]

    @property
    def behind(self) -> List[DomainStatus]:
        """Domains whose data is older than the threshold, or missing."""
        return [d for d in self.domains if d.status in (STALE, INCOMPLETE, NEVER_LOADED)]

    @property
    def is_stale(self) -> bool:
        return bool(self.behind) or not any(d.status == FRESH for d in self.domains)

    def worst(self) -> List[DomainStatus]:
        return sorted(
            self.domains,
            key=lambda d: (SEVERITY[d.status], -(d.age_hours or 0.0), d.domain_id),
        )


def domain_statuses(
    states: Dict[str, Any],
    names: Dict[str, Optional[str]],
    skipped: Dict[str, str],
    now: datetime,
    max_age_hours: float,
) -> List[DomainStatus]:
    """Every domain the dataset knows (listed, loaded or synced) and its status, from the
    pipelines' states ({pipeline: (committed at, state)}), the names in `domains` and what the
    last runs skipped ({domain_id: reason})."""
    # per resource and domain, the newest cursor and sync time over every pipeline
    cursors: Dict[str, Dict[str, datetime]] = {}
    synced: Dict[str, Dict[str, datetime]] = {}
    for _, state in states.values():
        resources = state.get("sources", {}).get(SOURCE_NAME, {}).get("resources", {})
        for resource, resource_state in resources.items():
            for domain_id, value in (resource_state.get(CURSORS_KEY) or {}).items():
                _keep_newest(cursors.setdefault(str(domain_id), {}), resource, parse_timestamp(value))
            for domain_id, value in (resource_state.get(SYNCED_KEY) or {}).items():
                at = datetime.fromtimestamp(float(value), tz=timezone.utc)
                _keep_newest(synced.setdefault(str(domain_id), {}), resource, at)
    loaded_tables = sorted({r for per_domain in cursors.values() for r in per_domain}, key=table_order)
    newest_listing = max((c["domains"] for c in cursors.values() if "domains" in c), default=None)
    statuses = []
    for domain_id in sorted(set(names) | set(cursors) | set(synced)):
        own = cursors.get(domain_id, {})
        domain = DomainStatus(
            domain_id=domain_id,
            name=names.get(domain_id),
            status=FRESH,
            cursors=own,
            synced_at=synced.get(domain_id, {}),
            skipped_by_last_run=skipped.get(domain_id),
        )
        data_synced = [at for table, at in domain.synced_at.items() if table != "domains"]
        if data_synced:  # when its least recently synced table was
            domain.last_synced_at = min(data_synced)
        domain.missing = [t for t in loaded_tables if t not in own]
        # its row in `domains` says the API listed it, not that any of its data was loaded
        if set(own) - {"domains"}:
            domain.oldest_cursor = min(own.values())
            domain.age_hours = age_hours(now, domain.oldest_cursor)
        listed_at = own.get("domains")
        if domain.oldest_cursor is None:
            domain.status = NEVER_LOADED
        elif newest_listing and listed_at and hours_between(listed_at, newest_listing) > max_age_hours:
            domain.status = UNLISTED
        elif domain.missing:
            domain.status = INCOMPLETE
        elif domain.age_hours is not None and domain.age_hours > max_age_hours:
            domain.status = STALE
        statuses.append(domain)
    return statuses


def _keep_newest(values: Dict[str, datetime], key: str, value: datetime) -> None:
    if key not in values or value > values[key]:
        values[key] = value


def table_order(name: str) -> int:
    names = list(ENDPOINTS)
    return names.index(name) if name in names else len(names)


def age_hours(now: datetime, then: datetime) -> float:
    """Hours from `then` to `now`; 0 for a time ahead of this machine's clock (the API's
    clock, which stamps generated_at, may be)."""
    return max(hours_between(then, now), 0.0)


def hours_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / 3600
