"""The warehouses the tests load into, one of each destination kind behind one interface
(`sync`, `query`, `rows`, `keyed`, `tables`, `drop`, and `cli_args()` / `cli_env()` for a CLI
run into the same place), so that a test case runs on every kind unchanged; and their
comparison with the sandbox's ground truth.

- `duckdb` (`Warehouse`): a file in the test's folder (always);
- `postgres`: a schema of its own on the server `AICLICKS_TEST_POSTGRES` names;
- `snowflake`: a schema of its own in the account `AICLICKS_TEST_SNOWFLAKE` names (opt-in);
- `bigquery`: a dataset of its own on the BigQuery emulator (doubles.py);
- `delta`, `iceberg`: dlt's `filesystem` destination with that table format, in a bucket of
  its own on the S3 double (doubles.py); `delta-local`, `iceberg-local`: the same in a local
  folder.

`open_warehouse(kind, folder, request)` makes one; a kind whose server is not given skips,
saying how to get it (the doubles come from pytest fixtures: `request` is needed for them).

SQL in a test names tables `aiclicks.<table>` (DEFAULT_DATASET) and is written in the dialect
DuckDB, PostgreSQL and BigQuery share; each warehouse answers it on its own engine. A
lakehouse is read the way an engine outside dlt would: its Delta or Iceberg tables through
`deltalake` or `pyiceberg` (Arrow), dlt's own tables (`_dlt_loads`, the state) from their
files, all queried in an in-memory DuckDB.
"""

import os
import re
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import dlt
import duckdb
import pytest

from aiclicks_pipeline.checkpoints import SyncResult, run_sync
from aiclicks_pipeline.pipeline import make_pipeline
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import CHILD_TABLES, DEFAULT_DATASET, ENDPOINTS
from aiclicks_pipeline.windows import parse_timestamp

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
# every kind; SQL_KINDS are those whose SQL client takes writes
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


class Warehouse:
    """A dlt pipeline into a DuckDB file, and the queries tests ask of it; the other kinds
    subclass it."""

    kind = "duckdb"
    dataset = DEFAULT_DATASET

    def __init__(
        self, folder: Path, name: str = "aiclicks_test", duckdb_name: str = "warehouse.duckdb"
    ) -> None:
        self.folder = folder
        self.duckdb_path = folder / duckdb_name
        self.pipelines_dir = folder / "pipelines"
        self.name = name
        self.pipeline = self.new_pipeline()

    def new_pipeline(self) -> Any:
        return make_pipeline(
            pipeline_name=self.name,
            pipelines_dir=str(self.pipelines_dir),
            duckdb_file=str(self.duckdb_path),
        )

    def sync(self, sandbox: Any, **options: Any) -> SyncResult:
        options.setdefault("base_url", sandbox.base_url)
        options.setdefault("api_key", sandbox.api_key)
        options.setdefault("backoff_factor", 0.01)
        return run_sync(self.pipeline, **options)

    def load_into_the_same_place_as(self, other: "Warehouse") -> None:
        """This warehouse's pipeline (its own name and working folder) loads where `other`'s
        does: another worker of the same warehouse."""
        self.duckdb_path = other.duckdb_path
        self.pipeline = self.new_pipeline()

    def cli_args(self) -> List[str]:
        """The command line's options for this warehouse (with `cli_env()`)."""
        return ["--duckdb-file", str(self.duckdb_path), "--pipelines-dir", str(self.pipelines_dir)]

    def cli_env(self) -> Dict[str, str]:
        return {}

    def query(self, sql: str) -> List[Tuple[Any, ...]]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            return connection.execute(sql).fetchall()

    def tables(self) -> set:
        rows = self.query(
            f"select table_name from information_schema.tables where table_schema = '{DEFAULT_DATASET}'"
        )
        return {name for (name,) in rows}

    def rows(self, table: str) -> List[Dict[str, Any]]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            cursor = connection.execute(f"select * from {DEFAULT_DATASET}.{table}")
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def keyed(self, table: str) -> Dict[Tuple[str, ...], Dict[str, Any]]:
        key = ENDPOINTS[table]["primary_key"]
        return {tuple(str(row[c]) for c in key): row for row in self.rows(table)}

    def citation_models(self) -> set:
        rows = self.query(
            f"""select c.domain_id, c.days, c.snapshot_date, c.url, m.value
            from {DEFAULT_DATASET}.citations c
            join {DEFAULT_DATASET}.citations__models m on m._dlt_parent_id = c._dlt_id"""
        )
        return {tuple(str(v) for v in row) for row in rows}

    def drop(self) -> None:
        pass


