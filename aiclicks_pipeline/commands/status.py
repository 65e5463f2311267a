"""`aiclicks-pipeline status`: the warehouse's freshness and the last runs, for a person or a
monitor (status/ does the work). Exit 0 when every domain's data is fresh, 2 when data is
older than `--max-age-hours` (or missing), 75 when a DuckDB file is held by a sync writing it."""

import argparse
import json

from .base import EXIT_OK, EXIT_STALE, Command, add_destination_arguments, csv_list, open_warehouse_for


class StatusCommand(Command):
    command = "status"
    help_string = "how fresh the warehouse is, per table and domain, and what the last runs did"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from ..status import DEFAULT_MAX_AGE_HOURS, DEFAULT_RUNS, DEFAULT_WORST

        add_destination_arguments(parser)
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
        from ..status import read_status, render_json, render_text

        # a warehouse that cannot be read (exit 1) or is held by a sync (WarehouseBusy, 75)
        with open_warehouse_for(args) as warehouse:
            status = read_status(warehouse, max_age_hours=args.max_age_hours, runs=args.runs)
        if args.json:
            print(json.dumps(render_json(status), indent=2))
        else:
            print(render_text(status, worst=args.worst, detail=args.detail, domain_ids=args.domains))
        return EXIT_STALE if status.is_stale else EXIT_OK
