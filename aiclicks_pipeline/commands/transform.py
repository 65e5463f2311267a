"""`aiclicks-pipeline transform`: dbt build of the packaged models on the loaded data, then
dbt source freshness."""

import argparse
import json

from ..settings import DEFAULT_DATASET, DEFAULT_DUCKDB_FILE
from .base import EXIT_OK, Command


class TransformCommand(Command):
    command = "transform"
    help_string = "dbt build: the packaged dbt models and tests on the loaded data, and freshness"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from ..transform import DEFAULT_MODELS_SCHEMA, DEFAULT_TARGET, TARGETS

        parser.add_argument(
            "--duckdb-file", default=DEFAULT_DUCKDB_FILE, help="the DuckDB file a sync wrote"
        )
        parser.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset the sync loaded")
        parser.add_argument(
            "--schema", default=DEFAULT_MODELS_SCHEMA, help="schema the models are written to"
        )
        parser.add_argument(
            "--target", default=DEFAULT_TARGET, choices=TARGETS,
            help="dbt profile target (credentials from AICLICKS_* variables, see the README)",
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
        parser.add_argument("--quiet", action="store_true", help="no dbt progress lines")

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
            quiet=args.quiet,
            dbt_vars=args.vars,
            check_freshness=not args.no_freshness,
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