class WarehouseFile(Warehouse):
    """The queries of the tests' Warehouse on a DuckDB file, without a pipeline of its own."""

    def __init__(self, path: Path) -> None:
        self.duckdb_path = path


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
    """A schema of its own on the PostgreSQL server `AICLICKS_TEST_POSTGRES` names."""

    kind = destination_name = "postgres"

    def __init__(self, folder: Path, url: str, name: str = "aiclicks_test") -> None:
        self.url = url
        super().__init__(folder, new_dataset_name(), name=name)

    @property
    def models_schema(self) -> str:
        """Where `transform --target postgres` writes the dbt models of this dataset."""
        return f"{self.dataset}_models"

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
            for schema in (self.dataset, f"{self.dataset}_staging", self.models_schema):
                cursor.execute(f"drop schema if exists {schema} cascade")


class BigQueryWarehouse(RemoteWarehouse):
    """A dataset on the BigQuery emulator, loaded by dlt's own `bigquery` destination and read
    with google-cloud-bigquery (all result pages: `.result()` iterates them)."""

    kind = destination_name = "bigquery"

    def __init__(self, folder: Path, emulator: Any, name: str = "aiclicks_test") -> None:
        self.emulator = emulator
        super().__init__(folder, new_dataset_name(), name=name)

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


def open_warehouse(
    kind: str, folder: Path, request: Any = None, name: str = "aiclicks_test"
) -> Warehouse:
    """A warehouse of `kind` (KINDS, `snowflake`, or a lakehouse kind with `-local`) for a
    test; skips, saying why, where its server is not given. `request` (pytest's) starts the
    emulator or the S3 double a kind needs."""
    if kind == "duckdb":
        return Warehouse(folder, name=name)
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


# --- the warehouse against the sandbox's ground truth ---------------------------------------------


def normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        return parse_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and "T" in value:
        try:
            return parse_timestamp(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, int) and not isinstance(value, bool):
        return round(float(value), 9)
    return value


def assert_table_matches(warehouse: Any, truth: WarehouseTruth, table: str) -> int:
    """Same keys, and every field the API sent has the same value. Returns the row count."""
    loaded = warehouse.keyed(table)
    expected = truth.rows(table)
    missing = set(expected) - set(loaded)
    extra = set(loaded) - set(expected)
    assert not missing and not extra, (
        f"{table}: {len(missing)} missing (e.g. {sorted(missing)[:2]}), "
        f"{len(extra)} unexpected (e.g. {sorted(extra)[:2]})"
    )
    for key, expected_row in expected.items():
        row = loaded[key]
        for column, value in expected_row.items():
            if column == "models":
                continue
            assert normalise(row[column]) == normalise(value), (
                f"{table} {key} {column}: warehouse {row[column]!r} != truth {value!r}"
            )
    return len(expected)


def assert_keys_unique(warehouse: Warehouse) -> None:
    """No primary key twice in any loaded table."""
    present = warehouse.tables()
    for table, spec in ENDPOINTS.items():
        if table not in present:
            continue
        key = ", ".join(spec["primary_key"])
        ((duplicates,),) = warehouse.query(
            f"select count(*) from (select {key} from {DEFAULT_DATASET}.{table} "
            f"group by {key} having count(*) > 1) as d"
        )
        assert duplicates == 0, f"{warehouse.kind}: {table} has duplicate keys"


def assert_child_rows_belong(warehouse: Warehouse) -> int:
    """Every child row hangs off a parent row; no (parent, position) twice. Returns the count."""
    for child, spec in CHILD_TABLES.items():
        parent = spec["parent"]
        ((orphans,),) = warehouse.query(
            f"select count(*) from {DEFAULT_DATASET}.{child} c "
            f"left join {DEFAULT_DATASET}.{parent} p on p._dlt_id = c._dlt_parent_id "
            "where p._dlt_id is null"
        )
        assert orphans == 0, f"{warehouse.kind}: {orphans} {child} rows without a parent"
        ((twice,),) = warehouse.query(
            f"select count(*) from (select _dlt_parent_id, _dlt_list_idx from {DEFAULT_DATASET}.{child} "
            "group by _dlt_parent_id, _dlt_list_idx having count(*) > 1) as d"
        )
        assert twice == 0, f"{warehouse.kind}: {child} holds a list position twice"
    ((children,),) = warehouse.query(f"select count(*) from {DEFAULT_DATASET}.citations__models")
    return children


