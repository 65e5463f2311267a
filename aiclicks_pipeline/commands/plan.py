"""`aiclicks-pipeline plan`: the requests the next run makes and the time the limit needs."""

import argparse
import sys

from ..checks import check_domain_ids
from ..rows import without_repeated_items
from ..session import fetch_envelope
from ..settings import ENDPOINTS, VALIDATE_PATH
from .base import (
    EXIT_OK,
    Command,
    add_destination_arguments,
    add_source_arguments,
    check_destination_arguments,
    check_source_arguments,
    locked,
    pipeline_for,
    resolve_key_and_url,
    source_options,
)


class PlanCommand(Command):
    command = "plan"
    help_string = "print the requests the next run makes and the time the rate limit needs"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        add_source_arguments(parser)
        add_destination_arguments(parser)
        parser.add_argument(
            "--detail", action="store_true", help="also print each domain's requests per endpoint"
        )
        parser.add_argument(
            "--resync-after-minutes", type=float,
            help="as for run: leave out what was synced less than this long ago (default 60)",
        )

    def check_arguments(self, args: argparse.Namespace) -> None:
        check_source_arguments(args)
        check_destination_arguments(args)

    def execute(self, args: argparse.Namespace) -> int:
        from ..checkpoints import configured_resync_after_minutes, listed_domain_ids
        from ..pipeline import describe_where, where_loaded
        from ..plan import make_plan, print_plan

        api_key, base_url = resolve_key_and_url(args)
        # the lock, like a run: a plan restores the state into the working folder and reads
        # the warehouse, and DuckDB lets no other process open a file a sync is loading
        with locked(args, activity="plan"):
            validate_body = fetch_envelope(api_key, base_url, VALIDATE_PATH)
            domains_body = without_repeated_items(
                fetch_envelope(api_key, base_url, ENDPOINTS["domains"]["path"])
            )
            unknown = check_domain_ids(args.domains or [], listed_domain_ids(domains_body))
            options = source_options(args)
            options.pop("base_url", None)
            pipeline = pipeline_for(args)
            plan = make_plan(
                validate_body, domains_body, pipeline,
                resync_after_minutes=configured_resync_after_minutes(args.resync_after_minutes),
                **options,
            )
        where = describe_where(where_loaded(pipeline))
        print(f"The next run of pipeline {pipeline.pipeline_name}, into {where}:\n")
        print_plan(plan, sys.stdout, detail=args.detail)
        if unknown:
            print(f"Not listed for this key, so left out: --domains {', '.join(unknown)}")
        return EXIT_OK
