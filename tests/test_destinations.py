"""The same syncs into every SQL warehouse reachable here, compared with the sandbox's ground truth.

DuckDB (a file) always; PostgreSQL (a networked server) when `AICLICKS_TEST_POSTGRES` names one,
as a dlt credentials URL: postgresql://user:password@127.0.0.1:5432/database. `.ci/run` installs
and starts Debian's PostgreSQL and sets it; on a laptop without it the PostgreSQL cases skip.
Each PostgreSQL test loads into a dataset (schema) of its own and drops it afterwards.

Also here: dlt's state lives in the destination, so a worker that keeps nothing between runs
(a CI runner, an Airflow task) still syncs incrementally; and shards keep their state apart.
"""

import os
import shutil
from typing import Any, List, Tuple

import pytest

from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import CHILD_TABLES, DEFAULT_DATASET, ENDPOINTS

from .support import (
    POSTGRES_ENV, START, PostgresWarehouse, Warehouse, assert_child_rows_belong, assert_equals_truth,
    assert_keys_unique, assert_table_matches, normalise, open_warehouse, postgres_url,
)

INCREMENTAL = [n for n, e in ENDPOINTS.items() if e.get("window") == "incremental"]
def test_full_load_then_next_day_equal_ground_truth(sandbox, sql_warehouse):
    first = sql_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()

    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    counts = assert_equals_truth(sql_warehouse, truth)
    assert all(counts[table] > 0 for table in ENDPOINTS), counts
    assert first.windows_asked["visibility_daily"] == [90]
    assert_keys_unique(sql_warehouse)
    assert_child_rows_belong(sql_warehouse)

    sandbox.advance(days=1)
    second = sql_warehouse.sync(sandbox)

    for name in INCREMENTAL:
        assert second.windows_asked[name] == [7], (name, second.windows_asked)
    domains = len(sandbox.account.domain_ids())
    assert second.rows["visibility_daily"] == 7 * domains
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(sql_warehouse, truth)
    assert_keys_unique(sql_warehouse)
    assert_child_rows_belong(sql_warehouse)


def test_child_tables_merge_when_a_snapshot_is_reloaded(sandbox, sql_warehouse):
    sql_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    before = assert_child_rows_belong(sql_warehouse)

    # past the API's one-hour cache, the same day: the same snapshot keys come again
    sandbox.advance(hours=2)
    again = sql_warehouse.sync(sandbox)

    assert again.rows.get("citations", 0) > 0 and again.rows.get("citations__models", 0) > 0
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(sql_warehouse, truth)
    assert_keys_unique(sql_warehouse)
    # merge replaced the old parents' children instead of adding to them
    after = assert_child_rows_belong(sql_warehouse)
    assert after == len(truth.keys("citations__models"))
    assert after < before + again.rows["citations__models"]


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_faults_end_equal_to_ground_truth(kind, tmp_path):
    warehouse = open_warehouse(kind, tmp_path)
    try:
        with run_sandbox(
            seed=11,
            domains=3,
            prompts=(60, 240),
            start=START,
            frozen=True,
            rate_limit=None,
            fault_seed=3,
            faults={"error_rate": 0.1, "burst_retry_after": 0},
        ) as sandbox:
            sandbox.fail_next("drop", 2)
            sandbox.fail_next("429", 3)

            result = warehouse.sync(sandbox, max_attempts=10)

            stats = result.stats
            assert stats.connection_errors >= 2 and stats.rate_limited >= 3, stats.as_dict()
            assert sum(n for s, n in stats.responses_by_status.items() if s >= 500) > 0
            truth = WarehouseTruth(sandbox.account)
            truth.record_sync(sandbox.clock.now(), days=90)
            assert_equals_truth(warehouse, truth)
            assert_keys_unique(warehouse)
    finally:
        warehouse.drop()


def test_a_domain_that_404s_is_skipped_only(sandbox, sql_warehouse):
    gone, *others = sandbox.account.domain_ids()
    sandbox.set_faults(hidden_404_domains={gone})

    result = sql_warehouse.sync(sandbox)

    assert list(result.skipped_domains) == [gone]
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90, domain_ids=others)
    for table in ENDPOINTS:
        if table != "domains":  # /domains still lists it
            assert_table_matches(sql_warehouse, truth, table)
    loaded_domains = {d for (d,) in sql_warehouse.query(
        f"select distinct domain_id from {DEFAULT_DATASET}.visibility_daily"
    )}
    assert loaded_domains == set(others)


def test_state_survives_a_worker_that_keeps_nothing(sandbox, sql_warehouse):
    sql_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    cursors = sql_warehouse.pipeline.state["sources"]["aiclicks"]["resources"]["visibility_daily"]
    assert cursors["cursors"]

    # the runner is gone: no pipelines folder, a new process, the next sandbox day
    shutil.rmtree(sql_warehouse.pipelines_dir)
    assert not sql_warehouse.pipelines_dir.exists()
    sql_warehouse.pipeline = sql_warehouse.new_pipeline()
    assert sql_warehouse.pipeline.first_run
    sandbox.advance(days=1)

    second = sql_warehouse.sync(sandbox)

    # dlt restored the state (and the per-domain cursors) from the destination
    for name in INCREMENTAL:
        assert second.windows_asked[name] == [7], (name, second.windows_asked)
    restored = sql_warehouse.pipeline.state["sources"]["aiclicks"]["resources"]["visibility_daily"]
    assert set(restored["cursors"]) == set(cursors["cursors"])
    assert second.rows["visibility_daily"] == 7 * len(sandbox.account.domain_ids())
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(sql_warehouse, truth)
    assert_keys_unique(sql_warehouse)


