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
# several keys for one sync (keypool.py), commas or spaces between them; dlt's
# SOURCES__AICLICKS__API_KEYS (a list) takes precedence
API_KEYS_ENV = "AICLICKS_API_KEYS"
API_PREFIX = "/api/v1"
VALIDATE_PATH = "validate"

# `days` is snapped by the server to the nearest of these buckets (docs/api-notes.md, The days
# window); the endpoint pages document 1-365.
DAYS_BUCKETS: Tuple[int, ...] = (1, 7, 14, 30, 90, 180, 270, 365)
DEFAULT_DAYS = 30
# The most `days` the API takes by its strictest reading (the API's introduction says 90): no
# request asks more, so the pipeline works under either reading (docs/api-notes.md, Reading:
# days maximum and snapping). Dates older than this horizon cannot be asked for at all.
MAX_DAYS = 90
# the buckets a request may ask
REQUEST_DAYS_BUCKETS: Tuple[int, ...] = tuple(b for b in DAYS_BUCKETS if b <= MAX_DAYS)

DEFAULT_INITIAL_DAYS = 90
DEFAULT_LOOKBACK_DAYS = 2
DEFAULT_SNAPSHOT_DAYS = 30
DEFAULT_DATASET = "aiclicks"
# DuckDB cannot tell a catalog `aiclicks` from a schema `aiclicks`: the file must be named apart.
DEFAULT_DUCKDB_FILE = "aiclicks_warehouse.duckdb"
DEFAULT_PIPELINE_NAME = "aiclicks"
# where `transform` writes the dbt models, beside the dataset (status and report read them)
DEFAULT_MODELS_SCHEMA = "aiclicks_models"

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
    # a domain-scoped table's key starts with domain_id, though an id is unique by itself: a
    # checkpoint merges a run of domains in id order (checkpoints.plan_checkpoints), and DuckDB
    # then reads only the row groups holding them instead of the key column of the whole table
    # (a late load of a 2,000-domain sync: 5 MB read instead of 116 MB)
    primary_key: Tuple[str, ...]
    columns: Dict[str, str]
    params: Dict[str, str]
    # what a row is, and what each column means with its unit: the dlt schema's table and
    # column descriptions, and the dbt package's (its sources and staging models, written by
    # `python -m aiclicks_pipeline.dbt_gen`)
    description: str
    column_descriptions: Dict[str, str]


_SERIES_COLUMNS = {"domain_id": "text", "date": "date", "generated_at": "timestamp"}
_SNAPSHOT_COLUMNS = {
    "domain_id": "text",
    "days": "bigint",
    "snapshot_date": "date",
    "generated_at": "timestamp",
}

