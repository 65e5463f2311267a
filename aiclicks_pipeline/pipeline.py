"""The dlt pipeline a sync runs in: its destination (a DuckDB file by default), its working
folder bound to that destination (workdir.py), and the file formats and writer settings
that load fastest there. The sync itself runs in checkpoints.py."""

from typing import Any, Dict, Optional, Tuple

import dlt
from dlt.pipeline.pipeline import Pipeline

from .destinations import (
    check_destination,
    configured_destination,
    destination_kind,
    DUCKDB_GLOBAL_CONFIG_KEY,
    DUCKDB_LOAD_CONFIG,
    duckdb_destination,
    install_reader_extensions,
    required_file_format,
)
from .settings import DEFAULT_DATASET, DEFAULT_PIPELINE_NAME
from .workdir import bind_to_destination, remember_duckdb_path


# "freeze" freezes what the API sends (columns and their types), not the tables this package
# declares: a first load must still create them.
SCHEMA_CONTRACTS: Dict[str, Any] = {
    "evolve": "evolve",
    "freeze": {"tables": "evolve", "columns": "freeze", "data_type": "freeze"},
}


def make_pipeline(
    destination: Any = None,
    dataset_name: str = DEFAULT_DATASET,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    pipelines_dir: Optional[str] = None,
    duckdb_file: Optional[str] = None,
    progress: Any = None,
) -> Pipeline:
    """A dlt pipeline for `destination` (destinations.py makes what a kind needs: for DuckDB,
    a file named apart from the dataset).

    `destination` is any dlt destination (a name such as `bigquery`, or a factory); when None,
    `destination_type` from dlt's config, else DuckDB. Credentials, a staging bucket
    (`staging_type`) and the rest come from dlt's config the usual way (destinations.py).

    A relative DuckDB path is resolved here, against the folder the command runs in (dlt would
    resolve it against the folder the pipeline first ran in), and remembered in the pipeline's
    local state so that `dlt.attach(<name>)` and `dlt pipeline <name> ...` find the file. The
    working folder is bound to the destination (workdir.py): a pipeline name shared by two
    projects never mixes their state or writes into the other's warehouse.
    """
    destination = configured_destination(destination)
    check_destination(destination)
    duckdb_path: Optional[str] = None
    if destination == "duckdb":
        destination, duckdb_path = duckdb_destination(dataset_name, duckdb_file)
    pipeline = dlt.pipeline(
        pipeline_name=pipeline_name,
        destination=destination,
        dataset_name=dataset_name,
        pipelines_dir=pipelines_dir,
        progress=progress,
    )
    pipeline = bind_to_destination(pipeline)
    # what reading this destination back needs, before anything reads it (the next checkpoint
    # plan, status, dlt's own dataset())
    install_reader_extensions(pipeline.destination)
    if duckdb_path:
        remember_duckdb_path(pipeline, duckdb_path)
    return pipeline


def where_loaded(pipeline: Pipeline) -> Dict[str, Optional[str]]:
    """Where `pipeline` loads, for the user to read: the destination's kind, its location (the
    DuckDB file; elsewhere dlt's displayable credentials, without the password) and the
    dataset."""
    kind = destination_kind(pipeline.destination)
    location: Optional[str] = None
    try:
        credentials = pipeline.destination_client().config.credentials
        location = getattr(credentials, "database", None) if kind == "duckdb" else str(credentials)
    except Exception:  # noqa: BLE001 - credentials not configured (yet): kind and dataset say enough
        pass
    return {"destination": kind, "location": location or None, "dataset": pipeline.dataset_name}


def describe_where(where: Dict[str, Optional[str]]) -> str:
    """`duckdb file /x/aiclicks_warehouse.duckdb, dataset aiclicks`, `postgres
    postgresql://loader:***@host:5432/db, dataset aiclicks`."""
    location = where.get("location")
    if location and where.get("destination") == "duckdb":
        location = f"file {location}"
    return f"{where.get('destination')}{f' {location}' if location else ''}, dataset {where.get('dataset')}"


