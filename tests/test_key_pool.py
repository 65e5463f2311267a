"""Several API keys in one sync (issue 23, a key pool): each key its own rate limit and window,
every request to whichever key has budget, a key the API refuses set aside while the others
go on; one pipeline, one state, one run history. Against the sandbox's keys of one team
(`Sandbox.pool_keys`, each its own window, turning at its own moment)."""

import io
import json
import logging
import re
from collections import Counter

import pytest

from aiclicks_pipeline.checkpoints import SyncFailed
from aiclicks_pipeline.errors import InvalidApiKeyError, MissingApiKeyError
from aiclicks_pipeline.history import RUNS_TABLE
from aiclicks_pipeline.keypool import FEW_WORKERS, fingerprint
from aiclicks_pipeline.progress import SyncProgress
from aiclicks_pipeline.sandbox import NO_ACCESS_API_KEY, run_sandbox
from aiclicks_pipeline.sandbox.keys import API_KEYS
from aiclicks_pipeline.session import resolve_api_keys
from aiclicks_pipeline.settings import DEFAULT_DATASET

from .support import START, assert_equals_clean_load, cli, cli_here

LIMIT, WINDOW = 10, 2.0


def pool_sandbox(**options):
    options.setdefault("rate_limit", LIMIT)
    options.setdefault("rate_window", WINDOW)
    options.setdefault("domains", 4)
    return run_sandbox(seed=3, prompts=(20, 60), start=START, frozen=True, **options)


def requests_by_key(sandbox, status=None):
    return Counter(e["key"] for e in sandbox.stats.log if status is None or e["status"] == status)


def name(token):
    return API_KEYS[token].name


def test_one_sync_spreads_its_requests_over_every_key_and_meets_no_429(warehouse):
    with pool_sandbox() as sandbox:
        keys = list(sandbox.pool_keys[:3])

        result = warehouse.sync(sandbox, api_key=None, api_keys=keys)

        assert result.status == "success"
        used = requests_by_key(sandbox)
        assert set(used) == {name(k) for k in keys}, used
        # each key kept to its own window (the sandbox turns each at another moment)
        assert sandbox.stats.rate_limited.get("real", 0) == 0 and result.stats.rate_limited == 0
        assert sum(used.values()) == result.stats.requests > 3 * LIMIT
        assert_equals_clean_load(warehouse, sandbox)
        # one pipeline, one state, one run history
        (runs,) = warehouse.query(f"select count(*) from {DEFAULT_DATASET}.{RUNS_TABLE}")
        assert runs == (1,)


def test_a_key_revoked_mid_run_is_set_aside_and_the_others_finish(warehouse, caplog):
    with pool_sandbox(rate_limit=100_000) as sandbox:
        keys = list(sandbox.pool_keys[:3])
        sandbox.set_faults(revoke_after_requests=6, revoke_keys={keys[1]})

        with caplog.at_level(logging.WARNING, logger="aiclicks_pipeline"):
            result = warehouse.sync(sandbox, api_key=None, api_keys=keys)

        assert result.status == "success", result.error
        assert requests_by_key(sandbox, 401)[name(keys[1])] >= 1
        # nothing more with it once its first 401 came back (those in flight finish)
        assert sandbox.stats.after_first_401 == {}
        set_aside = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
        assert len(set_aside) == 1
        assert set_aside[0].startswith(f"key 2 of 3 [{fingerprint(keys[1])}] is set aside")
        assert "401: Invalid or revoked API key" in set_aside[0]
        assert not any(k in caplog.text for k in keys)
        assert_equals_clean_load(warehouse, sandbox)


def test_a_key_of_a_team_without_access_is_set_aside(warehouse):
    with pool_sandbox(rate_limit=100_000) as sandbox:
        result = warehouse.sync(sandbox, api_key=None, api_keys=[NO_ACCESS_API_KEY, sandbox.api_key])

        assert result.status == "success", result.error
        assert requests_by_key(sandbox, 403)[name(NO_ACCESS_API_KEY)] == 1
        assert_equals_clean_load(warehouse, sandbox)


