"""iceberg_merge: a file merged in one commit leaves an Iceberg table exactly as pyiceberg's
`upsert` (dlt's merge) leaves it, in one snapshot instead of two per 1,000 rows."""

from datetime import date, timedelta

import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("pyiceberg")
pytest.importorskip("sqlalchemy")

from aiclicks_pipeline.iceberg_merge import merge_in_one_commit  # noqa: E402

KEY = ["domain_id", "date"]


def rows(*values):
    return pa.table({
        "domain_id": pa.array([v[0] for v in values], pa.string()),
        "date": pa.array([v[1] for v in values], pa.date32()),
        "visibility": pa.array([v[2] for v in values], pa.float64()),
    })


def day(n):
    return date(2026, 6, n)


@pytest.fixture
def catalog(tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("test", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("aiclicks")
    return catalog


def table_with(catalog, name, data):
    table = catalog.create_table(f"aiclicks.{name}", schema=data.schema)
    table.append(data)
    return table


def contents(table):
    return sorted(table.scan().to_arrow().to_pylist(), key=lambda row: (row["domain_id"], row["date"]))


# d1 had days 1-3, d2 days 1-2, d3 day 1. The file: d1's days 2-3 again (new values), d1's day
# 4 (new), d2's day 3 (new). The region it may touch (d1, d2 x days 2-4) holds d2's day 2,
# which the file does not bring: kept. d1's day 1 and d3 are outside it.
EXISTING = rows(("d1", day(1), 1.0), ("d1", day(2), 2.0), ("d1", day(3), 3.0),
                ("d2", day(1), 4.0), ("d2", day(2), 5.0), ("d3", day(1), 6.0))
FILE = rows(("d1", day(2), 20.0), ("d1", day(3), 30.0), ("d1", day(4), 40.0), ("d2", day(3), 50.0))


def test_the_table_ends_as_upsert_leaves_it(catalog):
    merged = table_with(catalog, "merged", EXISTING)
    upserted = table_with(catalog, "upserted", EXISTING)

    merge_in_one_commit(merged, FILE, KEY)
    upserted.upsert(FILE, join_cols=KEY)

    assert contents(merged) == contents(upserted)
    assert contents(merged) == contents(table_with(catalog, "expected", rows(
        ("d1", day(1), 1.0), ("d1", day(2), 20.0), ("d1", day(3), 30.0), ("d1", day(4), 40.0),
        ("d2", day(1), 4.0), ("d2", day(2), 5.0), ("d2", day(3), 50.0), ("d3", day(1), 6.0),
    )))


def test_dlts_merge_commits_once_per_file(catalog):
    """Through dlt's `merge_iceberg_table`, as an Iceberg load job calls it: 2,500 rows, which
    dlt's own merge commits as three upserts (a delete and an append each)."""
    from aiclicks_pipeline.iceberg_merge import _patch_dlt_iceberg
    from dlt.common.libs import pyiceberg as dlt_iceberg

    _patch_dlt_iceberg()
    schema = {
        "name": "visibility_daily", "x-merge-strategy": "upsert",
        "columns": {
            name: {"name": name, "data_type": data_type, "primary_key": name in KEY}
            for name, data_type in (("domain_id", "text"), ("date", "date"), ("visibility", "double"))
        },
    }
    merged = table_with(catalog, "merged", EXISTING)
    # 50 domains x 50 days from June 1: every existing key among them
    many = rows(*[(f"d{n % 50}", day(1) + timedelta(days=n // 50), 100.0 + n) for n in range(2500)])
    before = len(merged.metadata.snapshots)

    dlt_iceberg.merge_iceberg_table(merged, many, schema, "visibility_daily")

    merged.refresh()
    assert len(merged.metadata.snapshots) - before <= 2  # a delete and an append, one commit
    assert contents(merged) == sorted(many.to_pylist(), key=lambda row: (row["domain_id"], row["date"]))


def test_a_column_the_file_does_not_have_keeps_its_values_in_the_rows_kept(catalog):
    """(pyiceberg's `upsert` refuses such a file; dlt hands it every column of the table.)"""
    noted = EXISTING.append_column("note", pa.array([f"note {n}" for n in range(EXISTING.num_rows)]))
    merged = table_with(catalog, "merged", noted)

    merge_in_one_commit(merged, FILE, KEY)

    notes = {(row["domain_id"], row["date"]): row["note"] for row in contents(merged)}
    # outside the region and kept inside it (d2's day 2): their notes; the file's rows: none
    assert notes == {
        ("d1", day(1)): "note 0", ("d1", day(2)): None, ("d1", day(3)): None, ("d1", day(4)): None,
        ("d2", day(1)): "note 3", ("d2", day(2)): "note 4", ("d2", day(3)): None,
        ("d3", day(1)): "note 5",
    }


def test_a_file_outside_every_key_only_appends(catalog):
    merged = table_with(catalog, "merged", EXISTING)
    new = rows(("d9", day(9), 9.0))

    merge_in_one_commit(merged, new, KEY)

    assert contents(merged) == sorted(
        EXISTING.to_pylist() + new.to_pylist(), key=lambda row: (row["domain_id"], row["date"])
    )
    merge_in_one_commit(merged, rows(), KEY)  # an empty file changes nothing
    assert len(contents(merged)) == EXISTING.num_rows + 1
