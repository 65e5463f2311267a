"""The run history: one row per sync in the warehouse, table `_aiclicks_runs`, beside dlt's own.

dlt records each load in `_dlt_loads` (load id, schema, status, time) and what a run did in a
trace on the worker's disk. A sync of this package is many loads (one per checkpoint), and a
worker that keeps nothing loses the trace, so this table adds what dlt lacks, where a BI tool or
a dbt test can watch it: the run, its outcome, its requests and 429s, its rows per table, the
domains it committed, left out (synced within the resync interval), skipped or left, and the
loads it is made of.

- Each checkpoint's load carries the run's row so far (outcome `running`), merged on `run_id`,
  so a run killed at any point leaves a row saying how far it got. The row is extracted after
  the checkpoint's data, in the same load package: its requests, 429s, domains and checkpoints
  count that checkpoint; its rows do not yet (dlt counts them when it normalizes the package),
  so while a run is `running` its `rows` are those of the checkpoints before.
- The run ends with one more small load: the final row (`success`, `partial` or `failed`) with
  exact figures. A run stopped by a signal loads nothing more (dlt's steps see the signal).
  Nor does a run that failed in its normalize or load step (its pending load would go with the
  row). The next run, which holds the run lock and so knows no other run of its pipeline is
  alive, finishes such a load and marks that pipeline's rows still `running` as `interrupted`:
  its loads carry them so marked, merged on `run_id` as every row is (an UPDATE would need a
  warehouse whose SQL writes; a lakehouse's does not).
- The loads of a run are the child table `_aiclicks_runs__load_ids`: `value` is a
  `_dlt_loads.load_id`, `_dlt_parent_id` the run's `_dlt_id`.
- The history is read back (`last_runs`, `skipped_by_last_runs`: `status`) and marked
  (`mark_interrupted`) through warehouse.py's reader, the same on every destination.
"""

import json
import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.common.schema import Schema
from dlt.extract import DltSource
from dlt.pipeline.pipeline import Pipeline

from .destinations import with_destination_hints
from .run_status import FAILED, INTERRUPTED, RUNNING
from .source import SOURCE_NAME
from .windows import parse_timestamp, utc_now

if TYPE_CHECKING:
    from .warehouse import Warehouse

logger = logging.getLogger("aiclicks_pipeline")

RUNS_TABLE = "_aiclicks_runs"
LOAD_IDS_TABLE = f"{RUNS_TABLE}__load_ids"

