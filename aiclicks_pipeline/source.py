"""`aiclicks_source`: every AIclicks v1 endpoint as a dlt resource, from the endpoint table.

Built on dlt's declarative REST API source. The table in settings.py becomes a `RESTAPIConfig`;
what the declarative config cannot say is added through dlt's own hooks:
- the paginator (paginator.py) pages every list and sets each request's `days` window from the
  per-domain cursor;
- a response action turns errors into messages a user understands; the session skips a domain
  that 404s, or that every key is refused (403);
- a `yield_map` processing step unpacks the envelope into rows (rows.py), stamps them with
  `domain_id`, `generated_at` and `snapshot_date`, drops a response not newer than the cursor,
  and moves the per-domain cursor (sync.py).

A sync (checkpoints.py) makes its context once, with `new_sync_context` from the options as
`configured_source_options` resolves them, and gives it to each checkpoint's source.
"""

import hashlib
import threading
from functools import partial
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

import dlt
from dlt.common.configuration import known_sections
from dlt.common.configuration.container import Container
from dlt.common.configuration.resolve import inject_section, resolve_configuration
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext
from dlt.common.jsonpath import compile_path
from dlt.common.pipeline import PipelineContext
from dlt.sources import DltResource
from dlt.sources.helpers.rest_client.client import RESTClient
from dlt.sources.rest_api import RESTAPIConfig, rest_api_resources
from dlt.sources.rest_api.config_setup import create_response_hooks
from requests import Response

from .checks import parse_shard
from .errors import raise_for_api_error
from .fetch_ahead import in_order
from .items import CHILD_LISTS, RowBatches, child_table_hints, prepare_arrow
from .keypool import KeyPool
from .paginator import EnvelopePaginator
from .rows import envelope_rows
from .settings import (
    DEFAULT_BASE_URL,
    DEFAULT_INITIAL_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SNAPSHOT_DAYS,
    DOMAIN_RESOURCES,
    ENDPOINTS,
)
from .session import AIclicksSession, ApiKeyAuth, api_root, resolve_api_keys
from .sync import SyncContext
from .values import as_int
from .windows import parse_timestamp


SOURCE_NAME = "aiclicks"
# where dlt's config holds the source's options: `[sources.aiclicks]`, SOURCES__AICLICKS__*
SOURCE_SECTIONS = (known_sections.SOURCES, "aiclicks", SOURCE_NAME)
# the hidden parent resource that lists the domains
DOMAIN_LIST = "domain_list"
# the whole envelope is the page; compiled once, as dlt would otherwise parse the path anew for
# every response (a quarter of the extract step's CPU)
ENVELOPE_SELECTOR = compile_path("$")


