"""The warehouse of each destination kind the tests load into, behind one interface (conftest's
`Warehouse`: `sync`, `query`, `rows`, `keyed`, `tables`, ...), so that a test case runs on
every kind unchanged:

- `duckdb`: a file in the test's folder (always);
- `postgres`: a schema of its own on the server `AICLICKS_TEST_POSTGRES` names;
- `snowflake`: a schema of its own in the account `AICLICKS_TEST_SNOWFLAKE` names (opt-in);
- `bigquery`: a dataset of its own on the BigQuery emulator (warehouse_doubles.py);
- `delta`, `iceberg`: dlt's `filesystem` destination with that table format, in a bucket of
  its own on the S3 double (warehouse_doubles.py); `delta-local`, `iceberg-local`: the same in
  a local folder.

`open_warehouse(kind, folder, request)` makes one; a kind whose server is not given skips,
saying how to get it. Each warehouse also gives what the CLI needs to load the same place
(`cli_args()`, `cli_env()`), and `drop()` removes what it loaded.

SQL in a test names tables `aiclicks.<table>` (DEFAULT_DATASET) and is written in the dialect
DuckDB, PostgreSQL and BigQuery share; each warehouse answers it on its own engine. A
lakehouse is read the way an engine outside dlt would: its Delta or Iceberg tables through
`deltalake` or `pyiceberg` (Arrow), dlt's own tables (`_dlt_loads`, the state) from their
files, all queried in an in-memory DuckDB.
"""

import os
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import dlt
import pytest

from aiclicks_pipeline.checkpoints import SyncResult
from aiclicks_pipeline.pipeline import make_pipeline
from aiclicks_pipeline.settings import DEFAULT_DATASET

from .conftest import Warehouse

POSTGRES_ENV = "AICLICKS_TEST_POSTGRES"
NO_POSTGRES = (
    f"no PostgreSQL server given: set {POSTGRES_ENV}=postgresql://user:password@host:5432/db "
    "to load into one (.ci/run starts one and sets it)"
)
SNOWFLAKE_ENV = "AICLICKS_TEST_SNOWFLAKE"
NO_SNOWFLAKE = (
    f"no Snowflake account given (opt-in; nothing offline stands in for Snowflake): set "
    f"{SNOWFLAKE_ENV}=snowflake://user:password@account/database?warehouse=WH&role=ROLE to "
    "load into a schema of its own there, dropped afterwards"
)
# every kind; SQL_KINDS are those whose SQL client takes writes (reset's DELETE, the run
# history's UPDATE)
SQL_KINDS = ["duckdb", "postgres", "bigquery"]
LAKEHOUSE_KINDS = ["delta", "iceberg"]
KINDS = SQL_KINDS + LAKEHOUSE_KINDS
# the cases about the sync itself (faults, a 404, shards, state, ...) behave alike whatever the
# table format, and Iceberg merges through pyiceberg's upsert, several times slower than
# Delta's merge: the lakehouse runs them on Delta
SYNC_KINDS = SQL_KINDS + ["delta"]
QUALIFIED = re.compile(rf"\b{DEFAULT_DATASET}\.(\w+)")


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.skip(NO_POSTGRES)
    return url


def snowflake_url() -> str:
    url = os.environ.get(SNOWFLAKE_ENV, "").strip()
    if not url:
        pytest.skip(NO_SNOWFLAKE)
    return url


def new_dataset_name() -> str:
    """A dataset of its own for a test on a shared server."""
    return f"aiclicks_t{uuid.uuid4().hex[:10]}"


class DuckDBWarehouse(Warehouse):
    kind = "duckdb"
    dataset = DEFAULT_DATASET

    def drop(self) -> None:
        pass

    def load_into_the_same_place_as(self, other: "DuckDBWarehouse") -> None:
        self.duckdb_path = other.duckdb_path
        self.pipeline = self.new_pipeline()

    def cli_args(self) -> List[str]:
        return ["--duckdb-file", str(self.duckdb_path), "--pipelines-dir", str(self.pipelines_dir)]

    def cli_env(self) -> Dict[str, str]:
        return {}