_COUNT = "bigint"
COLUMNS: Dict[str, Dict[str, Any]] = {
    "run_id": ("text", "The run's id (a random hex string), the table's primary key."),
    "pipeline_name": ("text", "The dlt pipeline that ran (aiclicks, aiclicks_shard_<k>_of_<n>, ...)."),
    "outcome": (
        "text",
        "running (the run's row so far: a run still going, or one that ended without its final "
        "row), success, partial (some domains skipped), failed, or interrupted (a run that ended "
        "without its final row: stopped, killed, or failed in a load; so marked by the next run "
        "of its pipeline).",
    ),
    "started_at": ("timestamp", "When the run started (UTC)."),
    "finished_at": (
        "timestamp",
        "When the run ended (UTC); null while running; for an interrupted run, its last row's "
        "updated_at.",
    ),
    "updated_at": ("timestamp", "When this row was written (UTC): the last sign of life of a run."),
    "duration_s": ("double", "Seconds from the start to finished_at (to updated_at while running)."),
    "requests": (_COUNT, "HTTP requests made to the API, retries included (a count)."),
    "planned_requests": (_COUNT, "Requests the run planned before its first checkpoint (a count)."),
    "rate_limited": (_COUNT, "429 responses met (a count)."),
    "rate_limit_wait_s": ("double", "Seconds the run waited for the API's rate limit."),
    "connection_errors": (_COUNT, "Requests that failed to connect or dropped (a count)."),
    "rows_total": (_COUNT, "Rows written, all tables together (a count; see rows)."),
    "rows": (
        "json",
        "Rows written per table, {table: count}, child tables included; while running, those "
        "of the checkpoints before the one that carried the row.",
    ),
    "domains_total": (_COUNT, "Domains the run was to sync (a count)."),
    "domains_committed": (_COUNT, "Domains whose data was committed (a count)."),
    "domains_fresh": (
        _COUNT, "Domains left out, synced within the resync interval (a count).",
    ),
    "domains_skipped": (_COUNT, "Domains skipped, e.g. answering 404 (a count; see skipped_domains)."),
    "domains_left": (_COUNT, "Domains not reached: a stopped or failed run's rest (a count)."),
    "skipped_domains": ("json", "The skipped domains, {domain_id: reason}."),
    "unknown_domains": (
        "json", "Domain ids asked for (--domains) that the API key does not list, [domain_id].",
    ),
    "unrecoverable_dates": (
        "json",
        "Dates lost for good: per domain synced too long ago, {domain_id: [first, last]} (ISO "
        "dates) its windows needed but that lie before the last 90 days the API serves.",
    ),
    "checkpoints_total": (_COUNT, "Checkpoints planned (a count)."),
    "checkpoints_committed": (_COUNT, "Checkpoints committed, each one load (a count)."),
    "error": ("text", "What failed, one paragraph, for a failed run; else null."),
    "package_version": ("text", "The aiclicks-pipeline version that ran."),
    "dlt_version": ("text", "The dlt version that ran."),
}
COLUMN_HINTS: Dict[str, Dict[str, Any]] = {
    name: {"data_type": data_type, "description": description}
    for name, (data_type, description) in COLUMNS.items()
}
COLUMN_HINTS["run_id"]["nullable"] = False
# the columns a warehouse may hand back as JSON text
JSON_COLUMNS = tuple(name for name, (data_type, _) in COLUMNS.items() if data_type == "json")
TABLE_DESCRIPTION = (
    "One row per sync run of aiclicks-pipeline (merged on run_id): outcome, requests, 429s, rows "
    "per table, domains. The run's loads: child table _aiclicks_runs__load_ids (value = "
    "_dlt_loads.load_id)."
)


