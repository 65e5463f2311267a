"""Airflow DAG: sync the AIclicks API into the warehouse on a schedule, one task per shard, each
running the package's own sync (`checkpoints.run_sync`, what `aiclicks-pipeline run` runs).

Copy this file (and nothing else) into your Airflow `dags/` folder; install the package on the
workers with its warehouse's extra, e.g. `pip install "aiclicks-pipeline[bigquery]"` from this
repository. Configure it the dlt way, as environment variables on the workers (or a `.dlt/`
folder in the task's working directory):

    SOURCES__AICLICKS__API_KEY                 the AIclicks key
    DESTINATION_TYPE                           bigquery, snowflake, postgres, ... (default duckdb)
    DESTINATION__<NAME>__CREDENTIALS__...      the warehouse's credentials
    STAGING_TYPE, DESTINATION__FILESYSTEM__*   optional staging bucket (see secrets.toml.example)
    AICLICKS_DATASET                           dataset / schema (default aiclicks)
    AICLICKS_SCHEDULE                          cron (default 17 5 * * *: daily, 05:17 UTC)
    AICLICKS_SHARDS                            n workers splitting the domains (default 1)
    AICLICKS_API_KEY_SHARD_<k>                 optional key of shard k (the rate limit is per key)
    AICLICKS_TIMEOUT_HOURS                     a task's time limit (default 6)
    AICLICKS_PIPELINES_DIR                     optional: a working folder kept between runs
    AICLICKS_DUCKDB_FILE                       DuckDB only: an absolute path all tasks share

Each task runs its shard's sync in checkpoints: every committed checkpoint's data, cursors and
run-history row are in the warehouse, so a task that fails, or that Airflow stops at its time
limit, loses at most the checkpoint in flight, and the retry (or the next day's run) continues
with what is left. A task holds its shard's run lock for the sync. Its working folder is a
fresh temporary one, wiped afterwards (the state comes from the warehouse), unless
AICLICKS_PIPELINES_DIR names one to keep. A task fails when the sync failed, and when it was
partial (some domains skipped: the log names them), as the CLI's exit 3 says.
Each shard is its own pipeline (`aiclicks_shard_<k>_of_<n>`) with its own state, all loading
one dataset.
"""

import os
import shutil
import tempfile
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG, TaskGroup, task
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task
    from airflow.utils.task_group import TaskGroup

from aiclicks_pipeline.settings import DEFAULT_DATASET, DEFAULT_PIPELINE_NAME

DAG_ID = "aiclicks_sync"
SCHEDULE = os.environ.get("AICLICKS_SCHEDULE", "17 5 * * *")
SHARDS = int(os.environ.get("AICLICKS_SHARDS", "1"))
DATASET = os.environ.get("AICLICKS_DATASET", DEFAULT_DATASET)
TIMEOUT = timedelta(hours=float(os.environ.get("AICLICKS_TIMEOUT_HOURS", "6")))
# DuckDB only: an absolute path the workers share (a relative one lands in the task's temp folder)
DUCKDB_FILE = os.environ.get("AICLICKS_DUCKDB_FILE")


def shard_of(k: int, n: int):
    """`--shard k/n` and its pipeline name, as `aiclicks-pipeline run --shard k/n` names it."""
    if n <= 1:
        return None, DEFAULT_PIPELINE_NAME
    return f"{k}/{n}", f"{DEFAULT_PIPELINE_NAME}_shard_{k}_of_{n}"


def sync_shard(shard, k: int, pipeline_name: str) -> dict:
    """One shard's sync, when the task runs (the key is read on the worker only). Returns the
    run's JSON summary (the task's XCom); raises when the run failed or was partial."""
    from aiclicks_pipeline.checkpoints import SyncFailed, run_sync
    from aiclicks_pipeline.pipeline import make_pipeline
    from aiclicks_pipeline.run_status import SUCCESS
    from aiclicks_pipeline.sync_summary import progress_line, render_json, render_text
    from aiclicks_pipeline.workdir import pipeline_lock

    kept = os.environ.get("AICLICKS_PIPELINES_DIR")
    pipelines_dir = kept or tempfile.mkdtemp(prefix=f"{pipeline_name}_")
    api_key = os.environ.get(f"AICLICKS_API_KEY_SHARD_{k}")  # else dlt's config
    try:
        with pipeline_lock(pipeline_name, pipelines_dir):
            pipeline = make_pipeline(
                pipeline_name=pipeline_name,
                dataset_name=DATASET,
                pipelines_dir=pipelines_dir,
                duckdb_file=DUCKDB_FILE,
            )
            try:
                result = run_sync(pipeline, shard=shard, **({"api_key": api_key} if api_key else {}))
            except SyncFailed as failed:
                print(render_text(failed.result))
                raise
    finally:
        if not kept:
            shutil.rmtree(pipelines_dir, ignore_errors=True)
    print(render_text(result))
    if result.status != SUCCESS or not result.domains_total:  # the CLI's exit 3
        missing = [*result.skipped_domains, *result.unknown_domains]
        raise RuntimeError(
            f"The sync of {pipeline_name} was partial: {progress_line(result)}; "
            f"not loaded: {', '.join(missing) or 'no domain to sync'}"
        )
    return render_json(result)


with DAG(
    dag_id=DAG_ID,
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "analytics",
        # a retry continues from the last committed checkpoint
        "retries": 2,
        "retry_delay": timedelta(minutes=15),
        "execution_timeout": TIMEOUT,
    },
    tags=["aiclicks", "dlt"],
    doc_md=__doc__,
) as dag:
    with TaskGroup(DEFAULT_PIPELINE_NAME):
        for k in range(1, SHARDS + 1):
            shard, pipeline_name = shard_of(k, SHARDS)
            # one task per shard: the domains of one key share its rate limit, so splitting a
            # shard's tables into tasks would not go faster
            task(task_id=pipeline_name)(sync_shard)(shard, k, pipeline_name)
