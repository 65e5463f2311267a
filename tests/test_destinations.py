"""The same syncs into every warehouse reachable here, compared with the sandbox's ground truth.

Every case runs on each kind of warehouse (tests/support/warehouses.py): DuckDB (a file)
always; PostgreSQL when `AICLICKS_TEST_POSTGRES` names a server; BigQuery on the bqemulator and
Delta and Iceberg tables (dlt's `filesystem` destination) on an S3 double when
`AICLICKS_TEST_BQEMULATOR` and `AICLICKS_TEST_MOTO_SERVER` name them (tests/support/doubles.py). `.ci/run` gives all
three; on a laptop without them those cases skip, saying how to get them. Each loads into a
dataset (schema, bucket) of its own and drops it afterwards.

Also here: dlt's state lives in the destination, so a worker that keeps nothing between runs
(a CI runner, an Airflow task) still syncs incrementally; shards keep their state apart; a sync
killed in its load step and run again ends exact.
"""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from aiclicks_pipeline.destinations import daily_tables
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import CHILD_TABLES, DEFAULT_DATASET, ENDPOINTS

from .support import (
    KINDS, POSTGRES_ENV, REPO, SNOWFLAKE_ENV, SQL_KINDS, START, SYNC_KINDS, Warehouse,
    assert_child_rows_belong, assert_equals_truth, assert_exact,
    assert_table_matches, cli_here, normalise, open_warehouse, postgres_url, snowflake_url,
    truth_of_two_days,
)

INCREMENTAL = [n for n, e in ENDPOINTS.items() if e.get("window") == "incremental"]


def test_full_load_then_next_day_equal_ground_truth(sandbox, any_warehouse):
    first = any_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()

    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    counts = assert_equals_truth(any_warehouse, truth)
    assert all(counts[table] > 0 for table in ENDPOINTS), counts
    assert first.windows_asked["visibility_daily"] == [90]
    assert_child_rows_belong(any_warehouse)

    sandbox.advance(days=1)
    second = any_warehouse.sync(sandbox)

    for name in INCREMENTAL:
        assert second.windows_asked[name] == [7], (name, second.windows_asked)
    domains = len(sandbox.account.domain_ids())
    assert second.rows["visibility_daily"] == 7 * domains
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_exact(any_warehouse, truth)


def test_child_tables_merge_when_a_snapshot_is_reloaded(sandbox, any_warehouse):
    any_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    before = assert_child_rows_belong(any_warehouse)

    # past the API's one-hour cache, the same day: the same snapshot keys come again
    sandbox.advance(hours=2)
    again = any_warehouse.sync(sandbox)

    assert again.rows.get("citations", 0) > 0 and again.rows.get("citations__models", 0) > 0
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(any_warehouse, truth)
    # merge replaced the old parents' children instead of adding to them
    after = assert_child_rows_belong(any_warehouse)
    assert after == len(truth.keys("citations__models"))
    assert after < before + again.rows["citations__models"]


def test_a_reloaded_parent_with_a_shorter_list_keeps_only_its_new_children(sandbox, any_warehouse):
    """A citation cited by fewer models when its snapshot is reloaded: its child rows are the
    new list, no more (a lakehouse's upsert leaves the old tail; the package deletes it)."""
    any_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    domain_id = sandbox.account.domain_ids()[0]
    pages = sandbox.account._model(domain_id).pages
    shrunk = [i for i, page in enumerate(pages) if len(page.models) > 1]
    for i in shrunk:
        pages[i] = dataclasses.replace(pages[i], models=pages[i].models[:1])
    sandbox.advance(hours=2)  # past the API's cache, the same day: the same snapshot keys

    any_warehouse.sync(sandbox)

    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert shrunk and any(key[0] == domain_id for key in truth.keys("citations"))
    assert_equals_truth(any_warehouse, truth)
    assert assert_child_rows_belong(any_warehouse) == len(truth.keys("citations__models"))


@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_faults_end_equal_to_ground_truth(kind, tmp_path, request):
    warehouse = open_warehouse(kind, tmp_path, request)
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
    finally:
        warehouse.drop()