class RemoteWarehouse(Warehouse):
    """A warehouse a dlt destination factory reaches, in a dataset of its own; a test's SQL
    gets that dataset's name for `aiclicks.`."""

    kind = ""
    destination_name = ""
    # dlt settings a run into this warehouse takes (the CLI gets them as environment variables)
    run_config: Dict[str, Any] = {}

    def __init__(self, folder: Path, dataset: str, name: str = "aiclicks_test") -> None:
        self.dataset = dataset
        super().__init__(folder, name=name)

    def destination(self) -> Any:
        raise NotImplementedError

    def new_pipeline(self) -> Any:
        return make_pipeline(
            destination=self.destination(),
            dataset_name=self.dataset,
            pipeline_name=self.name,
            pipelines_dir=str(self.pipelines_dir),
        )

    def sync(self, sandbox: Any, **options: Any) -> SyncResult:
        with dlt.config.values(self.run_config):
            return super().sync(sandbox, **options)

    def load_into_the_same_place_as(self, other: "RemoteWarehouse") -> None:
        self.dataset = other.dataset
        self.pipeline = self.new_pipeline()

    def cli_args(self) -> List[str]:
        return [
            "--destination", self.destination_name, "--dataset", self.dataset,
            "--pipelines-dir", str(self.pipelines_dir),
        ]

    def cli_env(self) -> Dict[str, str]:
        return {key.upper().replace(".", "__"): str(value) for key, value in self.run_config.items()}

    def in_dataset(self, sql: str) -> str:
        return sql.replace(f"{DEFAULT_DATASET}.", f"{self.dataset}.")

    def _cursor_rows(self, sql: str) -> Tuple[List[str], List[Tuple[Any, ...]]]:
        raise NotImplementedError

    def query(self, sql: str) -> List[Tuple[Any, ...]]:
        return self._cursor_rows(sql)[1]

    def rows(self, table: str) -> List[Dict[str, Any]]:
        columns, rows = self._cursor_rows(f"select * from {DEFAULT_DATASET}.{table}")
        return [dict(zip(columns, row)) for row in rows]


class PostgresWarehouse(RemoteWarehouse):
    """The conftest warehouse's queries, answered by a PostgreSQL server."""

    kind = destination_name = "postgres"

    def __init__(self, folder: Path, url: str, name: str = "aiclicks_test") -> None:
        self.url = url
        super().__init__(folder, new_dataset_name(), name=name)

    def destination(self) -> Any:
        return dlt.destinations.postgres(credentials=self.url)

    def cli_env(self) -> Dict[str, str]:
        return {"DESTINATION__POSTGRES__CREDENTIALS": self.url}

    def _cursor_rows(self, sql: str) -> Tuple[List[str], List[Tuple[Any, ...]]]:
        import psycopg2

        with psycopg2.connect(self.url) as connection, connection.cursor() as cursor:
            cursor.execute(self.in_dataset(sql))
            return [c[0] for c in cursor.description], cursor.fetchall()

    def tables(self) -> set:
        rows = self.query(
            "select table_name from information_schema.tables "
            f"where table_schema = '{self.dataset}'"
        )
        return {name for (name,) in rows}

    def drop(self) -> None:
        import psycopg2

        with psycopg2.connect(self.url) as connection, connection.cursor() as cursor:
            for schema in (self.dataset, f"{self.dataset}_staging"):
                cursor.execute(f"drop schema if exists {schema} cascade")


class BigQueryWarehouse(RemoteWarehouse):
    """A dataset on the BigQuery emulator, loaded by dlt's own `bigquery` destination and read
    with google-cloud-bigquery (all result pages: `.result()` iterates them)."""

    kind = destination_name = "bigquery"

    def __init__(self, folder: Path, emulator: Any, name: str = "aiclicks_test") -> None:
        self.emulator = emulator
        super().__init__(folder, emulator.new_dataset(), name=name)

    def destination(self) -> Any:
        return self.emulator.destination()

    def cli_env(self) -> Dict[str, str]:
        return self.emulator.env()

    def _cursor_rows(self, sql: str) -> Tuple[List[str], List[Tuple[Any, ...]]]:
        result = self.emulator.client().query(self.in_dataset(sql)).result()
        return [field.name for field in result.schema], [tuple(row.values()) for row in result]

    def tables(self) -> set:
        return {t.table_id for t in self.emulator.client().list_tables(self.dataset)}

    def drop(self) -> None:
        pass  # the emulator is the test's own: it goes with its data


