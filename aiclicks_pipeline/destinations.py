"""What a destination needs beyond the endpoint table: which warehouse a run goes to, and the
hints one warehouse understands and the others ignore (BigQuery's partitioning and clustering).

The destination, its staging bucket and the file format are configuration, read the dlt way
(`.dlt/secrets.toml`, `.dlt/config.toml` or environment variables):

    destination_type = "bigquery"       # DESTINATION_TYPE; the CLI's --destination wins
    staging_type = "filesystem"         # STAGING_TYPE; a bucket dlt stages files in
    loader_file_format = "parquet"      # LOADER_FILE_FORMAT; else the destination's preferred

and each destination's credentials under `[destination.<name>]`.
"""

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import dlt
from dlt.extract import DltSource

from .errors import AIclicksError, BusyError, UnknownDestinationError
from .settings import DEFAULT_DUCKDB_FILE, ENDPOINTS

DEFAULT_DESTINATION = "duckdb"
DESTINATION_TYPE_KEY = "destination_type"
LOADER_FILE_FORMAT_KEY = "loader_file_format"

# BigQuery: the daily series are partitioned by day and clustered by domain, so a dashboard
# reading one domain's last weeks scans those partitions and blocks only.
BIGQUERY_PARTITION_COLUMN = "date"
BIGQUERY_CLUSTER_COLUMNS = ["domain_id"]


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
    """`bigquery`, `snowflake`, `postgres`, `duckdb`, ... of a dlt destination, or None."""
    if destination is None:
        return None
    destination_type = getattr(destination, "destination_type", None) or str(destination)
    return destination_type.rsplit(".", 1)[-1]


def with_destination_hints(source: DltSource, destination: Any) -> DltSource:
    """Adds the hints of `destination`'s kind to the source's resources; returns the source.

    BigQuery: the daily tables are created `PARTITION BY date CLUSTER BY domain_id` (dlt's
    `bigquery_adapter`). Hints apply when a table is created: an existing table keeps its
    layout. Other destinations take the source as it is: the endpoint table's names are
    lower-case snake_case, which every destination accepts (Snowflake folds them to upper
    case, BigQuery keeps them as they are) and its types map to each one's own.
    """
    if destination_kind(destination) == "bigquery":
        from dlt.destinations.adapters import bigquery_adapter

        for name in daily_tables():
            if name in source.resources:
                bigquery_adapter(
                    source.resources[name],
                    partition=BIGQUERY_PARTITION_COLUMN,
                    cluster=list(BIGQUERY_CLUSTER_COLUMNS),
                )
    return source


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
        problem = " ".join(str(exc).split())
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
