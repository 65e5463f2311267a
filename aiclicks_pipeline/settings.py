"""The AIclicks v1 API as data: base URL, window buckets and the endpoint table.

Every fact about an endpoint (path, page sizes, window kind, table, keys, column types) is
written here once; the source, the sandbox, the tests and the docs read it from here.
docs/api-notes.md says where each fact comes from and which reading was taken where the
API's docs are unclear.
"""

from typing import Dict, Optional, Tuple, TypedDict

DEFAULT_BASE_URL = "https://api.aiclicks.io"
# the name the API's own docs use; dlt's SOURCES__AICLICKS__API_KEY takes precedence
API_KEY_ENV = "AICLICKS_API_KEY"
API_PREFIX = "/api/v1"
VALIDATE_PATH = "validate"

# `days` is snapped to the nearest of these buckets (docs/api-notes.md, The days window).
DAYS_BUCKETS: Tuple[int, ...] = (1, 7, 14, 30, 90, 180, 270, 365)
DEFAULT_DAYS = 30

DEFAULT_INITIAL_DAYS = 90
DEFAULT_LOOKBACK_DAYS = 2
DEFAULT_SNAPSHOT_DAYS = 30
DEFAULT_DATASET = "aiclicks"
# DuckDB cannot tell a catalog `aiclicks` from a schema `aiclicks`: the file must be named apart.
DEFAULT_DUCKDB_FILE = "aiclicks_warehouse.duckdb"
DEFAULT_PIPELINE_NAME = "aiclicks"

# Model channels (display names) and citation model slugs (docs/api-notes.md, Reading: model
# naming; the slugs beyond the docs' three examples are our guesses).
CHANNELS: Tuple[str, ...] = (
    "ChatGPT",
    "Perplexity",
    "Gemini",
    "AI Overviews",
    "AI Mode",
    "Claude",
    "Grok",
    "Copilot",
)
CITATION_MODEL_SLUGS: Tuple[str, ...] = (
    "gpt-4o-search",
    "perplexity-sonar",
    "gemini-2.5-flash",
    "google-ai-overviews",
    "google-ai-mode",
    "claude-sonnet",
    "grok-3",
    "copilot",
)

# How an endpoint's `days` window is chosen:
#   "incremental": from the per-domain cursor (first run `initial_days`, later the smallest
#                  bucket covering the time since the last `generated_at` plus a look-back);
#   "snapshot":    a fixed window (`snapshot_days`), loaded once per `snapshot_date`;
#   None:          the endpoint takes no `days`.
# How a response becomes rows ("shape"):
#   "items":   one row per `data.items[]`;
#   "fanout":  one row per `data.items[].fanout_queries[]`, with its prompt's id and text.


class EndpointSpec(TypedDict, total=False):
    path: str
    domain_scoped: bool
    window: Optional[str]
    shape: str
    # (default, max) page size as documented, or the general 25/100 where not documented
    # (docs/api-notes.md, Pagination)
    page_size: Optional[Tuple[int, int]]
    # the field that tells one item of a page from another (a paged list is checked for
    # repeated and missing items with it)
    item_key: str
    # shape "fanout": the list inside each item, and the field that tells its entries apart
    nested_items: Tuple[str, str]
    primary_key: Tuple[str, ...]
    columns: Dict[str, str]
    params: Dict[str, str]


_SERIES_COLUMNS = {"domain_id": "text", "date": "date", "generated_at": "timestamp"}
_SNAPSHOT_COLUMNS = {
    "domain_id": "text",
    "days": "bigint",
    "snapshot_date": "date",
    "generated_at": "timestamp",
}

