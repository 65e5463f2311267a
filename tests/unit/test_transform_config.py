"""transform.py before dbt runs: a missing warehouse, a wrong target or a destination without one
said in one line, and each dbt target's profile from dlt's own credentials of the destination."""

import json
from pathlib import Path

import pytest

from aiclicks_pipeline.dbt_targets import TARGETS
from aiclicks_pipeline.transform import TransformError, run_transform
from aiclicks_pipeline.warehouse import destination_config, throwaway_pipeline


def test_transform_without_a_loaded_file_says_what_to_do(tmp_path):
    with pytest.raises(TransformError, match="load the data first"):
        run_transform(str(tmp_path / "missing.duckdb"), work_dir=str(tmp_path / "dbt"))
    with pytest.raises(ValueError, match="target"):
        run_transform(str(tmp_path / "missing.duckdb"), target="oracle")
    with pytest.raises(ValueError, match="not the destination's"):
        run_transform(str(tmp_path / "missing.duckdb"), target="postgres", destination="duckdb")
    # a destination the package has no dbt target for is refused before anything runs
    with pytest.raises(TransformError, match="no target for destination filesystem"):
        run_transform(destination="filesystem")


def test_the_postgres_profile_takes_dlts_credentials_or_one_url(tmp_path, monkeypatch):
    url = "postgresql://loader:p%40ss%3Aword@db.example.com:6543/analytics?sslmode=require"
    expected = {
        "AICLICKS_POSTGRES_HOST": "db.example.com",
        "AICLICKS_POSTGRES_PORT": "6543",
        "AICLICKS_POSTGRES_USER": "loader",
        "AICLICKS_POSTGRES_PASSWORD": "p@ss:word",
        "AICLICKS_POSTGRES_DATABASE": "analytics",
        "AICLICKS_POSTGRES_SSLMODE": "require",
    }
    postgres = TARGETS["postgres"]
    # the credentials the pipeline loads with, resolved by dlt (here its own section)
    monkeypatch.setenv("AICLICKS_LOADER__DESTINATION__POSTGRES__CREDENTIALS", url)
    with throwaway_pipeline("postgres", pipeline_name="aiclicks_loader") as pipeline:
        config = destination_config(pipeline)
    assert postgres.profile_env(config, {}, tmp_path) == expected
    # one URL of the profile's own stands in for them; a setting of its own wins over both
    other = url.replace("db.example.com", "dbt.example.com")
    assert postgres.profile_env(config, {"AICLICKS_POSTGRES_URL": other}, tmp_path) == {
        **expected, "AICLICKS_POSTGRES_HOST": "dbt.example.com"
    }
    assert postgres.profile_env(config, {"AICLICKS_POSTGRES_HOST": "other"}, tmp_path) == {
        k: v for k, v in expected.items() if k != "AICLICKS_POSTGRES_HOST"
    }
    # no credentials in dlt's config: the profile's variables alone
    monkeypatch.delenv("AICLICKS_LOADER__DESTINATION__POSTGRES__CREDENTIALS")
    with throwaway_pipeline("postgres", pipeline_name="aiclicks_loader") as pipeline:
        assert destination_config(pipeline) is None
    assert postgres.profile_env(None, {"AICLICKS_POSTGRES_URL": url}, tmp_path) == expected


def test_the_bigquery_profile_takes_dlts_service_account(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "test-project",
        "client_email": "loader@test-project.iam.gserviceaccount.com",
        "private_key": key,
        "token_uri": "http://127.0.0.1:9/token",
    }
    monkeypatch.setenv("DESTINATION__BIGQUERY__CREDENTIALS", json.dumps(account))
    monkeypatch.setenv("DESTINATION__BIGQUERY__LOCATION", "EU")
    with throwaway_pipeline("bigquery") as pipeline:
        config = destination_config(pipeline)

    env = TARGETS["bigquery"].profile_env(config, {}, tmp_path)

    keyfile = Path(env.pop("AICLICKS_BIGQUERY_KEYFILE"))
    assert env == {
        "AICLICKS_BIGQUERY_PROJECT": "test-project",
        "AICLICKS_BIGQUERY_LOCATION": "EU",
        "AICLICKS_BIGQUERY_METHOD": "service-account",
    }
    # dbt-bigquery reads the key from a file only this user reads, in the folder transform
    # deletes after dbt ran; the token endpoint is the credentials' own
    assert keyfile.parent == tmp_path and keyfile.stat().st_mode & 0o777 == 0o600
    written = json.loads(keyfile.read_text())
    assert {k: written[k] for k in account} == account
    # without dlt credentials: the profile's defaults (oauth), as before
    assert TARGETS["bigquery"].profile_env(None, {}, tmp_path) == {}
