"""The one module that knows what differs between destinations: which warehouse a run goes to,
the dlt destination made for it, the hints one kind of warehouse takes and the others ignore,
and what reading it back needs. Everything else asks here instead of testing a destination's
name.

The destination, its staging bucket and the file format are configuration, read the dlt way
(`.dlt/secrets.toml`, `.dlt/config.toml` or environment variables):

    destination_type = "bigquery"       # DESTINATION_TYPE; the CLI's --destination wins
    staging_type = "filesystem"         # STAGING_TYPE; a bucket dlt stages files in
    loader_file_format = "parquet"      # LOADER_FILE_FORMAT; else the destination's preferred

and each destination's credentials under `[destination.<name>]`. A lakehouse is dlt's
`filesystem` destination with open table formats:

    [destination.filesystem]
    bucket_url = "s3://bucket/folder"   # or gs://, az://, a local folder
    table_format = "delta"              # or "iceberg"; delta when unset

What differs, by kind (`destination_kind`):
- duckdb: a local file, named apart from its dataset (`duckdb_destination`);
- bigquery: the daily tables partitioned by day and clustered by domain (`with_destination_hints`);
- filesystem: every table (the run history too) written as a Delta or Iceberg table and merged
  by `upsert`, the one merge those formats take in dlt 1.31 (`with_destination_hints`); read
  back through DuckDB's delta, iceberg, avro and httpfs extensions, installed from their PyPI
  packages so that nothing is downloaded (`install_reader_extensions`); rows deleted through
  the table format, not SQL (`prune_replaced_child_rows`, `delete_lakehouse_rows`).
"""

import importlib
import logging
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import dlt
from dlt.extract import DltSource

from .checks import check_duckdb_file
from .errors import AIclicksError, BusyError, UnknownDestinationError
from .settings import DEFAULT_DUCKDB_FILE, ENDPOINTS

logger = logging.getLogger("aiclicks_pipeline")

DEFAULT_DESTINATION = "duckdb"
DESTINATION_TYPE_KEY = "destination_type"
LOADER_FILE_FORMAT_KEY = "loader_file_format"

# BigQuery: the daily series are partitioned by day and clustered by domain, so a dashboard
# reading one domain's last weeks scans those partitions and blocks only.
BIGQUERY_PARTITION_COLUMN = "date"
BIGQUERY_CLUSTER_COLUMNS = ["domain_id"]

# filesystem: plain files cannot merge (dlt appends instead, doubling every re-read day), so a
# lakehouse always gets a table format. dlt 1.31 merges Delta and Iceberg tables with `upsert`
# only (no delete-insert): a row is updated in place by its primary key, a child row by its
# `_dlt_id`, which dlt then derives from the parent's key and the list position.
TABLE_FORMAT_KEY = "table_format"
TABLE_FORMATS = ("delta", "iceberg")
DEFAULT_TABLE_FORMAT = "delta"
LAKEHOUSE_MERGE = {"disposition": "merge", "strategy": "upsert"}
LOAD_ID_PROPAGATION = {"propagation": {"root": {"_dlt_load_id": "_dlt_load_id"}}}
# what DuckDB (dlt's reader of a filesystem dataset) loads to read the tables: each ships as
# a PyPI package (the `filesystem` extra) built for one DuckDB version
READER_EXTENSIONS = {"delta": ["delta"], "iceberg": ["iceberg", "avro"]}
# and for a bucket (s3://, gs://, ...): small, installed for a local folder too
REMOTE_READER_EXTENSIONS = ["httpfs"]


class TableFormatError(AIclicksError, ValueError):
    """A filesystem destination configured with a table format dlt cannot merge."""


def daily_tables() -> List[str]:
    """The tables with one row per domain and `date` (the four time series)."""
    return [
        name
        for name, spec in ENDPOINTS.items()
        if spec["columns"].get(BIGQUERY_PARTITION_COLUMN) == "date"
        and "domain_id" in spec["primary_key"]
    ]


