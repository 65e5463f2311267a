"""The first hour of a user: pasted keys and URLs, a wrong host, a busy warehouse file, the
options of the CLI. The CLI's main() against the sandbox (what a command prints and returns;
tests/test_cli.py runs it as a process), real DuckDB files."""

import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from aiclicks_pipeline import __version__
from aiclicks_pipeline.sandbox import run_sandbox

from .support import REPO, START, cli_here, duckdb_held_by_another_process, run_args

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
    # the sync waits for the holder (a reader) up to warehouse_wait_seconds, then gives up
    env = {**key_env(sandbox), "SOURCES__AICLICKS__WAREHOUSE_WAIT_SECONDS": "1"}
    done = cli_here(*run_args(sandbox, tmp_path), "--resources", "domains", env=env)

    assert done.returncode == 1
    message = one_line(done.stderr)
    assert "cli.duckdb is in use by another process" in message
    assert f"pid {duckdb_held_open.pid}" in message
    assert "still after waiting 1 s" in message
    assert "credentials" not in message and "Traceback" not in done.stderr


# --- every option checked before anything happens (one line, no class names, exit 1) ---------


def assert_refused_before_anything(done, sandbox, tmp_path, *expected):
    """Exit 1, one line saying `expected`, no Python class name, nothing asked or written."""
    assert done.returncode == 1, done.stderr
    message = one_line(done.stderr)
    for text in expected:
        assert text in message, message
    assert not re.search(r"\b[A-Z]\w+(Error|Exception)\b", message), message
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert sandbox.stats.requests == 0
    assert not (tmp_path / "pipelines").exists() and not (tmp_path / "cli.duckdb").exists()


@pytest.mark.parametrize("args, expected", [
    (["--resources", "visibilty_daily"],
     ["Unknown resource 'visibilty_daily' (did you mean visibility_daily?)", "choose from domains, "]),
    (["--resources", ","], ["Give at least one resource"]),
    (["--domains", ","], ["Give at least one domain id"]),
    (["--initial-days", "500"], ["initial_days must be between 1 and 90, got 500"]),
    (["--snapshot-days", "0"], ["snapshot_days must be between 1 and 90, got 0"]),
    (["--lookback-days", "-1"], ["lookback_days must be between 0 and 89, got -1"]),
    (["--shard", "3"], ["shard must look like 2/4"]),
    (["--shard", "5/4"], ["k must be between 1 and n"]),
    (["--checkpoint-requests", "0"], ["checkpoint_requests must be 1 or more, got 0"]),
    (["--loader-file-format", "jsonn"], ["Unknown loader file format 'jsonn' (did you mean jsonl?)"]),
    (["--destination", "duckbd"], ["Unknown destination 'duckbd'", "(did you mean duckdb?)"]),
    (["--destination", "filesystem", "--transform"], ["--transform has no dbt target for destination filesystem"]),
    (["--dataset", "cli"], ["named like the dataset 'cli'"]),
    # argparse: no abbreviations (--initial-day was taken as --initial-days), one line each
    (["--initial-day", "5"], ["aiclicks-pipeline run: unknown option --initial-day (did you mean --initial-days?)"]),
    (["--full"], ["unknown option --full (did you mean --full-refresh?)"]),
    (["--initial-days", "five"], ["argument --initial-days: invalid int value: 'five'"]),
    (["--schema-contract", "frezee"], ["unknown value for --schema-contract 'frezee' (did you mean freeze?)"]),
])
def test_a_bad_run_option_is_one_line_before_any_request_or_state(sandbox, tmp_path, args, expected):
    done = cli_here(*run_args(sandbox, tmp_path), *args, env=key_env(sandbox))
    assert_refused_before_anything(done, sandbox, tmp_path, *expected)


def test_a_bad_value_from_dlts_config_is_one_line_too(sandbox, tmp_path):
    done = cli_here(*run_args(sandbox, tmp_path),
                    env={**key_env(sandbox), "SOURCES__AICLICKS__INITIAL_DAYS": "500"})
    assert done.returncode == 1
    message = one_line(done.stderr)
    assert message == (
        "aiclicks-pipeline: initial_days must be between 1 and 90, got 500: the AIclicks API serves "
        "the last 90 days at most"
    )


    fresh = tmp_path / "fresh"
    fresh.mkdir()
    done = cli_here(*run_args(sandbox, fresh),
                    env={**key_env(sandbox), "SOURCES__AICLICKS__WAREHOUSE_WAIT_SECONDS": "-3"})
    assert_refused_before_anything(done, sandbox, fresh, "warehouse_wait_seconds must be 0 or more, got -3")


@pytest.mark.parametrize("args, expected", [
    (["rn"], "unknown command 'rn' (did you mean run?); choose from run, status, "),
    (["status", "--max-age", "3"], "aiclicks-pipeline status: unknown option --max-age (did you mean --max-age-hours?)"),
    (["reset", "--resources", "citatons"], "Unknown resource 'citatons' (did you mean citations?)"),
    (["validate", "--base-url", "api.aiclicks.io"], "base_url must start with http:// or https://"),
    (["transform", "--target", "postgre"], "unknown value for --target 'postgre' (did you mean postgres?)"),
    (["status", "--wait", "-1"], "argument --wait: give 0 or more seconds, not -1"),
    (["transform", "--wait", "soon"], "argument --wait: not a number of seconds: 'soon'"),
    (["transform", "--wait", "5", "--no-wait"], "argument --no-wait: not allowed with argument --wait"),
])
def test_unknown_commands_options_and_names_say_what_was_meant(tmp_path, args, expected):
    done = cli_here(*args)
    assert done.returncode == 1, done.stderr
    assert expected in one_line(done.stderr)


