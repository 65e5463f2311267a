"""`aiclicks-pipeline status`: freshness per table and domain, the last runs, an exit code a
monitor alerts on; read from the warehouse alone (no API, no run lock, nothing changed).
DuckDB files, and PostgreSQL while a sync runs."""

import hashlib
import json
import os
import re
import threading
from datetime import timedelta

import duckdb
import pytest

from aiclicks_pipeline.commands.base import EXIT_BUSY, EXIT_FAILED, EXIT_OK, EXIT_STALE
from aiclicks_pipeline.interrupts import StopRequest
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import DEFAULT_DATASET, ENDPOINTS
from aiclicks_pipeline.status import read_status, render_json, render_text
from aiclicks_pipeline.warehouse import open_warehouse
from aiclicks_pipeline.workdir import STARTING, pipeline_lock

from .support import (
    START,
    PostgresWarehouse,
    cli,
    cli_here,
    duckdb_held_by_another_process,
    once,
    postgres_url,
)

D = DEFAULT_DATASET


@pytest.fixture
def sandbox4():
    with run_sandbox(seed=5, domains=4, prompts=(10, 30), start=START, frozen=True, rate_limit=None) as running:
        yield running


def status_of(warehouse, **options):
    with open_warehouse(duckdb_file=str(warehouse.duckdb_path)) as reader:
        return read_status(reader, **options)


def test_fresh_then_stale_by_the_clock(sandbox4, warehouse):
    result = warehouse.sync(sandbox4)
    loaded_at = sandbox4.clock.now()

    fresh = status_of(warehouse, now=loaded_at + timedelta(hours=2))

    assert not fresh.is_stale and len(fresh.by_status("fresh")) == 4
    tables = {t.name: t for t in fresh.tables}
    for name in ENDPOINTS:
        ((rows,),) = warehouse.query(f"select count(*) from {D}.{name}")
        assert tables[name].rows == rows > 0
        assert tables[name].newest_generated_at == loaded_at
        assert tables[name].last_load_at is not None
    assert tables["citations__models"].rows == result.rows["citations__models"]
    for domain in fresh.domains:
        assert set(domain.cursors) == set(ENDPOINTS) and domain.age_hours == pytest.approx(2.0)
        assert domain.name and not domain.missing
    (run,) = fresh.runs
    assert run["run_id"] == result.run_id and run["outcome"] == "success"
    assert run["requests"] == result.stats.requests and run["rows_total"] == result.total_rows
    assert list(fresh.pipelines) == [warehouse.pipeline.pipeline_name]

    stale = status_of(warehouse, now=loaded_at + timedelta(hours=40), max_age_hours=36)

    assert stale.is_stale and len(stale.by_status("stale")) == 4
    assert "STALE: 4 domain(s) behind" in render_text(stale)
    assert json.loads(json.dumps(render_json(stale)))["domains_summary"]["stale"] == 4


def test_never_loaded_skipped_and_incomplete_domains(sandbox4, warehouse):
    gone, partial, *others = sandbox4.account.domain_ids()
    warehouse.sync(sandbox4, domain_ids=[partial], resources=["domains", "visibility_daily"])
    sandbox4.set_faults(hidden_404_domains={gone})
    sandbox4.advance(hours=2)
    result = warehouse.sync(sandbox4, domain_ids=[gone, *others])
    assert list(result.skipped_domains) == [gone]

    status = status_of(warehouse, now=sandbox4.clock.now())

    by_id = {d.domain_id: d for d in status.domains}
    assert by_id[gone].status == "never loaded"  # its domains row, nothing else
    assert by_id[gone].skipped_by_last_run and "404" in by_id[gone].skipped_by_last_run
    assert by_id[partial].status == "incomplete"
    assert set(by_id[partial].missing) == set(ENDPOINTS) - {"domains", "visibility_daily"}
    assert all(by_id[d].status == "fresh" for d in others)
    assert status.is_stale
    worst = status.worst()
    assert {worst[0].domain_id, worst[1].domain_id} == {gone, partial}
    text = render_text(status, worst=2)
    assert "The 2 worst domains" in text and others[0] not in text
    assert "skipped by the last run: the API answered 404" in text
    detail = render_text(status, domain_ids=[partial])
    assert "visibility_daily" in detail and others[0] not in detail

    # a domain only ever listed (its first sync skipped it) was never loaded
    sandbox4.set_faults(hidden_404_domains=set())
    with duckdb.connect(str(warehouse.duckdb_path)) as connection:
        connection.execute(
            f"insert into {D}.domains (id, name, _dlt_load_id, _dlt_id) values ('new-domain', 'New', '0', 'x')"
        )
    assert {d.domain_id: d.status for d in status_of(warehouse).domains}["new-domain"] == "never loaded"


