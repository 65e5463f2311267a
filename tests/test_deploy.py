"""The scheduled-sync files under deploy/: the GitHub Actions workflow and the Airflow DAG.

The workflow is parsed and validated against GitHub's workflow JSON schema (the copy that
check-jsonschema ships), and what it runs is checked against this package: the extra it
installs, the CLI flags it passes, the secrets it reads (named in docs/deployment.md), the configuration
its environment resolves to.

The DAG is always checked statically (parsed, the names it must use, the shard naming equal to
the CLI's). Where Airflow is installed (its pins clash with our dev tools, so .ci/run installs it
in a venv of its own and names that interpreter in AICLICKS_TEST_AIRFLOW_PYTHON; or the test's
own interpreter if it has Airflow), Airflow imports the DAG and builds its tasks, and
`dag.test()` runs it twice against the sandbox into DuckDB: the second run, in a new process
with the task's working folder wiped, is incremental, and both are in the run history.
"""

import argparse
import ast
import importlib.resources
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import duckdb
import pytest
import yaml

from aiclicks_pipeline.cli import build_parser
from aiclicks_pipeline.commands.base import pipeline_name_for
from aiclicks_pipeline.sandbox import run_sandbox

from .support import START

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "deploy" / "github" / "aiclicks-sync.yml"
DAGS = REPO / "deploy" / "airflow" / "dags"
DAG_FILE = DAGS / "aiclicks_sync.py"
DEPLOYMENT_DOCS = REPO / "docs" / "deployment.md"
AIRFLOW_PYTHON_ENV = "AICLICKS_TEST_AIRFLOW_PYTHON"


# --- GitHub Actions -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> Dict[str, Any]:
    document = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True
    if True in document:
        document["on"] = document.pop(True)
    return document