class SnowflakeWarehouse(RemoteWarehouse):
    """A schema of its own in a real Snowflake account (`AICLICKS_TEST_SNOWFLAKE`, opt-in),
    read through dlt's SQL client (the Snowflake connector); Snowflake's upper-case names come
    back lower case."""

    kind = destination_name = "snowflake"

    def __init__(self, folder: Path, url: str, name: str = "aiclicks_test") -> None:
        self.url = url
        super().__init__(folder, new_dataset_name(), name=name)

    def destination(self) -> Any:
        return dlt.destinations.snowflake(credentials=self.url)

    def cli_env(self) -> Dict[str, str]:
        return {"DESTINATION__SNOWFLAKE__CREDENTIALS": self.url}

    def _cursor_rows(self, sql: str) -> Tuple[List[str], List[Tuple[Any, ...]]]:
        with self.pipeline.sql_client() as client:
            with client.execute_query(self.in_dataset(sql)) as cursor:
                return [c[0].lower() for c in cursor.description], cursor.fetchall()

    def tables(self) -> set:
        rows = self.query(
            "select table_name from information_schema.tables "
            f"where table_schema = '{self.dataset.upper()}'"
        )
        return {name.lower() for (name,) in rows}

    def drop(self) -> None:
        with self.pipeline.sql_client() as client:
            for schema in (self.dataset, f"{self.dataset}_staging"):
                client.execute_sql(f"drop schema if exists {schema} cascade")


