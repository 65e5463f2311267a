"""`aiclicks-pipeline status`: how fresh the warehouse is and what the last runs did, read from
the warehouse alone.

It reads, never writes: no API request, no run lock, nothing in a working folder. The warehouse
is opened by warehouse.py (a DuckDB file read-only, any other destination through dlt's SQL
client); on a server warehouse this works while a sync runs (the state read is the last
committed checkpoint's), while a DuckDB file being written is locked by its writer.

- model.py: what status knows (tables, domains, runs) and how it judges a domain;
- read.py: reading that from the warehouse;
- render.py: the screen a person reads and the JSON a monitor reads.
"""

from .model import (
    CHILD_TABLES,
    DEFAULT_MAX_AGE_HOURS,
    FRESH,
    INCOMPLETE,
    NEVER_LOADED,
    SEVERITY,
    STALE,
    UNLISTED,
    DomainStatus,
    TableStatus,
    WarehouseStatus,
)
from .read import DEFAULT_RUNS, StatusError, read_status
from .render import DEFAULT_WORST, render_json, render_text

__all__ = [
    "CHILD_TABLES",
    "DEFAULT_MAX_AGE_HOURS",
    "DEFAULT_RUNS",
    "DEFAULT_WORST",
    "FRESH",
    "INCOMPLETE",
    "NEVER_LOADED",
    "SEVERITY",
    "STALE",
    "UNLISTED",
    "DomainStatus",
    "StatusError",
    "TableStatus",
    "WarehouseStatus",
    "read_status",
    "render_json",
    "render_text",
]
