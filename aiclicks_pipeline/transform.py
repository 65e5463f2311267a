"""`aiclicks-pipeline transform`: `dbt build` of the packaged dbt project (aiclicks_pipeline/dbt)
on the data a sync loaded, then `dbt source freshness`, through dbt's Python API.

The project reads the dataset dlt loaded (`aiclicks`) and writes its models into a schema of
their own (`aiclicks_models`) of the same warehouse. Before building, it asks the warehouse which
source tables exist (`dbt run-operation aiclicks_loaded_tables`) and switches off, with the
package's `aiclicks_enabled_<table>` vars, the models of the tables a partial sync did not load.
dbt's `target/` and `logs/` go to a work folder outside the installed package; nothing is
downloaded and nothing phones home.
"""

import json
import os
import re
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import AIclicksError, UsageError
from .settings import DEFAULT_DATASET, DEFAULT_DUCKDB_FILE, ENDPOINTS

PROJECT_DIR = Path(__file__).resolve().parent / "dbt"
PROFILES_DIR = PROJECT_DIR / "profiles"
PACKAGE_NAME = "aiclicks"
TARGETS = ("duckdb", "postgres", "bigquery", "snowflake")
DEFAULT_TARGET = "duckdb"
DEFAULT_MODELS_SCHEMA = "aiclicks_models"
MARTS = (
    "daily_visibility",
    "share_of_voice",
    "model_performance",
    "citation_sources",
    "fanout_query_frequency",
)
# the package's sources: every table dlt loads, with dlt's child table of citations
SOURCE_TABLES: Tuple[str, ...] = (*ENDPOINTS, "citations__models")
ENABLED_VAR = "aiclicks_enabled_{}"
INSTALL_HINT = "pip install 'aiclicks-pipeline[dbt]'"
# the PostgreSQL profile's settings; AICLICKS_POSTGRES_URL (or dlt's own credentials for the
# postgres destination) fills in those not set
POSTGRES_URL_ENV = "AICLICKS_POSTGRES_URL"
POSTGRES_SETTINGS = ("HOST", "PORT", "USER", "PASSWORD", "DATABASE", "SSLMODE")
LOADED_TABLES_LOG = "aiclicks_loaded_tables: "
# DuckDB: `Could not set lock on file "F": Conflicting lock is held in PROGRAM (PID N) ...`
DUCKDB_LOCK = re.compile(
    r"Could not set lock on file \"(?P<file>[^\"]+)\""
    r"(?:: Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\))?"
)


class TransformError(AIclicksError):
    """dbt could not build the models, a dbt test failed, or a source is stale past its error
    threshold. The message is one paragraph saying what; `result` holds what did run."""

    def __init__(self, message: str, result: Optional["TransformResult"] = None) -> None:
        super().__init__(message)
        self.result = result

    def done_so_far(self) -> Optional[str]:
        return self.result.summary() if self.result is not None else None


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
            + (f", {len(self.warnings)} warned" if self.warnings else ""),
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
        lines.append(f"  dbt's logs and artifacts: {self.work_dir}")
        return "\n".join(lines)


def _format_hours(hours: float) -> str:
    return f"{hours:.0f}" if float(hours).is_integer() else f"{hours:.1f}"


def default_work_dir(duckdb_file: Optional[str], target: str) -> Path:
    """dbt's work folder: beside the DuckDB file (`<stem>_dbt/`), else `./aiclicks_dbt/`."""
    if target == "duckdb":
        path = Path(duckdb_file or DEFAULT_DUCKDB_FILE).resolve()
        return path.with_name(f"{path.stem}_dbt")
    return Path("aiclicks_dbt").resolve()


