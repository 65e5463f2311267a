"""What a real API, a real scheduler and a real laptop do to a sync, beyond the happy path: an
account without domains, a domain id that is not there, a warehouse file deleted, a key revoked
and a domain deleted while a sync runs, a domain listed twice, a server clock that goes back, a
partial sync then a whole one, a full refresh that fails half way. Against the sandbox;
every run ends equal to the sandbox's ground truth or says why not. The CLI's main() where
the test is about what a user sees (exit codes, messages), dlt's tools in their own process; a
sync in the test's process where it is about what the sync does.
"""

import json
import shutil
from typing import Any

import pytest

from aiclicks_pipeline.checkpoints import SyncFailed, SyncResult
from aiclicks_pipeline.sandbox import NO_DOMAINS_API_KEY, run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import ENDPOINTS
from aiclicks_pipeline.source import shard_filter

from .support import (
    ATTACH, START, Folder, WarehouseFile, assert_keys_unique, assert_table_matches, cli_here, python,
    sync,
)

EXIT_PARTIAL = 3


def three_domains(**options):
    return run_sandbox(seed=11, domains=3, prompts=(20, 40), start=START, frozen=True,
                       rate_limit=None, **options)


def project(tmp_path) -> Folder:
    return Folder(tmp_path / "project", tmp_path / "dlt")


def run_cli(folder: Folder, sandbox, *args: str, key: str = None):
    """`aiclicks-pipeline run --json` into the folder's warehouse through the working folder a
    run there would use; returns the result and the JSON summary."""
    done = cli_here(
        "run", "--quiet", "--json", "--base-url", sandbox.base_url,
        "--duckdb-file", str(folder.warehouse), "--pipelines-dir", str(folder.working_folder.parent),
        *args, env={"SOURCES__AICLICKS__API_KEY": key or sandbox.api_key},
    )
    return done, (json.loads(done.stdout) if done.stdout.strip() else {})


def assert_equals_truth(folder: Folder, truth: WarehouseTruth) -> None:
    warehouse = WarehouseFile(folder.warehouse)
    for table in ENDPOINTS:
        assert_table_matches(warehouse, truth, table)
    assert_keys_unique(warehouse)


def assert_equals_a_first_sync(folder: Folder, sandbox: Any) -> None:
    """The warehouse holds what a first sync (90 days) of the sandbox's account holds now."""
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    assert_equals_truth(folder, truth)


def days_of(result: SyncResult) -> set:
    return {day for days in result.windows_asked.values() for day in days if day != 30}


def warnings_of(stderr: str):
    return [line for line in stderr.splitlines() if line.startswith("WARNING")]


def test_an_account_without_domains_and_a_key_that_sees_none_warn_and_exit_3(tmp_path):
    with run_sandbox(seed=11, domains=0, start=START, frozen=True, rate_limit=None) as empty_account, \
            three_domains() as sandbox:
        for name, server, key in (("empty_account", empty_account, empty_account.api_key),
                                  ("empty_allowlist", sandbox, NO_DOMAINS_API_KEY)):
            folder = Folder(tmp_path / name, tmp_path / name / "dlt")

            done, _ = run_cli(folder, server, key=key)

            assert done.returncode == EXIT_PARTIAL, (name, done.stderr)
            (warning,) = warnings_of(done.stderr)
            assert "lists no domains for this key" in warning and "allowed domains are empty" in warning
            assert "Traceback" not in done.stderr


def test_a_shard_without_domains_warns_and_exits_3(tmp_path):
    with three_domains() as sandbox:
        ids = sandbox.account.domain_ids()
        empty = next(f"{k}/8" for k in range(1, 9) if not any(map(shard_filter(f"{k}/8"), ids)))
        folder = project(tmp_path)

        done, summary = run_cli(folder, sandbox, "--shard", empty)

        assert done.returncode == EXIT_PARTIAL, done.stderr
        (warning,) = warnings_of(done.stderr)
        assert f"Shard {empty} holds none of the 3 domains this key lists" in warning
        assert summary["domains"]["total"] == 0 and "Traceback" not in done.stderr


