"""`aiclicks-pipeline transform`: `dbt build` of the packaged dbt project (aiclicks_pipeline/dbt)
on the data a sync loaded, through dbt's Python API.

The project reads the dataset dlt loaded (`aiclicks`) and writes its models into a schema of
their own (`aiclicks_models`) of the same warehouse. dbt's `target/` and `logs/` go to a work
folder outside the installed package; nothing is downloaded and nothing phones home.
"""

import json
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from .settings import DEFAULT_DATASET, DEFAULT_DUCKDB_FILE

PROJECT_DIR = Path(__file__).resolve().parent / "dbt"
PROFILES_DIR = PROJECT_DIR / "profiles"
TARGETS = ("duckdb", "bigquery", "snowflake")
DEFAULT_TARGET = "duckdb"
DEFAULT_MODELS_SCHEMA = "aiclicks_models"
MARTS = (
    "daily_visibility",
    "share_of_voice",
    "model_performance",
    "citation_sources",
    "fanout_query_frequency",
)
INSTALL_HINT = "pip install 'aiclicks-pipeline[dbt]'"


class TransformError(Exception):
    """dbt could not build the models, or a dbt test failed."""


class DbtNotInstalled(TransformError):
    """dbt, or the target's dbt adapter, is not installed."""


@dataclass
class TransformResult:
    target: str
    schema: str
    work_dir: Path
    elapsed_s: float
    # (resource type, status) -> nodes, e.g. ("model", "success"): 16, ("test", "pass"): 119
    statuses: Dict[tuple, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)

    def count(self, resource_type: str, status: Optional[str] = None) -> int:
        return sum(
            n for (kind, state), n in self.statuses.items()
            if kind == resource_type and (status is None or state == status)
        )

    def summary(self) -> str:
        lines = [
            f"dbt build on {self.target} finished in {self.elapsed_s:.1f}s: "
            f"{self.count('model')} models and {self.count('seed')} seed(s) built into schema "
            f"{self.schema}, {self.count('test', 'pass')} of {self.count('test')} dbt tests passed"
            + (f", {len(self.warnings)} warned" if self.warnings else ""),
        ]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        lines.append(f"  dbt's logs and artifacts: {self.work_dir}")
        return "\n".join(lines)


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
) -> TransformResult:
    """`dbt build` of the aiclicks dbt project: seed, models and every dbt test.

    Args:
        duckdb_file: the DuckDB file the sync wrote (target `duckdb` only). The load must have
            finished: DuckDB lets one process write a file at a time.
        dataset: the dataset (schema) dlt loaded, read by the project's sources.
        target: `duckdb`, `bigquery` or `snowflake` (profiles in aiclicks_pipeline/dbt/profiles,
            credentials from AICLICKS_* environment variables; see the README).
        schema: where the models are written, beside `dataset`.
        work_dir: dbt's `target/` and `logs/`; default `default_work_dir()`.
        select: dbt node selection (`--select`); default everything.
        quiet: print only errors (else dbt's progress lines).

    Raises:
        ValueError: a bad argument.
        TransformError: dbt is missing, a model failed to build or a dbt test failed; the message
            names each failing node.
    """
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if schema == dataset:
        raise ValueError(f"The models need a schema of their own, not the dataset {dataset!r}")
    env = {"AICLICKS_DBT_SCHEMA": schema}
    if target == "duckdb":
        path = Path(duckdb_file or DEFAULT_DUCKDB_FILE).resolve()
        if not path.is_file():
            raise TransformError(
                f"No DuckDB file {path}: load the data first (`aiclicks-pipeline run`)"
            )
        if path.stem in (dataset, schema):
            # DuckDB cannot tell the catalog (the file's stem) from a schema of the same name
            raise ValueError(
                f"The DuckDB file {path.name!r} is named like the schema {path.stem!r}; "
                "choose another file name or schema"
            )
        env["AICLICKS_DUCKDB_PATH"] = str(path)
    dbt_runner = _dbt_runner(target)
    work = Path(work_dir).resolve() if work_dir else default_work_dir(duckdb_file, target)
    work.mkdir(parents=True, exist_ok=True)
    args = [
        "build",
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROFILES_DIR),
        "--target", target,
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--vars", json.dumps({"aiclicks_dataset": dataset}),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
    ]
    if select:
        args += ["--select", *select]
    if quiet:
        args.append("--quiet")

    started = time.monotonic()
    try:
        with _environment(env):
            outcome = dbt_runner().invoke(args)
    finally:
        _release_duckdb()
    elapsed = time.monotonic() - started

    results = getattr(outcome.result, "results", None) or []
    statuses: Counter = Counter()
    failures, warnings = [], []
    for node_result in results:
        node = node_result.node
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        status = str(getattr(node_result.status, "value", node_result.status))
        statuses[(kind, status)] += 1
        described = f"{kind} {node.name}: {node_result.message or status}"
        if status in ("error", "fail", "runtime error"):
            failures.append(described)
        elif status == "warn":
            warnings.append(described)
    if not outcome.success or failures:
        reasons = failures or [
            f"{type(outcome.exception).__name__}: {outcome.exception}"
            if outcome.exception is not None
            else "dbt reported a failure; see its log"
        ]
        skipped = statuses.get(("model", "skipped"), 0)
        raise TransformError(
            f"dbt build on {target} failed ({len(failures)} failing node(s)"
            + (f", {skipped} model(s) skipped" if skipped else "")
            + f"; logs in {work / 'logs'}):\n  "
            + "\n  ".join(reasons)
        )
    return TransformResult(
        target=target,
        schema=schema,
        work_dir=work,
        elapsed_s=elapsed,
        statuses=dict(statuses),
        warnings=warnings,
    )


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


def _release_duckdb() -> None:
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
