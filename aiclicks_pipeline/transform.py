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
"""

import json
import os
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .dbt_runs import PROFILES_DIR, PROJECT_DIR, DbtRuns
from .dbt_targets import TARGETS, DbtTarget
from .errors import AIclicksError, BusyError, UsageError
from .settings import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_MODELS_SCHEMA,
    DEFAULT_PIPELINE_NAME,
    ENDPOINTS,
)

PACKAGE_NAME = "aiclicks"
MARTS = (
    "aiclicks__daily_visibility",
    "aiclicks__share_of_voice",
    "aiclicks__model_performance",
    "aiclicks__citation_sources",
    "aiclicks__fanout_query_frequency",
)
# the package's sources: every table dlt loads, with dlt's child table of citations
SOURCE_TABLES: Tuple[str, ...] = (*ENDPOINTS, "citations__models")
ENABLED_VAR = "aiclicks_enabled_{}"
INSTALL_HINT = "pip install 'aiclicks-pipeline[dbt]'"
LOADED_TABLES_LOG = "aiclicks_loaded_tables: "


class TransformError(AIclicksError):
    """dbt could not build the models, a dbt test failed, or a source is stale past its error
    threshold. The message is one paragraph saying what; `result` holds what did run."""

    def __init__(self, message: str, result: Optional["TransformResult"] = None) -> None:
        super().__init__(message)
        self.result = result

    def done_so_far(self) -> Optional[str]:
        return self.result.summary() if self.result is not None else None


class TransformBusy(TransformError, BusyError):
    """Another process holds the DuckDB file (exit 75: try again)."""


class DbtNotInstalled(TransformError):
    """dbt, or the target's dbt adapter, is not installed."""


@dataclass
class SourceFreshness:
    """`dbt source freshness` of one source table: its newest `generated_at` against now."""

    table: str
    # pass, warn, error or "runtime error" (the check itself failed)
    status: str
    max_loaded_at: Optional[datetime] = None
    age_hours: Optional[float] = None
    warn_after_hours: Optional[float] = None
    error_after_hours: Optional[float] = None
    message: Optional[str] = None

    def describe(self) -> str:
        if self.status == "runtime error":
            return f"{self.table}: could not be checked: {self.message or 'see the dbt log'}"
        # dbt reports an empty table as loaded in the year 1
        if self.max_loaded_at is None or self.max_loaded_at.year == 1:
            return f"{self.table}: no rows"
        # a clock ahead of the warehouse's (a sandbox moved on a day) is not an age
        age = f", {max(self.age_hours, 0.0):.1f} h old" if self.age_hours is not None else ""
        limit = {"warn": self.warn_after_hours, "error": self.error_after_hours}.get(self.status)
        over = f" (over {_format_hours(limit)} h)" if limit is not None else ""
        newest = self.max_loaded_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.table}: newest generated_at {newest}{age}{over}"