def test_workflow_is_valid_for_github(workflow):
    import jsonschema

    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "github-workflows.json"
    schema = json.loads(schema_file.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(workflow), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_workflow_runs_on_a_schedule(workflow):
    from croniter import croniter

    (schedule,) = workflow["on"]["schedule"]
    assert croniter.is_valid(schedule["cron"]), schedule
    assert len(schedule["cron"].split()) == 5
    assert "workflow_dispatch" in workflow["on"]


def job(workflow) -> Dict[str, Any]:
    (only,) = workflow["jobs"].values()
    return only


def test_workflow_installs_an_extra_we_ship(workflow):
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = [s["run"] for s in job(workflow)["steps"] if "pip install" in s.get("run", "")]
    assert installs, "no install step"
    wanted = re.findall(r'"\.\[([a-z,]+)\]"', installs[0])
    assert wanted and set(wanted[0].split(",")) <= set(extras), (installs, sorted(extras))
    uses = [s.get("uses", "") for s in job(workflow)["steps"]]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/setup-python@") for u in uses)


def test_workflow_runs_our_cli_with_flags_it_knows(workflow):
    (run,) = [s["run"] for s in job(workflow)["steps"] if "aiclicks-pipeline" in s.get("run", "")]
    matrix = job(workflow)["strategy"]["matrix"]["include"]
    shards = [entry["shard"] for entry in matrix] + ["2/4"]
    for shard in shards:
        # the shell's ${SHARD:+--shard "$SHARD"} as bash expands it
        command = run.replace('${SHARD:+--shard "$SHARD"}', f"--shard {shard}" if shard else "")
        argv = shlex.split(command)
        assert argv[:2] == ["aiclicks-pipeline", "run"], argv
        args = build_parser().parse_args(argv[1:])
        assert args.command == "run" and args.shard == (shard or None)
        assert args.destination is None  # the warehouse comes from DESTINATION_TYPE


def test_workflow_secrets_come_from_repository_secrets_and_are_documented(workflow):
    env = job(workflow)["env"]
    for name, value in env.items():
        if re.search(r"KEY|PASSWORD|CREDENTIALS|SECRET|TOKEN", name):
            assert str(value).startswith("${{ secrets"), f"{name} is not read from a secret"
    text = WORKFLOW.read_text()
    secrets = set(re.findall(r"secrets\.([A-Z0-9_]+)", text))
    secrets |= {entry["api_key_secret"] for entry in job(workflow)["strategy"]["matrix"]["include"]}
    docs = DEPLOYMENT_DOCS.read_text()
    assert secrets >= {"AICLICKS_API_KEY", "BIGQUERY_CREDENTIALS"}
    for secret in secrets:
        assert secret in docs, f"docs/deployment.md does not tell how to set the secret {secret}"


def test_workflow_environment_resolves_to_a_bigquery_pipeline(workflow, tmp_path):
    from .support import run_config_probe, service_account_key

    key = json.loads(f'"{service_account_key()}"')
    service_account = {
        "type": "service_account",
        "project_id": "acme-analytics",
        "private_key": key,
        "client_email": "aiclicks@acme-analytics.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    secrets = {"AICLICKS_API_KEY": "ak_live_test", "BIGQUERY_CREDENTIALS": json.dumps(service_account)}
    env = {}
    for name, value in job(workflow)["env"].items():
        value = str(value)
        value = value.replace("${{ secrets[matrix.api_key_secret] }}", secrets["AICLICKS_API_KEY"])
        value = re.sub(r"\$\{\{ secrets\.([A-Z_]+) \}\}", lambda m: secrets[m.group(1)], value)
        value = value.replace("${{ matrix.shard }}", "")
        assert "${{" not in value, (name, value)
        env[name] = value

    resolved = run_config_probe(tmp_path, env)

    assert resolved["destination"] == "bigquery" and resolved["staging"] is None
    assert resolved["credentials"]["project_id"] == "acme-analytics"
    assert resolved["credentials"]["client_email"] == service_account["client_email"]


# --- Airflow ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dag_tree() -> ast.Module:
    return ast.parse(DAG_FILE.read_text(), filename=str(DAG_FILE))


def test_dag_runs_each_shard_through_the_packages_sync(dag_tree):
    """Each shard's task runs `run_sync` (checkpoints, resume, run lock, run history), not dlt's
    whole-source helper, and builds nothing while Airflow parses the file."""
    imports = {
        (node.module, alias.name)
        for node in ast.walk(dag_tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert ("aiclicks_pipeline.checkpoints", "run_sync") in imports
    assert ("aiclicks_pipeline.pipeline", "make_pipeline") in imports
    assert ("aiclicks_pipeline.workdir", "pipeline_lock") in imports
    assert not any(module and module.startswith("dlt.helpers.airflow") for module, _ in imports)
    calls = {}
    for node in ast.walk(dag_tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            calls.setdefault(name, []).append(node)
    (dag_call,) = calls["DAG"]
    keywords = {k.arg: k.value for k in dag_call.keywords}
    assert {"dag_id", "schedule", "start_date", "catchup", "max_active_runs"} <= set(keywords)
    assert isinstance(keywords["catchup"], ast.Constant) and keywords["catchup"].value is False
    assert isinstance(keywords["max_active_runs"], ast.Constant) and keywords["max_active_runs"].value == 1
    default_args = {k.value for k in keywords["default_args"].keys}
    assert {"retries", "execution_timeout"} <= default_args
    # the sync, the pipeline and the lock are made inside the task's function only
    (sync_shard,) = [n for n in dag_tree.body if isinstance(n, ast.FunctionDef) and n.name == "sync_shard"]
    inside = {getattr(c.func, "id", None) for c in ast.walk(sync_shard) if isinstance(c, ast.Call)}
    assert {"run_sync", "make_pipeline", "pipeline_lock"} <= inside
    outside = [
        call for node in dag_tree.body if not isinstance(node, ast.FunctionDef)
        for call in ast.walk(node) if isinstance(call, ast.Call)
        and getattr(call.func, "id", None) in ("run_sync", "make_pipeline", "aiclicks_source")
    ]
    assert not outside
    # a partial run (the CLI's exit 3) fails the task too
    raises = [n for n in ast.walk(sync_shard) if isinstance(n, ast.Raise) and n.exc is not None]
    assert any("partial" in ast.unparse(n) for n in raises)
    compile(dag_tree, str(DAG_FILE), "exec")


def test_dag_names_shards_as_the_cli_does(dag_tree):
    (shard_of,) = [n for n in dag_tree.body if isinstance(n, ast.FunctionDef) and n.name == "shard_of"]
    namespace: Dict[str, Any] = {"DEFAULT_PIPELINE_NAME": "aiclicks"}
    exec(compile(ast.Module(body=[shard_of], type_ignores=[]), str(DAG_FILE), "exec"), namespace)
    for k, n in [(1, 1), (1, 2), (2, 2), (3, 4)]:
        shard, name = namespace["shard_of"](k, n)
        cli_args = argparse.Namespace(pipeline_name="aiclicks", shard=shard)
        assert name == pipeline_name_for(cli_args), (k, n)


def airflow_python() -> str:
    configured = os.environ.get(AIRFLOW_PYTHON_ENV)
    if configured:
        return configured
    if importlib.util.find_spec("airflow") is not None:
        return sys.executable
    pytest.skip(
        f"Airflow is not installed here: set {AIRFLOW_PYTHON_ENV} to a Python that has "
        "apache-airflow and this package (.ci/run makes one); the DAG's static checks ran"
    )


AIRFLOW_PROBE = r"""
import json, os, sys
from airflow.dag_processing.dagbag import DagBag

out = {}
for shards in sys.argv[2:]:
    os.environ["AICLICKS_SHARDS"] = shards
    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["aiclicks_sync"]
    out[shards] = {
        "tasks": sorted(dag.task_ids),
        "catchup": dag.catchup,
        "cron": str(getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", None)),
    }
if os.environ.get("RUN_DAG"):
    run = dag.test()
    out["state"] = str(run.state)
print("RESULT " + json.dumps(out))
"""


def run_airflow(python: str, home: Path, env: Dict[str, str], *shards: str) -> Dict[str, Any]:
    completed = subprocess.run(
        [python, "-c", AIRFLOW_PROBE, str(DAGS), *shards],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line[len("RESULT "):])


def test_dag_imports_builds_its_tasks_and_syncs_incrementally(tmp_path):
    python = airflow_python()
    home = tmp_path / "airflow"
    home.mkdir()
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("DESTINATION", "STAGING", "SOURCES__", "AIRFLOW"))
    }
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "AICLICKS_DUCKDB_FILE": str(warehouse),
    })
    airflow = str(Path(python).parent / "airflow")
    migrate = subprocess.run(
        [airflow, "db", "migrate"], cwd=home, env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    with run_sandbox(
        seed=11, domains=2, prompts=(10, 20), start=START, frozen=True, rate_limit=None
    ) as sandbox:
        env.update({
            "SOURCES__AICLICKS__BASE_URL": sandbox.base_url,
            "SOURCES__AICLICKS__API_KEY": sandbox.api_key,
            "SOURCES__AICLICKS__BACKOFF_FACTOR": "0.01",
            "RUN_DAG": "1",
        })
        # parsed with 3 shards (tasks only), then with 1, and run
        first = run_airflow(python, home, env, "3", "1")
        days_first = {
            r["query"].get("days") for r in sandbox.stats.log if r["path"].endswith("visibility-time-series")
        }
        sandbox.reset_stats()
        sandbox.advance(days=1)
        second = run_airflow(python, home, env, "1")
        days_second = {
            r["query"].get("days") for r in sandbox.stats.log if r["path"].endswith("visibility-time-series")
        }
        domains = len(sandbox.account.domain_ids())

    assert first["3"]["tasks"] == [f"aiclicks.aiclicks_shard_{k}_of_3" for k in (1, 2, 3)]
    assert first["1"]["tasks"] == ["aiclicks.aiclicks"]
    assert first["1"]["catchup"] is False and first["1"]["cron"] == "17 5 * * *"
    assert first["state"] == second["state"] == "success"
    assert days_first == {"90"}
    # a new process, the task's working folder wiped: dlt restored the cursors from DuckDB
    assert days_second == {"7"}, days_second
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        ((rows, distinct),) = connection.execute(
            "select count(*), count(distinct (domain_id, date)) from aiclicks.visibility_daily"
        ).fetchall()
        # each task ran the package's sync: two runs in the run history, both complete
        outcomes = connection.execute("select outcome from aiclicks._aiclicks_runs").fetchall()
    assert rows == distinct == 91 * domains
    assert outcomes == [("success",), ("success",)]
