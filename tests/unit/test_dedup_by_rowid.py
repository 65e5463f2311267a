"""dlt_fixes._dedup_by_rowid: on DuckDB the staging rows are deduplicated by the lowest rowid per
key instead of dlt's ROW_NUMBER() window (less memory: bench/RESULTS.md, Memory); the rows kept
are the same, one per key, with dlt's condition applied."""

import duckdb

import aiclicks_pipeline  # noqa: F401 - applies the fixes
from aiclicks_pipeline.dlt_fixes import _dedup_by_rowid
from dlt.destinations.sql_jobs import SqlMergeFollowupJob

COLUMNS = ['"id"', '"domain_id"', '"v"']


def _insert(condition: str = "1 = 1") -> str:
    select = SqlMergeFollowupJob.gen_select_from_dedup_sql(
        "staging", ['"id"', '"domain_id"'], COLUMNS, condition=condition
    )
    return f'INSERT INTO target({", ".join(COLUMNS)}) ' + select


def _load(statement: str) -> list:
    conn = duckdb.connect()
    conn.execute("CREATE TABLE staging (id TEXT, domain_id TEXT, v INTEGER)")
    conn.execute("CREATE TABLE target (id TEXT, domain_id TEXT, v INTEGER)")
    # every row twice (a copy resumed after a kill), one key three times, one row dropped by v
    rows = [("a", "d1", 1), ("b", "d1", 2), ("a", "d2", 3), ("c", "d2", -1)]
    conn.executemany("INSERT INTO staging VALUES (?, ?, ?)", rows + rows + [("b", "d1", 2)])
    conn.execute(statement)
    return sorted(conn.execute("SELECT * FROM target").fetchall())


def test_the_rowid_dedup_keeps_what_the_window_kept():
    for condition in ("1 = 1", '"v" >= 0'):
        original = _insert(condition)
        (rewritten,) = _dedup_by_rowid([original])
        assert "ROW_NUMBER" not in rewritten and "min(rowid)" in rewritten
        assert _load(rewritten) == _load(original)
    assert _load(_dedup_by_rowid([_insert()])[0]) == [("a", "d1", 1), ("a", "d2", 3), ("b", "d1", 2), ("c", "d2", -1)]


def test_other_statements_and_sorted_dedups_are_left_as_they_are():
    other = 'DELETE FROM target WHERE EXISTS (SELECT 1 FROM staging)'
    sorted_dedup = SqlMergeFollowupJob.gen_select_from_dedup_sql(
        "staging", ['"id"'], COLUMNS, dedup_sort=('"v"', "desc")
    )
    assert _dedup_by_rowid([other, sorted_dedup]) == [other, sorted_dedup]
