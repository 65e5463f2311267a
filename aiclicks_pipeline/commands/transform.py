"""`aiclicks-pipeline transform`: dbt build of the packaged models on the loaded data, then
dbt source freshness, in the warehouse `run` with the same destination options loads."""

import argparse
import json

from .base import EXIT_OK, Command, add_destination_arguments, pipeline_name_for


class TransformCommand(Command):
    command = "transform"
    help_string = "dbt build: the packaged dbt models and tests on the loaded data, and freshness"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from ..settings import DEFAULT_MODELS_SCHEMA
        from ..transform import TARGETS

        add_destination_arguments(parser)
        parser.add_argument(
            "--schema", default=DEFAULT_MODELS_SCHEMA, help="schema the models are written to"
        )
        parser.add_argument(
            "--target", choices=list(TARGETS),
            help="dbt profile target (default: the destination's; credentials from dlt's config "
            "of the destination, or AICLICKS_* variables, see the README)",
        )
        parser.add_argument("--work-dir", help="dbt's target/ and logs/ (default: beside the file)")
        parser.add_argument(
            "--vars", type=json_object, default={},
            help="the package's dbt vars as JSON, e.g. "
            "'{\"aiclicks_freshness_error_after_hours\": 24}'",
        )
        parser.add_argument(
            "--select", nargs="+", metavar="NODES", help="dbt node selection (default: everything)"
        )
        parser.add_argument(
            "--no-freshness", action="store_true", help="skip dbt source freshness"
        )
        parser.add_argument(
            "--dbt-log", action="store_true",
            help="print dbt's own lines as it runs (always written to the log file it names)",
        )
        parser.add_argument(
            "--quiet", action="store_true", help="the summary only (the default without --dbt-log)"
        )

    def execute(self, args: argparse.Namespace) -> int:
        from ..transform import run_transform

        # a TransformError carries what did build, shown above its message (cli.main)
        result = run_transform(
            duckdb_file=args.duckdb_file,
            dataset=args.dataset,
            target=args.target,
            schema=args.schema,
            work_dir=args.work_dir,
            select=args.select,
            show_dbt_log=args.dbt_log and not args.quiet,
            dbt_vars=args.vars,
            check_freshness=not args.no_freshness,
            destination=args.destination,
            pipeline_name=pipeline_name_for(args),
        )
        print(result.summary())
        return EXIT_OK


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object, e.g. '{\"name\": value}'")
    return value
