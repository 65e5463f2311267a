"""The API's edges as a scheduled sync meets them (issue 20), against the sandbox: a gap longer
than the 90 days the API serves, a domain the key may no longer read, a key revoked mid-run.
The throttle against inconsistent clocks is in tests/test_clock_skew.py; several keys in one
sync in tests/test_key_pool.py."""

import json

import pytest

from aiclicks_pipeline.checkpoints import SyncFailed
from aiclicks_pipeline.history import RUNS_TABLE
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import DEFAULT_DATASET, ENDPOINTS, MAX_DAYS

from .support import START, assert_table_matches, cli_here


def three_domains(**options):
    options.setdefault("rate_limit", None)
    return run_sandbox(seed=11, domains=3, prompts=(20, 40), start=START, frozen=True, **options)


def run_args(sandbox, folder, *args):
    return [
        "run", "--quiet", "--json", "--base-url", sandbox.base_url,
        "--duckdb-file", str(folder / "edges.duckdb"), "--pipelines-dir", str(folder / "pipelines"),
        *args,
    ]


def run_cli(sandbox, folder, *args, key=None):
    done = cli_here(*run_args(sandbox, folder, *args),
                    env={"SOURCES__AICLICKS__API_KEY": key or sandbox.api_key})
    return done, (json.loads(done.stdout) if done.stdout.strip() else {})


# --- a gap longer than the API's horizon ------------------------------------------------------


def test_a_sync_after_a_gap_longer_than_the_horizon_loads_the_90_days_and_names_the_lost_dates(
    warehouse,
):
    """After 120 days without a sync the next one asked days=180, which the API refuses (422)
    on every incremental endpoint: exit 1, nothing loaded, the same every later run. Now it asks
    the 90 days the API still has, and says which dates before them are lost."""
    with three_domains() as sandbox:
        assert warehouse.sync(sandbox).status == "success"
        sandbox.advance(days=120)

        result = warehouse.sync(sandbox)

        assert result.status == "success", result.error
        assert sandbox.stats.by_status.get(422, 0) == 0
        asked = [int(e["query"]["days"]) for e in sandbox.stats.log if "days" in e["query"]]
        assert asked and max(asked) == MAX_DAYS
        # last synced 2026-06-17 (its last 2 days still revised then); the horizon now starts
        # 2026-07-18: 2026-06-16 .. 2026-07-17 cannot be had any more
        lost = {domain_id: ["2026-06-16", "2026-07-17"] for domain_id in sandbox.account.domain_ids()}
        assert result.unrecoverable_dates == lost
        line = [text for text in result.summary().splitlines() if "NOT RECOVERABLE" in text]
        assert len(line) == 1
        assert "2026-06-16 to 2026-07-17 of 3 domain(s)" in line[0] and "2026-07-18" in line[0]
        (row,) = warehouse.query(
            f"select unrecoverable_dates from {DEFAULT_DATASET}.{RUNS_TABLE} "
            f"where run_id = '{result.run_id}'"
        )
        assert json.loads(row[0]) == lost
        # what the API still serves is loaded exactly
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(START, days=90)
        truth.record_sync(sandbox.clock.now(), days=90)
        for table in ENDPOINTS:
            assert_table_matches(warehouse, truth, table)

        # the next day's sync is an ordinary one again: a week, nothing lost
        sandbox.advance(days=1)
        again = warehouse.sync(sandbox)
        assert again.unrecoverable_dates == {} and again.windows_asked["visibility_daily"] == [7]


def test_the_cli_exits_0_after_a_long_gap_and_says_it_in_one_line(tmp_path):
    with three_domains() as sandbox:
        assert run_cli(sandbox, tmp_path)[0].returncode == 0
        sandbox.advance(days=100)

        done, summary = run_cli(sandbox, tmp_path)

        assert done.returncode == 0, done.stderr
        assert [line for line in done.stderr.splitlines() if "NOT RECOVERABLE" in line] == [
            "  NOT RECOVERABLE: 2026-06-16 to 2026-06-27 of 3 domain(s) lies before the 90 days "
            "the API serves (synced too long ago); loaded from 2026-06-28 on"
        ]
        assert len(summary["unrecoverable_dates"]) == 3