def test_a_domain_id_the_account_does_not_have_is_named_and_the_others_load(tmp_path):
    folder = project(tmp_path)
    with three_domains() as sandbox:
        ids = sandbox.account.domain_ids()
        missing = "00000000-0000-4000-8000-000000000000"

        done, summary = run_cli(folder, sandbox, "--domains", f"{ids[0]},{missing},{ids[2]}")

        assert done.returncode == EXIT_PARTIAL, done.stderr
        (warning,) = warnings_of(done.stderr)
        assert missing in warning and "not among the 3 domains this key can see" in warning
        assert summary["unknown_domains"] == [missing]
        assert folder.domain_ids() == {ids[0], ids[2]}
        assert summary["domains"]["committed"] == 2


def test_a_deleted_warehouse_file_is_loaded_again_whole(tmp_path):
    """The state in dlt's working folder says every domain is synced; the file is gone (a user
    deleted it to start over): the next run backfills, it does not skip everything as fresh,
    and dlt's tools still find the file."""
    folder = project(tmp_path)
    with three_domains() as sandbox:
        assert sync(folder, sandbox).status == "success"
        folder.warehouse.unlink()

        result = sync(folder, sandbox)

        assert result.status == "success" and result.domains_fresh == 0
        assert {d for days in result.windows_asked.values() for d in days} == {30, 90}
        assert_equals_a_first_sync(folder, sandbox)
        attached = python(folder, ATTACH)
        assert attached.returncode == 0, attached.stderr


def test_a_key_revoked_mid_run_keeps_what_was_committed_then_a_bare_machine_continues(tmp_path):
    """401 once the first checkpoint committed: exit 1, the message says what was committed.
    Then the working folder is lost too (a new laptop): the next run restores the state from
    the warehouse and syncs only what is left."""
    folder = project(tmp_path)
    with three_domains() as sandbox:
        ids = sorted(sandbox.account.domain_ids())  # the run's order

        def revoke_at_the_second_domain(path, query):
            if query.get("domain_id") == ids[1]:
                sandbox.set_faults(key_revoked=True)

        sandbox.on_request(revoke_at_the_second_domain)

        done, summary = run_cli(folder, sandbox, "--checkpoint-requests", "1")

        assert done.returncode == 1
        assert "rejected the API key" in done.stderr and "Traceback" not in done.stderr
        assert "committed 1 of 3 domains" in done.stderr
        assert summary["status"] == "failed" and summary["domains"]["committed"] == 1
        assert folder.domain_ids() == {ids[0]}

        sandbox.app.callbacks.clear()
        sandbox.set_faults(key_revoked=False)
        shutil.rmtree(folder.working_folder)
        sandbox.reset_stats()

        done, summary = run_cli(folder, sandbox, "--checkpoint-requests", "1")

        assert done.returncode == 0, done.stderr
        assert summary["domains"] == {"total": 3, "committed": 2, "fresh": 1, "skipped": 0, "left": 0}
        assert not any(entry["query"].get("domain_id") == ids[0] for entry in sandbox.stats.log)
        assert_equals_a_first_sync(folder, sandbox)


