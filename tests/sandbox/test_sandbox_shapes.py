"""Every endpoint's payload against the API docs' examples
(tests/fixtures/api_examples): keys, value types, formats, echoes."""

import re
import uuid

import pytest
from sandbox_support import assert_shape, example

from aiclicks_pipeline.settings import ENDPOINTS, ERROR_DETAILS

MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
US_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
PAGING = {"page", "size", "total_pages"}

# endpoint name -> (example file, keys the sandbox adds beyond the example, by its readings)
CASES = {
    "domains": ("domains", set()),
    "prompts": ("prompts", set()),
    "fanout_queries": ("fanout-queries", PAGING),  # paginated: reading 4
    "visibility_daily": ("visibility-time-series", set()),
    "mentions_daily": ("mentions-time-series", set()),
    "citability_daily": ("citability-time-series", set()),
    "citations_daily": ("citations-time-series", set()),
    "brand_rankings": ("brand-rankings", set()),
    "model_leaderboard": ("model-leaderboard", set()),
    "citations": ("citations", PAGING | {"total"}),  # paginated: reading 5
}


def test_every_endpoint_in_settings_is_covered():
    assert set(CASES) == set(ENDPOINTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_payload_matches_example(client, domain_id, name):
    file, extra = CASES[name]
    params = {"domain_id": domain_id} if ENDPOINTS[name]["domain_scoped"] else None
    body = client.get(name, params).json()
    assert body["data"]["items"], f"{name} returned no items; the shape check would be vacuous"
    assert_shape(body, example(file), extra_ok=frozenset(extra))
    assert MS_Z.match(body["generated_at"])
    assert body["generated_at"] == "2026-06-17T10:00:00.000Z"  # the frozen sandbox clock


def test_validate_matches_example(client):
    response = client.get("validate")
    assert_shape(response.json(), example("validate"))
    data = response.json()["data"]
    assert data["key_type"] == "api_key" and data["valid"] is True
    assert data["teams"][0]["domains_count"] == len(data["allowed_domains"]) == 3
    uuid.UUID(data["key"]["id"]), uuid.UUID(data["user_id"]), uuid.UUID(data["teams"][0]["id"])


def test_echoed_params(client, domain_id):
    assert client.get("prompts", {"domain_id": domain_id}).json().keys() == {
        "data", "domain_id", "page", "size", "generated_at"
    }
    body = client.get("fanout_queries", {"domain_id": domain_id}).json()
    assert (body["domain_id"], body["days"], body["model"], body["page"], body["size"]) == (
        domain_id, 30, "all", 1, 25,
    )
    body = client.get("brand_rankings", {"domain_id": domain_id, "days": 7}).json()
    assert body.keys() == {"data", "domain_id", "days", "generated_at"} and body["days"] == 7
    assert client.get("domains").json().keys() == {"data", "generated_at"}


def test_identifier_and_timestamp_formats(client, domain_id):
    for d in client.data("domains")["items"]:
        uuid.UUID(d["id"])
        assert MS_Z.match(d["created_at"]) and "://" not in d["website"]
    for p in client.data("prompts", domain_id=domain_id, size=500)["items"]:
        uuid.UUID(p["id"])
        assert MS_Z.match(p["created_at"]) and isinstance(p["estimated_search_volume"], int)
    for c in client.data("citations", domain_id=domain_id, size=100)["items"]:
        assert US_OFFSET.match(c["first_seen"]) and US_OFFSET.match(c["last_seen"])
        assert c["first_seen"] <= c["last_seen"] <= "2026-06-17T10:00:00.000000+00:00"
        assert not c["url"].startswith(("http://", "https://")) and c["url"].startswith(c["domain"])
    for group in client.data("fanout_queries", domain_id=domain_id)["items"]:
        uuid.UUID(group["id"])
        for emission in group["fanout_queries"]:
            uuid.UUID(emission["id"])


def test_series_dates_are_consecutive_days_oldest_first(client, domain_id):
    items = client.data("visibility_daily", domain_id=domain_id)["items"]
    dates = [i["date"] for i in items]
    assert dates[0] == "2026-05-19" and dates[-1] == "2026-06-17"  # the docs' example 30-day window
    assert len(dates) == 30 == len(set(dates)) and dates == sorted(dates)


def test_error_bodies_are_the_documented_ones():
    documented = {e["status"]: e["body"]["detail"] for e in example("errors")["errors"]}
    assert ERROR_DETAILS == documented
