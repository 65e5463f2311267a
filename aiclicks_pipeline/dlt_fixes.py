"""A fix to dlt 1.31's merge, applied when the package is imported.

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

from typing import Any, List, Sequence

from dlt.common.schema.utils import get_columns_names_with_prop, get_first_column_name_with_prop
from dlt.destinations.sql_jobs import SqlMergeFollowupJob

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


def apply() -> None:
    """Idempotent: wraps `SqlMergeFollowupJob.gen_merge_sql` once."""
    if getattr(SqlMergeFollowupJob, _PATCHED, False):
        return
    original = SqlMergeFollowupJob.gen_merge_sql.__func__  # type: ignore[attr-defined]

    def gen_merge_sql(cls: Any, table_chain: Sequence[Any], sql_client: Any, *args: Any, **kwargs: Any) -> List[str]:
        statements = original(cls, table_chain, sql_client, *args, **kwargs)
        return _dedup_root_insert(statements, table_chain, sql_client, cls)

    gen_merge_sql.__doc__ = original.__doc__
    SqlMergeFollowupJob.gen_merge_sql = classmethod(gen_merge_sql)  # type: ignore[assignment]
    setattr(SqlMergeFollowupJob, _PATCHED, True)
