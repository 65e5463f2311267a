"""What every command shares: the `Command` shape, the option groups of the commands that sync
(source options, destination options), their checks, and how they become a pipeline. Exit
codes live with the errors that carry them (errors.py)."""

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..checks import check_duckdb_file, check_names, check_window_days, did_you_mean, parse_shard
from ..errors import (  # noqa: F401 - the exit codes, for the commands
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_STALE,
    UsageError,
)
from ..settings import (
    DEFAULT_BASE_URL,
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_PIPELINE_NAME,
    ENDPOINTS,
)


class Command:
    """One subcommand, in the shape of dlt's own CLI commands: a name, a one-line help, its
    options, `check_arguments`, which refuses a bad option before anything happens (raising
    UsageError), and `execute`, which returns the exit code or raises an AIclicksError that
    carries it (cli.main maps every failure once)."""

    command: str = ""
    help_string: str = ""

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        pass

    def check_arguments(self, args: argparse.Namespace) -> None:
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


def add_wait_argument(parser: argparse.ArgumentParser) -> None:
    """`--wait`: how long a reader waits for a DuckDB file a sync is loading (warehouse.py)."""
    from ..warehouse import DEFAULT_READ_WAIT_S

    parser.add_argument(
        "--wait", type=seconds, default=DEFAULT_READ_WAIT_S, metavar="SECONDS",
        help="how long to wait for a DuckDB file a sync is loading before exit 75 "
        f"(default {DEFAULT_READ_WAIT_S:g})",
    )


def seconds(text: str) -> float:
    """A number of seconds, 0 or more (an option's type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"give 0 or more seconds, not {text}")
    return value


def check_source_arguments(args: argparse.Namespace) -> None:
    """The source options, as aiclicks_source and run_sync would check them, but now; and the
    API key (its presence and shape: nothing is sent)."""
    resolve_keys_and_url(args)
    check_selection_arguments(args)
    check_window_days(args.initial_days, args.lookback_days, args.snapshot_days)
    check_base_url(args.base_url)


def check_selection_arguments(args: argparse.Namespace) -> None:
    """--resources, --domains and --shard: what a command works on."""
    check_names("resource", args.resources, list(ENDPOINTS))
    if args.domains is not None and not args.domains:
        raise UsageError("Give at least one domain id with --domains, or leave it out for all")
    if args.shard:
        parse_shard(args.shard)


def check_base_url(base_url: Optional[str]) -> None:
    from ..session import api_root

    if base_url:
        try:
            api_root(base_url)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def check_destination_arguments(args: argparse.Namespace, create_folder: bool = False) -> None:
    """A destination dlt knows (with a suggestion for a near miss), and for DuckDB a file that
    can be one: its folder made when `create_folder` (a command that writes it), or refused."""
    from ..destinations import check_destination, configured_destination, known_destinations
    from ..errors import UnknownDestinationError

    destination = configured_destination(args.destination)
    try:
        check_destination(destination)
    except UnknownDestinationError as exc:
        raise UnknownDestinationError(f"{exc}{did_you_mean(destination, known_destinations())}") from None
    if destination == "duckdb":
        check_duckdb_file(Path(args.duckdb_file), args.dataset, create_folder=create_folder)
    if args.pipelines_dir and Path(args.pipelines_dir).exists() and not Path(args.pipelines_dir).is_dir():
        raise UsageError(f"--pipelines-dir {args.pipelines_dir} is a file, not a folder")


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
def locked(
    args: argparse.Namespace, activity: str = "sync", wait_s: float = 0.0, on_wait: Any = None
) -> Iterator[Any]:
    """Holds the pipeline's run lock (workdir.py) from before dlt opens its working folder;
    yields it (a sync describes itself in it). `wait_s`: queue that long behind a holder."""
    from ..workdir import pipeline_lock

    with pipeline_lock(pipeline_name_for(args), args.pipelines_dir, activity, wait_s, on_wait) as lock:
        yield lock


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


def open_warehouse_for(args: argparse.Namespace, **options: Any) -> Any:
    """A reader of the warehouse the destination options describe (warehouse.py): the one
    `run` with the same options writes."""
    from ..warehouse import open_warehouse

    return open_warehouse(
        destination=args.destination,
        dataset=args.dataset,
        duckdb_file=args.duckdb_file,
        pipeline_name=pipeline_name_for(args),
        **options,
    )


def resolve_keys_and_url(args: argparse.Namespace) -> Tuple[List[str], str]:
    """The API key(s) and base URL from dlt's config (the CLI's --base-url wins)."""
    import dlt

    from ..session import configured_api_keys

    base_url = args.base_url or dlt.config.get("sources.aiclicks.base_url") or DEFAULT_BASE_URL
    return configured_api_keys(), base_url
