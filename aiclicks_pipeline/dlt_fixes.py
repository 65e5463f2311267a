"""Fixes to dlt 1.31, applied when the package is imported: its merge (and, on DuckDB, a lighter
deduplication of the staging rows: `_dedup_by_rowid`, and a choice of the rows to replace that
skips other domains' row groups: `_semi_join_by_equality`), and its extract step's metrics for
a resource that hands items to a child table itself (`_nested_tables_resources`).

Why: dlt loads a merge table's file into a staging table, then merges staging into the dataset.
If the process dies after the destination committed that copy but before dlt recorded the job
as done (the worker closes its connection first, which can take tens of milliseconds), the next
run resumes the package and copies the same file again: the staging table then holds every row
twice. dlt's merge SQL deduplicates staging rows by primary key for a table alone, and by
`_dlt_id` for nested tables, but a root table WITH nested tables (our `citations`, with
`citations__models`) is inserted with `WHERE _dlt_id IN (<deduplicated ids>)`, which lets both
copies through: every row doubled after a kill at the wrong moment.

The fix deduplicates that one INSERT by the row key, exactly as dlt already does for nested
tables; the statement is otherwise dlt's own. tests/test_kill.py sweeps a SIGKILL through the
load step to prove the merge stays exact.
"""

import re
from typing import Any, List, Sequence

from dlt.common.schema.utils import (
    get_columns_names_with_prop,
    get_first_column_name_with_prop,
    get_root_table,
    is_nested_table,
)
from dlt.destinations.sql_jobs import SqlMergeFollowupJob
from dlt.extract.extract import Extract

_PATCHED = "_aiclicks_root_dedup"


def _dedup_root_insert(
    statements: List[str], table_chain: Sequence[Any], sql_client: Any, job_class: Any
) -> List[str]:
    if len(table_chain) < 2:
        return statements  # a table alone is already deduplicated by its primary key
    root = table_chain[0]
    escape = sql_client.escape_column_name
    columns = [escape(name) for name in get_columns_names_with_prop(root, "name")]
    col_str = ", ".join(columns)
    table_name, staging_table_name = sql_client.get_qualified_table_names(root["name"])
    row_key = escape(get_first_column_name_with_prop(root, "row_key") or "_dlt_id")
    insert = f"INSERT INTO {table_name}({col_str}) "
    plain_select = f"SELECT {col_str} FROM {staging_table_name} WHERE "
    fixed = []
    for statement in statements:
        if statement.startswith(insert + plain_select):
            condition = statement[len(insert + plain_select):]
            statement = insert + job_class.gen_select_from_dedup_sql(
                staging_table_name, [row_key], columns, condition=condition
            )
        fixed.append(statement)
    return fixed


# dlt's deduplicating SELECT without a `dedup_sort` (sql_jobs.gen_select_from_dedup_sql): a
# ROW_NUMBER() over the staging table partitioned by the key
_ROW_NUMBER_DEDUP = re.compile(
    r"SELECT (?P<columns>[^\n]+?)\s+FROM \(\s+SELECT ROW_NUMBER\(\) OVER \(partition BY (?P<keys>[^\n]+?) "
    r"ORDER BY \(SELECT NULL\)\) AS _dlt_dedup_rn, [^\n]+?\s+FROM (?P<table>\S+)\s+\) AS _dlt_dedup_numbered "
    r"WHERE _dlt_dedup_rn = 1 AND \((?P<condition>.*)\)\s*$",
    re.S,
)


def _dedup_by_rowid(statements: List[str]) -> List[str]:
    """On DuckDB: dlt's deduplication of the staging rows (one row per key, any one) keeps the
    row of the lowest `rowid` per key instead of numbering every row with a window. The window
    holds every column of the staging table in memory at once; the GROUP BY holds the key and a
    rowid. The merge of a 2,000-domain sync's largest table (372,706 `fanout_queries` rows a
    checkpoint) peaked 55-110 MB lower, and it needs less of the DuckDB memory a load may use
    (bench/RESULTS.md, Memory). The same rows are kept: one per key."""
    fixed = []
    for statement in statements:
        if "_dlt_dedup_rn" in statement:
            statement = _ROW_NUMBER_DEDUP.sub(
                lambda m: f"SELECT {m['columns']} FROM {m['table']} WHERE rowid IN "
                f"(SELECT min(rowid) FROM {m['table']} GROUP BY {m['keys']}) AND ({m['condition']})",
                statement,
            )
        fixed.append(statement)
    return fixed


