"""`aiclicks-pipeline run`: one sync of the API into the destination."""

import argparse
import sys

from .base import (
    EXIT_OK,
    EXIT_PARTIAL,
    Command,
    add_destination_arguments,
    add_source_arguments,
    pipeline_for,
    source_options,
)


class RunCommand(Command):
    command = "run"
    help_string = "sync the configured API into the destination"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        add_source_arguments(parser)
        add_destination_arguments(parser)
        parser.add_argument("--full-refresh", action="store_true", help="drop the tables and state first")
        parser.add_argument(
            "--loader-file-format",
            help="dlt file format (default: jsonl where the destination takes it)",
        )
        parser.add_argument(
            "--schema-contract",
            choices=["evolve", "freeze"],
            help="what an API schema change does: evolve (default) or freeze to fail on it",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress lines")

    def execute(self, args: argparse.Namespace) -> int:
        from ..pipeline import run_sync

        pipeline = pipeline_for(args, progress=None if args.quiet else "log")
        result = run_sync(
            pipeline,
            resources=args.resources,
            full_refresh=args.full_refresh,
            loader_file_format=args.loader_file_format,
            schema_contract=args.schema_contract,
            **source_options(args),
        )
        print(result.summary())
        if result.skipped_domains:
            print(
                f"Partial sync: {len(result.skipped_domains)} domain(s) skipped, all others loaded.",
                file=sys.stderr,
            )
            return EXIT_PARTIAL
        return EXIT_OK