_DOMAIN_ID = "The domain (domains.id, a UUID) the row belongs to."
_GENERATED_AT = (
    "When the API produced the response the row came from (UTC); a cached response keeps its "
    "first generated_at, up to an hour old. Source freshness is measured on it."
)
_AVG_POSITION = (
    "Average position of the brand in the answers (1 = named first; lower is better); null "
    "without position data."
)
_SERIES_DESCRIPTIONS = {
    "domain_id": _DOMAIN_ID,
    "date": "The day (UTC calendar date) the value is for.",
    "generated_at": _GENERATED_AT,
}
_SNAPSHOT_DESCRIPTIONS = {
    "domain_id": _DOMAIN_ID,
    "days": "The snapshot's look-back window in days (1, 7, 14, 30 or 90).",
    "snapshot_date": "UTC date of generated_at: one snapshot per domain, window and day.",
    "generated_at": _GENERATED_AT,
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
        "description": (
            "Domains (brands) the API key can access, from /domains. One row per domain; "
            "primary key id."
        ),
        "column_descriptions": {
            "id": "The domain's id (a UUID); every domain-scoped table's domain_id points at it.",
            "name": "The domain's display name.",
            "website": "The domain's host, bare (no scheme), e.g. acme.com.",
            "created_at": "When the domain was added to AIclicks (UTC).",
            "generated_at": _GENERATED_AT,
        },
    },
    "prompts": {
        "path": "prompts",
        "domain_scoped": True,
        "window": None,
        "shape": "items",
        "page_size": (50, 500),
        "item_key": "id",
        "primary_key": ("domain_id", "id"),
        "columns": {
            "id": "text",
            "domain_id": "text",
            "text": "text",
            "estimated_search_volume": "bigint",
            "created_at": "timestamp",
            "generated_at": "timestamp",
        },
        "description": (
            "Tracked prompts of each domain, from /prompts (every page). One row per prompt; "
            "primary key domain_id, id."
        ),
        "column_descriptions": {
            "id": "The prompt's id (a UUID).",
            "domain_id": _DOMAIN_ID,
            "text": "The prompt as the assistants are asked it, e.g. best CRM for small business.",
            "estimated_search_volume": "Estimated monthly searches for the prompt (a count).",
            "created_at": "When the prompt started being tracked (UTC).",
            "generated_at": _GENERATED_AT,
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
        "primary_key": ("domain_id", "id"),
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
        "description": (
            "Search queries the assistants fanned out to while answering a tracked prompt, from "
            "/fanout-queries: one row per emission (the same query text can repeat). Primary "
            "key domain_id, id."
        ),
        "column_descriptions": {
            "id": "The emission's id (a UUID).",
            "domain_id": _DOMAIN_ID,
            "prompt_id": "The prompt answered (prompts.id).",
            "prompt_text": "The prompt's text, as sent with the emission.",
            "query": "The search query the assistant issued.",
            "model": "The assistant's channel display name, e.g. ChatGPT, Perplexity.",
            "generated_at": _GENERATED_AT,
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
        "description": (
            "Daily visibility of each domain, from /visibility-time-series: one row per domain and "
            "UTC day, every day of the window (a day without responses is 0). Primary key "
            "domain_id, date."
        ),
        "column_descriptions": {
            **_SERIES_DESCRIPTIONS,
            "value": (
                "Visibility, percent 0-100: responses mentioning the brand / all responses of the "
                "day x 100, across every channel."
            ),
        },
    },
    "mentions_daily": {
        "path": "mentions-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {**_SERIES_COLUMNS, "value": "bigint"},
        "description": (
            "Daily responses mentioning the brand, from /mentions-time-series: one row per domain "
            "and UTC day with responses (sparse: a missing day is unknown, not 0). Primary key "
            "domain_id, date."
        ),
        "column_descriptions": {
            **_SERIES_DESCRIPTIONS,
            "value": (
                "Responses that mention the brand that day, summed over channels (a count; a "
                "response naming the brand five times counts once)."
            ),
        },
    },
    "citability_daily": {
        "path": "citability-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {**_SERIES_COLUMNS, "value": "double"},
        "description": (
            "Daily citability of each domain, from /citability-time-series: one row per domain and "
            "UTC day. Primary key domain_id, date."
        ),
        "column_descriptions": {
            **_SERIES_DESCRIPTIONS,
            "value": (
                "Citability, percent 0-100: citation entries pointing at the brand's host / all "
                "citation entries of the day's responses x 100 (0 on a day without citations)."
            ),
        },
    },
    "citations_daily": {
        "path": "citations-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {**_SERIES_COLUMNS, "value": "bigint"},
        "description": (
            "Daily citations of the brand's host, from /citations-time-series: one row per domain "
            "and UTC day with responses (sparse: a missing day is unknown, not 0). Primary key "
            "domain_id, date."
        ),
        "column_descriptions": {
            **_SERIES_DESCRIPTIONS,
            "value": (
                "Citation entries pointing at the brand's host that day, summed over channels (a "
                "count; a response citing three brand URLs adds 3)."
            ),
        },
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
        "description": (
            "The own brand (id 'brand') and its dedicated competitors, from /brand-rankings: one "
            "snapshot per domain, window and UTC day. Primary key domain_id, days, "
            "snapshot_date, id."
        ),
        "column_descriptions": {
            **_SNAPSHOT_DESCRIPTIONS,
            "id": "'brand' (a literal) for the own brand, the competitor's id (a UUID) otherwise.",
            "name": "The brand's or competitor's name.",
            "website": "The competitor's host, bare (no scheme); null for the own brand.",
            "is_brand": "True on the own brand's row only.",
            "mentions": "Responses mentioning the brand in the window (a count).",
            "visibility": (
                "Visibility in the window, percent 0-100 (equal to sov in the API's example; "
                "docs/api-notes.md, Reading: visibility in /brand-rankings and null positions)."
            ),
            "sov": (
                "Share of voice, percent 0-100: the brand's mentions / all listed brands' "
                "mentions x 100; a snapshot sums to about 100."
            ),
            "avg_position": _AVG_POSITION,
            "prompts_mentioned": "Tracked prompts whose answers mentioned the brand (a count).",
            "total_prompts": "Tracked prompts considered (a count, the same on every row).",
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
        "description": (
            "The brand's visibility and position per AI channel, from /model-leaderboard: one "
            "snapshot per domain, window and UTC day. Primary key domain_id, days, "
            "snapshot_date, model."
        ),
        "column_descriptions": {
            **_SNAPSHOT_DESCRIPTIONS,
            "model": "The channel's display name, e.g. ChatGPT, Perplexity, AI Overviews.",
            "visibility": (
                "The brand's visibility within the channel, percent 0-100 (channels do not sum "
                "to 100)."
            ),
            "avg_position": _AVG_POSITION,
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
        "description": (
            "URLs cited in the answers to a domain's prompts, from /citations: one snapshot per "
            "domain, window and UTC day. The model slugs that cited a URL are in the child table "
            "citations__models. Primary key domain_id, days, snapshot_date, url."
        ),
        "column_descriptions": {
            **_SNAPSHOT_DESCRIPTIONS,
            "url": "The cited URL without its scheme, e.g. acme.com/blog/best-crm.",
            "domain": "The cited URL's host.",
            "page_type": "The page's classification, e.g. Listicle, Generic Article.",
            "page_title": "The page's title.",
            "frequency": "Times the URL was cited, +1 per response citing it (a count).",
            "mentions": (
                "The API's mentions count for the URL (a count, larger than frequency; its "
                "meaning is not documented: docs/api-notes.md, Reading: citations fields)."
            ),
            "prompt_count": "Distinct tracked prompts whose answers cited the URL (a count).",
            "first_seen": "First time the URL was cited (UTC); may precede the window.",
            "last_seen": "Most recent time the URL was cited (UTC).",
        },
    },
}

DOMAIN_RESOURCES: Tuple[str, ...] = tuple(n for n, e in ENDPOINTS.items() if e["domain_scoped"])


class ChildTableSpec(TypedDict):
    # the endpoint table whose items hold the list, and the list's field
    parent: str
    field: str
    description: str
    # what one entry of the list (dlt's column `value`) is
    value_description: str


# dlt's child tables: a list of values in an item becomes a table `<parent>__<field>`, one row
# per entry, joined to its parent row on _dlt_parent_id = _dlt_id
CHILD_TABLES: Dict[str, ChildTableSpec] = {
    "citations__models": {
        "parent": "citations",
        "field": "models",
        "description": (
            "dlt's child table of citations: the model slugs (e.g. gpt-4o-search) that cited a URL, "
            "one row per slug. Join _dlt_parent_id = citations._dlt_id for the citation's key."
        ),
        "value_description": (
            "The model slug that cited the URL, e.g. gpt-4o-search (seed aiclicks_channels maps it "
            "to its channel)."
        ),
    },
}

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
