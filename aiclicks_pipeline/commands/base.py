"""What every command shares: the `Command` shape, exit codes, and the option groups of the
commands that sync (source options, destination options) and how they become a pipeline."""

import argparse
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Tuple

from ..settings import (
    DEFAULT_BASE_URL,
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_PIPELINE_NAME,
    ENDPOINTS,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STALE = 2  # status: data older than --max-age-hours (or missing)
EXIT_PARTIAL = 3
EXIT_BUSY = 75  # EX_TEMPFAIL: another sync of the pipeline runs; try again later


class Command:
    """One subcommand, in the shape of dlt's own CLI commands: a name, a one-line help, its
    options, and `execute`, which returns the exit code."""

    command: str = ""
    help_string: str = ""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        pass

    def execute(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


def csv_list(value: str) -> List[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help=f"API root (default from config, else {DEFAULT_BASE_URL})")
    parser.add_argument("--domains", type=csv_list, help="comma-separated domain ids (default: all)")
    parser.add_argument(
        "--shard", help="k/n: load the k-th of n stable shares of the domains (state kept apart)"
    )
    parser.add_argument(
        "--resources", type=csv_list, help=f"comma-separated tables to load: {', '.join(ENDPOINTS)}"
    )
    parser.add_argument("--initial-days", type=int, help="history of a first sync (default 90, at most 90)")
    parser.add_argument("--lookback-days", type=int, help="recent days re-read every sync (default 2)")
    parser.add_argument("--snapshot-days", type=int, help="window of the aggregates (default 30)")


def add_destination_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--destination",
        help="any dlt destination: duckdb, postgres, bigquery, snowflake, ... "
        "(default: destination_type from .dlt/ or DESTINATION_TYPE, else duckdb)",
    )
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset / schema name")
    parser.add_argument(
        "--duckdb-file", default=DEFAULT_DUCKDB_FILE, help="DuckDB file (destination duckdb)"
    )
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME)
    parser.add_argument("--pipelines-dir", help="where dlt keeps its working state")


def source_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Only what was given on the command line; dlt's config supplies the rest."""
    options = {
        "base_url": args.base_url,
        "domain_ids": args.domains,
        "shard": args.shard,
        "initial_days": args.initial_days,
        "lookback_days": args.lookback_days,
        "snapshot_days": args.snapshot_days,
    }
    return {key: value for key, value in options.items() if value is not None}


def pipeline_name_for(args: argparse.Namespace) -> str:
    if not getattr(args, "shard", None):
        return args.pipeline_name
    # each shard keeps its own dlt state (and cursors) beside the others in the dataset
    return f"{args.pipeline_name}_shard_{args.shard.replace('/', '_of_')}"


@contextmanager
def locked(args: argparse.Namespace, activity: str = "sync") -> Iterator[None]:
    """Holds the pipeline's run lock (workdir.py) from before dlt opens its working folder."""
    from ..workdir import pipeline_lock

    with pipeline_lock(pipeline_name_for(args), args.pipelines_dir, activity):
        yield


def pipeline_for(args: argparse.Namespace, progress: Any = None) -> Any:
    """The dlt pipeline the destination options describe."""
    from ..pipeline import make_pipeline

    return make_pipeline(
        destination=args.destination,
        dataset_name=args.dataset,
        pipeline_name=pipeline_name_for(args),
        pipelines_dir=args.pipelines_dir,
        duckdb_file=args.duckdb_file,
        progress=progress,
    )


def resolve_keys_and_url(args: argparse.Namespace) -> Tuple[List[str], str]:
    """The API key(s) and base URL from dlt's config (the CLI's --base-url wins)."""
    import dlt

    from ..session import configured_api_keys

    base_url = args.base_url or dlt.config.get("sources.aiclicks.base_url") or DEFAULT_BASE_URL
    return configured_api_keys(), base_url
