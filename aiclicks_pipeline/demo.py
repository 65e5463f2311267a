"""The main job on a fresh machine: a sandbox API, a full sync into DuckDB, what an analyst
would ask of it, then one sandbox day later an incremental sync and what it changed."""

import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from .checkpoints import run_sync
from .pipeline import make_pipeline
from .settings import DEFAULT_DATASET

DEMO_DUCKDB_FILE = "aiclicks_demo.duckdb"
# a time-scaled rate limit: the default 60 requests, per 10 s instead of 60 s
DEMO_RATE_LIMIT, DEMO_RATE_WINDOW_S = 60, 10.0

QUERIES = {
    "Share of voice, latest snapshot of the first domain": f"""
        select name, is_brand, mentions, sov, avg_position
        from {DEFAULT_DATASET}.brand_rankings
        where domain_id = (select min(id) from {DEFAULT_DATASET}.domains)
          and snapshot_date = (select max(snapshot_date) from {DEFAULT_DATASET}.brand_rankings)
        order by sov desc""",
    "Visibility trend, last 7 days (average over domains)": f"""
        select date, round(avg(value), 2) as visibility, count(*) as domains
        from {DEFAULT_DATASET}.visibility_daily
        group by date order by date desc limit 7""",
    "Most-cited sources, latest snapshot": f"""
        select domain as host, sum(frequency) as citations, count(*) as urls
        from {DEFAULT_DATASET}.citations
        where snapshot_date = (select max(snapshot_date) from {DEFAULT_DATASET}.citations)
        group by domain order by citations desc limit 5""",
}


def print_query(connection: Any, title: str, sql: str, out: Any) -> None:
    cursor = connection.execute(sql)
    columns = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
    print(f"\n{title}", file=out)
    widths = [max(len(str(c)), *(len(_cell(r[i])) for r in rows)) for i, c in enumerate(columns)]
    print("  " + "  ".join(str(c).ljust(w) for c, w in zip(columns, widths)), file=out)
    for row in rows:
        print("  " + "  ".join(_cell(v).ljust(w) for v, w in zip(row, widths)), file=out)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def show_dbt_models(duckdb_path: Path, folder: Path, out: Any) -> None:
    """`aiclicks-pipeline transform` on the demo warehouse, and one of its marts."""
    from .transform import DEFAULT_MODELS_SCHEMA, DbtNotInstalled, run_transform

    print("\nBuilding the dbt models (dbt build, every dbt test).", file=out)
    try:
        result = run_transform(str(duckdb_path), work_dir=str(folder / "dbt"))
    except DbtNotInstalled as exc:
        print(f"Skipped: {exc}", file=out)
        return
    print(result.summary(), file=out)
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        print_query(
            connection,
            "dbt mart aiclicks__share_of_voice: first domain, change since the last snapshot",
            f"""select brand_name, is_own_brand, sov_pct, sov_rank,
                       round(sov_change_pct, 2) as sov_change_pct, sov_rank_change
                from {DEFAULT_MODELS_SCHEMA}.aiclicks__share_of_voice
                where is_latest_snapshot
                  and domain_id = (select min(id) from {DEFAULT_DATASET}.domains)
                order by sov_rank, brand_name""",
            out,
        )


def run_demo(workdir: str = "demo_output", domains: int = 3, seed: int = 7, out: Any = None) -> int:
    from .sandbox import run_sandbox

    out = out or sys.stdout
    folder = Path(workdir)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    duckdb_path = folder / DEMO_DUCKDB_FILE
    start = datetime.now(timezone.utc).replace(microsecond=0)

    with run_sandbox(
        seed=seed,
        domains=domains,
        start=start,
        frozen=True,
        rate_limit=DEMO_RATE_LIMIT,
        rate_window=DEMO_RATE_WINDOW_S,
    ) as sandbox:
        print(f"Sandbox AIclicks API on {sandbox.base_url} ({domains} domains, seed {seed})", file=out)
        pipeline = make_pipeline(
            pipeline_name="aiclicks_demo",
            pipelines_dir=str(folder / "pipelines"),
            duckdb_file=str(duckdb_path),
        )
        options = {"base_url": sandbox.base_url, "api_key": sandbox.api_key}

        first = run_sync(pipeline, **options)
        print(first.summary("Full sync (first run)"), file=out)
        with duckdb.connect(str(duckdb_path), read_only=True) as connection:
            for title, sql in QUERIES.items():
                print_query(connection, title, sql, out)

        sandbox.advance(days=1)
        print("\nThe sandbox moved on one day; syncing again.", file=out)
        second = run_sync(pipeline, **options)
        print(second.summary("Incremental sync (one day later)"), file=out)

    show_dbt_models(duckdb_path, folder, out)
    print(f"\nThe warehouse is {duckdb_path} (schema {DEFAULT_DATASET}); open it with duckdb.", file=out)

    from .report import DEFAULT_REPORT_FILE, ReportError, write_report

    try:
        report = write_report(str(folder / DEFAULT_REPORT_FILE), duckdb_file=str(duckdb_path))
        print(f"\n{report.summary()}\nOpen the report in a browser: {report.path}", file=out)
    except ReportError as exc:  # plotly missing, or no dbt models (dbt missing)
        print(f"\nNo HTML report: {exc}", file=out)
    return 0
