"""The first hour of a user: pasted keys and URLs, a wrong host, a busy warehouse file, the
options of the CLI. The CLI's main() against the sandbox (what a command prints and returns;
tests/test_cli.py runs it as a process), real DuckDB files."""

import json
import re
import socket
import time

import pytest

from aiclicks_pipeline import __version__
from aiclicks_pipeline.sandbox import run_sandbox

from .support import START, cli_here, duckdb_held_by_another_process, run_args

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def key_env(sandbox, key=None):
    return {"SOURCES__AICLICKS__API_KEY": sandbox.api_key if key is None else key}


def one_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_a_base_url_copied_with_the_api_prefix_works(sandbox, tmp_path):
    for base_url in (f"{sandbox.base_url}/api/v1/", f"{sandbox.base_url}/api/v1", f"{sandbox.base_url}/"):
        done = cli_here("validate", "--base-url", base_url, env=key_env(sandbox))
        assert done.returncode == 0, done.stderr
    args = run_args(sandbox, tmp_path)
    args[args.index("--base-url") + 1] = f"{sandbox.base_url}/api/v1/"
    ran = cli_here(*args, "--resources", "domains,prompts", env=key_env(sandbox))
    assert ran.returncode == 0, ran.stderr
    assert all(entry["path"].count("/api/v1/") == 1 for entry in sandbox.stats.log)


def test_a_wrong_base_url_says_so_not_domain_not_found(sandbox, tmp_path):
    wrong = f"{sandbox.base_url}/v2"
    args = run_args(sandbox, tmp_path)
    args[args.index("--base-url") + 1] = wrong
    for done in (cli_here(*args, env=key_env(sandbox)),
                 cli_here("validate", "--base-url", wrong, env=key_env(sandbox))):
        assert done.returncode == 1
        message = one_line(done.stderr)
        assert "base URL looks wrong" in message and repr(wrong) in message
        assert "/v2/api/v1/" in message and "X-Request-Id: " in message
        assert "Domain not found" not in message


def test_the_apis_own_404_for_a_domain_still_skips_that_domain(sandbox, tmp_path):
    gone = sandbox.account.domain_ids()[0]
    sandbox.set_faults(hidden_404_domains={gone})
    done = cli_here(*run_args(sandbox, tmp_path), "--resources", "prompts", env=key_env(sandbox))
    assert done.returncode == 3, done.stderr
    assert gone in done.stdout


def test_a_key_pasted_with_spaces_and_a_line_break_is_trimmed(sandbox, tmp_path):
    pasted = f"  {sandbox.api_key}\n"
    done = cli_here(*run_args(sandbox, tmp_path), "--resources", "domains", env=key_env(sandbox, pasted))
    assert done.returncode == 0, done.stderr
    validated = cli_here("validate", "--base-url", sandbox.base_url,
                    env={"AICLICKS_API_KEY": f"{sandbox.api_key}\r\n"})
    assert validated.returncode == 0, validated.stderr


