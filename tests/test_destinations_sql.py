"""BigQuery and Snowflake without a service: the SQL dlt generates for our schema, and where the
configuration comes from.

No BigQuery or Snowflake is reachable here (nor an emulator that takes a dlt load offline: see
docs/warehouses.md's note). So each test extracts and normalizes a real sandbox sync for the destination
(as a run does before it loads), then asks dlt's own client for the SQL it would send: the
CREATE TABLE of every table and the MERGE of a table with a child table. Nothing connects: dlt's
clients open their connection lazily. The SQL is checked for identifiers, types, keys and
BigQuery's partitioning, and parsed with sqlglot in the destination's dialect.
"""

import re
from pathlib import Path
from typing import Dict, List

import dlt
import pytest
import sqlglot
from dlt.common.schema.utils import get_nested_tables

from aiclicks_pipeline.destinations import daily_tables, destination_kind, with_destination_hints
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import ENDPOINTS
from aiclicks_pipeline.source import aiclicks_source

from .support import START, run_config_probe, service_account_key

REPO = Path(__file__).resolve().parent.parent
SECRETS_EXAMPLE = REPO / ".dlt" / "secrets.toml.example"

# our column types (settings.py) as each warehouse spells them in dlt's DDL
TYPES = {
    "bigquery": {
        "text": "STRING",
        "bigint": "INT64",
        "double": "FLOAT64",
        "timestamp": "TIMESTAMP",
        "date": "DATE",
        "bool": "BOOL",
    },
    "snowflake": {
        "text": "VARCHAR",
        "bigint": "NUMBER(19,0)",
        "double": "FLOAT",
        "timestamp": "TIMESTAMP_LTZ",
        "date": "DATE",
        "bool": "BOOLEAN",
    },
}
# fake credentials: enough for dlt to build a client, never used to connect
CREDENTIALS_ENV = {
    "bigquery": {
        "DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID": "aiclicks-test",
        "DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL": "loader@aiclicks-test.iam.gserviceaccount.com",
        "DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----\n",
    },
    "snowflake": {
        "DESTINATION__SNOWFLAKE__CREDENTIALS": (
            "snowflake://LOADER:not-a-password@orgname-accountname/ANALYTICS"
            "?warehouse=LOADING_WH&role=AICLICKS_LOADER"
        ),
    },
}


def quote(kind: str, name: str) -> str:
    return f"`{name}`" if kind == "bigquery" else f'"{name.upper()}"'