@pytest.mark.parametrize("command, option, value", [
    ("run", "--initial-days", "120"), ("run", "--snapshot-days", "180"), ("run", "--initial-days", "0"),
    ("plan", "--initial-days", "365"),
])
def test_a_window_option_the_api_cannot_serve_is_refused_before_any_request(
    tmp_path, command, option, value
):
    with three_domains() as sandbox:
        args = run_args(sandbox, tmp_path, option, value)[3:]  # without run --quiet --json
        done = cli_here(command, *args, env={"SOURCES__AICLICKS__API_KEY": sandbox.api_key})

        assert done.returncode == 1
        (line,) = done.stderr.strip().splitlines()
        name = option.lstrip("-").replace("-", "_")
        assert line.startswith(f"aiclicks-pipeline: {name} must be between 1 and 90, got {value}")
        assert sandbox.stats.requests == 0


def test_90_days_is_the_most_a_first_sync_asks_and_the_api_serves_it(warehouse):
    with three_domains() as sandbox:
        result = warehouse.sync(sandbox, initial_days=90)
        assert result.status == "success"
        assert {d for days in result.windows_asked.values() for d in days} == {30, 90}


# --- a domain the key may no longer read (the sync: tests/test_resilience.py) ---------------------

FORBIDDEN = "Access to this domain is not allowed for this API key."


def test_the_cli_exits_3_naming_the_forbidden_domain(tmp_path):
    with three_domains() as sandbox:
        forbidden = sandbox.account.domain_ids()[1]
        sandbox.set_faults(forbidden_domains={forbidden})

        done, summary = run_cli(sandbox, tmp_path)

        assert done.returncode == 3, done.stderr
        assert summary["domains"]["committed"] == 2 and list(summary["skipped_domains"]) == [forbidden]
        assert f"{forbidden}: the API answered 403: {FORBIDDEN}" in done.stderr
        assert "Developer API access" not in done.stderr + done.stdout


def test_a_team_whose_access_is_turned_off_mid_run_stops_with_the_team_message(warehouse):
    with three_domains(rate_limit=100_000) as sandbox:
        ids = sorted(sandbox.account.domain_ids())  # the run's order

        def turn_off_at_the_second_domain(path, query):
            if query.get("domain_id") == ids[1]:
                sandbox.set_faults(team_access_off=True)

        sandbox.on_request(turn_off_at_the_second_domain)
        with pytest.raises(SyncFailed) as failed:
            warehouse.sync(sandbox, checkpoint_requests=1)

        assert "Developer API access is not enabled for this key's team" in str(failed.value)
        assert "X-Request-Id: " in str(failed.value)
        assert failed.value.result.domains_committed == 1 and not failed.value.result.skipped_domains


def test_a_key_refused_every_domain_it_asks_is_refused_as_a_whole(warehouse):
    """A 403 whose words do not name the team, for every domain: the key, not the domains, is
    refused (docs/api-notes.md, Reading: a 403 for one domain). The run stops."""
    with three_domains() as sandbox:
        sandbox.set_faults(forbidden_domains=set(sandbox.account.domain_ids()))
        with pytest.raises(SyncFailed) as failed:
            warehouse.sync(sandbox)

        message = str(failed.value)
        assert "one domain after another" in message and FORBIDDEN in message
        assert failed.value.result.domains_committed == 0


# --- a key revoked mid-run ---------------------------------------------------------------------


def test_a_key_revoked_mid_run_sends_nothing_after_the_first_401_and_keeps_the_checkpoints(
    tmp_path,
):
    """The first 401 stops every request not yet sent (4-5 more went out before), exit 1 with
    the key problem in one line; the checkpoints committed before stay."""
    with three_domains(rate_limit=100_000, faults={"revoke_after_requests": 14}) as sandbox:
        done, summary = run_cli(sandbox, tmp_path, "--checkpoint-requests", "1")

        assert done.returncode == 1
        assert sandbox.stats.by_status[401] >= 1
        assert sum(sandbox.stats.after_first_401.values()) == 0, sandbox.stats.log[-8:]
        assert "rejected the API key (401: Invalid or revoked API key)" in done.stderr
        assert sandbox.api_key not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert summary["status"] == "failed" and summary["domains"]["committed"] == 1
        assert summary["checkpoints"]["committed"] == 1


@pytest.mark.parametrize("revoke_after", [3, 9, 14, 20])
def test_no_request_follows_the_first_401_wherever_it_comes(warehouse, revoke_after):
    with three_domains(rate_limit=100_000, faults={"revoke_after_requests": revoke_after}) as sandbox:
        with pytest.raises(SyncFailed) as failed:
            warehouse.sync(sandbox, checkpoint_requests=1)

        assert "rejected the API key" in str(failed.value)
        assert sum(sandbox.stats.after_first_401.values()) == 0
