"""An Iceberg table merged in one commit per load file, not one per 1,000 rows.

dlt 1.31 merges a file into an Iceberg table with pyiceberg's `upsert`, a batch of 1,000 rows
at a time. Each batch scans the table for its keys (an OR of one AND per row when the key has
several columns), then commits a delete and an append: a 90-day load of a few domains took
about a minute on the S3 double, and the cost grows with the table times the rows loaded.

Here a file is merged in one transaction. The region it may touch is the rows whose every key
column holds one of the file's values for it (`domain_id IN (...) AND date IN (...)`): a cheap
filter, and a superset of the rows the file replaces. The rows of that region are read, those
whose key the file does not bring are kept, and the region is overwritten with the file's rows
and the kept ones. The table ends as `upsert` leaves it: a key the file brings has the file's
row, every other row is as it was. Only dlt's `upsert` strategy goes this way, and only a file
without duplicate keys (pyiceberg refuses those; dlt's own merge then says so).
"""

import functools
import operator
from typing import Any, List

_PATCHED = "_aiclicks_merges_per_file"


def region_filter(data: Any, join_cols: List[str]) -> Any:
    """The rows of the table whose every key column holds one of `data`'s values for it."""
    from pyiceberg.expressions import In

    return functools.reduce(
        operator.and_, [In(column, set(data.column(column).unique().to_pylist())) for column in join_cols]
    )


def merge_in_one_commit(table: Any, data: Any, join_cols: List[str]) -> None:
    """Merges `data` (an Arrow table, no two rows with the same key) into the Iceberg `table` by
    `join_cols`, in one transaction (module docstring)."""
    if data.num_rows == 0:
        return
    region = region_filter(data, join_cols)
    existing = table.scan(row_filter=region).to_arrow()
    with table.transaction() as transaction:
        if existing.num_rows == 0:
            transaction.append(data)
            return
        kept = existing.join(data.select(join_cols), keys=join_cols, join_type="left anti")
        transaction.overwrite(with_kept_rows(data, kept), overwrite_filter=region)


def with_kept_rows(data: Any, kept: Any) -> Any:
    """`data`'s rows and the `kept` ones (read from the table), in `data`'s types. A column the
    table has and `data` does not keeps its values in the kept rows and is null in `data`'s, as
    `upsert` leaves it."""
    import pyarrow as pa

    if kept.num_rows == 0:
        return data
    shared = kept.select(data.column_names).cast(data.schema)
    for column in kept.column_names:
        if column not in data.column_names:
            field = kept.schema.field(column)
            shared = shared.append_column(field, kept.column(column))
            data = data.append_column(field, pa.nulls(data.num_rows, field.type))
    return pa.concat_tables([data, shared])


def _patch_dlt_iceberg() -> None:
    """Idempotent: dlt's `merge_iceberg_table` merges an `upsert` file in one commit."""
    from dlt.common.libs import pyiceberg as dlt_iceberg

    if getattr(dlt_iceberg, _PATCHED, False):
        return
    original = dlt_iceberg.merge_iceberg_table

    def merge_iceberg_table(table: Any, data: Any, schema: Any, load_table_name: str) -> None:
        from dlt.common.schema.utils import (
            get_columns_names_with_prop,
            get_first_column_name_with_prop,
        )
        from pyiceberg.table.upsert_util import has_duplicate_rows

        if schema.get("x-merge-strategy") != "upsert":
            return original(table, data, schema, load_table_name)
        if "parent" in schema:
            join_cols = [get_first_column_name_with_prop(schema, "unique")]
        else:
            join_cols = get_columns_names_with_prop(schema, "primary_key")
        data = dlt_iceberg.ensure_iceberg_compatible_arrow_data(data)
        if not join_cols or has_duplicate_rows(data, join_cols):
            return original(table, data, schema, load_table_name)
        with table.update_schema() as update:  # as dlt does: new columns first
            update.union_by_name(data.schema)
        merge_in_one_commit(table, data, join_cols)

    merge_iceberg_table.__doc__ = original.__doc__
    dlt_iceberg.merge_iceberg_table = merge_iceberg_table
    setattr(dlt_iceberg, _PATCHED, True)


def apply() -> None:
    """Idempotent: an Iceberg load job first has dlt's merge replaced (above). At the job, not
    now: importing pyiceberg takes half a second, and it is an optional extra."""
    from dlt.destinations.impl.filesystem.filesystem import IcebergLoadFilesystemJob

    if getattr(IcebergLoadFilesystemJob, _PATCHED, False):
        return
    run = IcebergLoadFilesystemJob.run

    def run_with_merge_per_file(self: Any) -> None:
        _patch_dlt_iceberg()
        return run(self)

    run_with_merge_per_file.__doc__ = run.__doc__
    IcebergLoadFilesystemJob.run = run_with_merge_per_file  # type: ignore[method-assign]
    setattr(IcebergLoadFilesystemJob, _PATCHED, True)


__all__ = ["apply", "merge_in_one_commit", "region_filter"]