def test_the_run_stops_when_every_key_is_refused_naming_each(warehouse):
    with pool_sandbox(rate_limit=100_000, faults={"revoke_after_requests": 8}) as sandbox:
        keys = list(sandbox.pool_keys[:2])
        with pytest.raises(SyncFailed) as failed:
            warehouse.sync(sandbox, api_key=None, api_keys=keys)

        message = str(failed.value)
        assert message.startswith("The API refused every key of the pool: key 1 of 2 [")
        for position, key in enumerate(keys, start=1):
            assert f"key {position} of 2 [{fingerprint(key)}]: AIclicks rejected the API key" in message
            assert key not in message


def test_a_domain_one_key_may_not_read_is_read_with_another(warehouse):
    with pool_sandbox(rate_limit=100_000) as sandbox:
        keys = list(sandbox.pool_keys[:2])
        domain_id = sandbox.account.domain_ids()[2]
        sandbox.set_faults(forbidden_domains={domain_id}, forbidden_for_keys={keys[0]})

        result = warehouse.sync(sandbox, api_key=None, api_keys=keys)

        assert result.status == "success" and not result.skipped_domains
        of_domain = [e for e in sandbox.stats.log if e["query"].get("domain_id") == domain_id]
        assert {(e["key"], e["status"]) for e in of_domain} <= {(name(keys[0]), 403), (name(keys[1]), 200)}
        assert any(e["status"] == 403 for e in of_domain)
        assert_equals_clean_load(warehouse, sandbox)


def test_a_domain_every_key_may_not_read_is_skipped(warehouse):
    with pool_sandbox(rate_limit=100_000) as sandbox:
        domain_id = sandbox.account.domain_ids()[0]
        sandbox.set_faults(forbidden_domains={domain_id})

        result = warehouse.sync(sandbox, api_key=None, api_keys=list(sandbox.pool_keys[:2]))

        assert result.status == "partial" and list(result.skipped_domains) == [domain_id]
        assert "403: Access to this domain is not allowed for this API key." in result.skipped_domains[domain_id]


def test_the_eta_learns_the_window_and_counts_the_pool(warehouse):
    """The ETA assumed 60 requests a 60 s window ("ETA 1 s" for a 13 s run, "at 60/min" at
    another rate). Each key's window is measured between two of its ends, and the pool adds
    the keys up: two keys of 10 per 2 s are 600 a minute."""
    out = io.StringIO()
    progress = SyncProgress(out=out, mode="plain", interval_s=0.5)
    # the sandbox's clock at ours (its resets to the second; a clock far from ours makes each
    # window's end known to a second or so, through its `Date`)
    with run_sandbox(seed=3, domains=6, prompts=(20, 60), rate_limit=LIMIT, rate_window=WINDOW) as sandbox:
        result = warehouse.sync(sandbox, api_key=None, api_keys=list(sandbox.pool_keys[:2]),
                                progress=progress)

    assert result.status == "success"
    pool = progress.context.session.keys
    assert [key.throttle.measured_window_s for key in pool.keys] == [WINDOW, WINDOW]
    assert pool.requests_per_second() == 2 * LIMIT / WINDOW
    # 100 more: what the keys have left now, then 20 a window
    assert 100 / 10 - 2 * WINDOW <= pool.eta_s(100) <= 100 / 10
    shown = re.findall(r"ETA \S+ s at (\d+)/min", out.getvalue())
    assert shown and shown[-1] == "600", out.getvalue()


# --- configuration ------------------------------------------------------------------------------


