"""`aiclicks-pipeline run`: one sync of the API into the destination, in checkpoints, that a
user can stop (Ctrl-C, SIGTERM), resume and watch."""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .base import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    Command,
    add_destination_arguments,
    add_source_arguments,
    locked,
    pipeline_for,
    source_options,
)


class RunCommand(Command):
    command = "run"
    help_string = "sync the configured API into the destination"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        add_source_arguments(parser)
        add_destination_arguments(parser)
        parser.add_argument(
            "--full-refresh", action="store_true",
            help="drop the tables and state of what this run loads first (the others stay)",
        )
        parser.add_argument(
            "--checkpoint-requests", type=int,
            help="requests per checkpoint, each a committed load (default 120: two minutes of "
            "the real rate limit)",
        )
        parser.add_argument(
            "--resync-after-minutes", type=float,
            help="leave out what was synced less than this long ago (default 60; 0 asks again)",
        )
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
        parser.add_argument(
            "--json", action="store_true",
            help="print the run's summary as JSON on stdout (the readable one goes to stderr)",
        )
        parser.add_argument("--summary-file", help="also write the JSON summary to this file")
        parser.add_argument(
            "--transform", action="store_true",
            help="then build the dbt models (aiclicks-pipeline transform) unless the sync was "
            "stopped or failed; exit 1 if the build fails",
        )
        parser.add_argument(
            "--no-freshness", action="store_true",
            help="with --transform: skip dbt source freshness",
        )

    def execute(self, args: argparse.Namespace) -> int:
        from ..checkpoints import SyncFailed, run_sync
        from ..interrupts import StopRequest, stop_on_signals
        from ..progress import SyncProgress

        stop = StopRequest()
        progress = SyncProgress(mode="quiet" if args.quiet else "auto")
        result: Any = None
        with stop_on_signals(stop, farewell=lambda: _farewell(args, progress, stop)):
            with locked(args):
                pipeline = pipeline_for(args)
                try:
                    result = run_sync(
                        pipeline,
                        resources=args.resources,
                        full_refresh=args.full_refresh,
                        loader_file_format=args.loader_file_format,
                        schema_contract=args.schema_contract,
                        checkpoint_requests=args.checkpoint_requests,
                        resync_after_minutes=args.resync_after_minutes,
                        stop=stop,
                        progress=progress,
                        **source_options(args),
                    )
                except SyncFailed as failed:
                    _report(args, failed.result)
                    raise
        _report(args, result)
        transformed = EXIT_OK
        if args.transform and result.status == "interrupted":
            print("Not transformed: the sync did not finish.", file=sys.stderr)
        elif args.transform:
            transformed = _transform(args, pipeline)
        if result.status == "interrupted":
            print(f"Stopped by {_signal_name(stop)}: {result.progress_line()}.", file=sys.stderr)
            return stop.exit_code
        if result.skipped_domains or result.unknown_domains:
            print(
                f"Partial sync: {len(result.skipped_domains) + len(result.unknown_domains)} "
                "domain(s) not loaded, all others loaded.",
                file=sys.stderr,
            )
            return transformed or EXIT_PARTIAL
        if result.domains_total == 0:
            return transformed or EXIT_PARTIAL
        return transformed or (EXIT_OK if result.status != "failed" else EXIT_FAILED)


def _transform(args: argparse.Namespace, pipeline: Any) -> int:
    """`transform` on what the sync loaded (as `meltano run tap target dbt` chains them):
    EXIT_OK, or EXIT_FAILED with what did build and the one-line error."""
    from ..transform import TransformError, run_transform

    # with --json the readable lines go to stderr, as the sync's summary does
    out = sys.stderr if args.json else sys.stdout
    try:
        transformed = run_transform(
            duckdb_file=args.duckdb_file,
            dataset=args.dataset,
            destination=args.destination,
            pipeline_name=pipeline.pipeline_name,
            check_freshness=not args.no_freshness,
        )
    except TransformError as exc:
        if exc.result is not None:
            print(exc.result.summary(), file=out)
        print(f"aiclicks-pipeline: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(transformed.summary(), file=out)
    return EXIT_OK


def _report(args: argparse.Namespace, result: Any) -> None:
    """The readable summary (stdout, or stderr with --json) and the JSON one where asked."""
    summary = json.dumps(result.as_json(), indent=2)
    if args.summary_file:
        Path(args.summary_file).write_text(summary + "\n")
    if args.json:
        print(result.summary(), file=sys.stderr)
        print(summary)
    else:
        print(result.summary())


def _farewell(args: argparse.Namespace, progress: Any, stop: Any) -> str:
    """What the watchdog prints (and writes to --summary-file) when it has to end the process
    (interrupts.py): the run's result so far, as an interrupted one."""
    result = progress.result
    if result is None:
        return f"Stopped by {_signal_name(stop)}: nothing was committed."
    result.status, result.signal = "interrupted", stop.signum
    if progress.context is not None:
        result.stats = progress.context.stats
    if args.summary_file:
        Path(args.summary_file).write_text(json.dumps(result.as_json(), indent=2) + "\n")
    return f"Stopped by {_signal_name(stop)}: {result.progress_line()}."


def _signal_name(stop: Any) -> str:
    return "SIGTERM" if stop.exit_code == 143 else "SIGINT"