class RunHistory:
    """The row of one run, written with each checkpoint's load and once more at the end."""

    def __init__(self, pipeline_name: str, run_id: Optional[str] = None) -> None:
        self.pipeline_name = pipeline_name
        self.run_id = run_id or uuid.uuid4().hex
        # earlier runs' rows left `running`, marked interrupted: every load of this run carries them
        self.interrupted_rows: List[Dict[str, Any]] = []

    def row(
        self,
        result: Any,
        outcome: str,
        stats: Any = None,
        skipped_domains: Optional[Dict[str, str]] = None,
        in_flight: Sequence[str] = (),
    ) -> Dict[str, Any]:
        """The row of `result` (a SyncResult). While running, `stats` and `skipped_domains` are
        the run's live ones and `in_flight` the domains of the checkpoint carrying the row."""
        from . import __version__

        stats = stats if stats is not None else result.stats
        skipped = dict(skipped_domains if skipped_domains is not None else result.skipped_domains)
        now = utc_now()
        finished_at = result.finished_at if outcome != RUNNING else None
        committed = result.domains_committed + len([d for d in in_flight if d not in skipped])
        left = result.domains_total - committed - result.domains_fresh - len(skipped)
        return {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline_name,
            "outcome": outcome,
            "started_at": result.started_at,
            "finished_at": finished_at,
            "updated_at": now,
            "duration_s": round(((finished_at or now) - result.started_at).total_seconds(), 3),
            "requests": stats.requests,
            "planned_requests": result.planned_requests,
            "rate_limited": stats.rate_limited,
            "rate_limit_wait_s": round(stats.rate_limit_wait_s, 3),
            "connection_errors": stats.connection_errors,
            "rows_total": sum(result.rows.values()),
            "rows": dict(sorted(result.rows.items())),
            "domains_total": result.domains_total,
            "domains_committed": committed,
            "domains_fresh": result.domains_fresh,
            "domains_skipped": len(skipped),
            "domains_left": max(left, 0),
            "skipped_domains": skipped,
            "unknown_domains": list(result.unknown_domains),
            "unrecoverable_dates": dict(result.unrecoverable_dates),
            "checkpoints_total": result.checkpoints_total,
            "checkpoints_committed": result.checkpoints_committed + (1 if in_flight else 0),
            "error": result.error,
            "package_version": __version__,
            "dlt_version": dlt.__version__,
        }

    def source(
        self, make_row: Callable[[], Dict[str, Any]], load_ids: Sequence[str], schema: Schema
    ) -> DltSource:
        """A source of the one row `make_row()` gives, made when dlt extracts it: given to
        `pipeline.extract` after the data, in the same call, it lands in the data's load package
        (same schema) and sees the run's counters after the data was fetched. The row lists
        `load_ids` and the load carrying it. `schema` is the data source's (or the pipeline's):
        dlt takes a source's schema settings (contract, nesting) for the package, so a schema
        of its own would drop them."""

        def runs() -> Iterator[Dict[str, Any]]:
            carrying = dlt.current.load_package_state()["load_id"]
            yield from self.interrupted_rows
            # dlt makes this list the child table _aiclicks_runs__load_ids
            yield {**make_row(), "load_ids": [*load_ids, carrying]}

        resource = dlt.resource(
            runs,
            name=RUNS_TABLE,
            write_disposition="merge",
            primary_key="run_id",
            columns=COLUMN_HINTS,
        )
        resource.apply_hints(additional_table_hints={"description": TABLE_DESCRIPTION})
        return DltSource(schema, SOURCE_NAME, [resource])

    def running_source(
        self, result: Any, context: Any, in_flight: Sequence[str], schema: Schema
    ) -> DltSource:
        """The row so far, for the load of the checkpoint syncing `in_flight` (extracted with
        the source of schema `schema`)."""
        return self.source(
            lambda: self.row(
                result, RUNNING, stats=context.stats, skipped_domains=context.skipped_domains,
                in_flight=in_flight,
            ),
            load_ids=result.load_ids,
            schema=schema,
        )

    def write_final(self, pipeline: Pipeline, result: Any, file_format: Optional[str]) -> Optional[str]:
        """Loads the run's final row (one small load); returns its load id. Never raises: the
        run's own outcome stands whatever happens here, and a row left `running` is marked
        `interrupted` by the next run."""
        from .pipeline import run_settings

        if pipeline.has_pending_data:
            # a run that failed in its normalize or load step: loading the row would load that
            # checkpoint too; the next run finishes it and marks this row interrupted
            logger.info("The run's final history row is not written: a load is pending")
            return None
        try:
            schema = (
                pipeline.default_schema.clone() if pipeline.default_schema_name else Schema(SOURCE_NAME)
            )
            source = with_destination_hints(
                self.source(lambda: self.row(result, result.status), result.load_ids, schema),
                pipeline.destination,
            )
            with dlt.config.values(run_settings(pipeline)):
                info = pipeline.run(source, loader_file_format=file_format)
        except Exception as exc:  # noqa: BLE001 - the sync's result matters more than its record
            from .errors import explain_failure

            # after a failed run the cause is already told (often the same: the warehouse)
            level = logging.INFO if result.status == FAILED else logging.WARNING
            cause = explain_failure(exc) or f"{type(exc).__name__}: {exc}"
            logger.log(level, "The run's history row could not be written: %s", cause)
            return None
        return info.loads_ids[-1] if info and info.loads_ids else None

    def mark_interrupted(self, pipeline: Pipeline) -> None:
        """Reads the rows of `pipeline` still `running`, with their loads, through warehouse.py's
        reader: called under the run lock, so none of them is alive. The run's loads carry them
        marked `interrupted` (their last `updated_at` as `finished_at`). Nothing to do before
        the table exists."""
        from .warehouse import pipeline_warehouse

        schema = pipeline.default_schema if pipeline.default_schema_name else None
        if schema is None or RUNS_TABLE not in schema.tables:
            return
        try:
            with pipeline_warehouse(pipeline) as warehouse:
                stale = warehouse.rows(
                    f"select * from {warehouse.table(RUNS_TABLE)} where outcome = %s "
                    "and pipeline_name = %s and run_id <> %s",
                    RUNNING, self.pipeline_name, self.run_id,
                )
                for row in stale:
                    loads = warehouse.rows(
                        f"select value from {warehouse.table(LOAD_IDS_TABLE)} "
                        "where _dlt_parent_id = %s order by _dlt_list_idx",
                        row["_dlt_id"],
                    )
                    self.interrupted_rows.append(_interrupted(row, [r["value"] for r in loads]))
        except DestinationUndefinedEntity as exc:  # a missing table or dataset: nothing to mark
            logger.info("No earlier run marked interrupted (%s: %s)", type(exc).__name__, exc)
        except Exception as exc:  # noqa: BLE001 - the sync goes on; the rows stay for the next run
            logger.warning(
                "Earlier runs' history rows still `running` could not be read to be marked "
                "interrupted (%s: %s); the next run tries again", type(exc).__name__, exc,
            )