# Our rows are flat (lists become child tables), so a file format the destination bulk-loads
# beats SQL INSERTs: on DuckDB, jsonl loads a 160k-row sync ~15x faster than insert_values.
# DuckDB takes parquet: the rows then go to dlt as Arrow tables (ARROW_FILE_FORMATS, items.py),
# which skip dlt's row-by-row normalizer, and DuckDB reads the files without parsing text.
# The other destinations keep jsonl (or dlt's default): not csv, whose dlt 1.31 writer counts
# fields, not rows (PostgreSQL's "rows written" came out 6x too high), and on PostgreSQL csv
# was no faster than insert_values (2.2 s vs 2.7 s a sync).
PREFERRED_FILE_FORMATS: Dict[Optional[str], Tuple[str, ...]] = {
    "duckdb": ("parquet", "jsonl"),
    None: ("jsonl",),
}
# the load files in which the rows go to dlt as Arrow tables, not dicts
ARROW_FILE_FORMATS = ("parquet",)


def preferred_file_format(pipeline: Pipeline) -> Optional[str]:
    required = required_file_format(pipeline.destination)
    if required:
        return required
    supported = pipeline.destination.capabilities().supported_loader_file_formats
    kind = destination_kind(pipeline.destination)
    preferred = PREFERRED_FILE_FORMATS.get(kind, PREFERRED_FILE_FORMATS[None])
    return next((fmt for fmt in preferred if fmt in supported), None)


def arrow_rows(file_format: Optional[str]) -> bool:
    """Whether a run whose load files are `file_format` hands dlt its rows as Arrow tables."""
    return file_format in ARROW_FILE_FORMATS


# dlt gzips the files extract and normalize write. DuckDB reads them from the local disk, where
# compressing them costs almost half of the normalize step and a quarter of the load, and saves
# nothing (100 sandbox domains: 11.3 s -> 8.8 s a sync). Remote destinations keep dlt's default.
LOCAL_WRITER_SETTINGS: Dict[str, Any] = {"data_writer.disable_compression": True}
# DuckDB writes a load's rows to its log first and into the file when the load step closes it:
# the merge's staging tables too, a second copy of every row. Emptied once the load is
# complete, they are not written out (100 sandbox domains: that close 531 -> 304 ms, the sync
# 5.17 -> 4.59 s); each merge load empties them before it begins anyway. Remote destinations
# would pay a statement a table for nothing.
# How many load jobs at a time: by the load's size (duckdb_load.load_workers_settings).
DUCKDB_LOAD_SETTINGS: Dict[str, Any] = {"load.truncate_staging_dataset": True}
# every run: a loaded package keeps its metadata, not its data files (disk use stays flat)
RUN_SETTINGS: Dict[str, Any] = {"load.delete_completed_jobs": True}
# whatever is configured: the Arrow rows carry their `_dlt_id` already (items.py), so dlt's
# normalize step takes their files as they are; adding the ids there, dlt read and wrote every
# file again, after the last response (500 domains, no rate limit: normalize step 2.01 -> 1.71 s)
ARROW_SETTINGS: Dict[str, Any] = {"normalize.parquet_normalizer.add_dlt_id": False}


def run_settings(pipeline: Pipeline) -> Dict[str, Any]:
    """dlt settings for a run (and, into a local destination, for its files and DuckDB's memory),
    unless already configured; with those the Arrow rows need."""
    settings = dict(RUN_SETTINGS)
    if destination_kind(pipeline.destination) == "duckdb":
        settings.update(LOCAL_WRITER_SETTINGS)
        settings.update(DUCKDB_LOAD_SETTINGS)
        # DuckDB's memory settings for the loads (destinations.py)
        settings[DUCKDB_GLOBAL_CONFIG_KEY] = dict(DUCKDB_LOAD_CONFIG)
    settings = {key: value for key, value in settings.items() if dlt.config.get(key) is None}
    return {**settings, **ARROW_SETTINGS}
