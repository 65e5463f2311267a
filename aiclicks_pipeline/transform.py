"""`aiclicks-pipeline transform`: `dbt build` of the packaged dbt project (aiclicks_pipeline/dbt)
on the data a sync loaded, then `dbt source freshness`, through dbt's Python API.

The project reads the dataset dlt loaded (`aiclicks`) and writes its models into a schema of
their own (`aiclicks_models`) of the same warehouse: the warehouse `run` with the same
destination options loads, its dbt target and profile taken from the pipeline's own destination
configuration (dbt_targets.py). Before building, it asks the warehouse which source tables exist
(`dbt run-operation aiclicks_loaded_tables`) and switches off, with the package's
`aiclicks_enabled_<table>` vars, the models of the tables a partial sync did not load.
dbt's `target/` and `logs/` go to a work folder outside the installed package (dbt_runs.py: the
summary is printed, dbt's own lines go to a log file); nothing is downloaded and nothing phones
home.

`run_transform` is the steps in order; each has one home: the arguments, the target and its
profile below (the target's own side in dbt_targets.py), the dbt commands and the reading of
their results in dbt_runs.py, the result, its wording and the errors in transform_result.py.
"""

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

from .dbt_gen import ENABLED_VAR, SOURCE_TABLES
from .dbt_runs import PROFILES_DIR, PROJECT_DIR, DbtRuns, build, loaded_tables, source_freshness
from .dbt_targets import TARGETS, DbtTarget
from .errors import BusyError, UsageError
from .settings import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_MODELS_SCHEMA,
    DEFAULT_PIPELINE_NAME,
)
from .transform_result import (
    DbtNotInstalled,
    SourceFreshness,
    TransformBusy,
    TransformError,
    TransformResult,
    freshness_failure,
)

MARTS = (
    "aiclicks__daily_visibility",
    "aiclicks__share_of_voice",
    "aiclicks__model_performance",
    "aiclicks__citation_sources",
    "aiclicks__fanout_query_frequency",
)
INSTALL_HINT = "pip install 'aiclicks-pipeline[dbt]'"


def run_transform(
    duckdb_file: Optional[str] = DEFAULT_DUCKDB_FILE,
    dataset: str = DEFAULT_DATASET,
    target: Optional[str] = None,
    schema: str = DEFAULT_MODELS_SCHEMA,
    work_dir: Optional[str] = None,
    select: Optional[Sequence[str]] = None,
    show_dbt_log: bool = False,
    dbt_vars: Optional[Mapping[str, Any]] = None,
    check_freshness: bool = True,
    destination: Any = None,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    wait_s: Optional[float] = None,
) -> TransformResult:
    """`dbt build` of the aiclicks dbt project (seed, models, every dbt test) on the tables the
    dataset holds, then `dbt source freshness`.

    Args:
        duckdb_file: the DuckDB file the sync wrote (destination duckdb). The load must have
            finished and no other process may hold the file (DuckDB locks it).
        dataset: the dataset (schema) dlt loaded, read by the project's sources.
        target: the dbt target, named like the destination (`duckdb`, `postgres`, `bigquery`,
            `snowflake`); default the destination's.
        schema: where the models are written, beside `dataset`.
        work_dir: dbt's `target/` and `logs/`; default beside the DuckDB file (`<stem>_dbt/`),
            else `./aiclicks_dbt/`.
        select: dbt node selection (`--select`); default everything.
        show_dbt_log: print dbt's own lines as it runs (they always go to the log file).
        dbt_vars: the package's vars to set (e.g. `aiclicks_freshness_error_after_hours`); an
            `aiclicks_enabled_<table>` given here wins over the tables found in the dataset.
        check_freshness: run `dbt source freshness` after the build.
        destination, pipeline_name: the destination the sync loaded, as for `run` (default
            `destination_type` from dlt's config, else DuckDB); its credentials come from dlt's
            config of that pipeline (dbt_targets.py: the profile's AICLICKS_* variables win).
        wait_s: how long to wait for a DuckDB file another process holds (default: a reader's,
            warehouse.py).

    Raises:
        UsageError: a bad argument (a ValueError).
        TransformBusy: another process holds the DuckDB file (a TransformError, exit 75).
        TransformError: no dbt target for the destination, dbt missing, the DuckDB file missing,
            the dataset holds no table, a model failed to build or a dbt test failed
            (the message names each failing node), or a source is older than its error threshold
            (the models are built; `.result` has them).
    """
    dbt_target = _target_of(destination, target, dataset, schema)
    dbt_runner = _dbt_runner(dbt_target)
    started = time.monotonic()
    profile = _profile(
        dbt_target, destination or target, dataset, duckdb_file, pipeline_name, schema, wait_s
    )
    with profile as (env, config, where):
        work = Path(work_dir).resolve() if work_dir else dbt_target.work_dir(config)
        given_vars = {"aiclicks_dataset": dataset, **(dbt_vars or {})}
        try:
            with _environment(env), DbtRuns(dbt_runner, dbt_target.name, work, show_dbt_log) as dbt:
                loaded = loaded_tables(dbt, given_vars, where)
                missing = [table for table in SOURCE_TABLES if table not in loaded]
                build_vars = {**{ENABLED_VAR.format(table): False for table in missing}, **given_vars}
                result = build(dbt, build_vars, select, schema, missing, started)
                if check_freshness:
                    result.freshness = source_freshness(dbt, build_vars)
        finally:
            dbt_target.release()
    result.elapsed_s = time.monotonic() - started
    stale = freshness_failure(result)
    if stale is not None:
        raise stale
    return result


