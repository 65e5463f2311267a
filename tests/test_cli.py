"""The command line as a user runs it: a subprocess against the sandbox, real DuckDB files (its
main() in the test's process where a test is about what a command prints and returns)."""

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from aiclicks_pipeline.sandbox import SANDBOX_API_KEY, run_sandbox
from aiclicks_pipeline.settings import DEFAULT_DATASET

from .support import START, cli, cli_here, run_args

def test_run_loads_and_prints_the_summary(sandbox, tmp_path):
    done = cli(*run_args(sandbox, tmp_path), env={"SOURCES__AICLICKS__API_KEY": sandbox.api_key})

    assert done.returncode == 0, done.stderr
    for text in ("rows written", "visibility_daily", "requests: ", "429s met: 0", "Sync finished after"):
        assert text in done.stdout
    # --quiet: no progress lines (tests/test_interrupts.py reads them without it)
    assert "Syncing " not in done.stderr and "aiclicks: checkpoint" not in done.stderr
    with duckdb.connect(str(tmp_path / "cli.duckdb"), read_only=True) as connection:
        (domains,) = connection.execute(f"select count(*) from {DEFAULT_DATASET}.domains").fetchone()
    assert domains == len(sandbox.account.domain_ids())


def test_the_key_name_of_the_api_docs_is_accepted(sandbox, tmp_path):
    done = cli_here(*run_args(sandbox, tmp_path), "--resources", "domains",
               env={"AICLICKS_API_KEY": sandbox.api_key})
    assert done.returncode == 0, done.stderr


def test_missing_key_says_where_to_put_one(sandbox, tmp_path):
    done = cli_here(*run_args(sandbox, tmp_path))
    assert done.returncode == 1
    assert "SOURCES__AICLICKS__API_KEY" in done.stderr and "AICLICKS_API_KEY" in done.stderr


def test_wrong_key_exits_1_with_the_request_id(sandbox, tmp_path):
    done = cli_here(*run_args(sandbox, tmp_path), env={"SOURCES__AICLICKS__API_KEY": "ak_live_wrong_123"})

    assert done.returncode == 1
    assert "rejected the API key" in done.stderr and "X-Request-Id: " in done.stderr
    assert "Traceback" not in done.stderr
    assert "ak_live_wrong_123" not in done.stdout + done.stderr


def test_partial_sync_exits_3_and_names_the_domain(sandbox, tmp_path):
    gone = sandbox.account.domain_ids()[1]
    sandbox.set_faults(hidden_404_domains={gone})

    done = cli_here(*run_args(sandbox, tmp_path), env={"SOURCES__AICLICKS__API_KEY": sandbox.api_key})

    assert done.returncode == 3, done.stderr
    assert gone in done.stdout and "Partial sync" in done.stderr


def test_validate_prints_team_domains_and_rate_limit(tmp_path):
    with run_sandbox(seed=2, domains=2, start=START, frozen=True) as sandbox:
        done = cli_here("validate", "--base-url", sandbox.base_url,
                   env={"SOURCES__AICLICKS__API_KEY": sandbox.api_key})
    assert done.returncode == 0, done.stderr
    assert "Key valid: True" in done.stdout and "developer access on" in done.stdout
    assert "Rate limit: 60 requests/minute" in done.stdout
    for domain_id in sandbox.account.domain_ids():
        assert domain_id in done.stdout