def run_transform(
    duckdb_file: Optional[str] = DEFAULT_DUCKDB_FILE,
    dataset: str = DEFAULT_DATASET,
    target: str = DEFAULT_TARGET,
    schema: str = DEFAULT_MODELS_SCHEMA,
    work_dir: Optional[str] = None,
    select: Optional[Sequence[str]] = None,
    quiet: bool = True,
    dbt_vars: Optional[Mapping[str, Any]] = None,
    check_freshness: bool = True,
) -> TransformResult:
    """`dbt build` of the aiclicks dbt project (seed, models, every dbt test) on the tables the
    dataset holds, then `dbt source freshness`.

    Args:
        duckdb_file: the DuckDB file the sync wrote (target `duckdb` only). The load must have
            finished and no other process may hold the file (DuckDB locks it).
        dataset: the dataset (schema) dlt loaded, read by the project's sources.
        target: `duckdb`, `postgres`, `bigquery` or `snowflake` (profiles in
            aiclicks_pipeline/dbt/profiles, credentials from AICLICKS_* environment variables;
            see the README).
        schema: where the models are written, beside `dataset`.
        work_dir: dbt's `target/` and `logs/`; default `default_work_dir()`.
        select: dbt node selection (`--select`); default everything.
        quiet: print only errors (else dbt's progress lines).
        dbt_vars: the package's vars to set (e.g. `aiclicks_freshness_error_after_hours`); an
            `aiclicks_enabled_<table>` given here wins over the tables found in the dataset.
        check_freshness: run `dbt source freshness` after the build.

    Raises:
        UsageError: a bad argument (a ValueError).
        TransformError: dbt is missing, the DuckDB file is in use, the dataset holds no table, a
            model failed to build or a dbt test failed (the message names each failing node), or
            a source is older than its error threshold (the models are built; `.result` has them).
    """
    if target not in TARGETS:
        raise UsageError(f"Unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if schema == dataset:
        raise UsageError(f"The models need a schema of their own, not the dataset {dataset!r}")
    env = {"AICLICKS_DBT_SCHEMA": schema}
    where = f"dataset {dataset!r} on {target}"
    if target == "duckdb":
        path = Path(duckdb_file or DEFAULT_DUCKDB_FILE).resolve()
        if not path.is_file():
            raise TransformError(
                f"No DuckDB file {path}: load the data first (`aiclicks-pipeline run`)"
            )
        if path.stem in (dataset, schema):
            # DuckDB cannot tell the catalog (the file's stem) from a schema of the same name
            raise UsageError(
                f"The DuckDB file {path.name!r} is named like the schema {path.stem!r}; "
                "choose another file name or schema"
            )
        env["AICLICKS_DUCKDB_PATH"] = str(path)
        where = f"dataset {dataset!r} of {path}"
    elif target == "postgres":
        env.update(postgres_profile_env(os.environ))
    dbt_runner = _dbt_runner(target)
    work = Path(work_dir).resolve() if work_dir else default_work_dir(duckdb_file, target)
    work.mkdir(parents=True, exist_ok=True)
    common = [
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROFILES_DIR),
        "--target", target,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
    ]
    given_vars = {"aiclicks_dataset": dataset, **(dbt_vars or {})}

    started = time.monotonic()
    try:
        with _environment(env):
            if target == "duckdb":
                _raise_if_duckdb_in_use(path)
            loaded = _loaded_tables(dbt_runner, common, given_vars, target)
            if not loaded:
                raise TransformError(
                    f"No AIclicks table in {where}: load the data first (`aiclicks-pipeline run`), "
                    "or name the dataset it went to (--dataset)"
                )
            missing = [table for table in SOURCE_TABLES if table not in loaded]
            build_vars = {
                **{ENABLED_VAR.format(table): False for table in missing},
                **given_vars,
            }
            args = ["build", *common, "--vars", json.dumps(build_vars)]
            if select:
                args += ["--select", *select]
            if quiet:
                args.append("--quiet")
            outcome = dbt_runner().invoke(args)
            try:
                result = _build_result(outcome, target, schema, work, missing)
            except TransformError as exc:
                if exc.result is not None:
                    exc.result.elapsed_s = time.monotonic() - started
                raise
            if check_freshness:
                result.freshness = _source_freshness(dbt_runner, common, build_vars, work, quiet)
    finally:
        release_duckdb()
    result.elapsed_s = time.monotonic() - started
    stale = result.stale
    if stale:
        raise TransformError(
            f"Source freshness on {target}: {len(stale)} of {len(result.freshness)} source "
            f"table(s) past the error threshold: " + "; ".join(s.describe() for s in stale)
            + ". The models were built from what is there; sync again (`aiclicks-pipeline run`), "
            "or raise the var aiclicks_freshness_error_after_hours",
            result,
        )
    return result


def _loaded_tables(
    dbt_runner: Any, common: List[str], dbt_vars: Mapping[str, Any], target: str
) -> List[str]:
    """The package's source tables that exist, as the warehouse answers through dbt's adapter."""
    found: List[List[str]] = []
    errors: List[str] = []

    def listen(event: Any) -> None:
        message = event.info.msg or ""
        if event.info.name == "JinjaLogInfo" and message.startswith(LOADED_TABLES_LOG):
            found.append(json.loads(message[len(LOADED_TABLES_LOG):]))
        elif event.info.level == "error" and message.strip():
            errors.append(message)

    outcome = dbt_runner(callbacks=[listen]).invoke(
        # dbt's console stays silent: a failure is reported in one line below
        ["run-operation", "aiclicks_loaded_tables", *common, "--vars", json.dumps(dict(dbt_vars)),
         "--log-level", "none"]
    )
    if not found:
        detail = str(outcome.exception) if outcome.exception is not None else " ".join(errors)
        raise TransformError(
            _duckdb_lock_message(detail)
            or f"dbt could not read the warehouse ({target}): {_one_line(detail) or 'see the dbt log'}"
        )
    return found[-1]


