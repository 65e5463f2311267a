"""Each fault switch, the fail_next queue and the admin endpoint that sets them."""

import json
import time

import pytest
import requests
from sandbox_support import Client

from aiclicks_pipeline.sandbox import FAULT_KINDS, run_sandbox
from aiclicks_pipeline.settings import ERROR_DETAILS


def test_latency(sandbox, client):
    sandbox.set_faults(latency_ms=150)
    started = time.monotonic()
    assert client.get("domains").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_error_rate_gives_a_share_of_5xx_that_are_not_cached_or_counted(sandbox, client):
    sandbox.set_faults(error_rate=0.5)
    statuses = [client.get("domains").status_code for _ in range(60)]
    errors = [s for s in statuses if s >= 500]
    assert 15 <= len(errors) <= 45 and set(errors) <= {500, 502, 503}
    assert len(set(errors)) > 1
    assert sandbox.stats.faults["500"] + sandbox.stats.faults["502"] + sandbox.stats.faults["503"] == len(errors)


def test_fault_randomness_is_seeded():
    def statuses(seed):
        with run_sandbox(start="2026-06-17T10:00:00Z", frozen=True, fault_seed=seed,
                         faults={"error_rate": 0.5}) as box:
            client = Client(box)
            return [client.get("validate").status_code for _ in range(20)]

    assert statuses(3) == statuses(3) != statuses(4)


def test_server_error_bodies(sandbox, client):
    for status, detail in ((500, "Internal Server Error"), (502, "Bad Gateway"), (503, "Service Unavailable")):
        sandbox.fail_next(str(status))
        response = client.get("domains")
        assert response.status_code == status and response.json() == {"detail": detail}


def test_dropped_connection_raises(sandbox, client):
    sandbox.fail_next("drop")
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        client.get("domains")
    assert client.get("domains").status_code == 200  # the next request is fine


def test_malformed_json_fails_to_parse(sandbox, client, domain_id):
    sandbox.fail_next("malformed")
    response = client.get("prompts", {"domain_id": domain_id})
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(response.content))
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_extra_fields_everywhere_in_data(sandbox, client, domain_id):
    sandbox.set_faults(extra_fields=True)
    body = client.get("fanout_queries", {"domain_id": domain_id}).json()
    assert "x_sandbox_note" in body and "x_sandbox_meta" in body
    assert "x_sandbox_note" in body["data"]
    group = body["data"]["items"][0]
    assert "x_sandbox_meta" in group and "x_sandbox_note" in group["fanout_queries"][0]
    sandbox.set_faults(extra_fields=False)
    plain = client.get("fanout_queries", {"domain_id": domain_id}).json()
    assert "x_sandbox_note" not in plain and plain["data"]["items"][0]["id"] == group["id"]


def test_vanished_and_hidden_domains(sandbox, client):
    first, second, third = [d["id"] for d in client.data("domains")["items"]]
    sandbox.set_faults(vanished_domains={first}, hidden_404_domains={second})
    listed = [d["id"] for d in client.data("domains")["items"]]
    assert listed == [second, third]
    for gone in (first, second):
        response = client.get("prompts", {"domain_id": gone})
        assert response.status_code == 404 and response.json() == {"detail": ERROR_DETAILS[404]}
    assert client.get("prompts", {"domain_id": third}).status_code == 200
    assert [d["id"] for d in client.data("validate")["allowed_domains"]] == [second, third]


def test_fail_next_queue_is_exact_and_validated(sandbox, client):
    sandbox.fail_next("503", count=2)
    sandbox.fail_next("429")
    statuses = [client.get("validate").status_code for _ in range(4)]
    assert statuses == [503, 503, 429, 200]
    with pytest.raises(ValueError):
        sandbox.fail_next("418")
    assert set(FAULT_KINDS) == {"500", "502", "503", "429", "drop", "malformed"}


def test_admin_faults_endpoint(sandbox, client):
    url = sandbox.base_url + "/_sandbox/faults"
    reply = requests.post(url, json={"error_rate": 0.25, "vanished_domains": ["x"],
                                     "fail_next": {"kind": "502", "count": 1}}, timeout=10)
    assert reply.status_code == 200 and reply.json()["error_rate"] == 0.25
    assert sandbox.faults.error_rate == 0.25 and sandbox.faults.vanished_domains == {"x"}
    assert requests.get(url, timeout=10).json()["vanished_domains"] == ["x"]
    assert client.get("validate").status_code == 502
    assert requests.post(url, json={"no_such_switch": 1}, timeout=10).status_code == 400
