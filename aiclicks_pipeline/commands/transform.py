"""`aiclicks-pipeline transform`: dbt build of the packaged models on the loaded data."""

import argparse

from ..settings import DEFAULT_DATASET, DEFAULT_DUCKDB_FILE
from .base import EXIT_OK, Command


class TransformCommand(Command):
    command = "transform"
    help_string = "dbt build: the packaged dbt models and tests on the loaded data"

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
        parser.add_argument("--quiet", action="store_true", help="no dbt progress lines")

    def execute(self, args: argparse.Namespace) -> int:
        from ..transform import run_transform

        result = run_transform(
            duckdb_file=args.duckdb_file,
            dataset=args.dataset,
            target=args.target,
            schema=args.schema,
            work_dir=args.work_dir,
            quiet=args.quiet,
        )
        print(result.summary())
        return EXIT_OK
