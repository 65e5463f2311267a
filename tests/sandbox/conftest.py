"""Fixtures for the sandbox tests: a frozen sandbox per test and a client for it."""

import sys
from pathlib import Path
from typing import Iterator

import pytest

# The helpers module sits next to this file; make it importable under any --import-mode.
sys.path.insert(0, str(Path(__file__).parent))
from sandbox_support import GENEROUS_LIMIT, START, Client  # noqa: E402

from aiclicks_pipeline.sandbox import Sandbox, run_sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with run_sandbox(seed=7, start=START, frozen=True, rate_limit=GENEROUS_LIMIT, prompts=(40, 90)) as box:
        yield box


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    return Client(sandbox)


@pytest.fixture
def domain_id(client: Client) -> str:
    return client.data("domains")["items"][0]["id"]