def test_a_domain_that_404s_is_skipped_only(sandbox, sync_warehouse):
    gone, *others = sandbox.account.domain_ids()
    sandbox.set_faults(hidden_404_domains={gone})

    result = sync_warehouse.sync(sandbox)

    assert list(result.skipped_domains) == [gone]
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90, domain_ids=others)
    for table in ENDPOINTS:
        if table != "domains":  # /domains still lists it
            assert_table_matches(sync_warehouse, truth, table)
    loaded_domains = {d for (d,) in sync_warehouse.query(
        f"select distinct domain_id from {DEFAULT_DATASET}.visibility_daily"
    )}
    assert loaded_domains == set(others)


def test_state_survives_a_worker_that_keeps_nothing(sandbox, sync_warehouse):
    sync_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    cursors = sync_warehouse.pipeline.state["sources"]["aiclicks"]["resources"]["visibility_daily"]
    assert cursors["cursors"]

    # the runner is gone: no pipelines folder, a new process, the next sandbox day
    shutil.rmtree(sync_warehouse.pipelines_dir)
    assert not sync_warehouse.pipelines_dir.exists()
    sync_warehouse.pipeline = sync_warehouse.new_pipeline()
    assert sync_warehouse.pipeline.first_run
    sandbox.advance(days=1)

    second = sync_warehouse.sync(sandbox)

    # dlt restored the state (and the per-domain cursors) from the destination
    for name in INCREMENTAL:
        assert second.windows_asked[name] == [7], (name, second.windows_asked)
    restored = sync_warehouse.pipeline.state["sources"]["aiclicks"]["resources"]["visibility_daily"]
    assert set(restored["cursors"]) == set(cursors["cursors"])
    assert second.rows["visibility_daily"] == 7 * len(sandbox.account.domain_ids())
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(sync_warehouse, truth)


@pytest.mark.parametrize("kind", SYNC_KINDS)
def test_shards_keep_their_state_apart(kind, sandbox, tmp_path, request):
    """Two workers, `--shard 1/2` and `--shard 2/2`, into one dataset, each with its own state."""
    shards = ["1/2", "2/2"]
    warehouses = {}
    for shard in shards:
        name = "aiclicks_shard_" + shard.replace("/", "_of_")
        # each worker has its own (empty) working folder; the warehouse is shared
        warehouses[shard] = open_warehouse(kind, tmp_path / name, request, name=name)
    request.addfinalizer(warehouses["1/2"].drop)
    warehouses["2/2"].load_into_the_same_place_as(warehouses["1/2"])

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


@pytest.mark.parametrize("kind", [kind for kind in SYNC_KINDS if kind != "duckdb"])
def test_each_warehouse_equals_the_duckdb_load_row_for_row(kind, tmp_path, request):
    duck = Warehouse(tmp_path / "duckdb")
    other = open_warehouse(kind, tmp_path / kind, request)
    try:
        with run_sandbox(
            seed=11, domains=3, prompts=(60, 240), start=START, frozen=True, rate_limit=None
        ) as sandbox:
            for warehouse in (duck, other):
                warehouse.sync(sandbox)
            sandbox.advance(days=1)
            for warehouse in (duck, other):
                warehouse.sync(sandbox)

        compared = 0
        for table in list(ENDPOINTS) + list(CHILD_TABLES):
            duck_rows = comparable_rows(duck, table)
            other_rows = comparable_rows(other, table)
            assert duck_rows, table
            assert len(other_rows) == len(duck_rows), table
            for duck_row, other_row in zip(duck_rows, other_rows):
                assert other_row == duck_row, (table, other_row, duck_row)
            compared += len(duck_rows)
        # the same columns with the same types' meaning on both
        for table in ENDPOINTS:
            assert set(other.rows(table)[0]) == set(duck.rows(table)[0]), table
        print(f"{kind} == duckdb: {compared} rows compared")
    finally:
        other.drop()