def test_the_duckdb_files_folder_is_made_or_refused_in_one_line(sandbox, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    args = run_args(sandbox, tmp_path)
    args[args.index("--duckdb-file") + 1] = str(blocked / "wh.duckdb")
    done = cli_here(*args, env=key_env(sandbox))
    assert_refused_before_anything(
        done, sandbox, tmp_path, f"Cannot create the folder of the DuckDB file wh.duckdb, {blocked}"
    )
    args[args.index("--duckdb-file") + 1] = str(tmp_path)
    done = cli_here(*args, env=key_env(sandbox))
    assert_refused_before_anything(done, sandbox, tmp_path, f"The DuckDB file {tmp_path} is a folder")

    # a folder that does not exist yet is made (the issue's `--duckdb-file /no/such/dir/wh.duckdb`)
    new = tmp_path / "no" / "such" / "dir" / "wh.duckdb"
    args[args.index("--duckdb-file") + 1] = str(new)
    done = cli_here(*args, "--resources", "domains", env=key_env(sandbox))
    assert done.returncode == 0, done.stderr
    assert new.is_file() and f"into duckdb file {new}, dataset aiclicks" in done.stdout


def test_domains_none_of_which_the_key_lists_are_refused_and_some_are_partial(sandbox, tmp_path):
    known = sandbox.account.domain_ids()[0]
    typo = known[:-1] + ("0" if known[-1] != "0" else "1")
    done = cli_here(*run_args(sandbox, tmp_path), "--domains", f"{typo},gone", env=key_env(sandbox))

    assert done.returncode == 1
    message = one_line(done.stderr)
    assert f"None of the --domains ids is among the 3 domains this key can see: {typo}, gone" in message
    assert f"(did you mean {known}?)" in message
    assert "Partial sync" not in done.stderr and "committed 0 of 0" not in done.stdout + done.stderr
    assert [e["path"] for e in sandbox.stats.log] == ["/api/v1/domains"]  # nothing else asked
    state = tmp_path / "pipelines" / "aiclicks" / "state.json"
    assert not state.exists() or '"sources"' not in state.read_text()  # nothing loaded

    done = cli_here(*run_args(sandbox, tmp_path), "--json", "--domains", f"{known},gone",
                    "--resources", "domains", env=key_env(sandbox))
    assert done.returncode == 3, done.stderr
    assert "Partial sync: 1 --domains id(s) the key does not list (gone); the other 1 domain(s) are loaded." in done.stderr
    summary = json.loads(done.stdout)
    assert summary["unknown_domains"] == ["gone"] and summary["domains"]["committed"] == 1


def test_plan_refuses_domains_the_key_does_not_list(sandbox, tmp_path):
    done = cli_here("plan", "--base-url", sandbox.base_url, "--domains", "gone",
                    "--duckdb-file", str(tmp_path / "cli.duckdb"), "--pipelines-dir", str(tmp_path / "p"),
                    env=key_env(sandbox))
    assert done.returncode == 1
    assert "None of the --domains ids is among the 3 domains this key can see: gone" in one_line(done.stderr)


def test_a_closed_pipe_ends_quietly(sandbox):
    """`aiclicks-pipeline validate | head -1`: the reader is gone before the command writes."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    environment.update(key_env(sandbox))
    process = subprocess.Popen(
        [sys.executable, "-m", "aiclicks_pipeline", "validate", "--base-url", sandbox.base_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, cwd=REPO,
    )
    process.stdout.close()  # as `head -1` does once it has its line (here: before any)
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1
    assert stderr == "", stderr


def test_run_and_plan_say_where_the_data_goes_and_json_counts_as_the_screen(sandbox, tmp_path):
    env = key_env(sandbox)
    warehouse = tmp_path / "cli.duckdb"
    first = cli_here(*run_args(sandbox, tmp_path), "--resources", "domains,prompts", env=env)
    assert first.returncode == 0, first.stderr
    assert f"  into duckdb file {warehouse}, dataset aiclicks\n" in first.stdout
    assert "committed 3 of 3 domains\n" in first.stdout

    # within the resync interval: nothing is asked again, and both say so with the same counts
    again = cli_here(*run_args(sandbox, tmp_path), "--resources", "domains,prompts", "--json", env=env)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["domains"] == {"total": 3, "committed": 0, "fresh": 3, "skipped": 0, "left": 0}
    assert "committed 0 of 3 domains, 3 left out (synced within the resync interval)" in again.stderr
    assert summary["destination"] == {"destination": "duckdb", "location": str(warehouse), "dataset": "aiclicks"}

    plan = cli_here("plan", "--base-url", sandbox.base_url, "--duckdb-file", str(warehouse),
                    "--pipelines-dir", str(tmp_path / "pipelines"), env=env)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith(f"The next run of pipeline aiclicks, into duckdb file {warehouse}, dataset aiclicks:")
