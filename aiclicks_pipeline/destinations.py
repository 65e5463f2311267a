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
  packages so that nothing is downloaded (`install_reader_extensions`).
"""

import importlib
import logging
from pathlib import Path
from typing import Any, List, Optional, Tuple

import dlt
from dlt.extract import DltSource

from .errors import AIclicksError, UnknownDestinationError
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
    dataset: DuckDB cannot tell a catalog `x` (the file) from a schema `x` (the dataset)."""
    path = Path(duckdb_file or DEFAULT_DUCKDB_FILE).expanduser().resolve()
    if path.stem == dataset_name:
        raise ValueError(
            f"The DuckDB file {path.name!r} is named like the dataset {dataset_name!r}; "
            "DuckDB then cannot tell the catalog from the schema and the load fails. "
            "Choose another file name or dataset."
        )
    return dlt.destinations.duckdb(credentials=str(path)), str(path)


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
        chosen = table_format(destination)
        for resource in source.resources.values():
            resource.apply_hints(table_format=chosen, write_disposition=dict(LAKEHOUSE_MERGE))
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
            path = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
            if not path.is_file():
                logger.info("duckdb-extension-%s has no build for DuckDB %s", name, duckdb.__version__)
                continue
            connection.execute(f"INSTALL '{path}'")
            installed.append(name)
    return installed