# dlt's choice of the target rows a merge replaces (sql_jobs.gen_key_table_clauses): a
# correlated EXISTS over the staging table on the key columns, ANDed equalities only
_KEYS_EXIST = re.compile(
    r"WHERE EXISTS \(SELECT 1 FROM (?P<staging>\S+) as\s+s WHERE "
    r"(?P<pairs>d\.\S+ = s\.\S+(?: AND d\.\S+ = s\.\S+)*)\)"
)
_KEY_PAIR = re.compile(r"d\.(\S+) = s\.(\S+)")


def _semi_join_by_equality(statements: List[str]) -> List[str]:
    """On DuckDB: the target rows a merge deletes (or, for a table with nested tables, notes in
    a temp table) are chosen by `(d.k1, d.k2) IN (SELECT s.k1, s.k2 FROM staging)` instead of
    dlt's `EXISTS (SELECT 1 FROM staging WHERE d.k1 = s.k1 AND ...)`. DuckDB turns the
    correlated EXISTS into a join on `IS NOT DISTINCT FROM`, which it does not push into the
    target's scan: every merge read the key columns of the whole table, and kept the blocks
    read until the load step ended (a 2,000-domain sync's last checkpoints: +186 MB for
    `fanout_queries`, growing with the warehouse). The IN is a join on `=`: DuckDB pushes the
    staging rows' bounds of each key column into the scan, and skips the row groups of other
    domains (checkpoints go in `domain_id` order). The same rows match: neither form matches a
    NULL (tests/unit/test_duckdb_merge_sql.py)."""

    def by_equality(match: "re.Match[str]") -> str:
        pairs = _KEY_PAIR.findall(match["pairs"])
        if any(d != s for d, s in pairs):
            return match.group(0)
        target = ", ".join(f"d.{d}" for d, _ in pairs)
        staged = ", ".join(f"s.{d}" for d, _ in pairs)
        if len(pairs) > 1:
            target = f"({target})"
        return f"WHERE {target} IN (SELECT {staged} FROM {match['staging']} as s)"

    return [_KEYS_EXIST.sub(by_equality, statement) for statement in statements]


def _is_duckdb(sql_client: Any) -> bool:
    return type(sql_client).__module__.startswith("dlt.destinations.impl.duckdb")


def _nested_tables_resources(compute_metrics: Any) -> Any:
    """dlt's extract metrics group a load's tables by the `resource` of each table's schema, which
    a nested table does not have (dlt's normalizer makes them, after the extract step). Our
    resources hand their child tables Arrow tables of their own (items.py): those tables count
    for their root table's resource, only while the metrics are computed (a nested table that
    keeps a `resource` fails dlt's next schema merge)."""

    def with_root_resources(self: Any, load_id: str, source: Any) -> Any:
        tables = source.schema.tables
        lent = [table for table in tables.values() if is_nested_table(table) and "resource" not in table]
        for table in lent:
            table["resource"] = get_root_table(tables, table["name"]).get("resource")
        try:
            return compute_metrics(self, load_id, source)
        finally:
            for table in lent:
                table.pop("resource", None)

    return with_root_resources


def apply() -> None:
    """Idempotent: wraps `SqlMergeFollowupJob.gen_merge_sql` and `Extract._compute_metrics` once."""
    if getattr(SqlMergeFollowupJob, _PATCHED, False):
        return
    Extract._compute_metrics = _nested_tables_resources(Extract._compute_metrics)  # type: ignore[method-assign]
    original = SqlMergeFollowupJob.gen_merge_sql.__func__  # type: ignore[attr-defined]

    def gen_merge_sql(cls: Any, table_chain: Sequence[Any], sql_client: Any, *args: Any, **kwargs: Any) -> List[str]:
        statements = original(cls, table_chain, sql_client, *args, **kwargs)
        statements = _dedup_root_insert(statements, table_chain, sql_client, cls)
        if not _is_duckdb(sql_client):
            return statements
        return _semi_join_by_equality(_dedup_by_rowid(statements))

    gen_merge_sql.__doc__ = original.__doc__
    SqlMergeFollowupJob.gen_merge_sql = classmethod(gen_merge_sql)  # type: ignore[assignment]
    setattr(SqlMergeFollowupJob, _PATCHED, True)
