"""`aiclicks-pipeline status`: the warehouse's freshness and the last runs, for a person or a
monitor (status.py does the work). Exit 0 when every domain's data is fresh, 2 when data is
older than `--max-age-hours` (or missing), 75 when a DuckDB file is held by a sync writing it."""

import argparse
import json

from ..settings import DEFAULT_DATASET, DEFAULT_DUCKDB_FILE
from .base import EXIT_OK, EXIT_STALE, Command, csv_list


class StatusCommand(Command):
    command = "status"
    help_string = "how fresh the warehouse is, per table and domain, and what the last runs did"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from ..status import DEFAULT_MAX_AGE_HOURS, DEFAULT_RUNS, DEFAULT_WORST

        parser.add_argument(
            "--destination",
            help="duckdb (default), postgres, bigquery, snowflake, ... as for run",
        )
        parser.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset / schema name")
        parser.add_argument(
            "--duckdb-file", default=DEFAULT_DUCKDB_FILE, help="DuckDB file (destination duckdb)"
        )
        parser.add_argument(
            "--max-age-hours", type=float, default=DEFAULT_MAX_AGE_HOURS,
            help=f"data older than this is stale: exit 2 (default {DEFAULT_MAX_AGE_HOURS:g})",
        )
        parser.add_argument("--domains", type=csv_list, help="these domains, table by table")
        parser.add_argument("--detail", action="store_true", help="every domain, not only the worst")
        parser.add_argument(
            "--worst", type=int, default=DEFAULT_WORST,
            help=f"how many of the worst domains to show (default {DEFAULT_WORST})",
        )
        parser.add_argument(
            "--runs", type=int, default=DEFAULT_RUNS, help=f"last runs to show (default {DEFAULT_RUNS})"
        )
        parser.add_argument("--json", action="store_true", help="everything as JSON on stdout")

    def execute(self, args: argparse.Namespace) -> int:
        from ..status import open_warehouse, read_status

        # a warehouse that cannot be read (StatusError, exit 1) or is held (WarehouseBusy, 75)
        with open_warehouse(args.duckdb_file, args.destination, args.dataset) as reader:
            status = read_status(reader, max_age_hours=args.max_age_hours, runs=args.runs)
        if args.json:
            print(json.dumps(status.as_json(), indent=2))
        else:
            print(status.render(worst=args.worst, detail=args.detail, domain_ids=args.domains))
        return EXIT_STALE if status.is_stale else EXIT_OK