# --- before dbt: the target, its profile, dbt itself ----------------------------------------------


def _target_of(destination: Any, target: Optional[str], dataset: str, schema: str) -> DbtTarget:
    """The dbt target of the destination (`target` names one, and must agree with it), once the
    arguments are checked."""
    from .destinations import configured_destination, destination_kind

    if target is not None and target not in TARGETS:
        raise UsageError(f"Unknown target {target!r}; choose from {', '.join(TARGETS)}")
    kind = destination_kind(configured_destination(destination or target))
    if target is not None and kind != target:
        raise UsageError(f"The target {target!r} is not the destination's ({kind})")
    if kind not in TARGETS:
        raise TransformError(
            f"The dbt package has no target for destination {kind}; its targets are "
            f"{', '.join(TARGETS)}"
        )
    if schema == dataset:
        raise UsageError(f"The models need a schema of their own, not the dataset {dataset!r}")
    return TARGETS[kind]


@contextmanager
def _profile(
    dbt_target: DbtTarget,
    destination: Any,
    dataset: str,
    duckdb_file: Optional[str],
    pipeline_name: str,
    schema: str,
    wait_s: Optional[float],
) -> Iterator[Tuple[Dict[str, str], Any, str]]:
    """The profile's environment, from the pipeline's destination configuration; that
    configuration; and where the data is. A DuckDB file must exist and no other process hold
    it (past `wait_s`): it is opened as a writer, then closed again before dbt opens it."""
    from .destinations import WarehouseError
    from .warehouse import DEFAULT_READ_WAIT_S, describe, destination_config, throwaway_pipeline

    wait_s = DEFAULT_READ_WAIT_S if wait_s is None else wait_s
    try:
        opened = throwaway_pipeline(
            destination, dataset, duckdb_file, pipeline_name, read_only=False, wait_s=wait_s
        )
        with opened as pipeline:
            config = destination_config(pipeline)
            where = describe(pipeline)
    except WarehouseError as exc:
        raise (TransformBusy if isinstance(exc, BusyError) else TransformError)(str(exc)) from None
    dbt_target.check_names(config, dataset, schema)
    with tempfile.TemporaryDirectory(prefix="aiclicks_dbt_profile_") as folder:
        env = {"AICLICKS_DBT_SCHEMA": schema, **dbt_target.profile_env(config, os.environ, Path(folder))}
        yield env, config, where


def _dbt_runner(dbt_target: DbtTarget) -> Any:
    """dbt's runner class, or a TransformError saying what to install."""
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:
        raise DbtNotInstalled(f"dbt is not installed: {INSTALL_HINT}") from exc
    if not dbt_target.adapter_installed():
        raise DbtNotInstalled(
            f"The dbt adapter for {dbt_target.name} is not installed: "
            f"pip install dbt-{dbt_target.name}=={dbt_target.adapter_version}"
        )
    return dbtRunner


@contextmanager
def _environment(values: Dict[str, str]) -> Iterator[None]:
    """Set environment variables for the profile while dbt runs, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


__all__ = [
    "DbtNotInstalled",
    "MARTS",
    "PROFILES_DIR",
    "PROJECT_DIR",
    "SOURCE_TABLES",
    "SourceFreshness",
    "TARGETS",
    "TransformBusy",
    "TransformError",
    "TransformResult",
    "run_transform",
]