def _interrupted(row: Dict[str, Any], load_ids: List[str]) -> Dict[str, Any]:
    """A `running` row read back from the warehouse, marked interrupted, as the resource
    yields it (dlt's own columns left to dlt, JSON columns as values)."""
    marked = {name: value for name, value in row.items() if not name.startswith("_dlt")}
    marked.update({name: _json(marked[name]) for name in JSON_COLUMNS if name in marked})
    marked.update(outcome=INTERRUPTED, finished_at=row["updated_at"], load_ids=load_ids)
    return marked


# --- reading the history (status) ---------------------------------------------------------------


def last_runs(warehouse: "Warehouse", limit: int) -> Optional[List[Dict[str, Any]]]:
    """The last `limit` runs of every pipeline of the dataset, newest first, as JSON values;
    None when the dataset has no run history yet."""
    if not warehouse.has_tables([RUNS_TABLE]):
        return None
    rows = warehouse.rows(
        f"select * from {warehouse.table(RUNS_TABLE)} order by started_at desc limit {int(limit)}"
    )
    return [_run_json(row) for row in rows]


def skipped_by_last_runs(warehouse: "Warehouse") -> Dict[str, str]:
    """The domains the last finished run of each pipeline skipped, {domain_id: reason}."""
    if not warehouse.has_tables([RUNS_TABLE]):
        return {}
    runs = warehouse.table(RUNS_TABLE)
    rows = warehouse.rows(
        f"select r.skipped_domains, r.unknown_domains from {runs} r where r.outcome <> '{RUNNING}' "
        f"and r.started_at = (select max(r2.started_at) from {runs} r2 "
        f"where r2.pipeline_name = r.pipeline_name and r2.outcome <> '{RUNNING}')"
    )
    skipped: Dict[str, str] = {}
    for row in rows:
        skipped.update({str(k): str(v) for k, v in (_json(row["skipped_domains"]) or {}).items()})
        for domain_id in _json(row["unknown_domains"]) or []:
            skipped.setdefault(str(domain_id), "not listed for the API key")
    return skipped


def _run_json(row: Dict[str, Any]) -> Dict[str, Any]:
    run = {k: v for k, v in row.items() if not k.startswith("_dlt")}
    for key, value in run.items():
        if isinstance(value, datetime):
            run[key] = parse_timestamp(value).isoformat()
        elif key in JSON_COLUMNS:
            run[key] = _json(value)
        elif hasattr(value, "__float__") and not isinstance(value, (int, float, bool)):
            run[key] = float(value)  # a Decimal from some warehouses
    return run


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list)):
        return value
    return json.loads(value)


__all__: List[str] = [
    "COLUMNS", "INTERRUPTED", "JSON_COLUMNS", "LOAD_IDS_TABLE", "RUNNING", "RUNS_TABLE", "RunHistory",
    "last_runs", "skipped_by_last_runs",
]
