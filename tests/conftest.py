"""Fixtures: a sandbox API on 127.0.0.1 and a real warehouse (a DuckDB file in a temporary
folder; PostgreSQL, the BigQuery emulator and an S3 double too where they are given, see
support/warehouses.py). The helpers tests share are in support/; the pure unit tests in unit/
(`make test-fast`)."""

import os
from pathlib import Path
from typing import Any, List

import pytest

# no telemetry, no network: dlt reads this before anything else
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

from aiclicks_pipeline.sandbox import run_sandbox  # noqa: E402

from .support import (  # noqa: E402
    BQEMULATOR_ENV, KINDS, MOTO_SERVER_ENV, NO_BQEMULATOR, NO_MOTO_SERVER, SQL_KINDS, START,
    SYNC_KINDS, Warehouse, bigquery_emulator_running, executable_from_env, open_warehouse,
    s3_double_running,
)

UNIT_TESTS = Path(__file__).resolve().parent / "unit"


@pytest.fixture
def sandbox():
    with run_sandbox(
        seed=11, domains=3, prompts=(60, 240), start=START, frozen=True, rate_limit=None
    ) as running:
        yield running


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path)


def warehouse_of_each(kinds: List[str], doc: str) -> Any:
    """A fixture giving a warehouse of each of `kinds` in turn (skipped, saying why, where its
    server is not given), dropped after the test."""

    @pytest.fixture(params=kinds)
    def fixture(request, tmp_path):
        warehouse = open_warehouse(request.param, tmp_path, request)
        yield warehouse
        warehouse.drop()

    fixture.__doc__ = doc
    return fixture


any_warehouse = warehouse_of_each(KINDS, "A warehouse of every kind, in turn.")
sync_warehouse = warehouse_of_each(
    SYNC_KINDS, "A warehouse of each kind for the cases about the sync itself (SYNC_KINDS)."
)
sql_warehouse = warehouse_of_each(SQL_KINDS, "A warehouse of each kind whose SQL client writes.")


# one emulator per test: a statement that fails inside a transaction leaves bqemulator 1.4.0's
# one DuckDB connection aborted, and every later request of any test answers 500 (which
# google-cloud-bigquery retries for minutes); it starts in about 2 s
@pytest.fixture
def bigquery_emulator(tmp_path_factory):
    """The BigQuery emulator, this process set up to reach it for the test (doubles.py)."""
    executable = executable_from_env(BQEMULATOR_ENV, NO_BQEMULATOR)
    folder = tmp_path_factory.mktemp("bqemulator")
    with bigquery_emulator_running(executable, folder) as emulator, emulator.in_this_process():
        yield emulator


@pytest.fixture(scope="session")
def s3_double(tmp_path_factory):
    """The S3 double, one per test session (per xdist worker); a bucket per test."""
    executable = executable_from_env(MOTO_SERVER_ENV, NO_MOTO_SERVER)
    with s3_double_running(executable, tmp_path_factory.mktemp("moto")) as double:
        yield double


# `make test` gives each worker a test file at a time (--dist=loadfile), in collection order:
# the longest files first, so that no long file starts last and leaves one worker on it alone
# at the end. Files not named here follow in their usual order.
LONGEST_FIRST = [
    # every warehouse case on five destinations (emulator and S3 double included)
    "test_destinations.py",
    "test_kill.py", "test_interrupts.py", "test_dbt.py", "test_sharing.py", "test_checkpoints.py",
    "test_cli.py", "test_resilience.py", "test_source.py", "test_history.py", "test_dlt_tools.py",
    "test_kill_cli.py", "test_odd_runs.py", "test_workdir.py", "test_reset.py", "test_status.py",
    "test_report.py", "test_clock_skew.py", "test_run_transform.py",
]


def pytest_collection_modifyitems(items: List[Any]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    # the fast layer: `-m unit` picks the same tests as `pytest tests/unit`
    for item in items:
        if UNIT_TESTS in item.path.parents:
            item.add_marker(pytest.mark.unit)