class GeneratedSql:
    """The schema of a normalized sandbox sync for `kind`, and dlt's SQL for it."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.pipeline = dlt.pipeline(
            pipeline_name=f"aiclicks_sql_{kind}",
            destination=kind,
            dataset_name="aiclicks",
            pipelines_dir=str(folder),
        )
        with run_sandbox(
            seed=11, domains=2, prompts=(20, 40), start=START, frozen=True, rate_limit=None
        ) as sandbox:
            source = aiclicks_source(
                base_url=sandbox.base_url, api_key=sandbox.api_key, backoff_factor=0.01
            )
            self.pipeline.extract(with_destination_hints(source, self.pipeline.destination))
        self.pipeline.normalize()
        self.schema = self.pipeline.default_schema
        # builds the client from the resolved configuration; opens no connection
        self.client = self.pipeline.destination_client()

    def create_table(self, table: str) -> str:
        columns = list(self.schema.get_table_columns(table).values())
        statements = self.client._get_table_update_sql(table, columns, generate_alter=False)
        assert len(statements) == 1, statements
        return statements[0]

    def merge(self, root: str) -> List[str]:
        chain = [
            self.client.prepare_load_table(t["name"])
            for t in get_nested_tables(self.schema.tables, root)
        ]
        (job,) = self.client._create_merge_followup_jobs(chain)
        return type(job).generate_sql(chain, self.client.sql_client)


@pytest.fixture(scope="module", params=["bigquery", "snowflake"])
def generated(request, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS_ENV[request.param].items():
            patch.setenv(name, value)
        yield GeneratedSql(request.param, tmp_path_factory.mktemp(request.param))


def column_definitions(kind: str, sql: str) -> Dict[str, str]:
    """{column: 'TYPE NOT NULL' or 'TYPE'} from a CREATE TABLE dlt generated."""
    body = sql[sql.index("(") + 1 :]
    # a column's description follows its type: OPTIONS (description='...') or COMMENT '...'
    pattern = (
        r"`([^`]+)`\s+([A-Z_0-9(),]+?)\s+(NOT NULL)?\s*"
        r"(?:OPTIONS \(description='(?:[^'\\]|\\.)*'\))?\s*[,)\n]"
        if kind == "bigquery"
        else r'"([^"]+)"\s+([A-Z_0-9(),]+?)\s+(NOT NULL)?\s*(?:COMMENT \'(?:[^\']|\'\')*\')?\s*[,)\n]'
    )
    found = {}
    for name, data_type, not_null in re.findall(pattern, body):
        found[name] = f"{data_type} NOT NULL" if not_null else data_type
    return found


def test_every_table_is_created_with_our_names_types_and_keys(generated):
    kind = generated.kind
    for table, spec in ENDPOINTS.items():
        sql = generated.create_table(table)
        sqlglot.parse_one(sql, read=kind)  # valid in the destination's dialect
        if kind == "bigquery":
            # BigQuery is case-sensitive: names exactly as in the endpoint table, fully qualified
            assert sql.startswith(f"CREATE TABLE `aiclicks-test`.`aiclicks`.`{table}` ("), sql
        else:
            # Snowflake folds unquoted identifiers to upper case: dlt creates them upper case,
            # so `select * from aiclicks.visibility_daily` finds them unquoted
            assert sql.startswith(f'CREATE TABLE "AICLICKS"."{table.upper()}" ('), sql
        columns = column_definitions(kind, sql)
        expected_names = {n if kind == "bigquery" else n.upper() for n in spec["columns"]}
        assert expected_names <= set(columns), (table, sorted(columns))
        # the endpoint table's column descriptions become the warehouse's column comments
        described = sql.count("OPTIONS (description=" if kind == "bigquery" else " COMMENT '")
        assert described == len(spec["column_descriptions"]), (table, sql)
        for column, our_type in spec["columns"].items():
            name = column if kind == "bigquery" else column.upper()
            expected = TYPES[kind][our_type]
            if column in spec["primary_key"]:
                expected += " NOT NULL"
            assert columns[name] == expected, (table, column, columns[name])
        dlt_id = "_dlt_id" if kind == "bigquery" else "_DLT_ID"
        assert columns[dlt_id] == TYPES[kind]["text"] + " NOT NULL"


def test_child_table_of_citations(generated):
    kind = generated.kind
    sql = generated.create_table("citations__models")
    sqlglot.parse_one(sql, read=kind)
    columns = column_definitions(kind, sql)
    name = (lambda n: n) if kind == "bigquery" else str.upper
    # the root key lets merge replace a citation's models with the citation
    for column in ("_dlt_root_id", "_dlt_parent_id", "_dlt_id"):
        assert columns[name(column)] == TYPES[kind]["text"] + " NOT NULL"
    assert columns[name("value")] == TYPES[kind]["text"]


def test_bigquery_daily_tables_are_partitioned_by_date_and_clustered_by_domain(generated):
    assert set(daily_tables()) == {
        "visibility_daily", "mentions_daily", "citability_daily", "citations_daily"
    }
    for table in ENDPOINTS:
        sql = generated.create_table(table)
        if generated.kind != "bigquery":  # BigQuery's hints, nowhere else
            assert "PARTITION BY" not in sql and "CLUSTER BY" not in sql, sql
        elif table in daily_tables():
            assert sql.endswith("\nPARTITION BY `date`\nCLUSTER BY `domain_id`"), sql
        else:
            assert "PARTITION BY" not in sql and "CLUSTER BY" not in sql, sql


def test_merge_with_a_child_table_uses_the_primary_key_and_root_key(generated):
    kind = generated.kind
    q = lambda name: quote(kind, name)  # noqa: E731
    dataset = "`aiclicks-test`.`aiclicks`" if kind == "bigquery" else '"AICLICKS"'
    staging = "`aiclicks-test`.`aiclicks_staging`" if kind == "bigquery" else '"AICLICKS_STAGING"'
    statements = generated.merge("citations")
    for statement in statements:
        sqlglot.parse_one(statement, read=kind)
    sql = "\n".join(statements)
    # old rows are found by the whole primary key, in the staging dataset's new rows
    key_match = " AND ".join(
        f"d.{q(c)} = s.{q(c)}" for c in ENDPOINTS["citations"]["primary_key"]
    )
    assert key_match in sql, sql
    assert f"FROM {dataset}.{q('citations')} AS d WHERE EXISTS (SELECT 1 FROM {staging}.{q('citations')} AS s" in sql
    # the child rows of replaced citations go with them (by root key), then both are inserted
    assert f"DELETE FROM {dataset}.{q('citations__models')}\n" in sql
    assert f"WHERE {q('_dlt_root_id')} IN" in sql
    assert f"INSERT INTO {dataset}.{q('citations')}(" in sql
    assert f"INSERT INTO {dataset}.{q('citations__models')}(" in sql
    # duplicates within one load are dropped on the primary key
    partition = ", ".join(q(c) for c in ENDPOINTS["citations"]["primary_key"])
    assert f"ROW_NUMBER() OVER (partition BY {partition}" in sql


def test_merge_of_a_daily_table_on_domain_and_date(generated):
    kind = generated.kind
    q = lambda name: quote(kind, name)  # noqa: E731
    sql = "\n".join(generated.merge("visibility_daily"))
    assert f"d.{q('domain_id')} = s.{q('domain_id')} AND d.{q('date')} = s.{q('date')}" in sql


def edited_example(destination: str, bucket: str = "") -> str:
    """The shipped secrets.toml.example, edited as docs/warehouses.md says to move to `destination`:
    the warehouse's name, the placeholders filled in, a bucket's two lines uncommented."""
    text = SECRETS_EXAMPLE.read_text()
    placeholder_key = "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n"
    assert placeholder_key in text
    text = text.replace(placeholder_key, service_account_key())
    text = text.replace('destination_type = "duckdb"', f'destination_type = "{destination}"')
    if bucket:
        text = text.replace('# staging_type = "filesystem"', 'staging_type = "filesystem"')
        text = text.replace('# loader_file_format = "parquet"', 'loader_file_format = "parquet"')
    if bucket == "s3":
        gcs_start = text.index("[destination.filesystem]\n")
        s3_start = text.index("# [destination.filesystem]\n")
        s3_sections = text[s3_start:].split("#\n# and let Snowflake")[0]
        s3_sections = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                                for line in s3_sections.splitlines())
        text = text[:gcs_start] + s3_sections + "\n"
    return text


def test_secrets_example_is_valid_toml_with_every_destination():
    import tomllib

    secrets = tomllib.loads(SECRETS_EXAMPLE.read_text())
    assert secrets["destination_type"] == "duckdb"
    assert set(secrets["destination"]) >= {"postgres", "bigquery", "snowflake", "filesystem"}
    assert secrets["sources"]["aiclicks"]["api_key"]


@pytest.mark.parametrize(
    "destination, bucket, expected",
    [
        ("bigquery", "gs", {"project_id": "your-gcp-project"}),
        ("snowflake", "s3", {"host": "orgname-accountname", "database": "ANALYTICS",
                             "warehouse": "LOADING_WH", "role": "AICLICKS_LOADER"}),
        ("postgres", "", {"host": "db.example.com", "database": "analytics", "username": "loader"}),
    ],
)
def test_moving_warehouse_is_an_edit_of_secrets_only(tmp_path, destination, bucket, expected):
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "secrets.toml").write_text(edited_example(destination, bucket))

    resolved = run_config_probe(tmp_path, {})

    assert resolved["destination"] == destination
    assert resolved["dataset"] == "aiclicks"
    for key, value in expected.items():
        assert resolved["credentials"][key] == value, (key, resolved["credentials"])
    if bucket:
        assert resolved["staging"] == "filesystem"
        assert resolved["loader_file_format"] == "parquet"
        assert resolved["bucket_url"].startswith(f"{bucket}://your-bucket/aiclicks")
    else:
        assert resolved["staging"] is None and resolved["bucket_url"] is None


def test_environment_variables_alone_configure_a_destination(tmp_path):
    # as a CI runner's secrets arrive: one variable per field, nothing on disk
    fields = {
        "database": "ANALYTICS",
        "username": "AICLICKS_LOADER",
        "password": "not-a-password",
        "host": "orgname-accountname",
        "warehouse": "LOADING_WH",
        "role": "AICLICKS_LOADER",
    }
    env = {f"DESTINATION__SNOWFLAKE__CREDENTIALS__{k.upper()}": v for k, v in fields.items()}
    env["DESTINATION_TYPE"] = "snowflake"

    resolved = run_config_probe(tmp_path, env)

    assert resolved["destination"] == "snowflake" and resolved["staging"] is None
    assert resolved["loader_file_format"] is None
    for key, value in fields.items():
        assert resolved["credentials"][key] == value, key


def test_without_configuration_the_warehouse_is_duckdb(tmp_path):
    resolved = run_config_probe(tmp_path, {})
    assert resolved["destination"] == "duckdb"
    assert destination_kind(None) is None
