"""transform.py before dbt runs: a missing warehouse or a wrong target said in one line, and the
PostgreSQL profile's settings from one URL or from dlt's credentials."""

import pytest

from aiclicks_pipeline.transform import TransformError, postgres_profile_env, run_transform


def test_transform_without_a_loaded_file_says_what_to_do(tmp_path):
    with pytest.raises(TransformError, match="load the data first"):
        run_transform(str(tmp_path / "missing.duckdb"), work_dir=str(tmp_path / "dbt"))
    with pytest.raises(ValueError, match="target"):
        run_transform(str(tmp_path / "missing.duckdb"), target="oracle")


def test_the_postgres_profile_takes_one_url_or_dlts_credentials(monkeypatch):
    url = "postgresql://loader:p%40ss%3Aword@db.example.com:6543/analytics?sslmode=require"
    expected = {
        "AICLICKS_POSTGRES_HOST": "db.example.com",
        "AICLICKS_POSTGRES_PORT": "6543",
        "AICLICKS_POSTGRES_USER": "loader",
        "AICLICKS_POSTGRES_PASSWORD": "p@ss:word",
        "AICLICKS_POSTGRES_DATABASE": "analytics",
        "AICLICKS_POSTGRES_SSLMODE": "require",
    }
    assert postgres_profile_env({"AICLICKS_POSTGRES_URL": url}) == expected
    # a setting of its own wins over the URL's
    assert postgres_profile_env(
        {"AICLICKS_POSTGRES_URL": url, "AICLICKS_POSTGRES_HOST": "other"}
    ) == {k: v for k, v in expected.items() if k != "AICLICKS_POSTGRES_HOST"}
    # without one, the credentials dlt loaded with
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", url)
    assert postgres_profile_env({}) == expected