@dataclass
class TransformResult:
    target: str
    schema: str
    work_dir: Path
    elapsed_s: float
    # (resource type, status) -> nodes, e.g. ("model", "success"): 16, ("test", "pass"): 119
    statuses: Dict[tuple, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    # source tables the dataset does not hold, and the models switched off (for them, or by the
    # caller's aiclicks_enabled_<table> vars)
    missing_tables: List[str] = field(default_factory=list)
    skipped_models: List[str] = field(default_factory=list)
    # one per source table checked; empty when the check was not run
    freshness: List[SourceFreshness] = field(default_factory=list)
    # "<kind> <node>: <error>" of each model or test that failed
    failures: List[str] = field(default_factory=list)
    log_path: Optional[Path] = None

    def count(self, resource_type: str, status: Optional[str] = None) -> int:
        return sum(
            n for (kind, state), n in self.statuses.items()
            if kind == resource_type and (status is None or state == status)
        )

    def freshness_of(self, status: str) -> List[SourceFreshness]:
        return [source for source in self.freshness if source.status == status]

    @property
    def stale(self) -> List[SourceFreshness]:
        """Sources past their error threshold, or whose check failed."""
        return [s for s in self.freshness if s.status in ("error", "runtime error")]

    def summary(self) -> str:
        lines = [
            f"dbt build on {self.target} finished in {self.elapsed_s:.1f}s: "
            f"{self.count('model')} models and {self.count('seed')} seed(s) built into schema "
            f"{self.schema}, {self.count('test', 'pass')} of {self.count('test')} dbt tests passed"
            + (f", {len(self.warnings)} warned" if self.warnings else "")
            + (f", {len(self.failures)} failed" if self.failures else ""),
        ]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.missing_tables:
            lines.append(f"  not in the dataset: {', '.join(self.missing_tables)}")
        if self.skipped_models:
            marts = [name for name in self.skipped_models if not name.startswith("stg_")]
            staging = len(self.skipped_models) - len(marts)
            lines.append(
                f"  skipped: {len(marts)} mart(s) ({', '.join(marts) or 'none'}) and {staging} "
                "staging model(s), their source tables not loaded (or switched off)"
            )
        if self.freshness:
            counts = Counter(source.status for source in self.freshness)
            first = self.freshness[0]
            thresholds = ", ".join(
                f"{name} after {_format_hours(hours)} h"
                for name, hours in (("warn", first.warn_after_hours), ("error", first.error_after_hours))
                if hours is not None
            )
            lines.append(
                f"  source freshness ({thresholds or 'no thresholds'}): "
                + ", ".join(f"{counts[s]} {s}" for s in ("pass", "warn", "error", "runtime error") if counts[s])
            )
            # the sources past a threshold, one line each; all of them when every one is fine
            # but the newest load is what a reader checks ("newest ... h old")
            shown = [s for s in self.freshness if s.status != "pass"] or self.freshness[:1]
            width = max(len(source.status) for source in shown)
            lines += [f"    {s.status:<{width}}  {s.describe()}" for s in shown]
        log = self.log_path or self.work_dir / "logs"
        lines.append(f"  dbt's log: {log}; artifacts: {self.work_dir / 'target'}")
        return "\n".join(lines)


def _format_hours(hours: float) -> str:
    return f"{hours:.0f}" if float(hours).is_integer() else f"{hours:.1f}"


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
    dbt_target = _target_of(destination, target)
    if schema == dataset:
        raise UsageError(f"The models need a schema of their own, not the dataset {dataset!r}")
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
                loaded = _loaded_tables(dbt, given_vars, where)
                missing = [table for table in SOURCE_TABLES if table not in loaded]
                build_vars = {**{ENABLED_VAR.format(table): False for table in missing}, **given_vars}
                result = _build(dbt, build_vars, select, schema, missing, started)
                if check_freshness:
                    result.freshness = _source_freshness(dbt, build_vars)
        finally:
            dbt_target.release()
    result.elapsed_s = time.monotonic() - started
    stale = result.stale
    if stale:
        raise TransformError(
            f"Source freshness on {dbt_target.name}: {len(stale)} of {len(result.freshness)} "
            f"source table(s) past the error threshold: " + "; ".join(s.describe() for s in stale)
            + ". The models were built from what is there; sync again (`aiclicks-pipeline run`), "
            "or raise the var aiclicks_freshness_error_after_hours",
            result,
        )
    return result


# --- before dbt: the target, its profile, dbt itself ----------------------------------------------


def _target_of(destination: Any, target: Optional[str]) -> DbtTarget:
    """The dbt target of the destination (`target` names one, and must agree with it)."""
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


# --- the dbt commands ------------------------------------------------------------------------------


def _loaded_tables(dbt: DbtRuns, dbt_vars: Mapping[str, Any], where: str) -> List[str]:
    """The package's source tables that exist, as the warehouse answers through dbt's adapter."""
    from .destinations import busy_message

    found: List[List[str]] = []
    errors: List[str] = []

    def listen(event: Any) -> None:
        message = event.info.msg or ""
        if event.info.name == "JinjaLogInfo" and message.startswith(LOADED_TABLES_LOG):
            found.append(json.loads(message[len(LOADED_TABLES_LOG):]))
        elif event.info.level == "error" and message.strip():
            errors.append(message)

    # dbt's console stays silent: a failure is reported in one line below
    outcome = dbt.invoke(["run-operation", "aiclicks_loaded_tables"], dbt_vars, listen, console=False)
    if not found:
        detail = str(outcome.exception) if outcome.exception is not None else " ".join(errors)
        busy = busy_message(detail)
        if busy:
            raise TransformBusy(busy)
        raise TransformError(
            f"dbt could not read {where}: {_one_line(detail) or 'see ' + str(dbt.log_path)}"
        )
    if not found[-1]:
        raise TransformError(
            f"No AIclicks table in {where}: load the data first (`aiclicks-pipeline run`), "
            "or name the dataset it went to (--dataset)"
        )
    return found[-1]


def _build(
    dbt: DbtRuns,
    dbt_vars: Mapping[str, Any],
    select: Optional[Sequence[str]],
    schema: str,
    missing: List[str],
    started: float,
) -> TransformResult:
    outcome = dbt.invoke(["build", *(["--select", *select] if select else [])], dbt_vars)
    result = _build_result(outcome, dbt, schema, missing)
    result.elapsed_s = time.monotonic() - started
    failure = _build_failure(outcome, result, dbt)
    if failure:
        raise failure
    return result


def _build_result(outcome: Any, dbt: DbtRuns, schema: str, missing: List[str]) -> TransformResult:
    statuses: Counter = Counter()
    failures, warnings = [], []
    for node_result in getattr(outcome.result, "results", None) or []:
        node = node_result.node
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        status = str(getattr(node_result.status, "value", node_result.status))
        statuses[(kind, status)] += 1
        described = f"{kind} {node.name}: {_one_line(node_result.message or status)}"
        if status in ("error", "fail", "runtime error"):
            failures.append(described)
        elif status == "warn":
            warnings.append(described)
    return TransformResult(
        target=dbt.target,
        schema=schema,
        work_dir=dbt.work,
        elapsed_s=0.0,
        statuses=dict(statuses),
        warnings=warnings,
        missing_tables=missing,
        skipped_models=_disabled_models(dbt.work),
        failures=failures,
        log_path=dbt.log_path,
    )


def _build_failure(outcome: Any, result: TransformResult, dbt: DbtRuns) -> Optional[TransformError]:
    """The error of a failed build, in one paragraph naming each failing node; None when it
    passed."""
    from .destinations import busy_message

    if outcome.success and not result.failures:
        return None
    detail = " ".join([str(outcome.exception or "")] + result.failures)
    in_use = busy_message(detail)
    if in_use:
        return TransformBusy(in_use, result)
    reasons = result.failures or [
        f"{type(outcome.exception).__name__}: {_one_line(str(outcome.exception))}"
        if outcome.exception is not None
        else "dbt reported a failure; see its log"
    ]
    skipped = result.statuses.get(("model", "skipped"), 0)
    return TransformError(
        f"dbt build on {dbt.target} failed ({len(result.failures)} failing node(s)"
        + (f", {skipped} model(s) skipped" if skipped else "")
        + f"; log in {dbt.log_path}):\n  "
        + "\n  ".join(reasons),
        result,
    )


def _disabled_models(work: Path) -> List[str]:
    """The package's models the build left out (switched off by their enabled var)."""
    try:
        manifest = json.loads((work / "target" / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    names = {
        node["name"]
        for versions in manifest.get("disabled", {}).values()
        for node in versions
        if node.get("resource_type") == "model" and node.get("package_name") == PACKAGE_NAME
    }
    # staging first, then the marts
    return sorted(names, key=lambda name: (not name.startswith("stg_"), name))


def _source_freshness(dbt: DbtRuns, dbt_vars: Mapping[str, Any]) -> List[SourceFreshness]:
    """`dbt source freshness` of every source table (its results in dbt's own target/sources.json)."""
    outcome = dbt.invoke(["source", "freshness"], dbt_vars)
    checked = []
    for node_result in getattr(outcome.result, "results", None) or []:
        node = node_result.node
        threshold = getattr(node, "freshness", None)
        checked.append(
            SourceFreshness(
                table=node.name,
                status=str(getattr(node_result.status, "value", node_result.status)),
                max_loaded_at=getattr(node_result, "max_loaded_at", None),
                age_hours=(
                    node_result.age / 3600 if getattr(node_result, "age", None) is not None else None
                ),
                warn_after_hours=_hours(getattr(threshold, "warn_after", None)),
                error_after_hours=_hours(getattr(threshold, "error_after", None)),
                message=_one_line(node_result.message) if node_result.message else None,
            )
        )
    if not checked and outcome.exception is not None:
        checked.append(
            SourceFreshness(table="(all)", status="runtime error", message=_one_line(str(outcome.exception)))
        )
    order = {name: index for index, name in enumerate(SOURCE_TABLES)}
    return sorted(checked, key=lambda source: order.get(source.table, len(order)))


_PERIOD_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}


def _hours(limit: Any) -> Optional[float]:
    """A dbt freshness threshold (count, period) in hours; None when not set."""
    if limit is None or limit.count is None or limit.period is None:
        return None
    return limit.count * _PERIOD_HOURS[str(getattr(limit.period, "value", limit.period))]


def _one_line(text: Optional[str]) -> str:
    return " ".join((text or "").split())


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
