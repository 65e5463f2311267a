"""Reading the warehouse a sync wrote, whichever destination it is: the one reader of `status`,
`report`, `reset` and the run history.

`open_warehouse` takes the destination options `run` takes (destination, dataset, DuckDB file,
pipeline name; credentials from dlt's config, as for the sync) and reads through dlt's own SQL
client from a throwaway working folder: no sync's working folder is read or changed and no run
lock is taken. A DuckDB file is opened read-only; one a sync is loading is waited for, up to
`wait_s` (warehouse_wait.py), then it is one `WarehouseBusy` naming that process
(destinations.py). A reader holds the file only while it reads: a caller reads what it needs
inside the block and renders after it, for the sync waits for it meanwhile. A server warehouse
is read while a sync writes it.
`pipeline_warehouse` is the same reader on a pipeline's own client, for what runs under the run
lock and changes the warehouse (reset, the run history).

Queries are plain SQL. `table()` names a table as the warehouse wants it (dlt quotes and
case-folds: Snowflake's upper case, BigQuery's project); rows come back as dicts with lower-case
keys. Only `fetchall()` is used: it reads every result page on every destination.
"""

import tempfile
import time
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

import dlt
from dlt.pipeline.pipeline import Pipeline

from .destinations import WarehouseBusy, destination_kind, opened_destination
from .settings import DEFAULT_DATASET, DEFAULT_MODELS_SCHEMA, DEFAULT_PIPELINE_NAME
from .warehouse_wait import retry_while_held

T = TypeVar("T")
# how long a reader waits for a DuckDB file a sync is loading (a checkpoint's load takes seconds)
DEFAULT_READ_WAIT_S = 30.0


