"""Fixtures: a sandbox API on 127.0.0.1 and a real DuckDB warehouse in a temporary folder."""

import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import duckdb
import pytest

# no telemetry, no network: dlt reads this before anything else
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

from aiclicks_pipeline.checkpoints import SyncResult, run_sync  # noqa: E402
from aiclicks_pipeline.pipeline import make_pipeline  # noqa: E402
from aiclicks_pipeline.sandbox import run_sandbox  # noqa: E402
from aiclicks_pipeline.settings import DEFAULT_DATASET, ENDPOINTS  # noqa: E402

START = datetime(2026, 6, 17, 10, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def sandbox():
    with run_sandbox(
        seed=11, domains=3, prompts=(60, 240), start=START, frozen=True, rate_limit=None
    ) as running:
        yield running


class Warehouse:
    """A dlt pipeline into a DuckDB file, and the queries tests ask of it."""

    def __init__(
        self, folder: Path, name: str = "aiclicks_test", duckdb_name: str = "warehouse.duckdb"
    ) -> None:
        self.folder = folder
        self.duckdb_path = folder / duckdb_name
        self.pipelines_dir = folder / "pipelines"
        self.name = name
        self.pipeline = self.new_pipeline()

    def new_pipeline(self) -> Any:
        return make_pipeline(
            pipeline_name=self.name,
            pipelines_dir=str(self.pipelines_dir),
            duckdb_file=str(self.duckdb_path),
        )

    def sync(self, sandbox: Any, **options: Any) -> SyncResult:
        options.setdefault("base_url", sandbox.base_url)
        options.setdefault("api_key", sandbox.api_key)
        options.setdefault("backoff_factor", 0.01)
        return run_sync(self.pipeline, **options)

    def query(self, sql: str) -> List[Tuple[Any, ...]]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            return connection.execute(sql).fetchall()

    def tables(self) -> set:
        rows = self.query(
            f"select table_name from information_schema.tables where table_schema = '{DEFAULT_DATASET}'"
        )
        return {name for (name,) in rows}

    def rows(self, table: str) -> List[Dict[str, Any]]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            cursor = connection.execute(f"select * from {DEFAULT_DATASET}.{table}")
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def keyed(self, table: str) -> Dict[Tuple[str, ...], Dict[str, Any]]:
        key = ENDPOINTS[table]["primary_key"]
        return {tuple(str(row[c]) for c in key): row for row in self.rows(table)}

    def citation_models(self) -> set:
        rows = self.query(
            f"""select c.domain_id, c.days, c.snapshot_date, c.url, m.value
            from {DEFAULT_DATASET}.citations c
            join {DEFAULT_DATASET}.citations__models m on m._dlt_parent_id = c._dlt_id"""
        )
        return {tuple(str(v) for v in row) for row in rows}


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path)


@contextmanager
def duckdb_held_by_another_process(path: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the DuckDB file open for writing (a sync, a notebook) until the
    block ends; yields that process (its pid is what messages name)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


# `make test` gives each worker a test file at a time (--dist=loadfile), in collection order:
# the longest files first, so that no long file starts last and leaves one worker on it alone
# at the end. Files not named here follow in their usual order.
LONGEST_FIRST = [
    "test_kill.py", "test_interrupts.py", "test_dbt.py", "test_checkpoints.py", "test_cli.py",
    "test_resilience.py", "test_source.py", "test_dlt_tools.py", "test_destinations.py",
    "test_kill_cli.py", "test_odd_runs.py", "test_workdir.py", "test_reset.py", "test_status.py",
    "test_history.py", "test_report.py", "test_clock_skew.py", "test_run_transform.py",
]


def pytest_collection_modifyitems(items: List[Any]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