@dlt.source(name=SOURCE_NAME, section="aiclicks", max_table_nesting=1)
def aiclicks_source(
    api_key: Optional[str] = dlt.secrets.value,
    api_keys: Optional[List[str]] = dlt.secrets.value,
    base_url: str = DEFAULT_BASE_URL,
    domain_ids: Optional[List[str]] = None,
    shard: Optional[str] = None,
    initial_days: int = DEFAULT_INITIAL_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    snapshot_days: int = DEFAULT_SNAPSHOT_DAYS,
    request_timeout: float = 60.0,
    max_attempts: int = 6,
    backoff_factor: float = 1.0,
    sync_context: Optional[SyncContext] = None,
    domains_envelope: Optional[Dict[str, Any]] = None,
    arrow_tables: bool = False,
    arrow_child_tables: bool = False,
) -> List[DltResource]:
    """Loads the AIclicks API: domains, prompts, fan-out queries, the four daily time series,
    brand rankings, the model leaderboard and citations.

    Args:
        api_key: An `ak_live_` key (Settings -> Developers in the AIclicks dashboard). Read from
            `SOURCES__AICLICKS__API_KEY`, `.dlt/secrets.toml` or `AICLICKS_API_KEY`.
        api_keys: More keys of the same team, each with its own rate limit: one sync spreads
            its requests over all of them (keypool.py). A list in `.dlt/secrets.toml`, a JSON
            list in `SOURCES__AICLICKS__API_KEYS`, or `AICLICKS_API_KEYS` with commas between.
        base_url: The API's root, `https://api.aiclicks.io` unless you test against a sandbox.
        domain_ids: Load only these domains; all domains `/domains` returns when empty.
        shard: `"k/n"` loads the k-th of n disjoint, stable shares of the domains, so that n
            workers (each with its own key: the rate limit is per key) split an account.
        initial_days: History a domain's first sync asks for (snapped up to a `days` bucket),
            1 to 90: the API serves no more.
        lookback_days: Recent days re-read on every sync, because the API revises them.
        snapshot_days: The window of the window aggregates (brand rankings, model leaderboard,
            citations), loaded once per `snapshot_date`.
        request_timeout: Seconds before a request times out (and is retried).
        max_attempts: Attempts per request before a 429, 5xx or dropped connection fails the sync.
        backoff_factor: Seconds of the first exponential back-off step.
        sync_context: Collects the run's request counts and skipped domains; made from the
            options above when absent (`new_sync_context`). One context may serve several
            sources in a row (the checkpoints of a sync): they share its HTTP session, keys,
            throttle, `days` windows and state snapshot, and the options above that make
            those are then not used.
        domains_envelope: A `/domains` response already fetched (the checkpoints of a sync
            fetch it once); when given, the source asks `/domains` nothing.
        arrow_tables: Hand dlt each page's rows as an Arrow table where they fit the endpoint
            table (items.py): dlt then skips its row-by-row normalizer. The sync turns it
            on where the load files are parquet.
        arrow_child_tables: With `arrow_tables`, a child table's rows (a citation's models)
            go as Arrow tables of their own too, with random parent ids: for dlt's default
            merge (delete-insert), not a lakehouse's upsert, which keys them by the parent's key.

    Returns:
        The resources, one per table; select some with `.with_resources(...)`.
    """
    wanted_domain = domain_filter(domain_ids, shard)
    context = sync_context or new_sync_context(
        api_key=api_key,
        api_keys=api_keys,
        base_url=base_url,
        initial_days=initial_days,
        lookback_days=lookback_days,
        snapshot_days=snapshot_days,
        request_timeout=request_timeout,
        max_attempts=max_attempts,
        backoff_factor=backoff_factor,
    )
    domain_list: Any = (
        _domain_list_config(context, wanted_domain)
        if domains_envelope is None
        else _prefetched_domain_list(context, wanted_domain, domains_envelope)
    )
    if isinstance(domain_list, dict):
        config: RESTAPIConfig = {
            "client": {"base_url": context.base_url, "auth": context.auth, "session": context.session},
            "resources": [domain_list],
        }
        (domain_list,) = rest_api_resources(config)
    domains = dlt.transformer(
        _domains_table, data_from=domain_list, name="domains", **_table_hints("domains")
    )(context, arrow_tables)
    client = RESTClient(base_url=context.base_url, auth=context.auth, session=context.session)
    if arrow_tables:
        prepare_arrow()
    tables = [
        dlt.transformer(
            _domain_pages,
            data_from=domain_list,
            name=name,
            # the endpoints are fetched side by side; the shared throttle keeps the total in budget
            parallelized=True,
            **_table_hints(name),
        )(name, context, client, arrow_tables, arrow_child_tables)
        for name in DOMAIN_RESOURCES
    ]
    if arrow_tables and arrow_child_tables:
        tables = [_with_child_tables(resource) for resource in tables]
    return [_with_table_description(resource) for resource in (domains, *tables)]


def _table_hints(name: str) -> Dict[str, Any]:
    spec = ENDPOINTS[name]
    descriptions = spec.get("column_descriptions", {})
    columns: Dict[str, Dict[str, Any]] = {}
    for column, data_type in spec["columns"].items():
        columns[column] = {"data_type": data_type}
        if descriptions.get(column):
            columns[column]["description"] = descriptions[column]
    return {
        "primary_key": list(spec["primary_key"]),
        "write_disposition": "merge",
        "columns": columns,
    }


def _with_child_tables(resource: DltResource) -> DltResource:
    """The hints of the child tables the resource hands Arrow tables of their own (items.py):
    each a variant of the resource's hints, as dlt keeps them for a table named by an item, but
    made afresh, as a variant made with `apply_hints` starts from the parent's columns and key."""
    for child in CHILD_LISTS.get(resource.name, {}).values():
        resource._hints_variants[child] = child_table_hints(child)
    return resource


def _with_table_description(resource: DltResource) -> DltResource:
    """The endpoint's description on its table in the dlt schema: dlt's resource decorators take
    no table description, so it goes in as an additional table hint."""
    description = ENDPOINTS[resource.name].get("description")
    if description:
        resource.apply_hints(additional_table_hints={"description": description})
    return resource


def _endpoint_config(name: str, context: SyncContext) -> Dict[str, Any]:
    spec = ENDPOINTS[name]
    return {
        "path": spec["path"],
        "params": dict(spec.get("params", {})),
        "data_selector": ENVELOPE_SELECTOR,
        "paginator": _paginator(name, context),
        "response_actions": [partial(_check_response, context)],
    }


