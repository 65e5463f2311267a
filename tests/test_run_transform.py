"""`aiclicks-pipeline run --transform`: the load, then the dbt models, in one command (as
`meltano run tap target dbt` chains them); non-zero when either fails."""

import duckdb

from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.transform import DEFAULT_MODELS_SCHEMA, MARTS

from .support import START, cli_here, run_args


def test_run_transform_loads_then_builds_and_fails_when_either_fails(tmp_path):
    with run_sandbox(seed=5, domains=2, prompts=(10, 20), start=START, frozen=True, rate_limit=None) as sandbox:
        key = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key}
        # the sync fails: nothing is transformed
        wrong_key = {"SOURCES__AICLICKS__API_KEY": "ak_live_wrong"}
        failed = cli_here(*run_args(sandbox, tmp_path), "--transform", env=wrong_key)
        assert failed.returncode == 1 and "rejected the API key" in failed.stderr
        assert "dbt build" not in failed.stdout + failed.stderr

        # loaded, built, then dbt's freshness check fails: the sandbox's data is months old
        stale = cli_here(*run_args(sandbox, tmp_path), "--transform", env=key)
        assert stale.returncode == 1, stale.stderr
        assert "Sync finished" in stale.stdout
        assert "dbt build on duckdb finished" in stale.stdout and "source freshness" in stale.stdout
        assert "past the error threshold" in stale.stderr, stale.stderr

        # the same without the freshness check: exit 0, the marts are there
        built = cli_here(*run_args(sandbox, tmp_path), "--transform", "--no-freshness", env=key)
    assert built.returncode == 0, built.stderr + built.stdout
    assert "dbt build on duckdb finished" in built.stdout and "source freshness" not in built.stdout
    with duckdb.connect(str(tmp_path / "cli.duckdb"), read_only=True) as connection:
        for mart in MARTS:
            (rows,) = connection.execute(f"select count(*) from {DEFAULT_MODELS_SCHEMA}.{mart}").fetchone()
            assert rows > 0, mart