def test_a_lakehouse_is_delta_unless_told_and_plain_files_are_refused(sandbox, tmp_path, monkeypatch):
    """`table_format` under `[destination.filesystem]`: delta when unset, iceberg when asked;
    anything else (plain files, which cannot merge) stops the run before anything is loaded,
    in one line."""
    from aiclicks_pipeline.destinations import table_format, with_destination_hints
    from aiclicks_pipeline.source import aiclicks_source

    def hinted_formats():
        source = with_destination_hints(
            aiclicks_source(api_key="k", base_url=sandbox.base_url), "filesystem"
        )
        return {r.compute_table_schema().get("table_format") for r in source.resources.values()}

    monkeypatch.delenv("DESTINATION__FILESYSTEM__TABLE_FORMAT", raising=False)
    assert table_format("filesystem") == "delta" and hinted_formats() == {"delta"}
    assert table_format("postgres") is None
    monkeypatch.setenv("DESTINATION__FILESYSTEM__TABLE_FORMAT", "iceberg")
    assert hinted_formats() == {"iceberg"}

    lake = tmp_path / "lake"
    done = cli_here(
        "run", "--destination", "filesystem", "--pipelines-dir", str(tmp_path / "pipelines"),
        "--base-url", sandbox.base_url, "--quiet",
        env={"DESTINATION__FILESYSTEM__BUCKET_URL": lake.as_uri(),
             "DESTINATION__FILESYSTEM__TABLE_FORMAT": "parquet",
             "SOURCES__AICLICKS__API_KEY": sandbox.api_key},
    )

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "table_format 'parquet'" in done.stderr and "cannot merge" in done.stderr
    assert not lake.exists() and sandbox.stats.requests == 0


def test_without_a_server_the_postgres_cases_say_why(monkeypatch):
    monkeypatch.delenv(POSTGRES_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=POSTGRES_ENV):
        postgres_url()


def cli_env(warehouse: Warehouse, sandbox: Any) -> Dict[str, str]:
    """What a user's environment holds for a run into `warehouse`: the key and the
    warehouse's settings (credentials, endpoint, table format), nothing else."""
    return {
        **warehouse.cli_env(),
        "SOURCES__AICLICKS__API_KEY": sandbox.api_key,
        "SOURCES__AICLICKS__BACKOFF_FACTOR": "0.01",
    }


# the lakehouse's CLI runs: test_a_lakehouse_the_cli_loaded_reads_back_through_dlts_dataset
@pytest.mark.parametrize("kind", [kind for kind in SQL_KINDS if kind != "duckdb"])
def test_cli_run_loads_the_warehouse_named_on_the_command_line(kind, sandbox, tmp_path, request):
    """`aiclicks-pipeline run --destination NAME`, its settings from the environment only."""
    warehouse = open_warehouse(kind, tmp_path, request, name="aiclicks")
    try:
        done = cli_here(
            "run", *warehouse.cli_args(), "--base-url", sandbox.base_url, "--quiet",
            env=cli_env(warehouse, sandbox),
        )

        assert done.returncode == 0, done.stderr
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(sandbox.clock.now(), days=90)
        assert_equals_truth(warehouse, truth)
    finally:
        warehouse.drop()


def child_env(env: Dict[str, str]) -> Dict[str, str]:
    """The test's environment without this package's settings, plus `env`."""
    inherited = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("SOURCES__AICLICKS", "AICLICKS_"))
    }
    return {**inherited, **env}


