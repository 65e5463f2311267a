"""`aiclicks-pipeline reset`: the next run reloads chosen tables of chosen domains (reset.py
does the work), under the run lock, after the user confirms."""

import argparse
import sys

from .base import (
    EXIT_FAILED,
    EXIT_OK,
    Command,
    add_destination_arguments,
    check_destination_arguments,
    check_selection_arguments,
    csv_list,
    locked,
    pipeline_for,
)


class ResetCommand(Command):
    command = "reset"
    help_string = "make the next run reload chosen tables (of chosen domains) from scratch"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from ..settings import ENDPOINTS

        parser.add_argument(
            "--resources", type=csv_list, required=True,
            help=f"comma-separated tables to reload: {', '.join(ENDPOINTS)}",
        )
        parser.add_argument(
            "--domains", type=csv_list, help="comma-separated domain ids (default: every domain)"
        )
        parser.add_argument(
            "--shard", help="k/n: the shard's pipeline, as given to run --shard"
        )
        add_destination_arguments(parser)
        parser.add_argument(
            "--keep-rows", action="store_true",
            help="reset the cursors only; keep the rows (the reload merges over them)",
        )
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def check_arguments(self, args: argparse.Namespace) -> None:
        check_selection_arguments(args)
        check_destination_arguments(args)

    def execute(self, args: argparse.Namespace) -> int:
        from ..reset import apply_reset, plan_reset
        from ..workdir import discard_interrupted_extracts, finish_pending_loads

        # a sync running refuses at once: exit 75, saying how far it is (a reset would clash
        # with the cursors it commits at each checkpoint)
        with locked(args, "reset"):
            pipeline = pipeline_for(args)
            discard_interrupted_extracts(pipeline)
            finished = finish_pending_loads(pipeline)
            if finished:
                print(f"First finished {len(finished)} load(s) an interrupted run left.")
            plan = plan_reset(pipeline, args.resources, args.domains, keep_rows=args.keep_rows)
            print(plan.describe())
            if plan.is_empty:
                return EXIT_OK
            if not args.yes and sys.stdin.isatty() and not _confirmed():
                print("Nothing changed.")
                return EXIT_FAILED
            apply_reset(pipeline, plan)
        deleted = sum(plan.rows.values())
        print(
            f"Reset {plan.pairs} (table, domain) pair(s)"
            + ("" if plan.keep_rows else f", {deleted} row(s) deleted")
            + ": the next `aiclicks-pipeline run` reloads them."
        )
        return EXIT_OK


def _confirmed() -> bool:
    try:
        answer = input("Go ahead? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
