"""Fixtures: a sandbox API on 127.0.0.1 and a real warehouse (a DuckDB file in a temporary
folder; PostgreSQL too where `AICLICKS_TEST_POSTGRES` names a server). The helpers tests share
are in support.py; the pure unit tests in unit/ (`make test-fast`)."""

import os
from pathlib import Path
from typing import Any, List

import pytest

# no telemetry, no network: dlt reads this before anything else
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"

from aiclicks_pipeline.sandbox import run_sandbox  # noqa: E402

from .support import START, Warehouse, open_warehouse  # noqa: E402

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


@pytest.fixture(params=["duckdb", "postgres"])
def sql_warehouse(request, tmp_path):
    """The same test on a DuckDB file and on PostgreSQL (skipped without a server)."""
    warehouse = open_warehouse(request.param, tmp_path)
    yield warehouse
    warehouse.drop()


# `make test` gives each worker a test file at a time (--dist=loadfile), in collection order:
# the longest files first, so that no long file starts last and leaves one worker on it alone
# at the end. Files not named here follow in their usual order.
LONGEST_FIRST = [
    "test_kill.py", "test_interrupts.py", "test_dbt.py", "test_sharing.py", "test_checkpoints.py",
    "test_cli.py", "test_resilience.py", "test_source.py", "test_dlt_tools.py", "test_destinations.py",
    "test_kill_cli.py", "test_odd_runs.py", "test_workdir.py", "test_reset.py", "test_status.py",
    "test_history.py", "test_report.py", "test_clock_skew.py", "test_run_transform.py",
]


def pytest_collection_modifyitems(items: List[Any]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    # the fast layer: `-m unit` picks the same tests as `pytest tests/unit`
    for item in items:
        if UNIT_TESTS in item.path.parents:
            item.add_marker(pytest.mark.unit)
