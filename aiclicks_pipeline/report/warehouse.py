"""Where the report reads from: a DuckDB file directly (read only), or any other dlt destination
through the pipeline's SQL client. Both answer the same plain SQL with rows as dicts."""

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import duckdb

from ..errors import AIclicksError
from ..settings import DEFAULT_DATASET
from ..transform import DEFAULT_MODELS_SCHEMA


class ReportError(AIclicksError):
    """The report cannot be built from this warehouse (missing file, no data, unknown domain)."""


class WarehouseReader:
    """Runs the report's queries; `table()` names a table of the loaded dataset or, with
    `models=True`, of the dbt models' schema, quoted the way the warehouse wants."""

    dataset: str
    models_schema: str
    description: str

    def table(self, name: str, models: bool = False) -> str:
        raise NotImplementedError

    def rows(self, sql: str) -> List[Dict[str, Any]]:
        raise NotImplementedError

    def has_tables(self, names: List[str], models: bool = False) -> bool:
        """True when every table answers a query (the portable test: no information_schema)."""
        for name in names:
            try:
                self.rows(f"select 1 as present from {self.table(name, models)} where 1 = 0")
            except Exception:  # noqa: BLE001 - any failure means "not there" for this probe
                return False
        return True


class DuckDBReader(WarehouseReader):
    def __init__(self, connection: Any, path: Path, dataset: str, models_schema: str) -> None:
        self.connection = connection
        self.dataset = dataset
        self.models_schema = models_schema
        self.description = f"DuckDB file {path}, dataset {dataset}"

    def table(self, name: str, models: bool = False) -> str:
        schema = self.models_schema if models else self.dataset
        return f'"{schema}"."{name}"'

    def rows(self, sql: str) -> List[Dict[str, Any]]:
        cursor = self.connection.execute(sql)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


class SqlClientReader(WarehouseReader):
    """A dlt destination's own SQL client: names quoted and case-folded by dlt (Snowflake's upper
    case, BigQuery's project), credentials from dlt's config as for a sync."""

    def __init__(self, client: Any, destination: str, dataset: str, models_schema: str) -> None:
        self.client = client
        self.dataset = dataset
        self.models_schema = models_schema
        self.description = f"{destination}, dataset {dataset}"

    def table(self, name: str, models: bool = False) -> str:
        path = self.client.make_qualified_table_name_path(
            name, dataset_name=self.models_schema if models else self.dataset
        )
        return ".".join(path)

    def rows(self, sql: str) -> List[Dict[str, Any]]:
        with self.client.execute_query(sql) as cursor:
            columns = [column[0].lower() for column in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]


@contextmanager
def open_reader(
    duckdb_file: Optional[str],
    destination: Optional[str] = None,
    dataset: str = DEFAULT_DATASET,
    models_schema: str = DEFAULT_MODELS_SCHEMA,
    pipeline_name: Optional[str] = None,
    pipelines_dir: Optional[str] = None,
) -> Iterator[WarehouseReader]:
    """A reader on the DuckDB file (destination None or `duckdb`), else on the dlt destination."""
    from ..destinations import configured_destination, destination_kind

    kind = destination_kind(configured_destination(destination))
    if kind == "duckdb":
        path = Path(duckdb_file or "").resolve()
        if not path.is_file():
            raise ReportError(f"No DuckDB file {path}: load the data first (`aiclicks-pipeline run`)")
        try:
            connection = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            raise ReportError(f"Cannot open {path} ({exc}); is a sync still writing it?") from exc
        try:
            yield DuckDBReader(connection, path, dataset, models_schema)
        finally:
            connection.close()
        return

    from ..pipeline import make_pipeline

    options = {"pipeline_name": pipeline_name} if pipeline_name else {}
    pipeline = make_pipeline(
        destination=destination, dataset_name=dataset, pipelines_dir=pipelines_dir, **options
    )
    with pipeline.sql_client() as client:
        yield SqlClientReader(client, kind, dataset, models_schema)
