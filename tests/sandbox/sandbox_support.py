"""Helpers for the sandbox tests (imported by name: conftest modules are not importable reliably)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import requests

from aiclicks_pipeline.sandbox import SANDBOX_API_KEY, Sandbox
from aiclicks_pipeline.settings import API_PREFIX, ENDPOINTS, VALIDATE_PATH

START = "2026-06-17T10:00:00Z"
# The API docs' example payloads, kept in the repo (docs/api-notes.md, Example payloads)
EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api_examples"
# Large enough that no test outside test_rate_limit.py runs into it.
GENEROUS_LIMIT = 100_000


def example(name: str) -> Dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def path_of(name: str) -> str:
    """The URL path of an endpoint name of settings.ENDPOINTS (or "validate")."""
    if name == VALIDATE_PATH:
        return f"{API_PREFIX}/{VALIDATE_PATH}"
    return f"{API_PREFIX}/{ENDPOINTS[name]['path']}"


class Client:
    """requests against one sandbox, authenticated with ``key``."""

    def __init__(self, sandbox: Sandbox, key: str = SANDBOX_API_KEY):
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def get(self, name: str, params=None, **kwargs) -> requests.Response:
        return self.session.get(self.sandbox.base_url + path_of(name), params=params, timeout=10, **kwargs)

    def data(self, name: str, **params) -> Any:
        response = self.get(name, params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def raw(self, path_and_query: str, **kwargs) -> requests.Response:
        return self.session.get(self.sandbox.base_url + path_and_query, timeout=10, **kwargs)


def kind(value: Any) -> str:
    """The JSON type of a value, ints and floats alike (the examples mix 0 and 12.4)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


class Nullable:
    """A documented field that is null in at least one example row."""

    def __init__(self, value: Any):
        self.value = value


def merge_rows(rows: list) -> Any:
    """One documented row from all example rows: a key null in any row is nullable."""
    if not all(isinstance(row, dict) for row in rows):
        return rows[0]
    merged = {}
    for key in rows[0]:
        values = [row.get(key) for row in rows]
        present = next((v for v in values if v is not None), None)
        merged[key] = Nullable(present) if None in values else present
    return merged


def assert_shape(actual: Any, documented: Any, extra_ok=frozenset(), where: str = "$") -> None:
    """``actual`` has the documented keys and value types, recursively.

    Nullable fields accept null; keys beyond the documented ones must be in ``extra_ok``
    (or start with "x_sandbox" when "x_sandbox*" is in it).
    """
    if isinstance(documented, Nullable):
        if actual is None or documented.value is None:
            return
        documented = documented.value
    assert kind(actual) == kind(documented), f"{where}: {kind(actual)} != {kind(documented)}"
    if isinstance(documented, dict):
        missing = set(documented) - set(actual)
        assert not missing, f"{where}: missing {sorted(missing)}"
        for key in set(actual) - set(documented):
            sandbox_extra = key.startswith("x_sandbox") and "x_sandbox*" in extra_ok
            assert key in extra_ok or sandbox_extra, f"{where}: unexpected key {key!r}"
        for key, value in documented.items():
            assert_shape(actual[key], value, extra_ok, f"{where}.{key}")
    elif isinstance(documented, list) and documented:
        row = merge_rows(documented)
        for i, item in enumerate(actual):
            assert_shape(item, row, extra_ok, f"{where}[{i}]")