def test_a_domain_the_api_no_longer_lists_is_shown_apart_not_stale(sandbox4, warehouse):
    gone, *others = sandbox4.account.domain_ids()
    warehouse.sync(sandbox4)
    sandbox4.set_faults(vanished_domains={gone})
    for _ in range(2):
        sandbox4.advance(days=1)
        warehouse.sync(sandbox4)

    status = status_of(warehouse, now=sandbox4.clock.now() + timedelta(hours=3))

    by_id = {d.domain_id: d for d in status.domains}
    assert by_id[gone].status == "unlisted" and by_id[gone].age_hours > 48
    assert all(by_id[d].status == "fresh" for d in others)
    assert not status.is_stale
    assert "no longer listed by the API" in render_text(status)


def file_digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_reads_without_the_api_or_the_run_lock_and_exits_2_when_stale(sandbox4, warehouse, tmp_path):
    warehouse.sync(sandbox4)
    before = file_digest(warehouse.duckdb_path)
    common = ["status", "--duckdb-file", str(warehouse.duckdb_path)]

    # the run lock held by "a sync": status neither waits for it nor needs the API
    with pipeline_lock(warehouse.name, str(warehouse.pipelines_dir)):
        stale = cli(*common, env={"SOURCES__AICLICKS__BASE_URL": "http://127.0.0.1:9"})
        as_json = cli(*common, "--json", "--max-age-hours", "1000000")

    # the sandbox's clock is months behind the real one
    assert stale.returncode == EXIT_STALE, stale.stderr
    assert "STALE: 4 domain(s) behind" in stale.stdout and "visibility_daily" in stale.stdout
    assert "Last 1 run(s):" in stale.stdout and "success" in stale.stdout
    assert as_json.returncode == EXIT_OK, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["stale"] is False and report["domains_summary"]["fresh"] == 4
    assert {t["table"] for t in report["tables"]} >= set(ENDPOINTS)
    assert report["runs"][0]["outcome"] == "success"
    assert file_digest(warehouse.duckdb_path) == before


def test_a_duckdb_file_being_written_is_waited_for_then_one_line_and_exit_75(sandbox4, warehouse):
    warehouse.sync(sandbox4)
    path = str(warehouse.duckdb_path)

    # held for a moment (a checkpoint's load): status waits for it, then reads
    with duckdb_held_by_another_process(warehouse.duckdb_path) as holder:
        threading.Timer(1.0, holder.stdin.close).start()  # the load ends a second later
        waited = cli_here("status", "-v", "--duckdb-file", path, "--max-age-hours", "1000000")
    assert waited.returncode == EXIT_OK, waited.stderr
    assert "OK: every domain's data is under" in waited.stdout
    assert re.search(r"Waited \d+\.\d s to read a DuckDB file another process held", waited.stderr)

    # held past --wait: one line naming the holder, exit 75
    with duckdb_held_by_another_process(warehouse.duckdb_path) as holder:
        done = cli_here("status", "--duckdb-file", path, "--wait", "0.5")

    assert done.returncode == EXIT_BUSY
    (line,) = done.stderr.strip().splitlines()
    assert f"The DuckDB file {warehouse.duckdb_path} is in use by another process (PID {holder.pid}" in line
    assert "try again when it ends (waited 0 s)" in line or "try again when it ends (waited 1 s)" in line


def test_no_duckdb_file_is_one_line_and_exit_1(tmp_path):
    done = cli_here("status", "--duckdb-file", str(tmp_path / "none.duckdb"))
    assert done.returncode == EXIT_FAILED
    (line,) = done.stderr.strip().splitlines()
    assert f"No DuckDB file {tmp_path / 'none.duckdb'}: load the data first" in line
    assert not (tmp_path / "none.duckdb").exists()


