"""The items a sync hands dlt (items.py): typed Arrow tables where the rows fit the declared
table, dicts where they do not; and that both load the same warehouse."""

import base64
from datetime import date, datetime, timezone

import pyarrow as pa
import pytest
from dlt.common.schema.utils import dlt_id_column

from dlt.common.normalizers.json.helpers import get_nested_row_hash

from aiclicks_pipeline.items import RowBatches, dlt_ids, rows_table, typed_array, without_child_lists
from aiclicks_pipeline.pipeline import preferred_file_format
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import DEFAULT_DATASET, ENDPOINTS

from .support import START, Warehouse, assert_equals_truth

GENERATED = datetime(2026, 6, 17, 10, 0, 11, 218000, tzinfo=timezone.utc)


def prompt(**fields):
    row = {
        "id": "p1",
        "domain_id": "d1",
        "text": "best crm",
        "estimated_search_volume": 1200,
        "created_at": "2026-04-27T08:58:37.268809+00:00",
        "generated_at": GENERATED,
    }
    return {**row, **fields}


def test_rows_that_fit_become_a_table_of_the_declared_columns_and_types():
    table = rows_table("prompts", [prompt(), prompt(id="p2", estimated_search_volume=None)])

    assert table.column_names == list(ENDPOINTS["prompts"]["columns"])
    assert table.schema.field("estimated_search_volume").type == pa.int64()
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("created_at")[0].as_py() == datetime(2026, 4, 27, 8, 58, 37, 268809, tzinfo=timezone.utc)
    assert table.column("estimated_search_volume").to_pylist() == [1200, None]
    # the key is never null; the other columns may be
    assert not table.schema.field("id").nullable and table.schema.field("text").nullable


@pytest.mark.parametrize(
    "odd",
    [
        {"x_new_field": "v"},  # a field the API added: dlt makes it a column
        {"estimated_search_volume": "1.2k"},  # another type: dlt makes a variant column
        {"estimated_search_volume": 3.5},  # a float in a bigint: no silent truncation
        {"estimated_search_volume": True},  # a bool is not a number here
        {"created_at": "27/04/2026"},  # not ISO 8601: dlt's to judge
        {"text": {"nested": 1}},  # an object: dlt flattens it
        {"id": None},  # a null key: dlt's to judge
    ],
)
def test_rows_that_do_not_fit_stay_dicts(odd):
    assert rows_table("prompts", [prompt(), prompt(**{"id": "p2", **odd})]) is None


def test_values_become_the_declared_type_as_dlt_would_make_them():
    assert typed_array([1, 2.5, None], "double").to_pylist() == [1.0, 2.5, None]
    assert typed_array(["2026-06-17", None], "date").to_pylist() == [date(2026, 6, 17), None]
    assert typed_array([None, None], "bigint").type == pa.int64()
    assert typed_array([1, "x"], "text") is None


MODELS = {"models": "citations__models"}


def citation(**fields):
    row = {"url": "a.com/x", "domain": "a.com", "models": ["gpt-4o-search", "sonar"], "domain_id": "d1",
           "days": 30, "snapshot_date": date(2026, 6, 17), "generated_at": GENERATED}
    return {**row, **fields}


def test_a_citations_models_are_taken_out_for_their_child_table():
    rows, children = without_child_lists(
        MODELS, [citation(), citation(url="b.com", models=[]), citation(url="c.com", models=["x"])]
    )

    assert all("models" not in row for row in rows) and rows_table("citations", rows).num_rows == 3
    models = children["citations__models"]
    assert (models.values, models.parents, models.positions) == (["gpt-4o-search", "sonar", "x"], [0, 0, 2], [0, 1, 0])
    # the rows as they came are left as they were; without child tables as Arrow (a lakehouse's
    # upsert), a citation with models goes to dlt's normalizer
    assert rows_table("citations", [citation()]) is None
    assert [type(item) for item in RowBatches("citations", arrow=True).add([citation()], flush=True)] == [list]


