"""The run history in the warehouse (`_aiclicks_runs`): one row per run on every destination,
carried by each checkpoint's load while the run goes, final at its end, and marked interrupted
by the next run when a run was stopped before its end. On every kind of warehouse
(tests/support/warehouses.py: DuckDB always; PostgreSQL, BigQuery, Delta and Iceberg where their
servers are given)."""

import json

import pytest

from aiclicks_pipeline import __version__
from aiclicks_pipeline.checkpoints import SyncFailed
from aiclicks_pipeline.history import COLUMNS, LOAD_IDS_TABLE, RUNS_TABLE
from aiclicks_pipeline.interrupts import StopRequest
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import DEFAULT_DATASET

from .support import START

D = DEFAULT_DATASET


@pytest.fixture
def sandbox4():
    with run_sandbox(seed=5, domains=4, prompts=(10, 30), start=START, frozen=True, rate_limit=None) as running:
        yield running


def runs(warehouse):
    rows = warehouse.rows(RUNS_TABLE)
    for row in rows:
        for key in ("rows", "skipped_domains", "unknown_domains"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
    return {row["run_id"]: row for row in rows}


def load_ids_of(warehouse, run_id):
    """The run's loads, joined to dlt's own `_dlt_loads`: (load_id, status)."""
    return warehouse.query(
        f"select l.load_id, l.status from {D}.{RUNS_TABLE} r "
        f"join {D}.{LOAD_IDS_TABLE} i on i._dlt_parent_id = r._dlt_id "
        f"join {D}._dlt_loads l on l.load_id = i.value "
        f"where r.run_id = '{run_id}' order by l.load_id"
    )


def test_each_run_leaves_one_row_with_its_figures_and_loads(sandbox4, any_warehouse):
    # two checkpoints a run (two domains each), then the final row's load
    first = any_warehouse.sync(sandbox4, checkpoint_requests=24)
    sandbox4.advance(days=1)
    second = any_warehouse.sync(sandbox4, checkpoint_requests=24)

    recorded = runs(any_warehouse)
    assert set(recorded) == {first.run_id, second.run_id}
    for result in (first, second):
        row = recorded[result.run_id]
        summary = result.as_json()
        assert row["outcome"] == "success" == summary["status"]
        assert row["pipeline_name"] == any_warehouse.pipeline.pipeline_name
        assert row["requests"] == summary["requests"] > 0
        assert row["rate_limited"] == summary["rate_limited"] == 0
        assert row["rows"] == summary["rows"] and row["rows_total"] == summary["rows_total"] > 0
        assert row["domains_committed"] == summary["domains"]["committed"] == 4
        assert (row["domains_fresh"], row["domains_skipped"], row["domains_left"]) == (0, 0, 0)
        assert row["checkpoints_committed"] == row["checkpoints_total"] == summary["checkpoints"]["total"] > 1
        assert row["started_at"] <= row["finished_at"] <= row["updated_at"]
        assert row["error"] is None and row["package_version"] == __version__
        # every checkpoint's load, and the final one, all completed in dlt's own table
        loads = load_ids_of(any_warehouse, result.run_id)
        assert [load_id for load_id, _ in loads][:-1] == result.load_ids
        assert len(loads) == result.checkpoints_committed + 1 and {s for _, s in loads} == {0}
    # the table and its columns are described in the dlt schema (and so in the warehouse)
    table = any_warehouse.pipeline.default_schema.tables[RUNS_TABLE]
    assert table.get("description")
    assert {name for name, column in table["columns"].items() if column.get("description")} == set(COLUMNS)


def test_a_stopped_run_leaves_its_row_so_far_and_the_next_run_marks_it_interrupted(
    sandbox4, any_warehouse
):
    stop = StopRequest()
    served = []

    def stop_in_the_second_checkpoint(path, query):
        served.append(query.get("domain_id"))
        if len({d for d in served if d}) > 2:
            stop.request(15)

    sandbox4.on_request(stop_in_the_second_checkpoint)
    first = any_warehouse.sync(sandbox4, checkpoint_requests=12, stop=stop)
    sandbox4.app.callbacks.clear()
    assert first.status == "interrupted" and 0 < first.checkpoints_committed < first.checkpoints_total

    (row,) = runs(any_warehouse).values()
    # what the last committed checkpoint's load carried: how far the run got
    assert row["run_id"] == first.run_id and row["outcome"] == "running"
    assert row["finished_at"] is None
    assert row["checkpoints_committed"] == first.checkpoints_committed
    assert row["domains_committed"] == first.domains_committed
    assert row["domains_left"] == 4 - first.domains_committed
    assert 0 < row["requests"] <= first.stats.requests
    assert len(load_ids_of(any_warehouse, first.run_id)) == first.checkpoints_committed

    second = any_warehouse.sync(sandbox4, checkpoint_requests=12)

    recorded = runs(any_warehouse)
    assert recorded[first.run_id]["outcome"] == "interrupted"
    assert recorded[first.run_id]["finished_at"] == recorded[first.run_id]["updated_at"]
    assert recorded[second.run_id]["outcome"] == "success"
    assert recorded[second.run_id]["domains_fresh"] == first.domains_committed


def test_a_failed_run_is_recorded_with_its_error(sandbox4, warehouse):
    seen = set()

    def fail_in_the_second_checkpoint(path, query):
        if query.get("domain_id"):
            seen.add(query["domain_id"])
        if len(seen) == 3 and not getattr(fail_in_the_second_checkpoint, "done", False):
            fail_in_the_second_checkpoint.done = True
            sandbox4.fail_next("503", 50)

    sandbox4.on_request(fail_in_the_second_checkpoint)
    with pytest.raises(SyncFailed) as raised:
        warehouse.sync(sandbox4, checkpoint_requests=12, max_attempts=1)

    result = raised.value.result
    (row,) = runs(warehouse).values()
    assert row["outcome"] == "failed" == result.status
    assert "503" in row["error"] and row["error"] == result.error
    assert row["checkpoints_committed"] == result.checkpoints_committed >= 1
    assert row["finished_at"] is not None
    # the final row's load carried nothing of the failed checkpoint's data
    state = warehouse.new_pipeline().state["sources"]["aiclicks"]["resources"]["visibility_daily"]
    loaded = {d for (d,) in warehouse.query(f"select distinct domain_id from {D}.visibility_daily")}
    assert loaded == set(state["cursors"]) and len(loaded) == result.domains_committed < 4


def test_a_run_with_nothing_due_still_leaves_its_row(sandbox4, warehouse):
    warehouse.sync(sandbox4)
    again = warehouse.sync(sandbox4)

    row = runs(warehouse)[again.run_id]
    assert again.checkpoints_total == 0
    assert row["outcome"] == "success" and row["rows_total"] == 0 and row["requests"] == 1
    assert row["domains_fresh"] == 4
