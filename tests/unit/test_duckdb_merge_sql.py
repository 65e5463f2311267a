"""dlt_fixes' rewrites of dlt's merge statements on DuckDB (less memory: bench/RESULTS.md, Memory).
`_dedup_by_rowid`: the staging rows are deduplicated by the lowest rowid per key instead of dlt's
ROW_NUMBER() window; the rows kept are the same, one per key, with dlt's condition applied.
`_semi_join_by_equality`: the target rows a merge replaces are chosen by an IN on the keys
instead of a correlated EXISTS; the same rows, and DuckDB skips the row groups of other keys."""

import json

import duckdb

import aiclicks_pipeline  # noqa: F401 - applies the fixes
from aiclicks_pipeline.dlt_fixes import _dedup_by_rowid, _semi_join_by_equality
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


def _key_clause(root: str, staging: str, keys: list) -> str:
    (clause,) = SqlMergeFollowupJob.gen_key_table_clauses(root, staging, keys, [], for_delete=True)
    return clause


def _replaced(statement: str) -> set:
    """The target rows left after `statement`, on keys with NULLs, a key staged twice and
    keys that differ in one column only."""
    conn = duckdb.connect()
    conn.execute("CREATE TABLE target (id TEXT, domain_id TEXT, v INTEGER)")
    conn.execute("CREATE TABLE staging (id TEXT, domain_id TEXT, v INTEGER)")
    conn.executemany("INSERT INTO target VALUES (?, ?, ?)", [
        ("a", "d1", 1), ("a", "d2", 2), ("b", "d1", 3), (None, "d1", 4), ("c", None, 5), ("e", "d9", 6),
    ])
    conn.executemany("INSERT INTO staging VALUES (?, ?, ?)", [
        ("a", "d1", 10), ("a", "d1", 11), ("b", "d2", 12), (None, "d1", 13), ("c", None, 14),
    ])
    conn.execute(statement)
    return set(conn.execute("SELECT * FROM target").fetchall())


def test_the_rows_a_merge_replaces_are_chosen_by_equality_and_are_the_same():
    for keys in (['"id"', '"domain_id"'], ['"domain_id"'], ['"id"']):
        original = "DELETE " + _key_clause("target", "staging", keys)
        (rewritten,) = _semi_join_by_equality([original])
        assert "EXISTS" in original and "EXISTS" not in rewritten, rewritten
        assert " IN (SELECT s." in rewritten, rewritten
        assert _replaced(rewritten) == _replaced(original), keys
    both = "DELETE " + _key_clause("target", "staging", ['"id"', '"domain_id"'])
    assert _replaced(_semi_join_by_equality([both])[0]) == {
        ("a", "d2", 2), ("b", "d1", 3), (None, "d1", 4), ("c", None, 5), ("e", "d9", 6)
    }


def test_the_target_scan_skips_the_row_groups_of_other_keys():
    """The point of the rewrite: DuckDB pushes the staged keys' bounds into the target's scan
    (dlt's correlated EXISTS scanned every row of the target)."""
    conn = duckdb.connect()
    conn.execute("CREATE TABLE target AS SELECT 'id' || i AS id, printf('d%06d', i // 1000) AS domain_id, "
                 "i AS v FROM range(500000) t(i)")
    conn.execute("CREATE TABLE staging AS SELECT * FROM target WHERE domain_id = 'd000499'")
    original = "SELECT count(*) " + _key_clause("target", "staging", ['"id"', '"domain_id"'])
    (rewritten,) = _semi_join_by_equality([original])
    scanned = {}
    for form, sql in (("dlt", original), ("rewritten", rewritten)):
        assert conn.execute(sql).fetchone()[0] == 1000
        plan = json.loads(conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchall()[0][1])
        scanned[form] = _rows_scanned(plan, "target")
    assert scanned["dlt"] == 500000
    assert scanned["rewritten"] < 50000, scanned


def _rows_scanned(node: dict, table: str) -> int:
    """Rows the scans of `table` read, in an EXPLAIN ANALYZE's JSON tree."""
    own = 0
    if node.get("operator_type") == "TABLE_SCAN" and table in str(node.get("extra_info", {}).get("Table")):
        own = node["operator_rows_scanned"]
    return own + sum(_rows_scanned(child, table) for child in node.get("children", []))


def test_statements_other_than_a_key_choice_are_left_as_they_are():
    other = 'DELETE FROM target WHERE EXISTS (SELECT 1 FROM staging)'
    filtered = "DELETE " + SqlMergeFollowupJob.gen_key_table_clauses(
        "target", "staging", ['"id"'], ['"domain_id"'], for_delete=True
    )[0]  # a primary and a merge key: OR between them
    assert _semi_join_by_equality([other, filtered]) == [other, filtered]