@pytest.mark.parametrize("models", [None, "gpt-4o", [1, 2], ["a", None], [{"slug": "a"}], [["a"]]])
def test_a_list_of_other_than_text_leaves_the_rows_to_dlts_normalizer(models):
    assert without_child_lists(MODELS, [citation(), citation(url="b.com", models=models)]) is None


def test_child_rows_get_the_ids_dlts_normalizer_gives_them(monkeypatch):
    """Each entry joins its parent on _dlt_parent_id = _dlt_id, carries the root's id, its list
    position, and the row id dlt hashes from the three (a merge finds old child rows by them)."""
    monkeypatch.setattr("aiclicks_pipeline.items.load_package_state", lambda: {"load_id": "123.4"})
    batches = RowBatches("citations", arrow=True, children=True, batch_rows=100)
    assert list(batches.add([citation()])) == []
    assert list(batches.add([citation(url="b.com", models=["x"])])) == []
    assert list(batches.add([citation(url="c.com", extra="odd"), citation(url="d.com")])) == []
    parents, children, dicts = list(batches.flush())

    assert children.meta.table_name == "citations__models"
    parent_ids = dict(zip(parents.data.column("url").to_pylist(), parents.data.column("_dlt_id").to_pylist()))
    rows = children.data.to_pylist()
    assert [(row["value"], row["_dlt_list_idx"]) for row in rows] == [("gpt-4o-search", 0), ("sonar", 1), ("x", 0)]
    assert [row["_dlt_parent_id"] for row in rows] == [parent_ids["a.com/x"]] * 2 + [parent_ids["b.com"]]
    for row in rows:
        assert row["_dlt_root_id"] == row["_dlt_parent_id"]
        assert row["_dlt_id"] == get_nested_row_hash(row["_dlt_parent_id"], "citations__models", row["_dlt_list_idx"])
    # a page that does not fit goes whole to dlt's normalizer, its models with it
    assert [(row["url"], row["models"]) for row in dicts] == [
        ("c.com", ["gpt-4o-search", "sonar"]), ("d.com", ["gpt-4o-search", "sonar"])]


def test_batches_gather_responses_and_keep_odd_pages_as_dicts(monkeypatch):
    monkeypatch.setattr("aiclicks_pipeline.items.load_package_state", lambda: {"load_id": "123.4"})
    batches = RowBatches("prompts", arrow=True, batch_rows=5)

    assert list(batches.add([prompt(id="p1"), prompt(id="p2")])) == []
    assert list(batches.add([prompt(id="p3", x_new_field="v")])) == []
    arrow, dicts = list(batches.add([prompt(id="p4"), prompt(id="p5")]))

    table = arrow.data  # with the hints of dlt's _dlt_id column
    assert table.column("id").to_pylist() == ["p1", "p2", "p4", "p5"]
    assert table.column_names[-2:] == ["_dlt_load_id", "_dlt_id"]
    assert set(table.column("_dlt_load_id").to_pylist()) == {"123.4"}
    assert len(set(table.column("_dlt_id").to_pylist())) == 4
    assert arrow.meta.hints["columns"]["_dlt_id"] == dlt_id_column()
    assert [row["id"] for row in dicts] == ["p3"]
    assert list(batches.flush()) == []


def test_responses_are_converted_a_group_at_a_time(monkeypatch):
    """A response's rows wait until CONVERT_ROWS have come; a group that fits is one table in one
    conversion. A response that does not fit (a float in a bigint column) goes as dicts alone."""
    monkeypatch.setattr("aiclicks_pipeline.items.load_package_state", lambda: {"load_id": "123.4"})
    conversions = []
    monkeypatch.setattr("aiclicks_pipeline.items.rows_table",
                        lambda resource, rows: conversions.append(len(rows)) or rows_table(resource, rows))
    batches = RowBatches("prompts", arrow=True, batch_rows=100, convert_rows=3)

    for at, volume in enumerate([1200, None, 7]):
        assert list(batches.add([prompt(id=f"p{at}", estimated_search_volume=volume)])) == []
    assert conversions == [3]
    assert list(batches.add([prompt(id="p3", estimated_search_volume=3.5)])) == []
    arrow, dicts = list(batches.flush())

    assert conversions == [3, 1]
    assert arrow.data.column("estimated_search_volume").to_pylist() == [1200, None, 7]
    assert arrow.data.column("id").to_pylist() == ["p0", "p1", "p2"]
    assert [(row["id"], row["estimated_search_volume"]) for row in dicts] == [("p3", 3.5)]


