"""Bad input, faults and rate limits: a clear error, or a warehouse equal to a clean load."""

import time

import pytest
import requests

from aiclicks_pipeline.errors import (
    AccessDeniedError,
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    MalformedResponseError,
    error_for_response,
    find_api_error,
)
from aiclicks_pipeline.sandbox import NO_ACCESS_API_KEY, run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.session import AIclicksSession, ApiKeyAuth
from aiclicks_pipeline.settings import DEFAULT_DATASET, ENDPOINTS
from aiclicks_pipeline.sync import SyncContext

from .support import START, assert_equals_clean_load, assert_table_matches

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def sync_error(warehouse, sandbox, **options):
    with pytest.raises(Exception) as raised:
        warehouse.sync(sandbox, **options)
    error = find_api_error(raised.value)
    assert error is not None, f"not our error: {raised.value!r}"
    return error


def test_wrong_key_stops_before_anything_is_written(sandbox, warehouse):
    error = sync_error(warehouse, sandbox, api_key="ak_live_not_a_real_key")

    assert isinstance(error, AuthenticationError)
    message = str(error)
    assert "rejected the API key" in message and "Settings -> Developers" in message
    assert "GET /api/v1/domains" in message
    assert sandbox.stats.log[-1]["request_id"] in message
    assert "ak_live_not_a_real_key" not in message
    assert not warehouse.duckdb_path.exists() or not warehouse.tables()


def test_team_without_developer_access_is_told_so(sandbox, warehouse):
    error = sync_error(warehouse, sandbox, api_key=NO_ACCESS_API_KEY)

    assert isinstance(error, AccessDeniedError)
    assert "Developer API access is not enabled" in str(error)
    assert "X-Request-Id: " in str(error)


@pytest.mark.parametrize("fault, answer", [
    ("hidden_404_domains", "404: Domain not found"),
    # its allowlist changed while /domains still lists it: the run exited 1 saying developer
    # access was off for the team, loading no domain (docs/api-notes.md, Reading: a 403 for
    # one domain)
    ("forbidden_domains", "403: Access to this domain is not allowed for this API key."),
])
def test_a_domain_that_404s_or_is_forbidden_is_skipped_and_the_others_load(
    sandbox, warehouse, fault, answer
):
    gone, *others = sandbox.account.domain_ids()
    sandbox.set_faults(**{fault: {gone}})

    result = warehouse.sync(sandbox)

    assert result.status == "partial" and list(result.skipped_domains) == [gone]
    # in the API's own words, with the request id of one of its refused requests
    reason = result.skipped_domains[gone]
    assert reason.startswith(f"the API answered {answer} [X-Request-Id: ")
    refused = {e["request_id"] for e in sandbox.stats.log if e["query"].get("domain_id") == gone}
    assert any(request_id in reason for request_id in refused)
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90, domain_ids=others)
    for table in ENDPOINTS:
        if table != "domains":  # /domains still lists it
            assert_table_matches(warehouse, truth, table)
    # its cursor did not move: once it answers again, it gets its full backfill
    sandbox.set_faults(**{fault: set()})
    sandbox.advance(days=1)
    again = warehouse.sync(sandbox)
    assert again.status == "success" and again.windows_asked["visibility_daily"] == [7, 90]


def test_server_errors_are_retried(sandbox, warehouse):
    sandbox.fail_next("503", 2)
    sandbox.fail_next("500", 1)
    sandbox.fail_next("502", 1)

    result = warehouse.sync(sandbox)

    assert {s: result.stats.responses_by_status.get(s) for s in (500, 502, 503)} == {
        500: 1, 502: 1, 503: 2
    }
    assert_equals_clean_load(warehouse, sandbox)


def test_malformed_json_and_dropped_connections_are_retried(sandbox, warehouse):
    sandbox.fail_next("malformed", 2)
    sandbox.fail_next("drop", 2)

    result = warehouse.sync(sandbox)

    assert result.stats.connection_errors == 2
    assert sandbox.stats.faults["malformed"] == 2 and sandbox.stats.faults["drop"] == 2
    assert_equals_clean_load(warehouse, sandbox)


def test_persistent_malformed_body_fails_naming_endpoint_domain_and_request(sandbox, warehouse):
    domain_id = sandbox.account.domain_ids()[0]
    sandbox.fail_next("malformed", 1)  # /domains recovers on the 2nd attempt ...
    error = None

    def break_prompts(path, query):
        if path.endswith("/prompts"):
            sandbox.fail_next("malformed", 1)

    sandbox.on_request(break_prompts)
    error = sync_error(warehouse, sandbox, max_attempts=2, domain_ids=[domain_id])

    assert isinstance(error, MalformedResponseError)
    message = str(error)
    assert "GET /api/v1/prompts" in message and domain_id in message
    assert "X-Request-Id: " in message and "not valid JSON" in message


def test_persistent_dropped_connection_fails_naming_the_request(sandbox, warehouse):
    sandbox.set_faults(drop_rate=1.0)
    error = sync_error(warehouse, sandbox, max_attempts=2)

    assert isinstance(error, ConnectionFailedError)
    assert "GET /api/v1/domains" in str(error) and "failed 2 times" in str(error)


