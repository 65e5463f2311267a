"""aiclicks_pipeline: the AIclicks API into your warehouse, with dlt."""

from . import dlt_fixes, dlt_hint_cache, duckdb_load, iceberg_merge, pandas_import, warehouse_wait

dlt_fixes.apply()
dlt_hint_cache.apply()  # dlt's configuration lookups answer each type hint once
duckdb_load.apply()  # a load step holds its DuckDB file open, its memory freed between jobs
iceberg_merge.apply()  # an Iceberg table merges a load file in one commit
pandas_import.apply()  # DuckDB's settings and dlt's query parameters as literals: no pandas
warehouse_wait.apply()  # a sync waits for a reader of its DuckDB file (warehouse_wait.py)

from .source import aiclicks_source  # noqa: E402
from .sync import SyncContext  # noqa: E402

__all__ = ["aiclicks_source", "SyncContext"]
__version__ = "0.1.0"
