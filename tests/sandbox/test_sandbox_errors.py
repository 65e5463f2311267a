"""Every error status with its exact body, and the order in which the checks apply."""

import pytest
import requests
from sandbox_support import Client, path_of

from aiclicks_pipeline.sandbox import NO_ACCESS_API_KEY, RESTRICTED_API_KEY
from aiclicks_pipeline.settings import DOMAIN_RESOURCES, ENDPOINTS, ERROR_DETAILS

UNKNOWN_DOMAIN = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic abc", "Bearer ak_live_unknown", "ak_live_sandbox_0123456789abcdef"],
)
def test_missing_malformed_or_unknown_key_is_401(sandbox, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = requests.get(sandbox.base_url + path_of("domains"), headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"detail": ERROR_DETAILS[401]}
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("name", ["domains", "prompts", "validate"])
def test_team_without_developer_access_is_403(sandbox, domain_id, name):
    response = Client(sandbox, NO_ACCESS_API_KEY).get(name, {"domain_id": domain_id})
    assert response.status_code == 403
    assert response.json() == {"detail": ERROR_DETAILS[403]}


@pytest.mark.parametrize("name", DOMAIN_RESOURCES)
def test_domain_scoped_endpoint_without_domain_id_is_400(client, name):
    for params in (None, {"domain_id": ""}):
        response = client.get(name, params)
        assert response.status_code == 400
        assert response.json() == {"detail": ERROR_DETAILS[400]}


@pytest.mark.parametrize("domain", [UNKNOWN_DOMAIN, "not-a-uuid"])
def test_unknown_domain_is_404(client, domain):
    response = client.get("mentions_daily", {"domain_id": domain})
    assert response.status_code == 404
    assert response.json() == {"detail": ERROR_DETAILS[404]}


def test_restricted_key_sees_first_half_and_404s_outside_it(sandbox, client):
    everything = [d["id"] for d in client.data("domains")["items"]]
    restricted = Client(sandbox, RESTRICTED_API_KEY)
    visible = [d["id"] for d in restricted.data("domains")["items"]]
    assert visible == everything[: len(everything) // 2] and visible
    assert [d["id"] for d in restricted.data("validate")["allowed_domains"]] == visible
    assert restricted.get("prompts", {"domain_id": visible[0]}).status_code == 200
    outside = restricted.get("prompts", {"domain_id": everything[-1]})
    assert outside.status_code == 404 and outside.json() == {"detail": ERROR_DETAILS[404]}


@pytest.mark.parametrize(
    "name, params, field",
    [
        ("prompts", {"size": "501"}, "size"),
        ("prompts", {"size": "0"}, "size"),
        ("prompts", {"page": "0"}, "page"),
        ("prompts", {"page": "two"}, "page"),
        ("fanout_queries", {"size": "101"}, "size"),
        ("citations", {"size": "101"}, "size"),
        ("visibility_daily", {"days": "400"}, "days"),
        ("visibility_daily", {"days": "0"}, "days"),
        ("brand_rankings", {"days": "abc"}, "days"),
        ("model_leaderboard", {"days": "7.5"}, "days"),
    ],
)
def test_invalid_params_are_422_with_fastapi_detail(client, domain_id, name, params, field):
    response = client.get(name, {"domain_id": domain_id, **params})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, list) and len(detail) == 1
    assert detail[0]["loc"] == ["query", field]
    assert detail[0]["type"] in {"int_parsing", "greater_than_equal", "less_than_equal"}
    assert detail[0]["msg"]


def test_limits_come_from_settings(client, domain_id):
    for name, spec in ENDPOINTS.items():
        if spec.get("page_size"):
            default, largest = spec["page_size"]
            ok = client.get(name, {"domain_id": domain_id, "size": largest})
            assert ok.status_code == 200 and ok.json()["size"] == largest
            assert client.get(name, {"domain_id": domain_id}).json()["size"] == default
            assert client.get(name, {"domain_id": domain_id, "size": largest + 1}).status_code == 422


def test_unknown_params_are_ignored(client, domain_id):
    response = client.get("prompts", {"domain_id": domain_id, "topic_id": "x", "timeframe": "7d"})
    assert response.status_code == 200


def test_unknown_path_is_404_not_found(client):
    for path in ("/api/v1/nope", "/api/v2/domains", "/"):
        response = client.raw(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


def test_checks_apply_in_order(sandbox, client, domain_id):
    anonymous = requests.get(sandbox.base_url + path_of("prompts") + "?size=9999", timeout=10)
    assert anonymous.status_code == 401  # auth before domain_id and params
    assert client.get("prompts", {"size": "9999"}).status_code == 400  # domain_id before params
    assert client.get("prompts", {"domain_id": UNKNOWN_DOMAIN, "size": "x"}).status_code == 404
    sandbox.fail_next("503")
    assert client.get("prompts", {"size": "9999"}).status_code == 503  # faults before domain_id
