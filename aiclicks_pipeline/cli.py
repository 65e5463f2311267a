"""`aiclicks-pipeline`: the entry point. It only wires the commands (commands/) together: the
parser, logging, and one readable line and an exit code for every failure."""

import argparse
import logging
import sys
from typing import Optional, Sequence

from . import __version__
from .commands import COMMANDS
from .commands.base import EXIT_BUSY, EXIT_FAILED
from .errors import explain_failure

EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiclicks-pipeline",
        description="Load the AIclicks API into your warehouse with dlt.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbose_help = "log every request: method, path, status, request id, milliseconds, cache"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # also after the subcommand; SUPPRESS keeps a -v given before it
    after_subcommand = argparse.ArgumentParser(add_help=False)
    after_subcommand.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        subparser = subparsers.add_parser(
            command.command, help=command.help_string, parents=[after_subcommand]
        )
        command.configure_parser(subparser)
        subparser.set_defaults(execute=command.execute)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from .workdir import AnotherSyncRunning

    try:
        return args.execute(args)
    except AnotherSyncRunning as busy:
        print(f"aiclicks-pipeline: {busy}", file=sys.stderr)
        return EXIT_BUSY
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # every failure ends in one readable line and a non-zero code
        message = explain_failure(exc) or f"{type(exc).__name__}: {exc}"
        print(f"aiclicks-pipeline: {message}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
