"""dlt_hint_cache.py: dlt's type-hint questions answered once per hint, the same answers."""

import sys
from typing import Annotated, Any, Dict, List, Literal, Optional, Union

import pytest

from aiclicks_pipeline import dlt_hint_cache
from dlt.common.configuration import resolve
from dlt.common.configuration.providers import environ
from dlt.common.configuration.specs import base_configuration as specs
from dlt.common.configuration.specs import ConnectionStringCredentials
from dlt.common.typing import TSecretStrValue

pytestmark = pytest.mark.unit

HINTS = [
    str, int, Optional[str], TSecretStrValue, Optional[TSecretStrValue], ConnectionStringCredentials,
    Optional[ConnectionStringCredentials], Union[str, ConnectionStringCredentials], List[str],
    Dict[str, Any], Literal["a", "b"], Annotated[str, "meta"],
]


def test_dlts_modules_ask_the_cached_functions():
    for module in (specs, resolve, environ):
        assert getattr(module.is_secret_hint, dlt_hint_cache._PATCHED, False), module.__name__
    assert getattr(resolve.extract_inner_hint, dlt_hint_cache._PATCHED, False)


@pytest.mark.parametrize("hint", HINTS, ids=repr)
def test_the_answers_are_dlts(hint):
    plain_secret = specs.is_secret_hint.__wrapped__
    plain_inner = specs.extract_inner_hint.__wrapped__
    for _ in range(2):  # the first answer computed, the second remembered
        assert specs.is_secret_hint(hint) == plain_secret(hint)
        for flags in ({}, {"preserve_literal": True}, {"preserve_annotated": True, "preserve_new_types": True}):
            assert specs.extract_inner_hint(hint, **flags) == plain_inner(hint, **flags)


def test_a_hint_that_cannot_be_a_key_is_answered_each_time():
    calls = []

    def secret(hint):
        calls.append(hint)
        return True

    cached = dlt_hint_cache.cached_pure(secret)
    assert cached(Annotated[str, "x"]) and cached(Annotated[str, "x"]) and len(calls) == 1
    assert cached(Annotated[str, {"x": 1}]) and cached(Annotated[str, {"x": 1}]) and len(calls) == 3


def test_a_classs_annotations_are_dlts_kept_once_and_copied_to_each_caller():
    from dlt.common import validation
    from dlt.common.schema.typing import TColumnSchema, TTableSchema
    from typing_extensions import get_type_hints

    assert getattr(validation.get_type_hints, dlt_hint_cache._PATCHED, False)
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[0])
        return get_type_hints(*args, **kwargs)

    cached = dlt_hint_cache.cached_type_hints(counted)
    for spec in (TColumnSchema, TTableSchema):
        namespace = sys.modules[spec.__module__].__dict__
        first = cached(spec, globalns=namespace)
        assert first == get_type_hints(spec, globalns=namespace)
        first.clear()  # a caller's change stays its own
        assert cached(spec, globalns=namespace) == get_type_hints(spec, globalns=namespace)
    assert calls == [TColumnSchema, TTableSchema]
    cached(TColumnSchema, globalns=namespace, localns={})  # a local namespace: asked each time
    cached(TColumnSchema, globalns={})  # another module's namespace: asked each time
    assert calls == [TColumnSchema, TTableSchema, TColumnSchema, TColumnSchema]