def configured_destination(destination: Optional[Any] = None) -> Any:
    """`destination` when given, else `destination_type` from dlt's config, else DuckDB."""
    if destination:
        return destination
    return dlt.config.get(DESTINATION_TYPE_KEY) or DEFAULT_DESTINATION


def known_destinations() -> List[str]:
    """The names of dlt's destinations (its own registry)."""
    from dlt.common.destination.reference import DestinationReference

    return sorted({ref.rsplit(".", 1)[-1] for ref in DestinationReference.DESTINATIONS})


def check_destination(destination: Any) -> None:
    """Refuses a destination name dlt does not know, listing the ones it does, before a
    pipeline (and its state) is touched. A named destination whose type is configured
    (`[destination.<name>] destination_type = ...`) is known too."""
    if not isinstance(destination, str):
        return
    from dlt.common.destination.exceptions import (
        InvalidDestinationReference,
        UnknownDestinationModule,
    )
    from dlt.common.destination.reference import DestinationReference

    try:
        DestinationReference.from_reference(destination)
    except (UnknownDestinationModule, InvalidDestinationReference):
        raise UnknownDestinationError(
            f"Unknown destination {destination!r}; dlt knows: {', '.join(known_destinations())}"
        ) from None


def configured_loader_file_format() -> Optional[str]:
    """`loader_file_format` from dlt's config (e.g. `parquet` when staging on a bucket)."""
    return dlt.config.get(LOADER_FILE_FORMAT_KEY) or None


def destination_kind(destination: Any) -> Optional[str]:
    """`bigquery`, `snowflake`, `postgres`, `duckdb`, `filesystem`, ... of a dlt destination
    (a name or a factory), or None."""
    if destination is None:
        return None
    destination_type = getattr(destination, "destination_type", None) or str(destination)
    return destination_type.rsplit(".", 1)[-1]


def duckdb_destination(dataset_name: str, duckdb_file: Optional[str] = None) -> Tuple[Any, str]:
    """dlt's DuckDB destination on `duckdb_file` (default DEFAULT_DUCKDB_FILE) resolved
    against the current folder, and that absolute path. Refuses a file named like the
    dataset, or a folder (checks.check_duckdb_file)."""
    path = check_duckdb_file(Path(duckdb_file or DEFAULT_DUCKDB_FILE), dataset_name)
    return dlt.destinations.duckdb(credentials=str(path)), str(path)


# DuckDB's settings for a sync's loads (pipeline.run_settings), unless the user gives a
# `global_config` of their own (`[destination.duckdb.credentials]`: it replaces them all).
# Measured on 2,000 sandbox domains (6.8 M rows, 16 checkpoints; bench/RESULTS.md, Memory): a
# checkpoint's load peaked 300-390 MB above the sync's RSS, most of it the largest table's
# (`fanout_queries`) copy into staging and its merge, little of it the cache DuckDB's
# `memory_limit` caps (256 MB: 727 -> 701 MB, and a limit tight enough to matter failed loads
# with Out of Memory).
# - `write_buffer_row_group_count`: an INSERT keeps up to 5 row groups (614,400 rows) in memory
#   before writing them; a checkpoint's whole copy fit in that buffer. With 1 it writes each full
#   row group (122,880 rows) as it goes: that copy's peak went from +139 to +82 MB.
# - `threads`: one DuckDB worker thread more (not one per core) lowers each statement's buffers
#   (the `fanout_queries` merge alone: -150 MB). With dlt's table jobs in parallel the load step
#   was faster on 2 cores too (500 domains: 7.7 s against 10.4-11.1 s); with one job at a time
#   (duckdb_load.load_workers_settings) two threads were no faster and peaked 27 MB higher.
# - `allocator_background_threads`: DuckDB's allocator (jemalloc) kept what a statement freed until
#   the file closed, so a merge run while another job held the file open started from the copy's
#   peak (+213 MB); a background thread hands freed pages back within about a second.
DUCKDB_LOAD_CONFIG: Dict[str, Any] = {
    "threads": 1,
    "write_buffer_row_group_count": 1,
    "allocator_background_threads": True,
}
DUCKDB_GLOBAL_CONFIG_KEY = "destination.duckdb.credentials.global_config"