class Warehouse:
    """The dataset a sync loaded (and the dbt models' schema beside it), through dlt's SQL
    client."""

    def __init__(self, client: Any, dataset: str, models_schema: str, description: str) -> None:
        self.client = client
        self.dataset = dataset
        self.models_schema = models_schema
        self.description = description

    def table(self, name: str, models: bool = False) -> str:
        """`name` of the dataset or, with `models`, of the dbt models' schema, qualified and
        quoted."""
        path = self.client.make_qualified_table_name_path(
            name, dataset_name=self.models_schema if models else self.dataset
        )
        return ".".join(path)

    def rows(self, sql: str, *params: Any) -> List[Dict[str, Any]]:
        with self.client.execute_query(sql, *params) as cursor:
            columns = [column[0].lower() for column in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def execute(self, sql: str, *params: Any) -> None:
        """A statement that changes the warehouse (the commands holding the run lock)."""
        self.client.execute_sql(sql, *params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.client.begin_transaction():
            yield

    def has_tables(self, names: Sequence[str], models: bool = False) -> bool:
        """True when every table answers a query with its one row (the portable test: no
        information_schema). The row, not only the absence of an error: the BigQuery emulator
        answers a query of a missing table with no rows and no error."""
        for name in names:
            try:
                rows = self.rows(f"select count(*) as n from {self.table(name, models)} where 1 = 0")
            except Exception:  # noqa: BLE001 - any failure means "not there" for this probe
                return False
            if len(rows) != 1:
                return False
        return True


@contextmanager
def open_warehouse(
    destination: Any = None,
    dataset: str = DEFAULT_DATASET,
    duckdb_file: Optional[str] = None,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    models_schema: str = DEFAULT_MODELS_SCHEMA,
    wait_s: float = DEFAULT_READ_WAIT_S,
) -> Iterator[Warehouse]:
    """A reader of the warehouse a sync with these options wrote (see the module's docstring).

    Raises:
        WarehouseError: no DuckDB file there; WarehouseBusy: another process still writes it
        after `wait_s` seconds.
    """
    with throwaway_pipeline(destination, dataset, duckdb_file, pipeline_name, wait_s=wait_s) as pipeline:
        with pipeline_warehouse(pipeline, models_schema) as warehouse:
            yield warehouse


@contextmanager
def pipeline_warehouse(
    pipeline: Pipeline, models_schema: str = DEFAULT_MODELS_SCHEMA
) -> Iterator[Warehouse]:
    """The reader on `pipeline`'s dataset: dlt's `pipeline.dataset()`, its SQL client bound to
    the pipeline's schemas (or, for a pipeline that loaded nothing here, those the warehouse
    stores), so that a destination whose tables dlt maps from its schema (`filesystem`) reads
    like any other."""
    from dlt.common.configuration import inject_section
    from dlt.common.configuration.specs.config_section_context import ConfigSectionContext

    # dlt's dataset resolves its destination's credentials outside the pipeline's config
    # section; opened inside it, `[<pipeline name>.destination.<name>]` counts as for a sync
    section = ConfigSectionContext(
        pipeline_name=pipeline.pipeline_name,
        sections=(),
        merge_style=ConfigSectionContext.prefer_existing,
    )
    with ExitStack() as stack:
        with inject_section(section):
            dataset = stack.enter_context(pipeline.dataset())
        yield Warehouse(dataset.sql_client, pipeline.dataset_name, models_schema, describe(pipeline))


@contextmanager
def throwaway_pipeline(
    destination: Any = None,
    dataset: str = DEFAULT_DATASET,
    duckdb_file: Optional[str] = None,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    read_only: bool = True,
    wait_s: float = DEFAULT_READ_WAIT_S,
) -> Iterator[Pipeline]:
    """A dlt pipeline on the warehouse a sync with these options wrote, its working folder a
    temporary one deleted after. Its name is the sync's, so dlt finds the same configuration
    (`[<pipeline name>.destination.<name>]` included). A DuckDB file another process holds is
    waited for, up to `wait_s` seconds."""
    with ExitStack() as stack:
        opened = open_waiting(
            lambda: stack.enter_context(opened_destination(destination, duckdb_file, read_only)),
            wait_s,
            "read" if read_only else "write",
        )
        with tempfile.TemporaryDirectory(prefix="aiclicks_reader_") as folder:
            yield dlt.pipeline(
                pipeline_name=pipeline_name,
                destination=opened,
                dataset_name=dataset,
                pipelines_dir=folder,
            )


def open_waiting(attempt: Callable[[], T], wait_s: float, purpose: str) -> T:
    """`attempt()` (opening the warehouse), tried again while another process holds the DuckDB
    file (`WarehouseBusy`), for up to `wait_s` seconds; then the WarehouseBusy, saying so."""
    started = time.monotonic()
    try:
        return retry_while_held(attempt, _busy, wait_s, purpose, notice=False)
    except WarehouseBusy as exc:
        if wait_s <= 0:
            raise
        raise WarehouseBusy(f"{exc} (waited {time.monotonic() - started:.0f} s)") from None


def _busy(exc: BaseException) -> Optional[str]:
    return str(exc) if isinstance(exc, WarehouseBusy) else None


def destination_config(pipeline: Pipeline) -> Optional[Any]:
    """dlt's configuration of `pipeline`'s destination, credentials resolved the dlt way; None
    when dlt's config has none for it."""
    from dlt.common.configuration.exceptions import ConfigurationException

    try:
        return pipeline.destination_client().config
    except ConfigurationException:
        return None


def describe(pipeline: Pipeline) -> str:
    """`postgres 10.0.0.5:5432/analytics, dataset aiclicks`: where the data lives (dlt's
    `data_location`: a file, a host and database, a location; never a secret)."""
    config = destination_config(pipeline)
    try:
        location = config.data_location() if config is not None else None
    except Exception:  # noqa: BLE001 - a destination that cannot say: its kind says enough
        location = None
    kind = destination_kind(pipeline.destination)
    return f"{kind} {location}, dataset {pipeline.dataset_name}" if location else (
        f"{kind}, dataset {pipeline.dataset_name}"
    )


__all__ = [
    "DEFAULT_READ_WAIT_S",
    "Warehouse",
    "describe",
    "destination_config",
    "open_waiting",
    "open_warehouse",
    "pipeline_warehouse",
    "throwaway_pipeline",
]
