"""`aiclicks-pipeline status`: the warehouse's freshness, the last runs and a sync running now,
for a person or a monitor (status/ does the work). Exit 0 when every domain's data is fresh, 2
when data is older than `--max-age-hours` (or missing), 75 while a sync runs that has committed
nothing yet, or holds a DuckDB file longer than `--wait`."""

import argparse
import json

from ..errors import BusyError
from .base import (
    EXIT_OK,
    EXIT_STALE,
    Command,
    add_destination_arguments,
    add_wait_argument,
    csv_list,
    open_warehouse_for,
    pipeline_name_for,
)


class StatusCommand(Command):
    command = "status"
    help_string = "how fresh the warehouse is, per table and domain, and what the last runs did"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from ..status import DEFAULT_MAX_AGE_HOURS, DEFAULT_RUNS, DEFAULT_WORST

        add_destination_arguments(parser)
        add_wait_argument(parser)
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
        from ..destinations import WarehouseError
        from ..status import StatusError, read_status, render_json, render_text
        from ..status.running import SyncStarting, running_here, running_in_history

        pipeline_name = pipeline_name_for(args)
        # the syncs running when status begins (a sync ending while it reads is still shown)
        running = running_here([pipeline_name], args.pipelines_dir)
        try:
            # read, then let go of the warehouse before rendering (a sync may wait for it)
            with open_warehouse_for(args, wait_s=args.wait) as warehouse:
                status = read_status(warehouse, max_age_hours=args.max_age_hours, runs=args.runs)
        except (WarehouseError, StatusError) as exc:  # no file, nothing loaded, a file held
            # a sync that has committed nothing yet (no file, no tables), or holds the file
            running = running or running_here([pipeline_name], args.pipelines_dir)
            if not running:
                raise
            if isinstance(exc, BusyError):
                raise BusyError(f"Now {running[0].describe()}: {exc}") from None
            raise SyncStarting(running[0]) from None
        if running and not status.pipelines:  # no state committed yet: a first sync's first load
            raise SyncStarting(running[0])
        shards = [name for name in status.pipelines if name != pipeline_name]
        status.running = running + running_here(shards, args.pipelines_dir)
        status.running += running_in_history(status.runs, status.running)
        if args.json:
            print(json.dumps(render_json(status), indent=2))
        else:
            print(render_text(status, worst=args.worst, detail=args.detail, domain_ids=args.domains))
        return EXIT_STALE if status.is_stale else EXIT_OK