def test_keys_are_read_as_dlt_and_the_api_docs_name_them(monkeypatch):
    for name_ in ("AICLICKS_API_KEY", "AICLICKS_API_KEYS"):
        monkeypatch.delenv(name_, raising=False)
    assert resolve_api_keys("k1", ["k2", " k1 ", "k3\n"]) == ["k1", "k2", "k3"]
    assert resolve_api_keys(None, '["k1", "k2"]') == ["k1", "k2"]  # a JSON list in a variable
    assert resolve_api_keys(None, "k1, k2 k3") == ["k1", "k2", "k3"]
    monkeypatch.setenv("AICLICKS_API_KEYS", "k4,k5")
    monkeypatch.setenv("AICLICKS_API_KEY", "k3")
    assert resolve_api_keys(None, None) == ["k3", "k4", "k5"]
    assert resolve_api_keys("k1", None) == ["k1"]  # dlt's config wins over the environment
    monkeypatch.delenv("AICLICKS_API_KEY")
    monkeypatch.delenv("AICLICKS_API_KEYS")
    with pytest.raises(MissingApiKeyError, match="api_keys"):
        resolve_api_keys(None, [])
    with pytest.raises(InvalidApiKeyError, match="AIclicks API key 2 has a space") as raised:
        resolve_api_keys("k1", ["ak_live_ab cd"])
    assert "ab cd" not in str(raised.value)


def test_a_project_with_api_keys_in_its_secrets_toml_syncs_with_all_of_them(tmp_path):
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    with pool_sandbox(rate_limit=100_000) as sandbox:
        keys = list(sandbox.pool_keys[:2])
        (project / ".dlt" / "secrets.toml").write_text(
            f'[sources.aiclicks]\napi_keys = ["{keys[0]}", "{keys[1]}"]\n'
        )
        env = {"DLT_DATA_DIR": str(tmp_path / "dlt")}

        done = cli("run", "--quiet", "--json", "--base-url", sandbox.base_url, "--resources",
                   "domains,visibility_daily", env=env, cwd=project)
        validated = cli("validate", "--base-url", sandbox.base_url, env=env, cwd=project)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "success"
    assert set(requests_by_key(sandbox)) == {name(k) for k in keys}
    assert validated.returncode == 0, validated.stderr
    for position, key in enumerate(keys, start=1):
        assert f"Key {position} of 2 [{fingerprint(key)}] ({name(key)}):" in validated.stdout
    assert "Key pool: 2 of 2 key(s) usable, 6000000 requests/minute together" in validated.stdout
    for output in (done.stdout, done.stderr, validated.stdout, validated.stderr):
        assert not any(key in output for key in keys)


def test_validate_names_each_key_and_the_one_refused(tmp_path):
    with pool_sandbox() as sandbox:
        done = cli_here("validate", "--base-url", sandbox.base_url,
                        env={"AICLICKS_API_KEYS": f"{sandbox.api_key},ak_live_unknown_key_123"})

    assert done.returncode == 1
    assert "Key 1 of 2 [" in done.stdout and "(Sandbox full access):" in done.stdout
    assert f"Key 2 of 2 [{fingerprint('ak_live_unknown_key_123')}]: REFUSED: AIclicks rejected" in done.stdout
    # 10 per 2 s windows are 300 a minute
    assert "Key pool: 1 of 2 key(s) usable, 300 requests/minute together" in done.stdout
    assert "ak_live_unknown_key_123" not in done.stdout + done.stderr


def test_plan_times_the_sync_by_the_window_and_counts_the_pool(tmp_path):
    """`plan` said 5.1 min for a 62 s sync against 60 requests per 10 s: it took the window
    for 60 s. `/validate`'s limit per minute beside the response's limit per window gives the
    window; every key's budget counts."""
    with run_sandbox(seed=3, domains=8, prompts=(20, 60), rate_limit=LIMIT, rate_window=WINDOW) as sandbox:
        keys = ",".join(sandbox.pool_keys[:2])
        env = {"AICLICKS_API_KEYS": keys}
        where = ["--base-url", sandbox.base_url, "--duckdb-file", str(tmp_path / "plan.duckdb"),
                 "--pipelines-dir", str(tmp_path / "pipelines")]
        planned = cli_here("plan", *where, env=env)
        assert planned.returncode == 0, planned.stderr
        match = re.search(r"^Rate limit 600/minute over 2 keys \(windows of 2 s\), \d+ left now: "
                          r"about (\d+)s of waiting", planned.stdout, re.M)
        assert match, planned.stdout
        estimate = int(match[1])

        done = cli_here("run", "--quiet", "--json", *where, env=env)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    print(f"plan {estimate} s, sync {summary['duration_s']:.1f} s, {summary['requests']} requests")
    assert summary["rate_limited"] == 0
    # planned requests / (2 keys x 10 a window) x 2 s, from whatever the windows had left
    assert estimate == pytest.approx(summary["requests"] / 10, abs=2 * WINDOW)
    assert estimate <= summary["duration_s"]