def _build_result(
    outcome: Any, target: str, schema: str, work: Path, missing: List[str]
) -> TransformResult:
    results = getattr(outcome.result, "results", None) or []
    statuses: Counter = Counter()
    failures, warnings = [], []
    for node_result in results:
        node = node_result.node
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        status = str(getattr(node_result.status, "value", node_result.status))
        statuses[(kind, status)] += 1
        described = f"{kind} {node.name}: {_one_line(node_result.message or status)}"
        if status in ("error", "fail", "runtime error"):
            failures.append(described)
        elif status == "warn":
            warnings.append(described)
    result = TransformResult(
        target=target,
        schema=schema,
        work_dir=work,
        elapsed_s=0.0,
        statuses=dict(statuses),
        warnings=warnings,
        missing_tables=missing,
        skipped_models=_disabled_models(work),
    )
    if not outcome.success or failures:
        detail = " ".join([str(outcome.exception or "")] + failures)
        in_use = _duckdb_lock_message(detail)
        if in_use:
            raise TransformError(in_use, result)
        reasons = failures or [
            f"{type(outcome.exception).__name__}: {_one_line(str(outcome.exception))}"
            if outcome.exception is not None
            else "dbt reported a failure; see its log"
        ]
        skipped = statuses.get(("model", "skipped"), 0)
        raise TransformError(
            f"dbt build on {target} failed ({len(failures)} failing node(s)"
            + (f", {skipped} model(s) skipped" if skipped else "")
            + f"; logs in {work / 'logs'}):\n  "
            + "\n  ".join(reasons),
            result,
        )
    return result


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


def _source_freshness(
    dbt_runner: Any, common: List[str], dbt_vars: Mapping[str, Any], work: Path, quiet: bool
) -> List[SourceFreshness]:
    args = ["source", "freshness", *common, "--vars", json.dumps(dict(dbt_vars)),
            "--output", str(work / "target" / "sources.json")]
    # the summary reports every source; quiet, dbt's console would repeat the stale ones
    outcome = dbt_runner().invoke(args + (["--log-level", "none"] if quiet else []))
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


def _raise_if_duckdb_in_use(path: Path) -> None:
    """Fail in one line when another process holds the DuckDB file, before dbt tries."""
    import duckdb

    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as exc:
        message = _duckdb_lock_message(str(exc))
        if message:
            raise TransformError(message) from None
        raise


def _duckdb_lock_message(text: str) -> Optional[str]:
    match = DUCKDB_LOCK.search(text or "")
    if match is None:
        return None
    holder = (
        f" (PID {match['pid']}, {match['program']})" if match["pid"] else ""
    )
    return (
        f"The DuckDB file {match['file']} is in use by another process{holder}: DuckDB lets one "
        "process write a file at a time; let it finish or close it, then run transform again"
    )


def _one_line(text: Optional[str]) -> str:
    return " ".join((text or "").split())


def postgres_profile_env(environ: Mapping[str, str]) -> Dict[str, str]:
    """AICLICKS_POSTGRES_* settings of the profile's postgres target, from AICLICKS_POSTGRES_URL
    (postgresql://user:password@host:port/database?sslmode=...) or else from dlt's credentials
    of its postgres destination; settings already in the environment win."""
    url = environ.get(POSTGRES_URL_ENV) or _dlt_postgres_credentials()
    values: Dict[str, Optional[str]] = {}
    if isinstance(url, str) and url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        values = {
            "HOST": parts.hostname,
            "PORT": str(parts.port) if parts.port else None,
            "USER": unquote(parts.username) if parts.username else None,
            "PASSWORD": unquote(parts.password) if parts.password else None,
            "DATABASE": parts.path.lstrip("/") or None,
            "SSLMODE": (parse_qs(parts.query).get("sslmode") or [None])[0],
        }
    elif isinstance(url, Mapping):
        values = {
            "HOST": url.get("host"),
            "PORT": str(url["port"]) if url.get("port") else None,
            "USER": url.get("username"),
            "PASSWORD": url.get("password"),
            "DATABASE": url.get("database"),
        }
    return {
        f"AICLICKS_POSTGRES_{name}": str(value)
        for name, value in values.items()
        if value and f"AICLICKS_POSTGRES_{name}" not in environ
    }


def _dlt_postgres_credentials() -> Any:
    """dlt's `destination.postgres.credentials` (environment or .dlt/secrets.toml), if any."""
    try:
        import dlt

        return dlt.secrets.get("destination.postgres.credentials")
    except Exception:  # not configured: the profile's own variables apply
        return None


def _dbt_runner(target: str) -> Any:
    """dbt's runner class, or a TransformError saying what to install."""
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as exc:
        raise DbtNotInstalled(f"dbt is not installed: {INSTALL_HINT}") from exc
    if find_spec(f"dbt.adapters.{target}") is None:
        raise DbtNotInstalled(
            f"The dbt adapter for {target} is not installed: pip install dbt-{target}==1.11.*"
        )
    return dbtRunner


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the rest of the process, so that
    this process and others can open the file again (DuckDB locks it)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    environment = getattr(DuckDBConnectionManager, "_ENV", None)
    if environment is not None and hasattr(environment, "close"):
        environment.close()
    DuckDBConnectionManager.close_all_connections()


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