def assert_equals_truth(warehouse: Warehouse, truth: WarehouseTruth) -> Dict[str, int]:
    """Every table row for row, the citations' model slugs, no key twice. Returns the row
    counts per table."""
    counts = {table: assert_table_matches(warehouse, truth, table) for table in ENDPOINTS}
    assert warehouse.citation_models() == set(truth.keys("citations__models"))
    assert_keys_unique(warehouse)
    return counts


def assert_equals_clean_load(warehouse, sandbox, **truth_options):
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90, **truth_options)
    for table in ENDPOINTS:
        assert_table_matches(warehouse, truth, table)
    assert warehouse.citation_models() == set(truth.keys("citations__models"))


def assert_exact(warehouse: Warehouse, truth: WarehouseTruth) -> None:
    """Equal to the ground truth, keys unique, every child row with its parent."""
    assert_equals_truth(warehouse, truth)
    assert_child_rows_belong(warehouse)


def truth_of_two_days(sandbox: Any, first_now: Any) -> WarehouseTruth:
    """What a full sync at `first_now` and the next one now (7 days) leave."""
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    return truth


def tear_the_next_checkpoint(path: Path, pages: int) -> int:
    """Leaves the DuckDB file at `path` as a SIGKILL would in the middle of its next checkpoint
    (aiclicks_pipeline/duckdb_repair.py): a metadata block that the checkpoint rewrites in place
    has its first `pages` 4 KB pages new and the rest old, the header and the write-ahead log
    are the old ones. The checkpoint is DuckDB's own, run on a copy after a row of its first
    table is copied (a change to a table it holds: DuckDB rewrites that table's metadata).
    Returns the block's location (a byte offset)."""
    from aiclicks_pipeline.duckdb_repair import BLOCK_SIZE, HEADERS_SIZE

    with duckdb.connect(str(path), read_only=True) as connection:
        metadata_blocks = {block for (block,) in connection.execute(
            "select block_id from pragma_metadata_info()"
        ).fetchall()}
        schema, table = connection.execute(
            "select schema_name, table_name from duckdb_tables() order by all limit 1"
        ).fetchone()
    before = path.read_bytes()
    copy = path.with_name(f"{path.name}.next-checkpoint")
    copy.write_bytes(before)
    wal = Path(f"{path}.wal")
    if wal.exists():
        Path(f"{copy}.wal").write_bytes(wal.read_bytes())
    try:
        with duckdb.connect(str(copy)) as connection:
            connection.execute(f'insert into "{schema}"."{table}" from "{schema}"."{table}" limit 1')
            connection.execute("checkpoint")
        after = copy.read_bytes()
    finally:
        copy.unlink()
        Path(f"{copy}.wal").unlink(missing_ok=True)
    for block in sorted(metadata_blocks):
        location = HEADERS_SIZE + block * BLOCK_SIZE
        rewritten = after[location:location + BLOCK_SIZE]
        if len(rewritten) == BLOCK_SIZE and rewritten != before[location:location + BLOCK_SIZE]:
            torn = rewritten[:pages * 4096] + before[location + pages * 4096:location + BLOCK_SIZE]
            with open(path, "r+b") as file:
                file.seek(location)
                file.write(torn)
            return location
    raise AssertionError(f"DuckDB's next checkpoint of {path} rewrote no metadata block in place")


__all__ = [
    "KINDS", "LAKEHOUSE_KINDS", "NO_POSTGRES", "POSTGRES_ENV", "SNOWFLAKE_ENV", "SQL_KINDS",
    "SYNC_KINDS", "BigQueryWarehouse", "LakehouseWarehouse", "PostgresWarehouse",
    "SnowflakeWarehouse", "Warehouse", "WarehouseFile", "assert_child_rows_belong",
    "assert_equals_clean_load", "assert_equals_truth", "assert_exact", "assert_keys_unique",
    "assert_table_matches", "new_dataset_name", "normalise", "open_warehouse", "postgres_url",
    "snowflake_url", "tear_the_next_checkpoint", "truth_of_two_days",
]