def test_a_checkpoint_is_120_requests_a_key(warehouse):
    """Two minutes of the real limit per checkpoint, however many keys share the requests."""
    with pool_sandbox(rate_limit=100_000, domains=14) as sandbox:
        result = warehouse.sync(sandbox, api_key=None, api_keys=list(sandbox.pool_keys[:2]))

    assert 120 < result.planned_requests <= 240
    assert result.checkpoints_total == 1


def test_the_extractions_threads_follow_latency_times_rate(warehouse, caplog):
    """Answers within milliseconds (this machine): a few threads, one domain at a time each, and
    no more requests than those in flight at the server; answers of 150 ms against two keys of
    600 a minute: every key's share of threads, more requests at once. The same rows either way."""
    with caplog.at_level(logging.INFO, logger="aiclicks_pipeline"):
        with pool_sandbox(domains=3, rate_limit=600, rate_window=60) as sandbox:
            keys = list(sandbox.pool_keys[:2])
            assert warehouse.sync(sandbox, api_key=None, api_keys=keys).status == "success"
            assert_equals_clean_load(warehouse, sandbox)
            assert sandbox.stats.max_in_flight <= FEW_WORKERS
            few = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Extracting")]
            assert few and all(f"with {FEW_WORKERS} threads, 1 domain(s)" in m for m in few), few

            caplog.clear()
            sandbox.set_faults(latency_ms=150)
            sandbox.stats.reset()
            again = warehouse.sync(sandbox, api_key=None, api_keys=keys, resync_after_minutes=0)
            assert again.status == "success" and again.stats.rate_limited == 0
            assert sandbox.stats.max_in_flight > FEW_WORKERS
            share = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Extracting")]
            assert share and all("with 10 threads, 4 domain(s)" in m for m in share), share
        assert_equals_clean_load(warehouse, sandbox)


def test_no_key_of_the_pool_is_written_anywhere(tmp_path):
    """Keys given as dlt's list variable, verbose logs, one key refused: no key appears in any
    output or file (dlt's trace of the resolved configuration included)."""
    with pool_sandbox(rate_limit=100_000, domains=2) as sandbox:
        keys = [sandbox.pool_keys[1], NO_ACCESS_API_KEY, sandbox.pool_keys[2]]
        env = {"SOURCES__AICLICKS__API_KEYS": json.dumps(keys), "RUNTIME__LOG_LEVEL": "INFO"}
        where = ["--base-url", sandbox.base_url, "--duckdb-file", str(tmp_path / "pool.duckdb"),
                 "--pipelines-dir", str(tmp_path / "pipelines")]
        outputs = [
            cli("-v", "run", "--quiet", *where, env=env),
            cli("-v", "validate", "--base-url", sandbox.base_url, env=env),
            cli("-v", "plan", *where, env=env),
        ]

    assert outputs[0].returncode == 0, outputs[0].stderr
    assert f"key 2 of 3 [{fingerprint(NO_ACCESS_API_KEY)}] is set aside" in outputs[0].stderr
    assert "Left out, as a run would: key 2 of 3" in outputs[2].stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("trace" in p.name for p in written)
    for key in keys:
        for done in outputs:
            assert key not in done.stdout + done.stderr
        for path in written:
            assert key.encode() not in path.read_bytes(), path