def test_a_key_with_whitespace_inside_is_refused_without_printing_it(sandbox, tmp_path):
    broken = sandbox.api_key[:10] + " " + sandbox.api_key[10:]
    for done in (cli_here(*run_args(sandbox, tmp_path), env=key_env(sandbox, broken)),
                 cli_here("validate", "--base-url", sandbox.base_url, env=key_env(sandbox, broken))):
        assert done.returncode == 1
        message = one_line(done.stderr)
        assert "space or line break inside it" in message
        assert sandbox.api_key[:10] not in done.stdout + done.stderr
    assert sandbox.stats.requests == 0  # refused before anything was sent


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_base_url_names_the_host_and_fails_fast(tmp_path):
    port = closed_port()
    started = time.monotonic()
    done = cli_here("run", "--quiet", "--base-url", f"http://127.0.0.1:{port}",
               "--duckdb-file", str(tmp_path / "w.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
               env={"SOURCES__AICLICKS__API_KEY": "ak_live_unused"})
    elapsed = time.monotonic() - started
    assert done.returncode == 1
    message = one_line(done.stderr)
    assert f"127.0.0.1:{port}" in message and "connection refused" in message
    assert "check the base URL" in message
    assert elapsed < 30, elapsed  # a few quick attempts, not minutes of back-off


def test_verbose_logs_every_request_before_or_after_the_subcommand(sandbox, tmp_path):
    for verbose_first in (True, False):
        args = ["validate", "--base-url", sandbox.base_url]
        args = ["-v", *args] if verbose_first else [*args, "-v"]
        sandbox.reset_stats()
        done = cli_here(*args, env=key_env(sandbox))
        assert done.returncode == 0, done.stderr
        (entry,) = sandbox.stats.log
        pattern = (
            r"INFO aiclicks_pipeline: GET /api/v1/validate -> 200 in \d+ ms "
            rf"\[X-Request-Id: {entry['request_id']}, X-Cache: BYPASS\]"
        )
        assert re.search(pattern, done.stderr), done.stderr
        assert sandbox.api_key not in done.stderr

    sandbox.reset_stats()
    done = cli_here(*run_args(sandbox, tmp_path), "-v", "--resources", "prompts", env=key_env(sandbox))
    assert done.returncode == 0, done.stderr
    logged = re.findall(r"GET (/api/v1/\S+) -> (\d+) in \d+ ms \[X-Request-Id: (\S+), X-Cache: (\w+)\]",
                        done.stderr)
    assert len(logged) == sandbox.stats.requests
    assert {request_id for *_, request_id, _ in logged} == {e["request_id"] for e in sandbox.stats.log}
    assert any("domain_id=" in path and "size=500" in path for path, *_ in logged)


def test_version():
    done = cli_here("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"aiclicks-pipeline {__version__}"


def test_validate_prints_the_reset_as_a_time_and_the_key_readably(tmp_path):
    with run_sandbox(seed=2, domains=2, start=START, frozen=True) as sandbox:
        done = cli_here("validate", "--base-url", sandbox.base_url, env=key_env(sandbox))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^  name +Sandbox full access$", out, re.M)
    assert re.search(rf"^  id +{UUID}$", out, re.M)
    assert re.search(r"^  created +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", out, re.M)
    assert re.search(r"^  type +api_key$", out, re.M)
    assert re.search(r"developer access on, 2 domain\(s\)", out)
    # the sandbox's clock stands at START: the reset is on that clock, and under a minute away
    match = re.search(r"resets at (2026-06-17T10:0[01]:\d\dZ) \(in (\d+) s\)", out)
    assert match, out
    assert 0 <= int(match[2]) <= 60


def test_an_unknown_destination_lists_the_names_and_changes_no_state(sandbox, tmp_path):
    state_file = tmp_path / "pipelines" / "aiclicks" / "state.json"
    done = cli_here(*run_args(sandbox, tmp_path), "--resources", "domains", env=key_env(sandbox))
    assert done.returncode == 0, done.stderr
    before = state_file.read_bytes()

    done = cli_here(*run_args(sandbox, tmp_path), "--destination", "duckbd", env=key_env(sandbox))

    assert done.returncode == 1
    message = one_line(done.stderr)
    assert "Unknown destination 'duckbd'" in message
    assert all(name in message for name in ("duckdb", "postgres", "bigquery", "snowflake"))
    assert state_file.read_bytes() == before
    assert json.loads(before)["destination_type"].endswith("duckdb")


@pytest.fixture
def duckdb_held_open(tmp_path):
    """Another process with the warehouse file open, as a notebook would have it."""
    with duckdb_held_by_another_process(tmp_path / "cli.duckdb") as holder:
        yield holder


def test_a_warehouse_file_in_use_by_another_process_is_one_line(sandbox, tmp_path, duckdb_held_open):
    done = cli_here(*run_args(sandbox, tmp_path), "--resources", "domains", env=key_env(sandbox))

    assert done.returncode == 1
    message = one_line(done.stderr)
    assert "cli.duckdb is in use by another process" in message
    assert f"pid {duckdb_held_open.pid}" in message
    assert "credentials" not in message and "Traceback" not in done.stderr
