"""Every command on the warehouse `run` wrote, on DuckDB and on PostgreSQL (when
`AICLICKS_TEST_POSTGRES` names a server): `status`, `report`, `transform` and `reset` take the
destination options `run` takes, and nothing more, and find the same warehouse; credentials come
from dlt's config of that pipeline (here its own section, `<PIPELINE>__DESTINATION__...`)."""

import json
import uuid
from dataclasses import dataclass, field
from typing import Dict, List
from urllib.parse import urlsplit

import pytest

from aiclicks_pipeline.commands.base import EXIT_OK, EXIT_STALE
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import DEFAULT_DATASET

from .support import START, cli_here, new_dataset_name, postgres_url

PIPELINE = "aiclicks_readers"
# dlt's config section of the pipeline: its credentials serve no other pipeline
PIPELINE_CREDENTIALS = f"{PIPELINE.upper()}__DESTINATION__POSTGRES__CREDENTIALS"


@dataclass
class Target:
    kind: str
    dataset: str
    options: List[str]
    env: Dict[str, str] = field(default_factory=dict)
    secret: str = ""

    @property
    def models(self) -> str:
        return f"{self.dataset}_models"


@pytest.fixture(params=["duckdb", "postgres", "bigquery"])
def target(request, tmp_path):
    if request.param == "duckdb":
        yield Target("duckdb", DEFAULT_DATASET, ["--duckdb-file", str(tmp_path / "w.duckdb")])
        return
    if request.param == "bigquery":
        emulator = request.getfixturevalue("bigquery_emulator")
        credentials = f"{PIPELINE.upper()}__DESTINATION__BIGQUERY__CREDENTIALS"
        env = {key: value for key, value in emulator.env().items() if not key.startswith("DESTINATION__")}
        yield Target(
            "bigquery", new_dataset_name(), ["--destination", "bigquery"],
            {**env, credentials: json.dumps(emulator.credentials)},
            secret=emulator.credentials["private_key"].splitlines()[1],
        )
        return  # the emulator is the test's own: its data goes with it
    import psycopg2

    url = postgres_url()
    dataset = f"aiclicks_t{uuid.uuid4().hex[:10]}"
    yield Target(
        "postgres", dataset, ["--destination", "postgres"], {PIPELINE_CREDENTIALS: url},
        secret=urlsplit(url).password or "",
    )
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        for schema in (dataset, f"{dataset}_staging", f"{dataset}_models"):
            cursor.execute(f"drop schema if exists {schema} cascade")


def test_every_command_on_the_warehouse_run_wrote(target, tmp_path):
    where = [*target.options, "--dataset", target.dataset, "--pipeline-name", PIPELINE,
             "--pipelines-dir", str(tmp_path / "pipelines")]
    sandbox_options = {"seed": 5, "domains": 3, "prompts": (10, 20), "frozen": True, "rate_limit": None}
    with run_sandbox(start=START, **sandbox_options) as sandbox:
        loaded = cli_here(
            "run", "--quiet", "--base-url", sandbox.base_url, *where,
            env={"SOURCES__AICLICKS__API_KEY": sandbox.api_key, **target.env},
        )
        chosen = sandbox.account.domain_ids()[0]
    assert loaded.returncode == EXIT_OK, loaded.stderr

    # the sandbox's data is months old: a threshold it passes
    status = cli_here("status", *where, "--json", "--max-age-hours", "1000000", env=target.env)
    assert status.returncode == EXIT_OK, status.stderr
    seen = json.loads(status.stdout)
    assert seen["warehouse"].startswith(target.kind)
    assert seen["warehouse"].endswith(f"dataset {target.dataset}")
    assert seen["domains_summary"]["fresh"] == 3 and seen["runs"][0]["outcome"] == "success"
    assert list(seen["pipelines"]) == [PIPELINE]

    # the report reads the dbt marts: before transform built them it says so in one line
    report = cli_here("report", *where, "--out", str(tmp_path / "report.html"), env=target.env)
    assert report.returncode == 1 and "aiclicks-pipeline transform" in report.stderr, report.stderr
    assert len(report.stderr.strip().splitlines()) == 1

    transform = cli_here(
        "transform", *where, "--schema", target.models, "--no-freshness",
        "--work-dir", str(tmp_path / "dbt"), env=target.env,
    )
    assert transform.returncode == EXIT_OK, transform.stdout + transform.stderr
    assert f"dbt build on {target.kind} finished" in transform.stdout
    modelled = cli_here(
        "report", *where, "--models-schema", target.models, "--out", str(tmp_path / "report.html"),
        env=target.env,
    )
    assert "Report of 3 domain(s) from the dbt models" in modelled.stdout, modelled.stderr

    reset = cli_here(
        "reset", *where, "--resources", "prompts", "--domains", chosen, "--yes", env=target.env
    )
    assert reset.returncode == EXIT_OK, reset.stderr
    assert "Reset 1 (table, domain) pair(s)" in reset.stdout

    # what the reset did, read back: that domain now misses its prompts
    after = cli_here("status", *where, "--json", "--max-age-hours", "1000000", env=target.env)
    assert after.returncode == EXIT_STALE, after.stderr
    domains = json.loads(after.stdout)["domains"]
    statuses = {d["domain_id"]: (d["status"], d["missing_tables"]) for d in domains}
    assert statuses.pop(chosen) == ("incomplete", ["prompts"])
    assert {status for status, _ in statuses.values()} == {"fresh"}
    outputs = [loaded, status, report, transform, modelled, reset, after]
    if target.secret:
        assert not [done.args[0] for done in outputs if target.secret in done.stdout + done.stderr]