def table_format(destination: Any) -> Optional[str]:
    """The open table format a filesystem destination writes (`table_format` in its config
    section, `[destination.<name>]`; delta when unset); None for other destinations."""
    if destination_kind(destination) != "filesystem":
        return None
    name = getattr(destination, "destination_name", None) or destination_kind(destination)
    configured = dlt.config.get(f"destination.{name}.{TABLE_FORMAT_KEY}")
    chosen = str(configured or DEFAULT_TABLE_FORMAT).lower()
    if chosen not in TABLE_FORMATS:
        raise TableFormatError(
            f"table_format {configured!r} of destination {name!r}: choose one of "
            f"{', '.join(TABLE_FORMATS)} (plain files cannot merge: every re-read day would be "
            "added again)"
        )
    return chosen


def merges_by_delete_insert(destination: Any) -> bool:
    """Whether dlt merges `destination`'s tables by its default delete-insert, which replaces a
    parent's child rows whole, whatever their ids; a lakehouse merges by upsert, which finds a
    child row by the id dlt derives from the parent's key (LAKEHOUSE_MERGE)."""
    return table_format(destination) is None


def required_file_format(destination: Any) -> Optional[str]:
    """The file format a destination's tables take whatever else is preferred: parquet for
    Delta and Iceberg tables (dlt would warn about any other, table by table)."""
    return "parquet" if table_format(destination) else None


def with_destination_hints(source: DltSource, destination: Any) -> DltSource:
    """Adds the hints of `destination`'s kind to the source's resources; returns the source.
    Given every source a run loads (the data and the run history alike).

    BigQuery: the daily tables are created `PARTITION BY date CLUSTER BY domain_id` (dlt's
    `bigquery_adapter`). Hints apply when a table is created: an existing table keeps its
    layout. Filesystem: every resource is a Delta or Iceberg table (`table_format`), merged by
    upsert. Other destinations take the source as it is: the endpoint table's names are
    lower-case snake_case, which every destination accepts (Snowflake folds them to upper
    case, BigQuery keeps them as they are) and its types map to each one's own.
    """
    kind = destination_kind(destination)
    if kind == "bigquery":
        from dlt.destinations.adapters import bigquery_adapter

        for name in daily_tables():
            if name in source.resources:
                bigquery_adapter(
                    source.resources[name],
                    partition=BIGQUERY_PARTITION_COLUMN,
                    cluster=list(BIGQUERY_CLUSTER_COLUMNS),
                )
    elif kind == "filesystem":
        from dlt.common.normalizers.json.relational import DataItemNormalizer

        chosen = table_format(destination)
        for resource in source.resources.values():
            resource.apply_hints(table_format=chosen, write_disposition=dict(LAKEHOUSE_MERGE))
        # child rows carry their root row's `_dlt_load_id`, as root rows do: what tells the
        # rows a merge rewrote from those it left (prune_replaced_child_rows)
        DataItemNormalizer.update_normalizer_config(source.schema, LOAD_ID_PROPAGATION)
    return source


def install_reader_extensions(destination: Any) -> List[str]:
    """Installs into DuckDB's extension folder (as DuckDB's own INSTALL does) the extensions
    dlt's reader of `destination` needs (a filesystem dataset: `delta_scan`, `iceberg_scan`,
    remote files), from their `duckdb-extension-*` packages, so that DuckDB loads them instead
    of downloading them. Those not installed as packages are left to DuckDB. Returns the names
    installed now."""
    chosen = table_format(destination)
    if chosen is None:
        return []
    import duckdb

    names = READER_EXTENSIONS[chosen] + REMOTE_READER_EXTENSIONS
    installed = []
    with duckdb.connect() as connection:
        present = {
            name for (name,) in connection.execute(
                "select extension_name from duckdb_extensions() where installed or loaded"
            ).fetchall()
        }
        for name in names:
            if name in present:
                continue
            try:
                package = importlib.import_module(f"duckdb_extension_{name}")
            except ImportError:
                continue
            built = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}"
            path = built / f"{name}.duckdb_extension"
            if not path.is_file():
                logger.info(
                    "duckdb-extension-%s has no build for DuckDB %s", name, duckdb.__version__
                )
                continue
            try:
                connection.execute(f"INSTALL '{path}'")
            except duckdb.Error as exc:  # e.g. a read-only HOME: reading would then download it
                logger.warning(
                    "DuckDB's %s extension could not be installed from %s: %s", name, path, exc
                )
                continue
            installed.append(name)
    return installed