@pytest.mark.parametrize("length", [10, 9, 11, 16, 1])
def test_row_ids_are_made_as_dlt_makes_them(length):
    """`length` random bytes an id, base64 without its padding (dlt's generate_dlt_ids)."""
    ids = dlt_ids(1000, length).to_pylist()

    assert len(set(ids)) == 1000 or length < 8  # a byte or two repeat among 1000
    for row_id in ids:
        raw = base64.b64decode(row_id + "=" * (-len(row_id) % 4))
        assert len(raw) == length
        assert base64.b64encode(raw).decode("ascii").rstrip("=") == row_id
    assert dlt_ids(0, length).to_pylist() == []


def rows_of(warehouse, table):
    """A table's rows without dlt's ids (random per load), child rows by their parent's key."""
    if table == "citations__models":
        return sorted(warehouse.citation_models())
    rows = warehouse.rows(table)
    return sorted(
        (tuple(sorted((k, repr(v)) for k, v in row.items() if not k.startswith("_dlt"))) for row in rows)
    )


def columns_of(warehouse):
    return warehouse.query(
        "select table_name, column_name, data_type, is_nullable, ordinal_position "
        f"from information_schema.columns where table_schema = '{DEFAULT_DATASET}' order by 1, 5"
    )


def test_arrow_rows_load_the_warehouse_dict_rows_load(tmp_path):
    """DuckDB takes parquet and the rows as Arrow tables; forced to jsonl, the same sync hands
    dlt dicts: the two warehouses hold the same tables, columns, types and rows."""
    with run_sandbox(seed=5, domains=3, prompts=(30, 120), start=START, frozen=True, rate_limit=None) as sandbox:
        sandbox.set_faults(extra_fields=True)  # some pages stay dicts: new columns in both
        arrow, dicts = Warehouse(tmp_path / "arrow"), Warehouse(tmp_path / "dicts")
        assert preferred_file_format(arrow.pipeline) == "parquet"
        arrow.sync(sandbox)
        dicts.sync(sandbox, loader_file_format="jsonl")

    assert columns_of(arrow) == columns_of(dicts)
    tables = {name for (name, *_) in columns_of(arrow) if not name.startswith("_")}
    assert "citations__models" in tables and "x_sandbox_note" in {c for (_, c, *_) in columns_of(arrow)}
    for table in sorted(tables):
        assert rows_of(arrow, table) == rows_of(dicts, table), table


def test_a_warehouse_loaded_from_jsonl_goes_on_with_arrow_rows(tmp_path):
    """An existing user's warehouse (loaded from jsonl by an earlier version) takes the next
    day's Arrow rows: the same columns, and the rows of the two days' syncs."""
    with run_sandbox(seed=5, domains=3, prompts=(30, 120), start=START, frozen=True, rate_limit=None) as sandbox:
        warehouse = Warehouse(tmp_path)
        warehouse.sync(sandbox, loader_file_format="jsonl")
        first_now, columns = sandbox.clock.now(), columns_of(warehouse)
        sandbox.advance(days=1)

        warehouse.sync(sandbox, resync_after_minutes=0)

        assert columns_of(warehouse) == columns
        assert warehouse.pipeline.default_schema.get_table("prompts")["file_format"] == "parquet"
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(first_now, days=90)
        truth.record_sync(sandbox.clock.now(), days=7)
        assert_equals_truth(warehouse, truth)  # keys unique too
