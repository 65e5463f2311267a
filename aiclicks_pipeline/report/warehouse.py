"""Where the report reads from: warehouse.py's reader, the one of every command (a DuckDB file
read-only, any other dlt destination through dlt's SQL client, credentials as for `run`)."""

from ..errors import AIclicksError
from ..warehouse import Warehouse as WarehouseReader


class ReportError(AIclicksError):
    """The report cannot be built from this warehouse (missing file, no data, unknown domain)."""


__all__ = ["ReportError", "WarehouseReader"]
