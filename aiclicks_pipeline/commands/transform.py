"""`aiclicks-pipeline transform`: dbt build of the packaged models on the loaded data, then
dbt source freshness, in the warehouse `run` with the same destination options loads.

It writes the warehouse, so it takes the pipeline's run lock like a sync: behind a running sync
it waits for the sync to end (the models are then built from a finished sync; up to `--wait`
seconds, saying so in one line), or with `--no-wait` says in one line that a sync is running
and exits 75. A sync started while it builds exits 75 in the same way."""

import argparse
import json
import sys
from typing import Any, Dict

from .base import EXIT_OK, Command, add_destination_arguments, locked, pipeline_name_for, seconds

# how long transform waits for a running sync of its pipeline to end, by default
DEFAULT_SYNC_WAIT_S = 3600.0


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
            "of the destination, or AICLICKS_* variables: docs/dbt.md)",
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
        waiting = parser.add_mutually_exclusive_group()
        waiting.add_argument(
            "--wait", type=seconds, default=DEFAULT_SYNC_WAIT_S, metavar="SECONDS",
            help="behind a running sync of the pipeline, wait this long for it to end, then "
            f"build (default {DEFAULT_SYNC_WAIT_S:g}); else exit 75",
        )
        waiting.add_argument(
            "--no-wait", dest="wait", action="store_const", const=0.0,
            help="behind a running sync, say so and exit 75 at once",
        )

    def execute(self, args: argparse.Namespace) -> int:
        from ..transform import run_transform
        from ..warehouse import DEFAULT_READ_WAIT_S

        # behind a running sync: wait for it to end, or AnotherSyncRunning (exit 75)
        name = pipeline_name_for(args)
        waiting = lambda holder: _waiting(name, holder, args.wait)  # noqa: E731
        with locked(args, "transform", wait_s=args.wait, on_wait=waiting):
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
                pipeline_name=name,
                # a DuckDB file a reader holds: a moment at most; with --no-wait, not at all
                wait_s=min(args.wait, DEFAULT_READ_WAIT_S),
            )
        print(result.summary())
        return EXIT_OK


def _waiting(pipeline_name: str, holder: Dict[str, Any], wait_s: float) -> None:
    from ..workdir import describe_holder

    print(
        f"Waiting up to {wait_s:g} s for the {holder.get('activity', 'sync')} of pipeline "
        f"{pipeline_name} to end ({describe_holder(holder)}); --no-wait to not wait",
        file=sys.stderr,
        flush=True,
    )


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object, e.g. '{\"name\": value}'")
    return value