def _paginator(name: str, context: SyncContext) -> EnvelopePaginator:
    spec = ENDPOINTS[name]
    page_size = spec["page_size"][1] if spec.get("page_size") else None
    return EnvelopePaginator(
        page_size=page_size,
        window_days=partial(context.window_days, name),
        # the lists we page are checked for items that moved across pages while walked
        item_key=spec.get("item_key") if page_size else None,
        nested_items=spec.get("nested_items") if page_size else None,
    )


def _domain_list_config(context: SyncContext, wanted_domain: Callable[[str], bool]) -> Dict[str, Any]:
    """`/domains`, the parent of every domain-scoped resource. Not loaded itself: the `domains`
    table is a transformer of it, so a cache hit can skip the table and still feed the rest."""
    return {
        "name": DOMAIN_LIST,
        "selected": False,
        "endpoint": _endpoint_config("domains", context),
        "processing_steps": [{"yield_map": partial(_domain_list_rows, context, wanted_domain)}],
    }


def _prefetched_domain_list(
    context: SyncContext, wanted_domain: Callable[[str], bool], envelope: Dict[str, Any]
) -> DltResource:
    """The same parent as `_domain_list_config`, from a `/domains` response already fetched."""

    def domain_list() -> Iterator[List[Dict[str, Any]]]:
        yield from _domain_list_rows(context, wanted_domain, envelope)

    return dlt.resource(domain_list, name=DOMAIN_LIST, selected=False)


def _domain_pages(
    domains: List[Dict[str, Any]],
    name: str,
    context: SyncContext,
    client: RESTClient,
    arrow_tables: bool,
    arrow_child_tables: bool,
) -> Iterator[Any]:
    """A domain-scoped endpoint: every page of each listed domain, in domain order, handed to dlt
    in a few large items (RowBatches) rather than one per response."""
    state = dlt.current.resource_state(name)  # the same dict for the whole extraction
    batches = RowBatches(name, arrow_tables, arrow_child_tables)
    fetch = partial(_domain_envelopes, name, context, client)
    domain_ids = (str(domain.get("id")) for domain in domains)
    # a few domains fetched at once (fetch_ahead.py), their rows handled here, in domain order
    at_once = context.session.keys.domains_at_once()
    for domain_id, envelopes in in_order(domain_ids, fetch, at_once, name):
        for envelope in envelopes:
            yield from batches.add(_domain_rows(name, context, state, domain_id, envelope))
    yield from batches.flush()


def _domain_envelopes(
    name: str, context: SyncContext, client: RESTClient, domain_id: str, stop: threading.Event
) -> List[Dict[str, Any]]:
    """Every response of one domain of an endpoint, page after page (until `stop` is set)."""
    spec = ENDPOINTS[name]
    pages = client.paginate(
        spec["path"],
        params={**spec.get("params", {}), "domain_id": domain_id},
        paginator=_paginator(name, context),
        data_selector=ENVELOPE_SELECTOR,
        hooks=create_response_hooks([partial(_check_response, context)]),
    )
    envelopes: List[Dict[str, Any]] = []
    for page in pages:
        envelopes.extend(page)
        if stop.is_set():
            break
    return envelopes


def _check_response(context: SyncContext, response: Response) -> None:
    """Response action: errors raise as ours, which the session retries, or turns into a
    skipped domain (a 404, or a 403 every key met), or a key set aside (401, a team's 403)."""
    raise_for_api_error(response)


# `/domains` is unpacked into one list, a page: the domain-scoped transformers get it whole.


def _domain_list_rows(
    context: SyncContext, wanted_domain: Callable[[str], bool], envelope: Dict[str, Any]
) -> Iterator[List[Dict[str, Any]]]:
    """`/domains` answered: fix the run's clock and cursors, then keep the wanted domains."""
    context.begin(
        envelope.get("generated_at"),
        {name: dlt.current.resource_state(name) for name in ENDPOINTS},
    )
    yield [
        row
        for row in envelope_rows("domains", envelope, None, None)
        if wanted_domain(str(row.get("id")))
    ]


def _domains_table(
    page: List[Dict[str, Any]], context: SyncContext, arrow_tables: bool = False
) -> Iterator[Any]:
    """Each domain's row, with a cursor per domain like every other table: the checkpoints
    of a sync each carry their own domains' rows."""
    state = dlt.current.resource_state("domains")
    rows = []
    for row in page:
        rows += _new_rows("domains", context, state, str(row.get("id")), row.get("generated_at"), [row],
                          count_skip=False)
    if rows:
        yield from RowBatches("domains", arrow_tables).add(rows, flush=True)
    elif page:
        context.count_skipped_response()  # the whole (cached) response was already loaded


