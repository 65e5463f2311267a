"""Which dbt target builds the package in a warehouse, and that target's profile settings taken
from the pipeline's own destination configuration: the one place that knows dbt's side of each
destination.

The package's profiles (dbt/profiles/profiles.yml) read every setting from an `AICLICKS_*`
environment variable, so nothing secret lives in a file and a user can run dbt on them alone.
`transform` fills those variables in from dlt's configuration of the destination the sync loads
(`.dlt/secrets.toml`, `DESTINATION__<NAME>__CREDENTIALS`, a pipeline's own section), so one
configuration serves the load and the models. A variable already set wins (a dbt user or role of
its own), except the DuckDB file's, which is the one the options name.
"""

import json
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Dict, Mapping

POSTGRES_URL_ENV = "AICLICKS_POSTGRES_URL"
# dbt's target/ and logs/ when no DuckDB file tells where
DEFAULT_WORK_DIR = "aiclicks_dbt"
KEYFILE_NAME = "bigquery_keyfile.json"


@dataclass(frozen=True)
class DbtTarget:
    """A target of the package's profiles, named like its dbt adapter (`dbt-<name>`)."""

    name: str
    env_prefix: str
    adapter_version: str = "1.11.*"

    def profile_env(
        self, config: Any, environ: Mapping[str, str], folder: Path
    ) -> Dict[str, str]:
        """The profile's `AICLICKS_*` variables: those dlt's configuration `config` (None: dlt
        has none for this destination) gives and the environment does not set. Files the
        profile needs go in `folder`, a private folder deleted after dbt ran."""
        settings = self.settings(config, environ, folder) if config is not None else {}
        return {
            f"{self.env_prefix}{name}": str(value)
            for name, value in settings.items()
            if value not in (None, "") and f"{self.env_prefix}{name}" not in environ
        }

    def settings(self, config: Any, environ: Mapping[str, str], folder: Path) -> Dict[str, Any]:
        return {}

    def check_names(self, config: Any, dataset: str, schema: str) -> None:
        """Raises ValueError for names this warehouse cannot tell apart."""

    def work_dir(self, config: Any) -> Path:
        return Path(DEFAULT_WORK_DIR).resolve()

    def adapter_installed(self) -> bool:
        return find_spec(f"dbt.adapters.{self.name}") is not None

    def release(self) -> None:
        """Lets go of what the adapter keeps open in this process after dbt ran."""


class DuckDBTarget(DbtTarget):
    def profile_env(self, config: Any, environ: Mapping[str, str], folder: Path) -> Dict[str, str]:
        return {"AICLICKS_DUCKDB_PATH": str(duckdb_path(config))}

    def check_names(self, config: Any, dataset: str, schema: str) -> None:
        path = duckdb_path(config)
        if path.stem in (dataset, schema):
            # DuckDB cannot tell the catalog (the file's stem) from a schema of the same name
            raise ValueError(
                f"The DuckDB file {path.name!r} is named like the schema {path.stem!r}; "
                "choose another file name or schema"
            )

    def work_dir(self, config: Any) -> Path:
        """Beside the DuckDB file: `<stem>_dbt/`."""
        path = duckdb_path(config)
        return path.with_name(f"{path.stem}_dbt")

    def release(self) -> None:
        """dbt-duckdb keeps the database open for the rest of the process: close it, so that this
        process and others can open the file again (DuckDB locks it)."""
        try:
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        except ImportError:
            return
        environment = getattr(DuckDBConnectionManager, "_ENV", None)
        if environment is not None and hasattr(environment, "close"):
            environment.close()
        DuckDBConnectionManager.close_all_connections()


class PostgresTarget(DbtTarget):
    """`AICLICKS_POSTGRES_URL` (one URL) stands in for dlt's credentials when set."""

    def profile_env(self, config: Any, environ: Mapping[str, str], folder: Path) -> Dict[str, str]:
        url = environ.get(POSTGRES_URL_ENV)
        if url:
            from dlt.common.configuration.specs import ConnectionStringCredentials

            config = _Config(ConnectionStringCredentials(url))
        return super().profile_env(config, environ, folder)

    def settings(self, config: Any, environ: Mapping[str, str], folder: Path) -> Dict[str, Any]:
        credentials = config.credentials
        return {
            "HOST": credentials.host,
            "PORT": credentials.port,
            "USER": credentials.username,
            "PASSWORD": credentials.password,
            "DATABASE": credentials.database,
            "SSLMODE": (credentials.query or {}).get("sslmode"),
        }


class BigQueryTarget(DbtTarget):
    def settings(self, config: Any, environ: Mapping[str, str], folder: Path) -> Dict[str, Any]:
        credentials = config.credentials
        settings = {
            "PROJECT": getattr(config, "project_id", None) or credentials.project_id,
            "LOCATION": getattr(config, "location", None),
        }
        if getattr(credentials, "private_key", None) and getattr(credentials, "client_email", None):
            # a service account: dbt-bigquery reads its key from a file, so one lives in the
            # private folder for the run (token_uri and all: a local token endpoint works too)
            keyfile = folder / KEYFILE_NAME
            keyfile.touch(mode=0o600)
            keyfile.write_text(json.dumps(dict(credentials)))
            settings.update({"METHOD": "service-account", "KEYFILE": keyfile})
        else:  # dlt's default credentials: gcloud's application default, as dbt's oauth method
            settings["METHOD"] = "oauth"
        return settings


class SnowflakeTarget(DbtTarget):
    def settings(self, config: Any, environ: Mapping[str, str], folder: Path) -> Dict[str, Any]:
        credentials = config.credentials
        return {
            "ACCOUNT": credentials.host,
            "USER": credentials.username,
            "PASSWORD": credentials.password,
            "ROLE": credentials.role,
            "DATABASE": credentials.database,
            "WAREHOUSE": credentials.warehouse,
            "AUTHENTICATOR": credentials.authenticator,
        }


# by dlt destination kind (destinations.destination_kind)
TARGETS: Dict[str, DbtTarget] = {
    target.name: target
    for target in (
        DuckDBTarget("duckdb", "AICLICKS_DUCKDB_"),
        PostgresTarget("postgres", "AICLICKS_POSTGRES_", adapter_version="1.11.0"),
        BigQueryTarget("bigquery", "AICLICKS_BIGQUERY_"),
        SnowflakeTarget("snowflake", "AICLICKS_SNOWFLAKE_"),
    )
}


def duckdb_path(config: Any) -> Path:
    """The DuckDB file of dlt's DuckDB configuration (its `data_location`)."""
    return Path(config.data_location()).resolve()


class _Config:
    """A destination configuration holding credentials only."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials
