"""The pipeline's state as the warehouse keeps it: only the newest copy.

dlt commits the whole pipeline state with every load, as a new row of `_dlt_pipeline_state`
(compressed), and restores the newest row of a completed load (`sync_destination`). Our state
holds a cursor and a sync time per domain and resource, so it grows with the account (about
570 KB a row at 2,000 domains), and a sync in checkpoints adds a row per checkpoint: a first
sync of 2,000 domains left 154 rows, 88 MB, growing with the square of the account.

Every query that reads the newest row scans them all, and on DuckDB every load rewrites
the table's one row group when it commits: that alone took a load from 190 MB of RSS to
480 MB at the end of a 2,000-domain sync. So after each checkpoint the rows of older loads of
this pipeline are deleted: what dlt restores is the newest row of a completed load, which
stays, with any row of a newer load (not yet completed). Other pipelines' rows (shards
loading the same dataset) are left alone.
"""

import logging

from dlt.common.schema.typing import C_DLT_LOAD_ID, C_DLT_LOADS_TABLE_LOAD_ID
from dlt.pipeline.pipeline import Pipeline

logger = logging.getLogger("aiclicks_pipeline")

# dlt's status of a completed load in `_dlt_loads`
LOAD_COMPLETED = 0


def prune_stored_states(pipeline: Pipeline) -> None:
    """Deletes this pipeline's state rows older than the newest one of a completed load (a
    no-op where the destination has no SQL client, or nothing was loaded yet)."""
    try:
        with pipeline.sql_client() as client:
            schema = pipeline.default_schema
            states = client.make_qualified_table_name(schema.state_table_name)
            loads = client.make_qualified_table_name(schema.loads_table_name)

            def column(name: str) -> str:
                return client.escape_column_name(schema.naming.normalize_path(name))

            load_id, state_load_id = column(C_DLT_LOADS_TABLE_LOAD_ID), column(C_DLT_LOAD_ID)
            pipeline_name, status = column("pipeline_name"), column("status")
            client.execute_sql(
                f"DELETE FROM {states} WHERE {pipeline_name} = %s AND {state_load_id} < ("
                f"SELECT max(s.{state_load_id}) FROM {states} AS s JOIN {loads} AS l"
                f" ON l.{load_id} = s.{state_load_id}"
                f" WHERE s.{pipeline_name} = %s AND l.{status} = {LOAD_COMPLETED})",
                pipeline.pipeline_name,
                pipeline.pipeline_name,
            )
    except Exception:  # maintenance: never a reason to fail a sync whose load committed
        logger.debug("older state rows of %s not pruned", pipeline.pipeline_name, exc_info=True)