def test_plan_counts_the_requests_of_the_next_run(sandbox, tmp_path):
    env = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key}
    args = ["--base-url", sandbox.base_url, "--duckdb-file", str(tmp_path / "cli.duckdb"),
            "--pipelines-dir", str(tmp_path / "pipelines")]
    assert cli_here(*run_args(sandbox, tmp_path), env=env).returncode == 0
    sandbox.advance(days=1)

    done = cli_here("plan", *args, env=env)
    detailed = cli_here("plan", "--detail", *args, env=env)
    sandbox.reset_stats()
    ran = cli_here(*run_args(sandbox, tmp_path), env=env)

    assert done.returncode == 0, done.stderr
    assert ran.returncode == 0, ran.stderr
    planned = int(done.stdout.split(" requests for ")[0].rsplit("\n", 1)[-1])
    # pages of a window's fan-out are estimated from what earlier, larger windows loaded
    domains = len(sandbox.account.domain_ids())
    assert sandbox.stats.requests <= planned <= sandbox.stats.requests + domains, done.stdout
    # totals per endpoint first: one line each, whatever the number of domains
    totals = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.strip()}
    assert totals["visibility_daily"] == ["7", str(domains)]
    assert totals["brand_rankings"] == ["30", str(domains)]
    assert not any(domain_id in done.stdout for domain_id in sandbox.account.domain_ids())

    assert detailed.returncode == 0, detailed.stderr
    for domain_id in sandbox.account.domain_ids():
        assert re.search(rf"^{domain_id} +visibility_daily +7 +1$", detailed.stdout, re.M)
    assert f"{planned} requests for {domains} domain(s)" in detailed.stdout

    # right after that run, the next one leaves everything out (resync interval): so does plan
    fresh = cli_here("plan", "--detail", *args, env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert f"\n1 requests for {domains} domain(s)" in fresh.stdout, fresh.stdout
    assert f"{domains} domain(s) in full, 0 in part" in fresh.stdout
    assert re.search(r"^\S+ +visibility_daily +fresh$", fresh.stdout, re.M)
    again = cli_here("plan", "--resync-after-minutes", "0", *args, env=env)
    assert f"\n{planned} requests for {domains} domain(s)" in again.stdout, again.stdout


def test_demo_runs_end_to_end(tmp_path):
    done = cli("demo", "--workdir", str(tmp_path / "demo"), timeout=600)

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Full sync (first run)" in out and "Incremental sync (one day later)" in out
    assert "Share of voice" in out and "Most-cited sources" in out
    assert "visibility_daily=[90]" in out and "visibility_daily=[7]" in out
    report = tmp_path / "demo" / "aiclicks_report.html"
    assert f"Open the report in a browser: {report.resolve()}" in out and report.stat().st_size > 0
    with duckdb.connect(str(tmp_path / "demo" / "aiclicks_demo.duckdb"), read_only=True) as c:
        (rows,) = c.execute(f"select count(*) from {DEFAULT_DATASET}.brand_rankings").fetchone()
    assert rows > 0


def test_python_dash_m_and_the_console_script_are_the_same():
    script = Path(sys.executable).with_name("aiclicks-pipeline")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    via_module = cli("--help")
    via_script = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert via_module.returncode == via_script.returncode == 0
    assert via_module.stdout.replace("__main__.py", "aiclicks-pipeline") == via_script.stdout


def test_the_api_key_is_never_written_anywhere(tmp_path):
    """Every command, faults on, verbose logs: the key appears in no output and no file."""
    with run_sandbox(
        seed=4, domains=2, prompts=(20, 60), start=START, frozen=True, rate_limit=None,
        faults={"error_rate": 0.1, "drop_rate": 0.05, "malformed_rate": 0.05, "burst_429_every": 10,
                "burst_retry_after": 0},
    ) as sandbox:
        env = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key, "RUNTIME__LOG_LEVEL": "INFO"}
        outputs = [
            cli("-v", *run_args(sandbox, tmp_path), "--quiet", env=env),
            cli("-v", "validate", "--base-url", sandbox.base_url, env=env),
            cli("-v", "plan", "--base-url", sandbox.base_url, "--duckdb-file",
                str(tmp_path / "cli.duckdb"), "--pipelines-dir", str(tmp_path / "pipelines"), env=env),
        ]
        sandbox.set_faults(drop_rate=1.0)
        outputs.append(cli("-v", *run_args(sandbox, tmp_path), env={**env, "SOURCES__AICLICKS__MAX_ATTEMPTS": "2"}))

    assert outputs[0].returncode == 0, outputs[0].stderr
    assert outputs[-1].returncode == 1
    key = SANDBOX_API_KEY
    for done in outputs:
        assert key not in done.stdout and key not in done.stderr
    assert "INFO" in outputs[0].stderr  # the logs were on
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in written) and any("trace" in p.name for p in written)
    for path in written:
        assert key.encode() not in path.read_bytes(), path