def prune_replaced_child_rows(
    pipeline: Any, load_ids: Optional[List[str]] = None
) -> Dict[str, int]:
    """A lakehouse's child rows that the merge left behind; returns the rows deleted per table.

    Upsert keys a child row by its parent and list position, so when a reloaded parent's list
    is shorter (a citation cited by fewer models), the rows past its new end stay, still
    hanging off the parent. They are the only child rows whose `_dlt_load_id` (their root
    row's, which a lakehouse's child rows carry) is not their parent's: a merge writes the
    parent and every child of its list in the same load. So after
    a load they are deleted: those of the parents loaded in `load_ids`, or of every parent when
    None (a run's start: also what a run killed between its load and this step left). On a SQL
    warehouse dlt's delete-insert replaces a parent's children whole: nothing to do there."""
    chosen = table_format(pipeline.destination)
    if chosen is None or not pipeline.default_schema_name or load_ids == []:
        return {}
    from dlt.common.schema.utils import get_nested_tables

    schema = pipeline.default_schema
    nested = [
        table for root in schema.data_table_names() if not schema.tables[root].get("parent")
        for table in get_nested_tables(schema.tables, root)[1:]
    ]
    if not nested:
        return {}
    names = {t["name"] for t in nested} | {t["parent"] for t in nested}
    tables = _open_tables(pipeline, chosen, names)
    deleted = {}
    for child in nested:
        parent, name = tables.get(child["parent"]), child["name"]
        if parent is None or tables.get(name) is None:
            continue
        parents = _read_columns(chosen, parent, ["_dlt_id", "_dlt_load_id"], "_dlt_load_id", load_ids)
        loaded_with = dict(zip(parents["_dlt_id"], parents["_dlt_load_id"]))
        if not loaded_with:
            continue
        columns = ["_dlt_id", "_dlt_parent_id", "_dlt_load_id"]
        rows = _read_columns(chosen, tables[name], columns, "_dlt_parent_id",
                             list(loaded_with) if load_ids is not None else None)
        stale = [
            row_id
            for row_id, parent_id, load_id in zip(*(rows[c] for c in columns))
            if parent_id in loaded_with and load_id != loaded_with[parent_id]
        ]
        if stale:
            _delete_rows(chosen, tables[name], stale)
            deleted[name] = len(stale)
    if deleted:
        logger.info("Deleted child rows a merge left behind: %s", deleted)
    return deleted


def _open_tables(pipeline: Any, chosen: str, names: set) -> Dict[str, Any]:
    """The Delta / Iceberg tables of `names` that exist (dlt's own handles on them)."""
    if chosen == "delta":
        from dlt.common.libs.deltalake import get_delta_tables as open_tables
    else:
        from dlt.common.libs.pyiceberg import get_iceberg_tables as open_tables
    found = {}
    for name in names:
        try:
            found.update(open_tables(pipeline, name))
        except Exception:  # noqa: BLE001 - not written yet: nothing of it to prune
            continue
    return found


def _read_columns(
    chosen: str, table: Any, columns: List[str], column: str, values: Optional[List[str]]
) -> Dict[str, List[Any]]:
    """`columns` of the rows whose `column` is in `values` (every row when None). Filtered
    here, not by the reader: deltalake's Arrow filters fail on tables whose files mix string
    and string_view columns (as its own deletes leave them)."""
    if chosen == "delta":
        arrow = table.to_pyarrow_table(columns=columns)
    else:
        arrow = table.scan(selected_fields=tuple(columns)).to_arrow()
    read = {name: arrow.column(name).to_pylist() for name in columns}
    if values is None:
        return read
    wanted = set(values)
    keep = [i for i, value in enumerate(read[column]) if value in wanted]
    return {name: [read[name][i] for i in keep] for name in columns}


