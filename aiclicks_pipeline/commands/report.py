"""`aiclicks-pipeline report`: the warehouse as one offline HTML file (report/ does the work)."""

import argparse

from .base import (
    EXIT_OK,
    Command,
    add_destination_arguments,
    add_wait_argument,
    csv_list,
    pipeline_name_for,
)


class ReportCommand(Command):
    command = "report"
    help_string = "write an offline HTML report: visibility, share of voice, assistants, sources"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from ..report import DEFAULT_REPORT_FILE
        from ..settings import DEFAULT_MODELS_SCHEMA

        add_destination_arguments(parser)
        add_wait_argument(parser)
        parser.add_argument("--domains", type=csv_list, help="comma-separated domain ids (default: all)")
        parser.add_argument("--out", default=DEFAULT_REPORT_FILE, help="the HTML file to write")
        parser.add_argument(
            "--models-schema", default=DEFAULT_MODELS_SCHEMA,
            help="schema `transform` wrote the dbt models to (the report reads them)",
        )

    def execute(self, args: argparse.Namespace) -> int:
        from ..report import write_report

        # a DuckDB file a sync holds longer than --wait raises WarehouseBusy: exit 75 (cli.main)
        result = write_report(
            out=args.out,
            duckdb_file=args.duckdb_file,
            destination=args.destination,
            dataset=args.dataset,
            models_schema=args.models_schema,
            domain_ids=args.domains,
            pipeline_name=pipeline_name_for(args),
            wait_s=args.wait,
        )
        print(result.summary())
        return EXIT_OK
