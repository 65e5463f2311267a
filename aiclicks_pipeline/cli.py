"""`aiclicks-pipeline`: the entry point. It only wires the commands (commands/) together: the
parser, the checks of every option before a command does anything, logging, and one readable
line and an exit code for every failure, mapped here once (an AIclicksError carries its code:
errors.py)."""

import argparse
import logging
import os
import re
import sys
from typing import Dict, NoReturn, Optional, Sequence

from . import __version__
from .checks import did_you_mean
from .commands import COMMANDS
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError, explain_failure, find_api_error

PROG = "aiclicks-pipeline"
INVALID_CHOICE = re.compile(
    r"argument (?P<argument>\S+): invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)"
)


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations (`--initial-day` is not `--initial-days`), whose errors
    are one line with a suggestion for a near miss, exit 1 like every bad input (cli.main)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        invalid = INVALID_CHOICE.match(message)
        if invalid:
            choices = [c.strip(" '") for c in invalid["choices"].split(",")]
            what = "command" if invalid["argument"] == "command" else f"value for {invalid['argument']}"
            message = (
                f"unknown {what} {invalid['given']!r}{did_you_mean(invalid['given'], choices)}; "
                f"choose from {', '.join(choices)}"
            )
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Load the AIclicks API into your warehouse with dlt.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbose_help = "log every request: method, path, status, request id, milliseconds, cache"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # also after the subcommand; SUPPRESS keeps a -v given before it
    after_subcommand = Parser(add_help=False)
    after_subcommand.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help
    )
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        subparser = subparsers.add_parser(
            command.command, help=command.help_string, parents=[after_subcommand]
        )
        command.configure_parser(subparser)
        subparser.set_defaults(command_object=command)
    return parser


def parse_arguments(parser: Parser, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """`parse_args`, with "did you mean" for an unknown option of the command given."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        subparser = _subparsers(parser).get(args.command, parser)
        options = [o for action in subparser._actions for o in action.option_strings]
        given = unknown[0].split("=", 1)[0]
        kind = "option" if given.startswith("-") else "argument"
        raise UsageError(
            f"{subparser.prog}: unknown {kind} {given}{did_you_mean(given, options)} "
            f"(see `{subparser.prog} --help`)"
        )
    return args


def _subparsers(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args: Optional[argparse.Namespace] = None
    try:
        args = parse_arguments(build_parser(), argv)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        # every option, name and path, before the first request and before any state changes
        args.command_object.check_arguments(args)
        code = args.command_object.execute(args)
        sys.stdout.flush()  # a reader that went away shows here, not as a warning at exit
        return code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _closed_pipe()
    except Exception as exc:  # every failure ends in one readable line and its exit code
        return _failed(exc, json_output=bool(getattr(args, "json", False)))


def _failed(exc: BaseException, json_output: bool) -> int:
    """The error's line (our own error's message, or a known cause dlt wrapped; else the class
    and message) and its exit code; above it what the command did before it failed."""
    error = find_api_error(exc)
    done = error.done_so_far() if error is not None else None
    if done:
        # with --json, stdout holds the JSON only
        print(done, file=sys.stderr if json_output else sys.stdout)
    message = explain_failure(exc) or f"{type(exc).__name__}: {exc}"
    if not message.startswith(PROG):
        message = f"{PROG}: {message}"
    print(message, file=sys.stderr)
    return error.exit_code if error is not None else EXIT_FAILED


def _closed_pipe() -> int:
    """The reader of stdout went away (`validate | head -1`): leave quietly, as `cat` would.
    Python would complain once more when it flushes stdout at exit: point it at /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (a test's StringIO)
        pass
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
