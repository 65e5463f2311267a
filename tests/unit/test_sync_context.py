"""sync.SyncContext: built whole by one factory (source.new_sync_context), and one object per
sync whatever dlt copies."""

import copy
from functools import partial

import pytest

from aiclicks_pipeline.errors import MissingApiKeyError
from aiclicks_pipeline.source import new_sync_context
from aiclicks_pipeline.sync import SyncContext

OPTIONS = dict(
    api_key="ak_live_one",
    api_keys=["ak_live_two"],
    base_url="http://127.0.0.1:9/api/v1",
    initial_days=30,
    lookback_days=3,
    snapshot_days=7,
    request_timeout=5.0,
    max_attempts=2,
    backoff_factor=0.5,
)


def test_the_factory_makes_the_context_with_its_session_and_key_pool():
    context = new_sync_context(**OPTIONS, domain_ids=["d1"])  # other source options are ignored
    session = context.session
    assert session.context is context
    assert [key.token for key in session.keys.keys] == ["ak_live_one", "ak_live_two"]
    assert (session.timeout, session.max_attempts, session.backoff_factor) == (5.0, 2, 0.5)
    assert context.base_url == "http://127.0.0.1:9/api/v1/"
    assert context.auth.token == "ak_live_one" and "ak_live" not in repr(context.auth)
    assert (context.initial_days, context.lookback_days, context.snapshot_days) == (30, 3, 7)


def test_the_factory_refuses_a_missing_key_and_a_window_past_the_horizon(monkeypatch):
    monkeypatch.delenv("AICLICKS_API_KEY", raising=False)
    monkeypatch.delenv("AICLICKS_API_KEYS", raising=False)
    with pytest.raises(MissingApiKeyError):
        new_sync_context(**{**OPTIONS, "api_key": None, "api_keys": None})
    with pytest.raises(ValueError, match="initial_days"):
        new_sync_context(**{**OPTIONS, "initial_days": 400})


def test_every_copy_dlt_makes_is_the_same_context():
    context = SyncContext(make_session=lambda made: {"context": made})
    assert context.session["context"] is context
    assert copy.deepcopy(context) is context and copy.copy(context) is context
    # what rest_api deep-copies for each domain: a paginator holding the context's window_days
    window_days = copy.deepcopy(partial(context.window_days, "visibility_daily"))
    assert window_days.func.__self__ is context
