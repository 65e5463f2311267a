"""Server plumbing: run_sandbox, headers, request ids, admin endpoints, stats, the CLI options."""

import argparse
import http.client
import re
import uuid

import requests
from sandbox_support import START, Client

from aiclicks_pipeline.sandbox import SANDBOX_API_KEY, add_arguments, run_sandbox


def test_run_sandbox_gives_a_working_base_url():
    with run_sandbox(start=START, frozen=True) as box:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", box.base_url)
        assert box.api_key == SANDBOX_API_KEY
        assert Client(box).get("domains").status_code == 200
        url = box.base_url
    try:
        requests.get(url + "/_sandbox/health", timeout=2)
        assert False, "the server should be gone"
    except requests.ConnectionError:
        pass


def test_headers_on_every_api_response(sandbox, client):
    for response in (client.get("domains"), client.get("prompts"), client.get("validate")):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Date"] == "Wed, 17 Jun 2026 10:00:00 GMT"
        assert response.headers["X-Cache"] in {"HIT", "MISS", "BYPASS"}
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert response.headers[name].isdigit()
        uuid.UUID(response.headers["X-Request-Id"])


def test_request_id_is_echoed_or_generated(sandbox, client):
    sent = client.get("domains", headers={"X-Request-Id": "my-correlation-id"})
    assert sent.headers["X-Request-Id"] == "my-correlation-id"
    generated = {client.get("domains").headers["X-Request-Id"] for _ in range(3)}
    assert len(generated) == 3
    assert sandbox.stats.log[0]["request_id"] == "my-correlation-id"


def test_keep_alive_connections_are_reused(sandbox):
    host, port = sandbox.base_url.rsplit("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    sockets = set()
    for _ in range(3):
        connection.request("GET", "/api/v1/validate", headers={"Authorization": f"Bearer {sandbox.api_key}"})
        response = connection.getresponse()
        assert response.status == 200 and response.version == 11
        response.read()
        sockets.add(id(connection.sock))
    connection.close()
    assert len(sockets) == 1


def test_admin_endpoints(sandbox, client, domain_id):
    admin = sandbox.base_url + "/_sandbox/"
    assert requests.get(admin + "health", timeout=5).json()["ok"] is True
    sandbox.reset_stats()
    client.get("prompts", {"domain_id": domain_id, "size": 5})
    client.get("prompts", {"domain_id": domain_id, "size": 5})
    stats = requests.get(admin + "stats", timeout=5).json()
    assert stats["requests"] == 2 and stats["by_status"] == {"200": 2}
    assert stats["cache"] == {"MISS": 1, "HIT": 1}
    assert stats["by_path"] == {"/api/v1/prompts": 2}
    assert stats["log"][1]["query"] == {"domain_id": domain_id, "size": "5"}
    assert stats["log"][1]["x_cache"] == "HIT"
    moved = requests.post(admin + "clock", json={"advance_days": 1, "advance_hours": 2}, timeout=5)
    assert moved.json()["now"] == "2026-06-18T12:00:00.000Z" == requests.get(admin + "clock", timeout=5).json()["now"]
    added = requests.post(admin + "prompts", json={"domain_id": domain_id, "n": 2}, timeout=5).json()
    assert [p["created_at"] for p in added["items"]] == ["2026-06-18T12:00:00.000Z"] * 2
    assert requests.post(admin + "stats/reset", timeout=5).json() == {"ok": True}
    assert requests.get(admin + "stats", timeout=5).json()["requests"] == 0  # admin not counted
    assert requests.get(admin + "nope", timeout=5).status_code == 404


def test_cli_options():
    args = add_arguments(argparse.ArgumentParser()).parse_args(
        ["--port", "0", "--seed", "4", "--domains", "9", "--rate-limit", "10",
         "--latency-ms", "20", "--error-rate", "0.1", "--extra-fields"]
    )
    assert (args.port, args.seed, args.domains, args.rate_limit) == (0, 4, 9, 10)
    assert (args.latency_ms, args.error_rate, args.extra_fields, args.drop_rate) == (20, 0.1, True, None)


def test_a_client_gone_mid_request_prints_no_traceback(sandbox, capfd):
    """A killed client resets its connection (the kill tests and benchmarks do it all the
    time): the server goes on, without a traceback on its stderr."""
    import socket
    import struct

    host, port = sandbox.base_url.split("//")[1].split(":")
    for _ in range(3):
        connection = socket.create_connection((host, int(port)))
        connection.sendall(b"GET /api/v1/domains HTTP/1.1\r\nHost: x\r\n")  # the headers unfinished
        # SO_LINGER 0: close() sends a reset, as a killed process's socket does
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    # the server still answers, and answering means it handled the resets before
    assert requests.get(f"{sandbox.base_url}/api/v1/domains", timeout=10).status_code == 401
    assert "Traceback" not in capfd.readouterr().err
