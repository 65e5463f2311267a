"""Airflow DAG: sync the AIclicks API into the warehouse on a schedule, with dlt's Airflow helper.

Copy this file (and nothing else) into your Airflow `dags/` folder; install the package on the
workers with its warehouse's extra, e.g. `pip install "aiclicks-pipeline[bigquery]"` from this
repository. Configure it the dlt way, as environment variables on the workers (or a `.dlt/`
folder beside the DAG, which dlt's helper reads from the dags folder):

    SOURCES__AICLICKS__API_KEY                 the AIclicks key
    DESTINATION_TYPE                           bigquery, snowflake, postgres, ... (default duckdb)
    DESTINATION__<NAME>__CREDENTIALS__...      the warehouse's credentials
    STAGING_TYPE, DESTINATION__FILESYSTEM__*   optional staging bucket (see secrets.toml.example)
    AICLICKS_DATASET                           dataset / schema (default aiclicks)
    AICLICKS_SCHEDULE                          cron (default 17 5 * * *: daily, 05:17 UTC)
    AICLICKS_SHARDS                            n workers splitting the domains (default 1)
    AICLICKS_API_KEY_SHARD_<k>                 optional key of shard k (the rate limit is per key)
    AICLICKS_DUCKDB_FILE                       DuckDB only: an absolute path all tasks share

Every task starts from an empty working folder (the helper wipes it): dlt restores the state,
and with it each domain's cursor, from the warehouse, so every run is incremental. Each shard is
its own pipeline (`aiclicks_shard_<k>_of_<n>`) with its own state, all loading one dataset.
"""

import os
from datetime import datetime, timedelta

from dlt.helpers.airflow_helper import DEFAULT_RETRY_BACKOFF, PipelineTasksGroup

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from aiclicks_pipeline.destinations import configured_loader_file_format, with_destination_hints
from aiclicks_pipeline.pipeline import make_pipeline, preferred_file_format
from aiclicks_pipeline.settings import DEFAULT_DATASET, DEFAULT_PIPELINE_NAME
from aiclicks_pipeline.source import aiclicks_source

DAG_ID = "aiclicks_sync"
SCHEDULE = os.environ.get("AICLICKS_SCHEDULE", "17 5 * * *")
SHARDS = int(os.environ.get("AICLICKS_SHARDS", "1"))
DATASET = os.environ.get("AICLICKS_DATASET", DEFAULT_DATASET)
# DuckDB only: an absolute path the workers share (a relative one lands in the task's temp folder)
DUCKDB_FILE = os.environ.get("AICLICKS_DUCKDB_FILE")


def shard_of(k: int, n: int):
    """`--shard k/n` and its pipeline name, as `aiclicks-pipeline run --shard k/n` names it."""
    if n <= 1:
        return None, DEFAULT_PIPELINE_NAME
    return f"{k}/{n}", f"{DEFAULT_PIPELINE_NAME}_shard_{k}_of_{n}"


def source_factory(shard, k: int, pipeline):
    """Builds the source when the task runs, not when Airflow parses the DAG: the key is only
    needed (and read) on the worker."""

    def make_source():
        api_key = os.environ.get(f"AICLICKS_API_KEY_SHARD_{k}")  # else dlt's config
        options = {"api_key": api_key} if api_key else {}
        return with_destination_hints(aiclicks_source(shard=shard, **options), pipeline.destination)

    return make_source


with DAG(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "analytics", "retries": 2, "retry_delay": timedelta(minutes=15)},
    tags=["aiclicks", "dlt"],
    doc_md=__doc__,
) as dag:
    tasks = PipelineTasksGroup(
        DEFAULT_PIPELINE_NAME,
        use_data_folder=False,
        wipe_local_data=True,
        retry_policy=DEFAULT_RETRY_BACKOFF,  # a failed load step is retried, not the extract
        retry_pipeline_steps=("load",),
    )
    for k in range(1, SHARDS + 1):
        shard, pipeline_name = shard_of(k, SHARDS)
        pipeline = make_pipeline(
            pipeline_name=pipeline_name,
            dataset_name=DATASET,
            duckdb_file=DUCKDB_FILE,
            progress="log",
        )
        # one task per shard; "none": the whole source in that task (the domains of one key
        # share its rate limit, so splitting a shard's tables into tasks would not go faster)
        tasks.add_run(
            pipeline,
            source_factory(shard, k, pipeline),
            decompose="none",
            loader_file_format=configured_loader_file_format() or preferred_file_format(pipeline),
        )
