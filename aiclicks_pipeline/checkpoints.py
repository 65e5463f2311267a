"""A sync in checkpoints: the unit of progress, of commit and of what the user is shown.

At the API's real limit a large account syncs for hours, and such runs get stopped (Ctrl-C, a
scheduler's SIGTERM, a preempted worker) or killed. So a run is cut into checkpoints: batches
of domains worth about `checkpoint_requests` requests: by default two minutes of the limit the
API states for the run's keys (`X-RateLimit-*` of `/domains`: 120 a key at the real 60 a
minute), at most MAX_CHECKPOINT_REQUESTS (also where no limit is stated). Each checkpoint is a
fixed cost (one dlt run, about a second of CPU), so a faster limit gets larger checkpoints,
while a stopped run still asks again at most two minutes' requests. Each checkpoint is one dlt load (extract, normalize, load) whose
per-domain cursors and sync times move with it. A run that stops loses at most the checkpoint
in flight; the next run skips what is already synced and continues with what is left.

Before the first checkpoint a run:
1. finishes what an interrupted run left (a pending load is loaded; an interrupted
   extraction, which committed nothing, is discarded: workdir.py);
2. restores the state from the warehouse when it is newer there (a worker with an empty disk);
3. asks `/domains` once, and reads each resource's per-domain state (sync.py);
4. leaves out every (domain, resource) synced within `resync_after_minutes` (60 by default:
   the API serves cached responses for up to an hour, so asking again sooner only spends the
   rate limit), unless `full_refresh` or `resync_after_minutes=0`;
5. cuts what is due into checkpoints (`cut_into_checkpoints`), the requests of each estimated
   from what the warehouse holds as `plan` estimates them (plan.py: pages per list).
"""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import dlt
from dlt.common.exceptions import SignalReceivedException
from dlt.pipeline.pipeline import Pipeline

from .checks import check_domain_ids, check_names
from .duckdb_load import duckdb_open_while_loading
from .destinations import (
    configured_loader_file_format,
    merges_by_delete_insert,
    prune_replaced_child_rows,
    with_destination_hints,
)
from .errors import UsageError
from .history import RunHistory
from .interrupts import StopRequest
from .memory import cap_malloc_arenas, release_free_memory
from .pipeline import (
    SCHEMA_CONTRACTS,
    arrow_rows,
    preferred_file_format,
    run_settings,
    where_loaded,
)
from .plan import known_rows, requests_for, resource_states
from .progress import SyncProgress
from .rows import envelope_items, without_repeated_items
from .run_status import FAILED, INTERRUPTED, PARTIAL, SUCCESS
from .settings import DOMAIN_RESOURCES, ENDPOINTS
from .source import aiclicks_source, configured_source_options, domain_filter, new_sync_context
from .stored_state import prune_stored_states
from .sync import SyncContext, SyncStats, SyncStopped
from .sync_trace import SyncTrace
from .warehouse_wait import DEFAULT_WRITER_WAIT_S, set_writer_wait_s
from .windows import lost_dates_line, utc_now
from .workdir import discard_interrupted_extracts, finish_pending_loads, prune_loaded_packages

logger = logging.getLogger("aiclicks_pipeline")

# the default checkpoint: this many seconds of the keys' limit (120 requests a key at 60 a minute)
CHECKPOINT_SECONDS = 120
DEFAULT_CHECKPOINT_REQUESTS = 120
# the largest default, also without any rate-limit header (an unlimited server): two minutes of
# an enterprise 600 a minute, so a stop repeats at most that many requests. Fewer checkpoints are
# fewer of dlt's fixed costs (bench/RESULTS.md: 500 domains 2.57 x the raw floor at 1,200 a
# checkpoint, 3.29 x at 400). Twice as large where no limit is stated was faster again (2.05 x)
# but peaked at 657 MB against 607 at 2,000 domains, 1.57 x a 10-domain sync's peak.
MAX_CHECKPOINT_REQUESTS = 1200
DEFAULT_RESYNC_AFTER_MINUTES = 60.0
CONFIG_SECTION = "sources.aiclicks"


@dataclass
class Checkpoint:
    number: int
    domain_ids: List[str]
    resources: Tuple[str, ...]
    planned_requests: int


