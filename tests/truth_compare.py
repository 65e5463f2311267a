"""Row-for-row comparison of a warehouse table with the sandbox's ground truth."""

from datetime import date, datetime
from typing import Any

from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.windows import parse_timestamp


def normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        return parse_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and "T" in value:
        try:
            return parse_timestamp(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, int) and not isinstance(value, bool):
        return round(float(value), 9)
    return value


def assert_table_matches(warehouse: Any, truth: WarehouseTruth, table: str) -> int:
    """Same keys, and every field the API sent has the same value. Returns the row count."""
    loaded = warehouse.keyed(table)
    expected = truth.rows(table)
    missing = set(expected) - set(loaded)
    extra = set(loaded) - set(expected)
    assert not missing and not extra, (
        f"{table}: {len(missing)} missing (e.g. {sorted(missing)[:2]}), "
        f"{len(extra)} unexpected (e.g. {sorted(extra)[:2]})"
    )
    for key, expected_row in expected.items():
        row = loaded[key]
        for column, value in expected_row.items():
            if column == "models":
                continue
            assert normalise(row[column]) == normalise(value), (
                f"{table} {key} {column}: warehouse {row[column]!r} != truth {value!r}"
            )
    return len(expected)