def test_shards_keep_their_state_apart(sandbox, tmp_path, request):
    """Two workers, `--shard 1/2` and `--shard 2/2`, into one dataset, each with its own state."""
    kind = "postgres" if os.environ.get(POSTGRES_ENV) else "duckdb"
    shards = ["1/2", "2/2"]
    warehouses = {}
    for shard in shards:
        name = "aiclicks_shard_" + shard.replace("/", "_of_")
        # each worker has its own (empty) working folder; the warehouse is shared
        warehouses[shard] = open_warehouse(kind, tmp_path / name, name=name)
    if kind == "postgres":
        first_dataset = warehouses["1/2"].dataset
        request.addfinalizer(warehouses["1/2"].drop)
        for warehouse in warehouses.values():
            warehouse.dataset = first_dataset
            warehouse.pipeline = warehouse.new_pipeline()
    else:
        for warehouse in warehouses.values():
            warehouse.duckdb_path = tmp_path / "shared.duckdb"
            warehouse.pipeline = warehouse.new_pipeline()

    first = {shard: warehouses[shard].sync(sandbox, shard=shard) for shard in shards}
    first_now = sandbox.clock.now()
    sandbox.advance(days=1)
    second = {shard: warehouses[shard].sync(sandbox, shard=shard) for shard in shards}

    for shard in shards:
        assert first[shard].windows_asked["visibility_daily"] == [90], shard
        assert second[shard].windows_asked["visibility_daily"] == [7], shard
    states = {
        shard: set(w.pipeline.state["sources"]["aiclicks"]["resources"]["visibility_daily"]["cursors"])
        for shard, w in warehouses.items()
    }
    assert states["1/2"] and states["2/2"] and not states["1/2"] & states["2/2"]
    assert states["1/2"] | states["2/2"] == set(sandbox.account.domain_ids())
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(warehouses["1/2"], truth)
    assert_keys_unique(warehouses["1/2"])


def comparable_rows(warehouse: Warehouse, table: str) -> List[Tuple[Any, ...]]:
    """A table's rows, sorted, as normalised values without dlt's load and row ids; a child
    row as its parent's primary key, its list position and its value."""
    if table in CHILD_TABLES:
        parent = CHILD_TABLES[table]["parent"]
        key = ", ".join(f"p.{c}" for c in ENDPOINTS[parent]["primary_key"])
        rows = warehouse.query(
            f"select {key}, c._dlt_list_idx, c.value from {DEFAULT_DATASET}.{table} c "
            f"join {DEFAULT_DATASET}.{parent} p on p._dlt_id = c._dlt_parent_id"
        )
        return sorted(tuple(repr(normalise(v)) for v in row) for row in rows)
    return sorted(
        tuple(
            (column, repr(normalise(value)))
            for column, value in sorted(row.items())
            if not column.startswith("_dlt")
        )
        for row in warehouse.rows(table)
    )


def test_postgres_load_equals_duckdb_load_row_for_row(tmp_path):
    url = postgres_url()
    duck = Warehouse(tmp_path / "duckdb")
    postgres = PostgresWarehouse(tmp_path / "postgres", url)
    try:
        with run_sandbox(
            seed=11, domains=3, prompts=(60, 240), start=START, frozen=True, rate_limit=None
        ) as sandbox:
            for warehouse in (duck, postgres):
                warehouse.sync(sandbox)
            sandbox.advance(days=1)
            for warehouse in (duck, postgres):
                warehouse.sync(sandbox)

        compared = 0
        for table in list(ENDPOINTS) + list(CHILD_TABLES):
            duck_rows = comparable_rows(duck, table)
            postgres_rows = comparable_rows(postgres, table)
            assert duck_rows, table
            assert len(postgres_rows) == len(duck_rows), table
            for duck_row, postgres_row in zip(duck_rows, postgres_rows):
                assert postgres_row == duck_row, (table, postgres_row, duck_row)
            compared += len(duck_rows)
        # the same columns with the same types' meaning on both
        for table in ENDPOINTS:
            duck_columns = {c for c in duck.rows(table)[0]}
            postgres_columns = {c for c in postgres.rows(table)[0]}
            assert postgres_columns == duck_columns, table
        print(f"postgres == duckdb: {compared} rows compared")
    finally:
        postgres.drop()


def test_without_a_server_the_postgres_cases_say_why(monkeypatch):
    monkeypatch.delenv(POSTGRES_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=POSTGRES_ENV):
        postgres_url()


def test_cli_run_loads_the_warehouse_named_on_the_command_line(sandbox, tmp_path, monkeypatch):
    """`aiclicks-pipeline run --destination postgres`, credentials from the environment only."""
    from aiclicks_pipeline.cli import main

    warehouse = PostgresWarehouse(tmp_path, postgres_url())
    try:
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", warehouse.url)
        monkeypatch.setenv("SOURCES__AICLICKS__API_KEY", sandbox.api_key)
        monkeypatch.setenv("SOURCES__AICLICKS__BACKOFF_FACTOR", "0.01")
        code = main([
            "run", "--destination", "postgres", "--dataset", warehouse.dataset,
            "--pipelines-dir", str(tmp_path / "cli_pipelines"), "--base-url", sandbox.base_url,
            "--quiet",
        ])

        assert code == 0
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(sandbox.clock.now(), days=90)
        assert_equals_truth(warehouse, truth)
    finally:
        warehouse.drop()
