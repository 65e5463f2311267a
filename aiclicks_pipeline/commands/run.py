"""`aiclicks-pipeline run`: one sync of the API into the destination, in checkpoints, that a
user can stop (Ctrl-C, SIGTERM), resume and watch."""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from ..checks import check_names, check_output_file
from ..progress import SyncProgress
from .base import (
    EXIT_OK,
    EXIT_PARTIAL,
    Command,
    UsageError,
    add_destination_arguments,
    add_source_arguments,
    check_destination_arguments,
    check_source_arguments,
    locked,
    pipeline_for,
    source_options,
)

logger = logging.getLogger("aiclicks_pipeline")


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

    def check_arguments(self, args: argparse.Namespace) -> None:
        from dlt.common.destination import LOADER_FILE_FORMATS

        from ..checkpoints import configured_checkpoint_requests, configured_warehouse_wait_s
        from ..destinations import configured_destination, destination_kind
        from ..transform import TARGETS

        check_source_arguments(args)
        check_destination_arguments(args, create_folder=True)
        configured_checkpoint_requests(args.checkpoint_requests)
        configured_warehouse_wait_s()
        if args.loader_file_format:
            check_names("loader file format", [args.loader_file_format], sorted(LOADER_FILE_FORMATS))
        if args.summary_file:
            check_output_file(args.summary_file, "--summary-file")
        target = destination_kind(configured_destination(args.destination))
        if args.transform and target not in TARGETS:
            raise UsageError(
                f"--transform has no dbt target for destination {target}; the package's targets "
                f"are {', '.join(TARGETS)}"
            )

    def execute(self, args: argparse.Namespace) -> int:
        from ..checkpoints import INTERRUPTED, SyncFailed, run_sync
        from ..interrupts import StopRequest, stop_on_signals
        from ..workdir import STARTING

        stop = StopRequest()
        progress = DescribedProgress(mode="quiet" if args.quiet else "auto")
        result: Any = None
        with stop_on_signals(stop, farewell=lambda: _farewell(args, progress, stop)):
            with locked(args) as lock:
                progress.lock = lock
                lock.describe(phase=STARTING)  # until its first checkpoint (DescribedProgress)
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
        if result.status == INTERRUPTED:
            print(f"Stopped by {_signal_name(stop)}: {result.progress_line()}.", file=sys.stderr)
            if args.transform:
                print("Not transformed: the sync did not finish.", file=sys.stderr)
            return stop.exit_code
        partial = result.partial_line()
        if partial:
            print(partial, file=sys.stderr)
        if args.transform:
            _transform(args, pipeline)  # a failed build raises TransformError: exit 1
        return EXIT_PARTIAL if partial else EXIT_OK


class DescribedProgress(SyncProgress):
    """The sync's progress display, that also describes the sync in the run lock it holds
    (`lock`, workdir.py) at its start and at each checkpoint: where `status`, `reset` and
    `transform` on this machine read its checkpoint k of n, ETA and run id."""

    lock: Any = None

    def start(self, context: Any, result: Any, checkpoints: int) -> None:
        super().start(context, result, checkpoints)
        self._describe()

    def checkpoint_started(self, number: int) -> None:
        super().checkpoint_started(number)
        self._describe()

    def _describe(self) -> None:
        if self.lock is None or self.result is None:
            return
        facts = self.facts()
        eta = self._eta_text(max(facts["planned_requests"] - facts["requests"], 0))
        try:
            self.lock.describe(
                checkpoint=self.checkpoint,
                checkpoints=self.checkpoints,
                eta=eta.replace("ETA ", "", 1) or None,
                run_id=self.result.run_id,
                where=self.result.where_text(),
            )
        except OSError as exc:  # the description is a courtesy; the sync goes on
            logger.info("The run lock's description was not written: %s", exc)


def _transform(args: argparse.Namespace, pipeline: Any) -> None:
    """`transform` on what the sync loaded (as `meltano run tap target dbt` chains them); a
    failed build raises TransformError, which carries what did build (cli.main shows it)."""
    from ..transform import run_transform

    transformed = run_transform(
        duckdb_file=args.duckdb_file,
        dataset=args.dataset,
        destination=args.destination,
        pipeline_name=pipeline.pipeline_name,
        check_freshness=not args.no_freshness,
    )
    # with --json the readable lines go to stderr, as the sync's summary does
    print(transformed.summary(), file=sys.stderr if args.json else sys.stdout)


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