def test_a_domain_deleted_mid_run_is_skipped_and_loads_whole_when_it_is_back(tmp_path):
    """Deleted between two pages of its prompts (pages of 100): skipped, the others load; what
    it had answered does not count as synced, so once it is back it loads whole."""
    folder = project(tmp_path)
    with run_sandbox(seed=11, domains=3, prompts=(120, 180), start=START, frozen=True,
                     rate_limit=None, faults={"page_size_cap": 100}) as sandbox:
        ids = sandbox.account.domain_ids()

        def delete_before_its_second_page(path, query):
            if path.endswith("/prompts") and query.get("domain_id") == ids[1] and query.get("page") == "2":
                sandbox.set_faults(hidden_404_domains={ids[1]})

        sandbox.on_request(delete_before_its_second_page)

        result = sync(folder, sandbox)

        assert result.status == "partial" and list(result.skipped_domains) == [ids[1]]
        assert {ids[0], ids[2]} <= folder.domain_ids()
        sandbox.app.callbacks.clear()
        sandbox.set_faults(hidden_404_domains=set())

        result = sync(folder, sandbox)

        assert result.status == "success"
        assert result.domains_fresh == 2 and result.domains_committed == 1
        assert_equals_a_first_sync(folder, sandbox)


def test_a_domain_listed_twice_is_synced_once(tmp_path):
    folder = project(tmp_path)
    with three_domains() as sandbox:
        ids = sandbox.account.domain_ids()
        sandbox.set_faults(relisted_domains={ids[0]})

        result = sync(folder, sandbox)

        assert result.status == "success" and result.domains_total == 3
        series = [e for e in sandbox.stats.log
                  if e["path"].endswith("/visibility-time-series") and e["query"].get("domain_id") == ids[0]]
        assert len(series) == 1
        assert_equals_a_first_sync(folder, sandbox)


def test_a_server_clock_that_ran_ahead_then_was_set_right(tmp_path):
    """The server's clock ran three days ahead during a sync (its cursors are from the future),
    then was set right. The next day's sync must still load the new days: a cursor newer than
    the server's now is not trusted, and a sync time in the future does not make a domain
    fresh."""
    folder = project(tmp_path)
    with three_domains() as sandbox:
        sandbox.advance(days=3)
        assert sync(folder, sandbox).status == "success"
        sandbox.advance(days=-2)  # set right, and a day has passed

        result = sync(folder, sandbox)

        assert result.status == "success" and result.domains_fresh == 0
        assert result.total_rows > 0 and result.stats.skipped_responses == 0
        # the days the server now serves are in the warehouse as it serves them
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(sandbox.clock.now(), days=90)
        loaded = WarehouseFile(folder.warehouse).keyed("visibility_daily")
        for key, row in truth.rows("visibility_daily").items():
            assert loaded[key]["value"] == row["value"], key
        # and the cursors are the server's again: the next day asks a week
        sandbox.advance(days=1)
        assert days_of(sync(folder, sandbox)) == {7}


def test_a_partial_sync_then_a_whole_one_loads_the_rest(tmp_path):
    folder = project(tmp_path)
    with three_domains() as sandbox:
        assert sync(folder, sandbox, resources=["visibility_daily"]).status == "success"

        result = sync(folder, sandbox)

        assert result.status == "success"
        assert "visibility_daily" not in result.windows_asked  # synced within the hour
        assert days_of(result) == {90}
        assert_equals_a_first_sync(folder, sandbox)


def test_a_full_refresh_that_fails_half_way_then_a_normal_run(tmp_path):
    folder = project(tmp_path)
    with three_domains() as sandbox:
        ids = sorted(sandbox.account.domain_ids())  # the run's order
        assert sync(folder, sandbox).status == "success"
        sandbox.advance(days=1)

        def fail_at_the_second_domain(path, query):
            if query.get("domain_id") == ids[1]:
                sandbox.set_faults(key_revoked=True)

        sandbox.on_request(fail_at_the_second_domain)
        with pytest.raises(SyncFailed) as failed:
            sync(folder, sandbox, full_refresh=True, checkpoint_requests=1)
        assert failed.value.result.domains_committed == 1
        sandbox.app.callbacks.clear()
        sandbox.set_faults(key_revoked=False)

        result = sync(folder, sandbox)

        assert result.status == "success"
        # the refresh dropped the tables: the domains it did not reach are loaded whole again
        assert result.domains_committed == 2 and days_of(result) == {90}
        assert_equals_a_first_sync(folder, sandbox)