def load_started(pipelines_dir: Path) -> bool:
    return any(pipelines_dir.glob("aiclicks/load/normalized/*/started_jobs/*"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_cli_run_killed_in_its_load_then_run_again_equals_ground_truth(kind, tmp_path, request):
    """SIGKILL once the load step has started a job (polled, not timed), then the next day's
    run finishes the interrupted load and syncs on: the warehouse equals the ground truth,
    keys unique, child rows with their parents. tests/test_kill.py sweeps the kill through a
    DuckDB load moment by moment."""
    warehouse = open_warehouse(kind, tmp_path, request, name="aiclicks")
    try:
        with run_sandbox(
            seed=31, domains=3, prompts=(60, 240), start=START, frozen=True, rate_limit=None
        ) as sandbox:
            # one checkpoint: the killed load holds every domain
            args = [
                "run", *warehouse.cli_args(), "--base-url", sandbox.base_url, "--quiet",
                "--checkpoint-requests", "10000",
            ]
            process = subprocess.Popen(
                [sys.executable, "-m", "aiclicks_pipeline", *args],
                env=child_env(cli_env(warehouse, sandbox)), cwd=REPO,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 300
            while not load_started(warehouse.pipelines_dir):
                assert process.poll() is None, "the run ended before its load started"
                assert time.monotonic() < deadline, "no load started"
                time.sleep(0.002)
            process.send_signal(signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL
            sandbox.advance(days=1)

            warehouse.pipeline = warehouse.new_pipeline()  # the next run, in a new process
            rerun = warehouse.sync(sandbox)

            assert rerun.finished_pending and rerun.status == "success"
            assert rerun.windows_asked["visibility_daily"] == [7]
            assert_exact(warehouse, truth_of_two_days(sandbox, START))
    finally:
        warehouse.drop()


def test_bigquery_tables_are_partitioned_and_read_back_through_dlts_dataset(sandbox, tmp_path, request):
    """What BigQuery-specific the emulator can show: the daily tables' day partitions, and
    dlt's `dataset()` reading every row. The emulator differs from BigQuery in four ways, each
    checked where it can be: it drops CLUSTER BY (the clustering is checked in the DDL dlt
    generates, tests/test_destinations_sql.py); it reports numRows 0 (rows are counted with SQL
    here); it names `count(*)` `_col_0`, not `f0_` (results are read by position); and dlt's
    `.arrow()` / `.df()` read only its first, empty result page (`fetchall()` reads them all)."""
    warehouse = open_warehouse("bigquery", tmp_path, request)
    try:
        warehouse.sync(sandbox)
        client = warehouse.emulator.client()
        for table in daily_tables():
            partitioning = client.get_table(f"{warehouse.dataset}.{table}").time_partitioning
            assert (partitioning.field, partitioning.type_) == ("date", "DAY"), table
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(sandbox.clock.now(), days=90)

        dataset = warehouse.pipeline.dataset()

        assert len(dataset.fanout_queries.fetchall()) == len(truth.keys("fanout_queries")) > 1000
        ((models,),) = dataset("select count(*) from citations__models").fetchall()
        assert models == len(truth.keys("citations__models"))
        counts = dict(dataset.row_counts().fetchall())
        assert counts["visibility_daily"] == len(truth.keys("visibility_daily"))
    finally:
        warehouse.drop()


DATASET_READS = """
import json, sys, dlt
dataset = dlt.attach("aiclicks", pipelines_dir=sys.argv[1]).dataset()
print(json.dumps({
    "arrow": dataset.visibility_daily.arrow().num_rows,
    "df": len(dataset.citations.df()),
    "sql": dataset("select count(*) from citations__models").fetchall()[0][0],
}))
"""


@pytest.mark.parametrize("kind", ["delta", "iceberg", "delta-local", "iceberg-local"])
def test_a_lakehouse_the_cli_loaded_reads_back_through_dlts_dataset(kind, sandbox, tmp_path, request):
    """A run into a bucket (the S3 double) or a local folder, then dlt's `dataset()` in a
    Python of its own: `.arrow()`, `.df()` and SQL read the Delta / Iceberg tables through
    DuckDB, whose extensions the package installed from their PyPI packages into an empty
    HOME (nothing downloaded: there is no network to download from)."""
    warehouse = open_warehouse(kind, tmp_path, request, name="aiclicks")
    home = tmp_path / "home"
    home.mkdir()
    env = child_env({**cli_env(warehouse, sandbox), "HOME": str(home)})
    done = subprocess.run(
        [sys.executable, "-m", "aiclicks_pipeline", "run", *warehouse.cli_args(),
         "--base-url", sandbox.base_url, "--quiet"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    assert_equals_truth(warehouse, truth)

    read = subprocess.run(
        [sys.executable, "-c", DATASET_READS, str(warehouse.pipelines_dir)],
        env=env, capture_output=True, text=True, timeout=300,
    )

    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout) == {
        "arrow": len(truth.keys("visibility_daily")),
        "df": len(truth.keys("citations")),
        "sql": len(truth.keys("citations__models")),
    }
    installed = {path.name for path in home.glob(".duckdb/extensions/*/*/*.duckdb_extension")}
    assert f"{warehouse.table_format}.duckdb_extension" in installed, installed


def test_a_real_snowflake_account_loads_equal_to_ground_truth(sandbox, tmp_path, request):
    """Opt-in (AICLICKS_TEST_SNOWFLAKE): no double of Snowflake takes dlt's loads offline, so
    CI never runs this; where an account is given, a full sync and the next day's equal the
    ground truth there, keys unique, child rows with their parents."""
    warehouse = open_warehouse("snowflake", tmp_path, request)
    try:
        warehouse.sync(sandbox)
        first_now = sandbox.clock.now()
        sandbox.advance(days=1)
        warehouse.sync(sandbox)

        assert_exact(warehouse, truth_of_two_days(sandbox, first_now))
    finally:
        warehouse.drop()


def test_without_an_account_the_snowflake_case_says_why(monkeypatch):
    monkeypatch.delenv(SNOWFLAKE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=SNOWFLAKE_ENV):
        snowflake_url()
