"""`aiclicks-pipeline reset`: the next run reloads just the reset (table, domain) pairs, and the
warehouse then equals the sandbox's ground truth. DuckDB, and PostgreSQL, BigQuery (the
emulator) and a Delta lakehouse (the S3 double) where their servers are given
(tests/support/warehouses.py)."""

import pytest

from aiclicks_pipeline.commands.base import EXIT_BUSY
from aiclicks_pipeline.reset import ResetError, apply_reset, plan_reset
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import DEFAULT_DATASET
from aiclicks_pipeline.workdir import pipeline_lock

from .support import assert_child_rows_belong, assert_equals_truth, cli, cli_here

D = DEFAULT_DATASET
# the second run: only what was reset is due (everything else was synced within two days)
RESYNC_AFTER_MINUTES = 3 * 24 * 60


def requested(sandbox):
    """(endpoint path, domain id) of every request the sandbox served."""
    return {(r["path"].rsplit("/", 1)[-1], r["query"].get("domain_id")) for r in sandbox.stats.log}


def test_reset_of_one_table_of_one_domain_reloads_only_that(sandbox, sync_warehouse):
    """On a lakehouse too (Delta: its SQL only reads; the rows go through the table format)."""
    sync_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    chosen = sandbox.account.domain_ids()[1]
    ((before,),) = sync_warehouse.query(f"select count(*) from {D}.citations where domain_id <> '{chosen}'")

    plan = plan_reset(sync_warehouse.pipeline, ["citations"], [chosen])
    assert plan.domains == {"citations": [chosen]}
    assert plan.rows["citations"] > 0 and plan.rows["citations__models"] > 0
    assert apply_reset(sync_warehouse.pipeline, plan)

    ((left,),) = sync_warehouse.query(f"select count(*) from {D}.citations where domain_id = '{chosen}'")
    assert left == 0
    ((others,),) = sync_warehouse.query(f"select count(*) from {D}.citations where domain_id <> '{chosen}'")
    assert others == before
    # two days on: a new snapshot date, so the old snapshot's rows must be gone, not merged
    sandbox.advance(days=2)
    sandbox.reset_stats()
    sync_warehouse.pipeline = sync_warehouse.new_pipeline()  # a new process: state from the warehouse

    result = sync_warehouse.sync(sandbox, resync_after_minutes=RESYNC_AFTER_MINUTES)

    assert requested(sandbox) == {("domains", None), ("citations", chosen)}
    assert result.windows_asked == {"citations": [30]}
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.forget(["citations"], [chosen])
    truth.record_sync(sandbox.clock.now(), domain_ids=[chosen], resources=["citations"])
    assert_equals_truth(sync_warehouse, truth)
    assert_child_rows_belong(sync_warehouse)


def test_reset_of_a_whole_table_reloads_it_for_every_domain(sandbox, sql_warehouse):
    sql_warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    domains = sandbox.account.domain_ids()

    plan = plan_reset(sql_warehouse.pipeline, ["visibility_daily"])
    assert plan.domains == {"visibility_daily": sorted(domains)}
    assert plan.rows == {"visibility_daily": 90 * len(domains)}
    apply_reset(sql_warehouse.pipeline, plan)
    state = sql_warehouse.pipeline.state["sources"]["aiclicks"]["resources"]
    assert not state["visibility_daily"].get("cursors") and state["prompts"]["cursors"]
    sandbox.advance(days=2)
    sandbox.reset_stats()

    result = sql_warehouse.sync(sandbox, resync_after_minutes=RESYNC_AFTER_MINUTES)

    assert requested(sandbox) == {("domains", None)} | {("visibility-time-series", d) for d in domains}
    assert result.windows_asked == {"visibility_daily": [90]}
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.forget(["visibility_daily"], domains)
    truth.record_sync(sandbox.clock.now(), days=90, resources=["visibility_daily"])
    assert_equals_truth(sql_warehouse, truth)
    # the reload's 90 days: the two oldest days of the first load went with the reset
    ((days,),) = sql_warehouse.query(f"select count(distinct date) from {D}.visibility_daily")
    assert days == 90


def test_keep_rows_resets_the_cursors_only(sandbox, warehouse):
    warehouse.sync(sandbox)
    chosen = sandbox.account.domain_ids()[0]
    before = warehouse.keyed("prompts")

    plan = plan_reset(
        warehouse.pipeline, ["prompts", "brand_rankings"], [chosen, "not-a-domain"], keep_rows=True
    )
    apply_reset(warehouse.pipeline, plan)

    assert plan.rows == {} and plan.not_loaded["prompts"] == ["not-a-domain"]
    assert "not loaded by this pipeline for not-a-domain" in plan.describe()
    assert warehouse.keyed("prompts") == before
    state = warehouse.pipeline.state["sources"]["aiclicks"]["resources"]
    assert chosen not in state["prompts"]["cursors"] and chosen not in state["brand_rankings"]["synced_at"]
    assert len(state["prompts"]["cursors"]) == len(sandbox.account.domain_ids()) - 1
    with pytest.raises(ResetError, match="Unknown resources"):
        plan_reset(warehouse.pipeline, ["visibilty_daily"])


def test_cli_reset_takes_the_run_lock_and_reports(sandbox, tmp_path):
    env = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key}
    where = ["--duckdb-file", str(tmp_path / "cli.duckdb"), "--pipelines-dir", str(tmp_path / "pipelines")]
    run = ["run", "--quiet", "--base-url", sandbox.base_url, "--resources", "domains,prompts", *where]
    loaded = cli_here(*run, env=env)
    assert loaded.returncode == 0, loaded.stderr
    chosen = sandbox.account.domain_ids()[0]
    reset = ["reset", "--resources", "prompts", "--domains", chosen, *where]

    with pipeline_lock("aiclicks", str(tmp_path / "pipelines")):  # another process's lock
        busy = cli(*reset, "--yes")
    assert busy.returncode == EXIT_BUSY and "Another sync of pipeline aiclicks is running" in busy.stderr

    # no terminal on stdin: no question asked
    done = cli_here(*reset)
    assert done.returncode == 0, done.stderr
    assert "prompts: 1 domain(s)" in done.stdout and "row(s) to delete" in done.stdout
    assert "Reset 1 (table, domain) pair(s)" in done.stdout
    sandbox.reset_stats()
    rerun = cli_here(*run, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert requested(sandbox) == {("domains", None), ("prompts", chosen)}


def test_cli_reset_of_a_pipeline_that_never_loaded_says_so(tmp_path):
    done = cli_here(
        "reset", "--resources", "prompts", "--yes", "--duckdb-file", str(tmp_path / "none.duckdb"),
        "--pipelines-dir", str(tmp_path / "pipelines"),
    )
    assert done.returncode == 1
    assert "has loaded nothing into this warehouse" in done.stderr and "Traceback" not in done.stderr