def test_rejected_parameters_report_the_request_and_the_detail(sandbox):
    domain_id = sandbox.account.domain_ids()[0]
    response = requests.get(
        f"{sandbox.base_url}/api/v1/prompts",
        params={"domain_id": domain_id, "size": 1000},
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
    )
    error = error_for_response(response)

    assert isinstance(error, BadRequestError)
    assert "422" in str(error) and "size" in str(error) and domain_id in str(error)
    assert response.headers["X-Request-Id"] in str(error)


def test_429_waits_exactly_retry_after_then_retries(sandbox):
    sandbox.set_faults(burst_retry_after=3)
    sandbox.fail_next("429", 2)
    slept = []
    session = AIclicksSession(SyncContext(), sleep=slept.append)
    session.auth = ApiKeyAuth(token=sandbox.api_key)
    from aiclicks_pipeline.errors import raise_for_api_error

    response = session.get(f"{sandbox.base_url}/api/v1/domains", hooks={"response": [raise_for_api_error]})

    assert response.status_code == 200
    assert slept == [3.0, 3.0]
    assert session.context.stats.rate_limited == 2


def test_backoff_is_exponential_with_jitter():
    session = AIclicksSession(SyncContext(), backoff_factor=1.0, max_backoff=30.0)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0)]:
        delays = {session.backoff(attempt) for _ in range(50)}
        assert all(base / 2 <= d <= base for d in delays), (attempt, delays)
        assert len(delays) > 1  # jitter


def test_every_request_carries_our_own_request_id(sandbox, warehouse):
    warehouse.sync(sandbox)
    ids = [entry["request_id"] for entry in sandbox.stats.log]
    assert len(ids) == len(set(ids)) == sandbox.stats.requests
    assert all(len(i) == 36 for i in ids)


def test_throttle_stays_inside_a_time_scaled_limit(warehouse):
    # 30 requests per 2 s: a 5-domain sync (about 55 requests) needs the throttle to wait
    with run_sandbox(
        seed=3, domains=5, prompts=(20, 60), start=START, frozen=True, rate_limit=30, rate_window=2.0
    ) as sandbox:
        started = time.monotonic()
        result = warehouse.sync(sandbox)
        elapsed = time.monotonic() - started

        assert result.stats.requests > 30
        assert result.stats.rate_limited == 0
        assert sandbox.stats.rate_limited.get("real", 0) == 0
        assert elapsed >= 1.0  # it did wait for a window to turn
        assert_equals_clean_load(warehouse, sandbox)


def test_soak_with_faults_ends_equal_to_a_fault_free_load(warehouse):
    with run_sandbox(
        seed=23,
        domains=4,
        prompts=(40, 200),
        start=START,
        frozen=True,
        rate_limit=None,
        fault_seed=5,
        faults={
            "error_rate": 0.10,
            "burst_429_every": 15,
            "burst_429_len": 2,
            "drop_rate": 0.05,
            "malformed_rate": 0.03,
            "burst_retry_after": 0,
        },
    ) as sandbox:
        result = warehouse.sync(sandbox, max_attempts=10)

        faults = dict(sandbox.stats.faults)
        assert sum(faults.values()) >= 10, faults
        assert sandbox.stats.rate_limited.get("injected", 0) > 0
        assert_equals_clean_load(warehouse, sandbox)
        print(f"soak: {result.stats.requests} requests, faults {faults}, "
              f"429s {dict(sandbox.stats.rate_limited)}")


def prompt_columns(warehouse):
    rows = warehouse.query(
        "select column_name from information_schema.columns "
        f"where table_schema = '{DEFAULT_DATASET}' and table_name = 'prompts'"
    )
    return {name for (name,) in rows}


def test_new_api_fields_become_columns(sandbox, warehouse):
    sandbox.set_faults(extra_fields=True)
    warehouse.sync(sandbox)
    assert {"x_sandbox_note", "x_sandbox_meta__revision"} <= prompt_columns(warehouse)
    assert_equals_clean_load(warehouse, sandbox)


def test_a_field_that_changes_type_lands_in_a_variant_column(sandbox, warehouse):
    warehouse.sync(sandbox)
    sandbox.set_faults(changed_types=True)
    sandbox.advance(days=1)

    warehouse.sync(sandbox)

    assert "estimated_search_volume__v_text" in prompt_columns(warehouse)
    (labels,) = warehouse.query(
        f"select count(*) from {DEFAULT_DATASET}.prompts where estimated_search_volume__v_text like '%k'"
    )[0]
    assert labels > 0


def test_schema_contract_freeze_refuses_a_changed_schema(sandbox, warehouse):
    warehouse.sync(sandbox, schema_contract="freeze")
    sandbox.set_faults(extra_fields=True)
    sandbox.advance(days=1)

    with pytest.raises(Exception) as raised:
        warehouse.sync(sandbox, schema_contract="freeze")

    assert "x_sandbox" in str(raised.value) and "freeze" in str(raised.value)
    (new_columns,) = warehouse.query(
        "select count(*) from information_schema.columns "
        f"where table_schema = '{DEFAULT_DATASET}' and column_name like 'x_sandbox%'"
    )[0]
    assert new_columns == 0
