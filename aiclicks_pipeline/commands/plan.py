"""`aiclicks-pipeline plan`: the requests the next run makes and the time the limit needs."""

import argparse
import sys
from typing import Any, List, Tuple

from ..checks import check_domain_ids
from ..rows import without_repeated_items
from ..session import fetch_envelope, fetch_response
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
    resolve_keys_and_url,
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
        from ..plan import budget_of, make_plan, print_plan

        api_keys, base_url = resolve_keys_and_url(args)
        options = source_options(args)
        options.pop("base_url", None)
        # the lock, like a run: a plan restores the state into the working folder and reads
        # the warehouse, and DuckDB lets no other process open a file a sync is loading
        with locked(args, activity="plan"):
            # every key's rate limit: the sync spreads its requests over all of them
            validations, usable = validate_keys(api_keys, base_url)
            domains_body = without_repeated_items(
                fetch_envelope(usable[0], base_url, ENDPOINTS["domains"]["path"])
            )
            unknown = check_domain_ids(args.domains or [], listed_domain_ids(domains_body))
            pipeline = pipeline_for(args)
            plan = make_plan(
                validations[0].json(), domains_body, pipeline,
                resync_after_minutes=configured_resync_after_minutes(args.resync_after_minutes),
                budgets=[b for b in map(budget_of, validations) if b is not None],
                **options,
            )
        where = describe_where(where_loaded(pipeline))
        print(f"The next run of pipeline {pipeline.pipeline_name}, into {where}:\n")
        print_plan(plan, sys.stdout, detail=args.detail)
        if unknown:
            print(f"Not listed for this key, so left out: --domains {', '.join(unknown)}")
        return EXIT_OK


def validate_keys(api_keys: List[str], base_url: str) -> Tuple[List[Any], List[str]]:
    """Each key's `/validate` response and the keys that got one. A key the API refuses is
    left out, as a run sets it aside, unless it is the only one (its refusal raises)."""
    from ..errors import AccessDeniedError, AuthenticationError
    from ..keypool import key_label

    validations, usable = [], []
    for position, api_key in enumerate(api_keys, start=1):
        try:
            validations.append(fetch_response(api_key, base_url, VALIDATE_PATH))
            usable.append(api_key)
        except (AuthenticationError, AccessDeniedError) as refused:
            if len(api_keys) == 1 or (position == len(api_keys) and not usable):
                raise
            print(f"Left out, as a run would: {key_label(position, len(api_keys), api_key)}: "
                  f"{refused}", file=sys.stderr)
    return validations, usable