def test_status_report_and_reset_on_a_filesystem_destination(tmp_path):
    """A destination whose tables dlt maps from its schema (Delta tables in a folder, read by
    DuckDB through dlt's dataset) needs nothing of its own for status; transform says it has no
    dbt target, and the report, which reads the dbt models, says it cannot be built there;
    reset deletes the pair's rows through Delta's own delete (the SQL there only reads)."""
    env = {"DESTINATION__FILESYSTEM__BUCKET_URL": (tmp_path / "lake").as_uri()}
    where = ["--destination", "filesystem", "--pipeline-name", PIPELINE,
             "--pipelines-dir", str(tmp_path / "pipelines")]
    with run_sandbox(seed=5, domains=3, prompts=(10, 20), start=START, frozen=True, rate_limit=None) as sandbox:
        loaded = cli_here(
            "run", "--quiet", "--json", "--base-url", sandbox.base_url, *where,
            env={"SOURCES__AICLICKS__API_KEY": sandbox.api_key, **env},
        )
        chosen = sandbox.account.domain_ids()[0]
    assert loaded.returncode == EXIT_OK, loaded.stderr
    rows = json.loads(loaded.stdout)["rows"]

    status = cli_here("status", *where, "--json", "--max-age-hours", "1000000", env=env)
    assert status.returncode == EXIT_OK, status.stderr
    seen = json.loads(status.stdout)
    assert {t["table"]: t["rows"] for t in seen["tables"]} == rows
    assert seen["domains_summary"]["fresh"] == 3

    report = cli_here("report", *where, "--out", str(tmp_path / "report.html"), env=env)
    assert report.returncode == 1, report.stderr
    assert "cannot build on destination filesystem" in report.stderr
    assert len(report.stderr.strip().splitlines()) == 1

    transform = cli_here("transform", *where, env=env)
    assert transform.returncode == 1
    assert "The dbt package has no target for destination filesystem" in transform.stderr
    assert len(transform.stderr.strip().splitlines()) == 1

    reset = cli_here("reset", *where, "--resources", "prompts", "--domains", chosen, "--yes", env=env)
    assert reset.returncode == EXIT_OK, reset.stderr
    after = cli_here("status", *where, "--json", "--max-age-hours", "1000000", env=env)
    tables = {t["table"]: t["rows"] for t in json.loads(after.stdout)["tables"]}
    statuses = {d["domain_id"]: (d["status"], d["missing_tables"]) for d in json.loads(after.stdout)["domains"]}
    assert statuses[chosen] == ("incomplete", ["prompts"])
    assert 0 < tables["prompts"] < rows["prompts"] and tables["visibility_daily"] == rows["visibility_daily"]