def deletes_with_sql(destination: Any) -> bool:
    """Whether dlt's SQL client of `destination` deletes rows: not a lakehouse's, which reads its
    Delta or Iceberg tables through DuckDB views; there rows go by `delete_lakehouse_rows`."""
    return table_format(destination) is None


def delete_lakehouse_rows(pipeline: Any, table: str, row_ids: List[str]) -> None:
    """Deletes the rows `row_ids` (their `_dlt_id`) of a lakehouse table, through its table
    format's own delete (one commit of the table)."""
    chosen = table_format(pipeline.destination)
    found = _open_tables(pipeline, chosen, {table}) if row_ids else {}
    if table in found:
        _delete_rows(chosen, found[table], row_ids)


def _delete_rows(chosen: str, table: Any, row_ids: List[str]) -> None:
    if chosen == "delta":
        quoted = ", ".join("'" + row_id.replace("'", "''") + "'" for row_id in row_ids)
        table.delete(predicate=f"_dlt_id IN ({quoted})")
    else:
        from pyiceberg.expressions import In

        table.delete(delete_filter=In("_dlt_id", row_ids))


# --- opening the warehouse a sync wrote (warehouse.py reads it, transform builds in it) ---------

# DuckDB: `Could not set lock on file "F": Conflicting lock is held in PROGRAM (PID N) ...`
DUCKDB_LOCK = re.compile(
    r"Could not set lock on file \"(?P<file>[^\"]+)\""
    r"(?:: Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\))?"
)


class WarehouseError(AIclicksError):
    """The warehouse the options name cannot be opened (no DuckDB file there, not a DuckDB file)."""


class WarehouseBusy(WarehouseError, BusyError):
    """Another process holds the warehouse: a DuckDB file a sync writes."""


@contextmanager
def opened_destination(
    destination: Any = None, duckdb_file: Optional[str] = None, read_only: bool = True
) -> Iterator[Any]:
    """The dlt destination of the warehouse a sync with these options wrote, for dlt's SQL client
    and dataset to read (or dbt to build in).

    A DuckDB file must exist; this process opens it (read-only unless `read_only` is False) and
    hands dlt the connection: DuckDB lets one process write a file and no other open it
    meanwhile, so a file a sync writes is one WarehouseBusy naming that process. Any other
    destination is dlt's, credentials from dlt's config: a server reads while a sync writes.
    """
    destination = configured_destination(destination)
    check_destination(destination)
    if not (isinstance(destination, str) and destination_kind(destination) == "duckdb"):
        yield destination
        return
    import duckdb

    path = Path(duckdb_file or DEFAULT_DUCKDB_FILE).expanduser().resolve()
    if not path.is_file():
        raise WarehouseError(f"No DuckDB file {path}: load the data first (`aiclicks-pipeline run`)")
    try:
        connection = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        busy = busy_message(str(exc))
        if busy:
            raise WarehouseBusy(busy) from None
        from .duckdb_repair import torn_block  # it builds on this module

        problem = " ".join(str(exc).split())
        if torn_block(exc) is not None:
            problem += (
                " (a run killed while DuckDB wrote the file leaves a block half-written: the "
                "next `aiclicks-pipeline run` checks the file and repairs it)"
            )
        raise WarehouseError(f"Cannot open the DuckDB file {path}: {problem}") from None
    try:
        yield dlt.destinations.duckdb(credentials=connection)
    finally:
        connection.close()


def busy_message(error: str) -> Optional[str]:
    """One line for an error saying another process holds the warehouse (DuckDB's lock), else
    None."""
    match = DUCKDB_LOCK.search(error or "")
    if match is None:
        return None
    holder = f" (PID {match['pid']}, {match['program']})" if match["pid"] else ""
    return (
        f"The DuckDB file {match['file']} is in use by another process{holder}, most likely a "
        "sync writing it: DuckDB lets one process write a file and no other open it meanwhile; "
        "try again when it ends"
    )