ENDPOINTS: Dict[str, EndpointSpec] = {
    "domains": {
        "path": "domains",
        "domain_scoped": False,
        "window": None,
        "shape": "items",
        "page_size": None,
        "item_key": "id",
        "primary_key": ("id",),
        "columns": {
            "id": "text",
            "name": "text",
            "website": "text",
            "created_at": "timestamp",
            "generated_at": "timestamp",
        },
    },
    "prompts": {
        "path": "prompts",
        "domain_scoped": True,
        "window": None,
        "shape": "items",
        "page_size": (50, 500),
        "item_key": "id",
        "primary_key": ("id",),
        "columns": {
            "id": "text",
            "domain_id": "text",
            "text": "text",
            "estimated_search_volume": "bigint",
            "created_at": "timestamp",
            "generated_at": "timestamp",
        },
    },
    "fanout_queries": {
        "path": "fanout-queries",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "fanout",
        # not clearly documented as paginated; the sandbox pages it (docs/api-notes.md,
        # Reading: pagination of /fanout-queries and what total counts)
        "page_size": (25, 100),
        # items are prompts (their id) with their emissions (each with its own id)
        "item_key": "id",
        "nested_items": ("fanout_queries", "id"),
        "primary_key": ("id",),
        "params": {"model": "all"},
        "columns": {
            "id": "text",
            "domain_id": "text",
            "prompt_id": "text",
            "prompt_text": "text",
            "query": "text",
            "model": "text",
            "generated_at": "timestamp",
        },
    },
    "visibility_daily": {
        "path": "visibility-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {**_SERIES_COLUMNS, "value": "double"},
    },
    "mentions_daily": {
        "path": "mentions-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {**_SERIES_COLUMNS, "value": "bigint"},
    },
    "citability_daily": {
        "path": "citability-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {**_SERIES_COLUMNS, "value": "double"},
    },
    "citations_daily": {
        "path": "citations-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {**_SERIES_COLUMNS, "value": "bigint"},
    },
    "brand_rankings": {
        "path": "brand-rankings",
        "domain_scoped": True,
        "window": "snapshot",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "days", "snapshot_date", "id"),
        "columns": {
            **_SNAPSHOT_COLUMNS,
            "id": "text",
            "name": "text",
            "website": "text",
            "is_brand": "bool",
            "mentions": "bigint",
            "visibility": "double",
            "sov": "double",
            "avg_position": "double",
            "prompts_mentioned": "bigint",
            "total_prompts": "bigint",
        },
    },
    "model_leaderboard": {
        "path": "model-leaderboard",
        "domain_scoped": True,
        "window": "snapshot",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "days", "snapshot_date", "model"),
        "columns": {
            **_SNAPSHOT_COLUMNS,
            "model": "text",
            "visibility": "double",
            "avg_position": "double",
        },
    },
    "citations": {
        "path": "citations",
        "domain_scoped": True,
        "window": "snapshot",
        "shape": "items",
        # not documented as paginated; the sandbox pages it (docs/api-notes.md,
        # Reading: pagination of /citations)
        "page_size": (25, 100),
        "item_key": "url",
        "primary_key": ("domain_id", "days", "snapshot_date", "url"),
        "columns": {
            **_SNAPSHOT_COLUMNS,
            "url": "text",
            "domain": "text",
            "page_type": "text",
            "page_title": "text",
            "frequency": "bigint",
            "mentions": "bigint",
            "prompt_count": "bigint",
            "first_seen": "timestamp",
            "last_seen": "timestamp",
        },
    },
}

DOMAIN_RESOURCES: Tuple[str, ...] = tuple(n for n, e in ENDPOINTS.items() if e["domain_scoped"])

# Error bodies, exactly as documented (docs/api-notes.md, Errors;
# tests/fixtures/api_examples/errors.json).
ERROR_DETAILS = {
    400: (
        "domain_id query parameter is required. List the domains this key can access with "
        "GET /api/v1/domains, then pass ?domain_id=<uuid>."
    ),
    401: "Invalid or revoked API key",
    403: "API access is not enabled for this team. Contact support@aiclicks.io.",
    404: "Domain not found",
    429: "Too many requests. Please try again later.",
}