@dataclass
class SyncResult:
    """What a run did: the data the user, a scheduler and the run history read (worded by
    sync_summary.py, recorded by history.py)."""

    status: str = SUCCESS
    rows: Dict[str, int] = field(default_factory=dict)
    stats: SyncStats = field(default_factory=SyncStats)
    skipped_domains: Dict[str, str] = field(default_factory=dict)
    windows_asked: Dict[str, List[int]] = field(default_factory=dict)
    # per domain, [first, last] ISO dates before the API's horizon its windows needed: lost
    unrecoverable_dates: Dict[str, List[str]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    domains_total: int = 0
    domains_committed: int = 0
    domains_fresh: int = 0
    checkpoints_total: int = 0
    checkpoints_committed: int = 0
    planned_requests: int = 0
    unknown_domains: List[str] = field(default_factory=list)
    finished_pending: List[str] = field(default_factory=list)
    load_ids: List[str] = field(default_factory=list)
    signal: Optional[int] = None
    error: Optional[str] = None
    run_id: Optional[str] = None  # the run's row in the warehouse's run history (history.py)
    # where the run loads: destination, location (the DuckDB file), dataset (pipeline.where_loaded)
    where: Dict[str, Optional[str]] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def domains_left(self) -> int:
        return max(
            self.domains_total - self.domains_committed - self.domains_fresh - len(self.skipped_domains), 0
        )


@dataclass
class SyncRun:
    """What stays the same over one sync, made once before its first checkpoint: what every
    checkpoint is loaded with."""

    pipeline: Pipeline
    context: SyncContext
    envelope: Dict[str, Any]  # the run's one `/domains` response
    source_options: Dict[str, Any]  # `aiclicks_source` arguments as given to run_sync
    file_format: Optional[str]
    schema_contract: Optional[str]
    history: RunHistory
    result: SyncResult


class SyncFailed(Exception):
    """A run failed part way: `result` says what its committed checkpoints hold. The cause
    (`__cause__`) is the error itself, which `errors.find_api_error` finds through this."""

    def __init__(self, message: str, result: SyncResult) -> None:
        super().__init__(message)
        self.result = result


def cut_into_checkpoints(
    work: Sequence[Tuple[str, Sequence[str], int]], checkpoint_requests: int
) -> List[Checkpoint]:
    """`work`: (domain_id, due resources, planned requests) per domain. Domains due for the same
    resources go together, cut where a checkpoint would pass `checkpoint_requests` (a checkpoint
    holds at least one domain).

    Domains go in id order, so a checkpoint is a run of ids and each table is stored in that
    order: its merge, keyed on domain_id first (settings.ENDPOINTS), reads only the row groups of
    its own domains, and memory and load time stay flat as the warehouse grows."""
    order = {name: position for position, name in enumerate(ENDPOINTS)}
    groups: Dict[Tuple[str, ...], List[Tuple[str, int]]] = {}
    for domain_id, resources, requests in sorted(work, key=lambda item: item[0]):
        key = tuple(sorted(resources, key=order.__getitem__))
        groups.setdefault(key, []).append((domain_id, requests))
    checkpoints: List[Checkpoint] = []
    for resources, domains in groups.items():
        batch: List[str] = []
        planned = 0
        for domain_id, requests in domains:
            if batch and planned + requests > checkpoint_requests:
                checkpoints.append(Checkpoint(len(checkpoints) + 1, batch, resources, planned))
                batch, planned = [], 0
            batch.append(domain_id)
            planned += requests
        if batch:
            checkpoints.append(Checkpoint(len(checkpoints) + 1, batch, resources, planned))
    return checkpoints


def run_sync(
    pipeline: Pipeline,
    resources: Optional[Sequence[str]] = None,
    full_refresh: bool = False,
    loader_file_format: Optional[str] = None,
    schema_contract: Optional[str] = None,
    checkpoint_requests: Optional[int] = None,
    resync_after_minutes: Optional[float] = None,
    stop: Optional[StopRequest] = None,
    progress: Optional[SyncProgress] = None,
    **source_options: Any,
) -> SyncResult:
    """One sync of the AIclicks source into `pipeline`'s destination, in checkpoints.

    `source_options` are `aiclicks_source` arguments; those not given come from dlt's config
    (`.dlt/config.toml`, `.dlt/secrets.toml`, `SOURCES__AICLICKS__*`), like
    `checkpoint_requests` and `resync_after_minutes`. `schema_contract` is dlt's: "evolve"
    (default) or "freeze". `stop` (interrupts.py) ends the run between or inside checkpoints;
    the result then has status "interrupted". Raises SyncFailed (with the result so far) when
    the run fails after it began.
    """
    check_names("resource", resources, list(ENDPOINTS))
    configured_checkpoint_requests(checkpoint_requests)  # refused before anything happens
    resync_after_minutes = configured_resync_after_minutes(resync_after_minutes)
    # a reader of the DuckDB file (status, report) makes a load wait, not fail (warehouse_wait.py)
    set_writer_wait_s(configured_warehouse_wait_s())
    cap_malloc_arenas()  # before the steps start their threads (memory.py)
    history = RunHistory(pipeline.pipeline_name)
    result = SyncResult(started_at=utc_now(), run_id=history.run_id, where=where_loaded(pipeline))
    started = time.monotonic()
    # the run's keys, session and windows, from the source's options resolved once
    context = new_sync_context(**configured_source_options(**source_options))
    if stop is not None:
        stop.on_stop(context.stop.set)
        stop.on_stop(lambda: _cancel_waits(context))
        pipeline.runtime_config.intercept_signals = False  # our handlers, not dlt's (interrupts.py)
        if stop.requested:
            context.stop.set()
    keys = context.session.keys
    file_format = (
        loader_file_format or configured_loader_file_format() or preferred_file_format(pipeline)
    )
    progress = progress or SyncProgress(mode="quiet")
    trace = SyncTrace(since=result.started_at)  # dlt's tools see the sync as one run
    # every load of the run with its DuckDB file open from the first job to the last (not in
    # between: `status`, `report` and dbt may read it then; duckdb_load.py, warehouse_wait.py)
    with duckdb_open_while_loading(pipeline):
        try:
            with dlt.config.values(run_settings(pipeline)):
                envelope = _fetch_domains(context)
                # after /domains the pool knows the keys' limits: a checkpoint is two minutes of them
                checkpoint_requests = configured_checkpoint_requests(
                    checkpoint_requests, default=default_checkpoint_requests(keys.requests_per_second())
                )
                # a --domains list the key does not know is refused before anything changes
                result.unknown_domains = check_domain_ids(
                    source_options.get("domain_ids") or [], listed_domain_ids(envelope)
                )
                discard_interrupted_extracts(pipeline)
                result.finished_pending = finish_pending_loads(pipeline)
                # a full refresh drops the tables and state of the resources it loads (its first
                # checkpoint; dlt's drop_resources: the others, and the run history, stay): start empty
                states = {} if full_refresh else resource_states(pipeline)
                prune_replaced_child_rows(pipeline)  # a lakehouse's, after any load before this run
                history.mark_interrupted(pipeline)
                # the server's clock now (its Date headers): a cached `/domains` is up to an hour old
                context.begin(context.session.server_clock.now(), states)
                run = SyncRun(pipeline, context, envelope, source_options, file_format, schema_contract,
                              history, result)
                checkpoints = _due_checkpoints(run, resources, full_refresh, resync_after_minutes,
                                               checkpoint_requests)
                progress.start(context, result, len(checkpoints))
                for checkpoint in checkpoints:
                    context.check_stop()
                    progress.checkpoint_started(checkpoint.number)
                    _run_checkpoint(run, checkpoint,
                                    refresh="drop_resources" if full_refresh and checkpoint.number == 1 else None)
                    trace.add(pipeline)
                    progress.checkpoint_committed()
                    # a loaded package keeps a copy of the state (MBs at thousands of domains)
                    prune_loaded_packages(pipeline)
                    release_free_memory()
        except UsageError:
            raise  # nothing began
        except BaseException as exc:
            signum = _stop_signal(exc, stop, context)
            result.elapsed_s = time.monotonic() - started
            result.finished_at = utc_now()
            _finish(result, context)
            trace.add(pipeline)  # the checkpoint that failed or was stopped, when it ran
            if signum is not None or isinstance(exc, KeyboardInterrupt):
                # nothing of the checkpoint in flight was committed: drop its files now
                discard_interrupted_extracts(pipeline)
                result.status, result.signal = INTERRUPTED, signum
                trace.save(pipeline)
                return result
            result.status, result.error = FAILED, _describe(exc)
            discard_interrupted_extracts(pipeline)  # as when interrupted: never committed, never loaded
            if result.planned_requests:  # it began; one that failed before (the key) writes nothing
                history.write_final(pipeline, result, file_format)
                trace.add(pipeline)
            trace.save(pipeline)
            if isinstance(exc, Exception):
                raise SyncFailed(result.error, result) from exc
            raise
        finally:
            progress.close()
        result.elapsed_s = time.monotonic() - started
        result.finished_at = utc_now()
        _finish(result, context)
        result.status = PARTIAL if (result.skipped_domains or result.unknown_domains) else SUCCESS
        history.write_final(pipeline, result, file_format)
        trace.add(pipeline)
        trace.save(pipeline)
        prune_loaded_packages(pipeline)
        return result


def configured_checkpoint_requests(
    value: Optional[int] = None, default: int = DEFAULT_CHECKPOINT_REQUESTS
) -> int:
    """`value`, else `checkpoint_requests` from dlt's config, else `default`; 1 or more."""
    return _configured_at_least("checkpoint_requests", value, default, int, 1)


def default_checkpoint_requests(requests_per_second: Optional[float]) -> int:
    """Two minutes (CHECKPOINT_SECONDS) of the keys' stated rate, 1 to MAX_CHECKPOINT_REQUESTS;
    the most where no limit is stated."""
    if not requests_per_second:
        return MAX_CHECKPOINT_REQUESTS
    return min(max(1, round(CHECKPOINT_SECONDS * requests_per_second)), MAX_CHECKPOINT_REQUESTS)


def configured_resync_after_minutes(value: Optional[float] = None) -> float:
    """`value`, else `resync_after_minutes` from dlt's config, else the default."""
    if value is None:
        value = _configured("resync_after_minutes", DEFAULT_RESYNC_AFTER_MINUTES)
    return float(value)


def configured_warehouse_wait_s(value: Optional[float] = None) -> float:
    """`value`, else `warehouse_wait_seconds` from dlt's config, else the default: how long
    the sync waits for another process holding its DuckDB file (a reader); 0 or more."""
    return _configured_at_least("warehouse_wait_seconds", value, DEFAULT_WRITER_WAIT_S, float, 0)


def _configured(option: str, default: Any) -> Any:
    value = dlt.config.get(f"{CONFIG_SECTION}.{option}")
    return default if value is None else value


def _configured_at_least(
    option: str, value: Any, default: Any, kind: Callable[[Any], Any], minimum: Any
) -> Any:
    """`value`, else `option` from dlt's config, else `default`, as `kind`; `minimum` or more."""
    number = kind(_configured(option, default) if value is None else value)
    if number < minimum:
        raise UsageError(f"{option} must be {minimum} or more, got {number:g}")
    return number


def _cancel_waits(context: SyncContext) -> None:
    session = context.session
    if session is not None:
        session.throttle.cancel()


def _fetch_domains(context: SyncContext) -> Dict[str, Any]:
    """`/domains`, once per run, through the run's session (throttle, retries, errors)."""
    from .errors import raise_for_api_error

    response = context.session.get(
        f"{context.base_url}{ENDPOINTS['domains']['path']}",
        auth=context.auth,
        hooks={"response": [raise_for_api_error]},
    )
    return without_repeated_items(response.json())


def listed_domain_ids(envelope: Dict[str, Any]) -> List[str]:
    """The ids of the domains a `/domains` response lists."""
    return [str(item.get("id")) for item in envelope_items(envelope)]


def _due_checkpoints(
    run: SyncRun,
    resources: Optional[Sequence[str]],
    full_refresh: bool,
    resync_after_minutes: float,
    checkpoint_requests: int,
) -> List[Checkpoint]:
    """What is due: the domains this run syncs, the resources due of each and their planned
    requests, cut into checkpoints; the counts go into the run's result."""
    pipeline, context, source_options, result = run.pipeline, run.context, run.source_options, run.result
    listed = listed_domain_ids(run.envelope)
    wanted_ids = list(source_options.get("domain_ids") or [])
    wanted = domain_filter(wanted_ids, source_options.get("shard"))
    domains = [domain_id for domain_id in listed if wanted(domain_id)]
    for domain_id in result.unknown_domains:
        logger.warning(
            "Domain %s is not among the %d domains this key can see (it was deleted, or it is "
            "outside the key's allowed domains); skipped.", domain_id, len(listed),
        )
    if not listed:
        logger.warning(
            "The API lists no domains for this key: the account has none, or the key's allowed "
            "domains are empty (check with `aiclicks-pipeline validate`)."
        )
    elif not domains and source_options.get("shard") and not wanted_ids:
        logger.warning(
            "Shard %s holds none of the %d domains this key lists (with fewer domains than "
            "shards some shards are empty); nothing to sync.", source_options["shard"], len(listed),
        )
    result.domains_total = len(domains)
    selected = [name for name in ENDPOINTS if not resources or name in resources]
    resync_after_s = 0.0 if full_refresh else max(resync_after_minutes, 0.0) * 60
    rows = known_rows(pipeline) if domains else {}
    work = []
    for domain_id in domains:
        due = context.due_resources(domain_id, selected, resync_after_s)
        if not due:
            result.domains_fresh += 1
            continue
        planned = sum(requests_for(rows, name, domain_id)[0] for name in due if name in DOMAIN_RESOURCES)
        work.append((domain_id, due, planned))
    checkpoints = cut_into_checkpoints(work, checkpoint_requests)
    result.checkpoints_total = len(checkpoints)
    result.planned_requests = 1 + sum(c.planned_requests for c in checkpoints)
    if result.domains_fresh:
        logger.info(
            "%d domain(s) synced within the last %g minutes are left out (resync_after_minutes)",
            result.domains_fresh, resync_after_minutes,
        )
    return checkpoints


def _run_checkpoint(run: SyncRun, checkpoint: Checkpoint, refresh: Optional[str]) -> None:
    """One checkpoint: its domains' due resources extracted, normalized and loaded, with the
    run's history row so far (history.py; not beside a refresh, which would apply to it too)."""
    pipeline, context, result, schema_contract = run.pipeline, run.context, run.result, run.schema_contract
    arrow_tables = arrow_rows(run.file_format)
    options = {**run.source_options, "domain_ids": checkpoint.domain_ids, "shard": None,
               "arrow_tables": arrow_tables,
               "arrow_child_tables": arrow_tables and merges_by_delete_insert(pipeline.destination)}
    source = aiclicks_source(sync_context=context, domains_envelope=run.envelope, **options)
    source = source.with_resources(*checkpoint.resources)
    if schema_contract:
        source.schema_contract = SCHEMA_CONTRACTS.get(schema_contract, schema_contract)
    source = with_destination_hints(source, pipeline.destination)
    skipped_before = set(context.skipped_domains)
    # one dlt run per checkpoint: its own trace (dlt would otherwise merge every step of a long
    # sync into one trace it pickles after each step), no pending data to meet (finished first);
    # the run's history row goes last, into the same load (history.py)
    run_row = with_destination_hints(
        run.history.running_source(result, context, checkpoint.domain_ids, source.schema),
        pipeline.destination,
    )
    # its threads from the answers so far (keypool.py: latency x rate)
    with dlt.config.values(context.session.keys.extract_settings()):
        load_info = pipeline.run([source] if refresh else [source, run_row], refresh=refresh,
                                 loader_file_format=run.file_format)
    prune_replaced_child_rows(pipeline, load_info.loads_ids if load_info else [])
    trace = pipeline.last_trace
    normalize_info = trace.last_normalize_info if trace else None
    context.checkpoint_committed()
    # the warehouse keeps one copy of the state, not one per checkpoint (stored_state.py)
    prune_stored_states(pipeline)
    for table, count in (normalize_info.row_counts if normalize_info else {}).items():
        if not table.startswith("_"):  # dlt's tables and the run history
            result.rows[table] = result.rows.get(table, 0) + count
    result.load_ids.extend(load_info.loads_ids if load_info else [])
    newly_skipped = set(context.skipped_domains) - skipped_before
    result.domains_committed += len([d for d in checkpoint.domain_ids if d not in newly_skipped])
    result.checkpoints_committed += 1


def _finish(result: SyncResult, context: SyncContext) -> None:
    result.stats = context.stats
    result.skipped_domains = dict(context.skipped_domains)
    result.windows_asked = {name: sorted(days) for name, days in context.windows_asked.items()}
    result.unrecoverable_dates = {
        domain_id: [first.isoformat(), last.isoformat()]
        for domain_id, (first, last) in sorted(context.horizon_gaps.items())
    }
    if result.unrecoverable_dates:  # the summary says it; this is for logs of Python callers
        logger.info("%s", lost_dates_line(result.unrecoverable_dates))
    result.rows = dict(sorted(result.rows.items()))


def _stop_signal(exc: BaseException, stop: Optional[StopRequest], context: SyncContext) -> Optional[int]:
    """The signal that stopped the run, when `exc` is (or wraps) a requested stop."""
    requested = (stop is not None and stop.requested) or context.stop.is_set()
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SignalReceivedException):
            return (stop.signum if stop and stop.signum else None) or current.signal_code
        if isinstance(current, SyncStopped) and requested:
            return stop.signum if stop else None
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    if requested:
        return stop.signum if stop else None
    return None


def _describe(exc: BaseException) -> str:
    from .errors import find_api_error

    api_error = find_api_error(exc)
    return str(api_error) if api_error is not None else f"{type(exc).__name__}: {exc}"


__all__ = ["Checkpoint", "SyncFailed", "SyncResult", "SyncRun", "cut_into_checkpoints", "run_sync"]
