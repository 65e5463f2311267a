"""A sync's process does not import pandas (pandas_import.py), where pandas is installed: the
sync loads the same warehouse, dlt's own tables are written and read through literals, and
pyarrow after the sync answers as in a process that never hid pandas from it."""

import importlib.util
import json
import subprocess
import sys
import textwrap

import dlt
import pytest

from .support import Folder, WarehouseFile, assert_equals_clean_load, python, small_sandbox

needs_pandas = pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed")

# two syncs in one fresh interpreter, as a scheduler's Python task makes them, then pandas
SYNC_THEN_PANDAS = textwrap.dedent(
    """
    import json, sys
    from aiclicks_pipeline.checkpoints import run_sync
    from aiclicks_pipeline.pipeline import make_pipeline
    pipeline = make_pipeline()
    first = run_sync(pipeline)
    again = run_sync(pipeline, resync_after_minutes=0)
    during = "pandas" in sys.modules
    import pandas as pd
    import pyarrow as pa
    frame = pd.DataFrame({"c": pd.Categorical(["a", "b"]), "n": pd.array([1, None], dtype="Int64")})
    print(json.dumps({
        "statuses": [first.status, again.status], "rows": first.total_rows, "again": again.total_rows,
        "pandas_during_syncs": during,
        "series": str(pa.array(frame["c"]).type), "nullable": str(pa.array(frame["n"]).type),
        "batch": pa.record_batch(frame).num_rows,
        "finders": [type(finder).__name__ for finder in sys.meta_path],
    }))
    """
)


@needs_pandas
def test_a_sync_imports_no_pandas_and_pyarrow_answers_as_before_after_it(tmp_path):
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    with small_sandbox() as sandbox:
        done = python(folder, SYNC_THEN_PANDAS, sandbox=sandbox)
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout.strip().splitlines()[-1])

        assert seen["statuses"] == ["success", "success"]
        assert seen["rows"] > 0 and seen["again"] == 0
        assert seen["pandas_during_syncs"] is False
        # pandas imported after the syncs: pyarrow takes its objects as it would have
        assert seen["series"].startswith("dictionary<")
        assert seen["nullable"] == "int64"
        assert seen["batch"] == 2
        assert "_PandasFinder" not in seen["finders"]
        assert_equals_clean_load(WarehouseFile(folder.warehouse), sandbox)


def test_dlts_own_tables_are_written_and_read_through_literals(tmp_path):
    """dlt's queries with parameters (its loads, versions and state; a query of ours) go to
    DuckDB with the values as literals: the same rows as bound."""
    pipeline = dlt.pipeline("literals", pipelines_dir=str(tmp_path / "p"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")), dataset_name="d")
    pipeline.run([{"id": 1, "text": "it's"}], table_name="things")
    pipeline.run([{"id": 2, "text": "a\\b %s"}], table_name="things")
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT id, text FROM things WHERE text IN (%s, %s) ORDER BY id", "it's", "a\\b %s")
        loads = client.execute_sql("SELECT load_id, status, inserted_at FROM _dlt_loads ORDER BY load_id")
        versions = client.execute_sql("SELECT count(*) FROM _dlt_version WHERE schema_name = %s", "literals")
    assert rows == [(1, "it's"), (2, "a\\b %s")]
    assert [load_id for load_id, _, _ in loads] == sorted(pipeline.list_completed_load_packages())
    assert all(status == 0 and inserted_at.tzinfo is not None for _, status, inserted_at in loads)
    assert versions[0][0] >= 1
    # the state dlt wrote as a literal is the state it reads back
    restored = dlt.pipeline("literals", pipelines_dir=str(tmp_path / "other"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")), dataset_name="d")
    restored.sync_destination()
    assert restored.state["_local"] is not None and restored.default_schema.tables["things"]