class LakehouseWarehouse(RemoteWarehouse):
    """dlt's `filesystem` destination writing Delta or Iceberg tables into a bucket (the S3
    double) or a local folder. Read back with deltalake / pyiceberg, queried in DuckDB."""

    destination_name = "filesystem"

    def __init__(
        self,
        folder: Path,
        table_format: str,
        bucket_url: str,
        credentials: Optional[Dict[str, str]] = None,
        name: str = "aiclicks_test",
    ) -> None:
        self.table_format = table_format
        self.kind = table_format
        self.bucket_url = bucket_url
        self.credentials = credentials
        self.run_config = {"destination.filesystem.table_format": table_format}
        # a bucket per test: the dataset is the folder in it
        super().__init__(folder, DEFAULT_DATASET, name=name)

    def destination(self) -> Any:
        return dlt.destinations.filesystem(bucket_url=self.bucket_url, credentials=self.credentials)

    def load_into_the_same_place_as(self, other: "LakehouseWarehouse") -> None:
        self.bucket_url, self.credentials = other.bucket_url, other.credentials
        super().load_into_the_same_place_as(other)

    def cli_env(self) -> Dict[str, str]:
        env = {**super().cli_env(), "DESTINATION__FILESYSTEM__BUCKET_URL": self.bucket_url}
        for key, value in (self.credentials or {}).items():
            env[f"DESTINATION__FILESYSTEM__CREDENTIALS__{key.upper()}"] = value
        return env

    # --- reading the tables as another engine would --------------------------------------

    def _fs(self) -> Any:
        from dlt.common.storages.fsspec_filesystem import fsspec_from_config

        config = self.pipeline.destination_client().config
        return fsspec_from_config(config)[0]

    def _table_url(self, table: str) -> str:
        return f"{self.bucket_url.rstrip('/')}/{self.dataset}/{table}"

    def _storage_options(self) -> Dict[str, str]:
        if not self.credentials:
            return {}
        return {
            "AWS_ACCESS_KEY_ID": self.credentials["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": self.credentials["aws_secret_access_key"],
            "AWS_REGION": self.credentials["region_name"],
            "AWS_ENDPOINT_URL": self.credentials["endpoint_url"],
            "AWS_ALLOW_HTTP": "true",
        }

    def read_table(self, table: str) -> Any:
        """The table as an Arrow table: its Delta or Iceberg snapshot, or (dlt's own tables,
        written as files) its files; None where the table has no folder."""
        import pyarrow as pa
        import pyarrow.json as pa_json

        fs = self._fs()
        url = self._table_url(table)
        if not fs.exists(url):
            return None
        if fs.exists(f"{url}/_delta_log"):
            from deltalake import DeltaTable

            return DeltaTable(url, storage_options=self._storage_options()).to_pyarrow_table()
        if fs.exists(f"{url}/metadata"):
            return self._read_iceberg(fs, url)
        files = [f for f in fs.ls(url, detail=False) if not f.endswith("/")]
        parts = [pa_json.read_json(fs.open(f, "rb", compression="infer")) for f in files]
        return pa.concat_tables(parts, promote_options="default") if parts else None

    def _read_iceberg(self, fs: Any, url: str) -> Any:
        from pyiceberg.table import StaticTable

        metadata = sorted(
            (f for f in fs.ls(f"{url}/metadata", detail=False) if f.endswith(".metadata.json")),
            key=lambda f: int(re.search(r"(\d+)-", f.rsplit("/", 1)[-1]).group(1)),
        )
        protocol = url.split("://", 1)[0] + "://" if "://" in url else ""
        latest = metadata[-1] if metadata[-1].startswith(protocol) else protocol + metadata[-1]
        properties = {}
        if self.credentials:
            properties = {
                "s3.endpoint": self.credentials["endpoint_url"],
                "s3.access-key-id": self.credentials["aws_access_key_id"],
                "s3.secret-access-key": self.credentials["aws_secret_access_key"],
                "s3.region": self.credentials["region_name"],
            }
        return StaticTable.from_metadata(latest, properties=properties).scan().to_arrow()

    def _cursor_rows(self, sql: str) -> Tuple[List[str], List[Tuple[Any, ...]]]:
        import duckdb

        with duckdb.connect() as connection:
            connection.execute(f"create schema {DEFAULT_DATASET}")
            for table in sorted(set(QUALIFIED.findall(sql))):
                arrow = self.read_table(table)
                if arrow is None:
                    continue
                connection.register(f"arrow_{table}", arrow)
                connection.execute(
                    f"create view {DEFAULT_DATASET}.{table} as select * from arrow_{table}"
                )
            cursor = connection.execute(sql)
            return [c[0] for c in cursor.description], cursor.fetchall()

    def tables(self) -> set:
        fs = self._fs()
        root = f"{self.bucket_url.rstrip('/')}/{self.dataset}"
        return {path.rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(root, detail=False)}

    def drop(self) -> None:
        pass  # the bucket or folder is the test's own


def open_warehouse(kind: str, folder: Path, request: Any, name: str = "aiclicks_test") -> Warehouse:
    """A warehouse of `kind` (KINDS, or a lakehouse kind with `-local`) for a test; skips,
    saying why, where its server is not given."""
    if kind == "duckdb":
        return DuckDBWarehouse(folder, name=name)
    if kind == "postgres":
        return PostgresWarehouse(folder, postgres_url(), name=name)
    if kind == "snowflake":
        return SnowflakeWarehouse(folder, snowflake_url(), name=name)
    if kind == "bigquery":
        return BigQueryWarehouse(folder, request.getfixturevalue("bigquery_emulator"), name=name)
    table_format, _, where = kind.partition("-")
    if table_format in LAKEHOUSE_KINDS and where == "local":
        return LakehouseWarehouse(folder, table_format, (folder / "lake").as_uri(), name=name)
    if table_format in LAKEHOUSE_KINDS and not where:
        s3 = request.getfixturevalue("s3_double")
        return LakehouseWarehouse(
            folder, table_format, s3.new_bucket(), s3.filesystem_credentials(), name=name
        )
    raise ValueError(f"unknown warehouse kind {kind!r}")


__all__ = [
    "KINDS", "LAKEHOUSE_KINDS", "NO_POSTGRES", "POSTGRES_ENV", "SQL_KINDS", "SYNC_KINDS", "BigQueryWarehouse",
    "DuckDBWarehouse", "LakehouseWarehouse", "PostgresWarehouse", "SnowflakeWarehouse",
    "open_warehouse", "postgres_url", "snowflake_url",
]
