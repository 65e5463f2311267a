"""A sync without pandas' import (pandas_import.py): DuckDB's settings and dlt's query
parameters written as the literals DuckDB would bind (tests/test_pandas_import.py: a sync's
process, and pyarrow after it)."""

from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

import aiclicks_pipeline  # noqa: F401 - applies the patches
from aiclicks_pipeline.pandas_import import setting_literal, sql_literal, with_literals

VALUES = [
    None,
    True,
    False,
    0,
    -7,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**63 - 1,
    -(2**63),
    1.5,
    -0.0001,
    1e300,
    "",
    "plain",
    "it's \"quoted\" \\ back\\slashed %s ? $1",
    "line\nbreak\ttab ünïcødé 🙂",
    '{"schema": {"name": "aiclicks", "tables": {"x": 1}}}',
    datetime(2026, 12, 7, 6, 30, 1, 123456, tzinfo=timezone.utc),
    datetime(2026, 12, 7, 6, 30, 1, 123456, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2026, 12, 7, 6, 30, 1, 5),
    date(2026, 2, 28),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_literal_is_the_value_and_type_duckdb_binds(value):
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    literal = sql_literal(value)
    assert literal is not None
    written = connection.execute(f"SELECT {literal} AS v, typeof({literal}) AS t").fetchone()
    bound = connection.execute("SELECT ? AS v, typeof(?) AS t", [value, value]).fetchone()
    assert written == bound


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**63, -(2**63) - 1, b"bytes", [1, 2], {"a": 1}, object()],
    # repr of a bare object holds its address: xdist's workers must collect the same ids
    ids=lambda value: "object()" if type(value) is object else repr(value),
)
def test_a_value_without_a_literal_is_left_to_binding(value):
    assert sql_literal(value) is None
    assert with_literals("SELECT %s", [value]) is None


def test_placeholders_are_replaced_in_order_and_a_mismatch_is_left_to_binding():
    assert with_literals("a = %s AND b = %s", ["x", 2]) == "a = CAST('x' AS VARCHAR) AND b = CAST(2 AS INTEGER)"
    assert with_literals("a = %s AND b = %s", ["x"]) is None
    assert with_literals("a = %s", ["x", "y"]) is None
    # a literal holding dlt's placeholder is not taken for one
    assert with_literals("a = %s AND b = %s", ["%s", "y"]) == "a = CAST('%s' AS VARCHAR) AND b = CAST('y' AS VARCHAR)"


def test_dlts_settings_are_set_as_literals():
    from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool

    connection = duckdb.connect()
    settings = {"threads": 1, "memory_limit": "1GB", "allocator_background_threads": True, "TimeZone": "Asia/Kolkata"}
    DuckDbConnectionPool._apply_config(connection, "GLOBAL", settings)
    read = {name: connection.execute(f"select current_setting('{name}')").fetchone()[0] for name in settings}
    assert read["threads"] == 1
    assert read["allocator_background_threads"] is True
    assert read["TimeZone"] == "Asia/Kolkata"
    assert read["memory_limit"].replace(" ", "") in ("953.6MiB", "1.0GB", "1GB")
    # a search path that does not exist is let be, as dlt lets it be
    DuckDbConnectionPool._apply_config(connection, "SESSION", {"search_path": "no_such_schema"})
    with pytest.raises(duckdb.CatalogException):
        DuckDbConnectionPool._apply_config(connection, "SESSION", {"no_such_setting": 1})
    assert setting_literal("it's") == "'it''s'" and setting_literal(None) is None