def _domain_rows(
    name: str, context: SyncContext, state: Dict[str, Any], domain_id: str, envelope: Dict[str, Any]
) -> List[Dict[str, Any]]:
    """The rows of one response of `domain_id` not loaded yet (none for a cache hit)."""
    generated_at = envelope.get("generated_at")
    days = as_int(envelope.get("days")) or context.window_days(name, domain_id)
    rows = envelope_rows(name, _parsed_generated_at(envelope), domain_id, days)
    return _new_rows(name, context, state, domain_id, generated_at, rows)


def _parsed_generated_at(envelope: Dict[str, Any]) -> Dict[str, Any]:
    """The envelope with `generated_at` parsed once, so its rows carry a datetime: dlt's normalize
    step then takes it as it is instead of parsing the same string for every row (a fifth of
    that step). The loaded value is the same; a value that does not parse stays as sent."""
    generated_at = envelope.get("generated_at")
    if not isinstance(generated_at, str):
        return envelope
    try:
        return {**envelope, "generated_at": parse_timestamp(generated_at)}
    except ValueError:
        return envelope


def _new_rows(
    name: str,
    context: SyncContext,
    state: Dict[str, Any],
    cursor_key: str,
    generated_at: Optional[str],
    rows: Iterable[Dict[str, Any]],
    count_skip: bool = True,
) -> List[Dict[str, Any]]:
    """The rows of a response newer than the cursor the sync started with; moves the cursor in
    the resource's `state` and records the domain as synced (also when the response was
    already loaded, which gives no rows)."""
    already_loaded = context.is_already_loaded(name, cursor_key, generated_at)
    context.record_response(name, state, cursor_key, None if already_loaded else generated_at)
    if already_loaded:
        if count_skip:
            context.count_skipped_response()
        return []
    new = list(rows)
    if new:
        context.count_rows(len(new))
    return new


def new_sync_context(
    api_key: Optional[str],
    api_keys: Optional[List[str]],
    base_url: str,
    initial_days: int,
    lookback_days: int,
    snapshot_days: int,
    request_timeout: float,
    max_attempts: int,
    backoff_factor: float,
    **other_options: Any,
) -> SyncContext:
    """A sync's context, whole: its `days` windows, and its HTTP session with the key pool of
    every configured key (the one place a run's session and keys are made). Takes the source's
    options by name (`aiclicks_source`); `other_options` (the domains to load, ...) are not the
    context's."""
    keys = resolve_api_keys(api_key, api_keys)
    pool = KeyPool(keys)
    return SyncContext(
        initial_days=initial_days,
        lookback_days=lookback_days,
        snapshot_days=snapshot_days,
        base_url=api_root(base_url),
        # the request id; the session sends each request with one of the pool's keys
        auth=ApiKeyAuth(token=keys[0]),
        make_session=lambda context: AIclicksSession(
            context,
            keys=pool,
            timeout=request_timeout,
            max_attempts=max_attempts,
            backoff_factor=backoff_factor,
        ),
    )


def configured_source_options(**given: Any) -> Dict[str, Any]:
    """Every option of `aiclicks_source`, resolved as the source resolves them but without
    making one: those `given`, the rest from dlt's config (`.dlt/config.toml`,
    `.dlt/secrets.toml`, `SOURCES__AICLICKS__*`, a pipeline's own section when one is active)."""
    active = Container()[PipelineContext]
    pipeline_name = active.pipeline().pipeline_name if active.is_active() else None
    section = ConfigSectionContext(
        pipeline_name=pipeline_name, sections=SOURCE_SECTIONS, source_state_key=SOURCE_NAME
    )
    with inject_section(section):
        return dict(resolve_configuration(aiclicks_source.ref.SPEC(), explicit_value=given))


def domain_filter(domain_ids: Optional[Sequence[str]], shard: Optional[str]) -> Callable[[str], bool]:
    """Whether a domain id is one to load: among `domain_ids` (any when empty) and in share k
    of n of `shard` `"k/n"` (by a stable hash of the id; any when None)."""
    wanted = set(domain_ids or [])
    k, n = parse_shard(shard) if shard else (1, 1)

    def wanted_domain(domain_id: str) -> bool:
        in_shard = n == 1 or int(hashlib.sha1(domain_id.encode()).hexdigest(), 16) % n == k - 1
        return (not wanted or domain_id in wanted) and in_shard

    return wanted_domain