def test_postgres_status_while_a_sync_runs(sandbox4, tmp_path):
    """A server warehouse is read while a sync writes it (status in another process, as a
    monitor runs it): the run shows as running, with the checkpoints committed so far."""
    warehouse = PostgresWarehouse(tmp_path, postgres_url())
    stop = StopRequest()
    seen, during, first_time = set(), [], once()

    def status_in_the_third_checkpoint(path, query):
        if query.get("domain_id"):
            seen.add(query["domain_id"])
        if len(seen) >= 3 and first_time():
            during.append(cli(
                "status", "--destination", "postgres", "--dataset", warehouse.dataset, "--json",
                env={"DESTINATION__POSTGRES__CREDENTIALS": warehouse.url},
            ))
            stop.request(15)  # then the run stops where it is

    try:
        sandbox4.on_request(status_in_the_third_checkpoint)
        result = warehouse.sync(sandbox4, checkpoint_requests=8, stop=stop)

        (done,) = during
        assert done.returncode == EXIT_STALE, done.stderr  # months-old sandbox data
        report = json.loads(done.stdout)
        (run,) = report["runs"]
        assert run["outcome"] == "running" and run["run_id"] == result.run_id
        # what was committed when status read it: the checkpoint it ran in may still commit
        # after it (its other requests were answered meanwhile), then the run stops
        assert 1 <= run["checkpoints_committed"] <= result.checkpoints_committed
        assert 1 <= run["domains_committed"] <= result.domains_committed
        loaded = [d for d in report["domains"] if d["status"] != "never loaded"]
        assert len(loaded) == run["domains_committed"]
        assert list(report["pipelines"]) == [warehouse.pipeline.pipeline_name]
    finally:
        warehouse.drop()


def test_a_running_sync_shows_from_its_lock_and_before_its_first_commit_exits_75(sandbox4, warehouse, tmp_path):
    """The run lock on this machine names the running sync (pid, checkpoint k of n, ETA); a
    sync that has committed nothing yet leaves status nothing to tell: one line, exit 75."""
    where = ["--duckdb-file", str(warehouse.duckdb_path), "--pipeline-name", warehouse.name,
             "--pipelines-dir", str(warehouse.pipelines_dir), "--max-age-hours", "1000000"]
    with pipeline_lock(warehouse.name, str(warehouse.pipelines_dir)) as lock:
        lock.describe(phase=STARTING)
        first = cli_here("status", *where)
    assert first.returncode == EXIT_BUSY and first.stdout == ""
    (line,) = first.stderr.strip().splitlines()
    assert line.startswith(
        f"aiclicks-pipeline: Now a sync of pipeline {warehouse.name} is running (pid {os.getpid()} "
        "on this machine, started "
    ), line
    assert line.endswith(
        "; before its first checkpoint), and it has committed nothing yet: ask again after its "
        "first checkpoint."
    ), line

    warehouse.sync(sandbox4)
    with pipeline_lock(warehouse.name, str(warehouse.pipelines_dir)) as lock:
        lock.describe(checkpoint=2, checkpoints=3, eta="5 s", run_id="r2")
        shown = cli_here("status", *where)
        as_json = cli_here("status", "--json", *where)
    assert shown.returncode == EXIT_OK, shown.stderr
    assert re.search(
        rf"\nNow a sync of pipeline {warehouse.name} is running \(pid {os.getpid()} on this machine, "
        r"started [\d-]+ [\d:]+ UTC; checkpoint 2 of 3, ETA 5 s as of \d\d:\d\d:\d\d UTC\)\.\n",
        shown.stdout,
    ), shown.stdout
    (running,) = json.loads(as_json.stdout)["running"]
    assert running["seen_in"] == "run lock" and running["run_id"] == "r2"
    assert running["progress"] == "checkpoint 2 of 3, ETA 5 s" and running["pid"] == os.getpid()

    # without it: no sync shown (the last run's row is `success`)
    after = cli_here("status", "--json", *where)
    assert json.loads(after.stdout)["running"] == []
