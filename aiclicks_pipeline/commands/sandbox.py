"""`aiclicks-pipeline sandbox`: serve the local AIclicks API in the foreground."""

import argparse

from .base import EXIT_OK, Command


class SandboxCommand(Command):
    command = "sandbox"
    help_string = "serve a local AIclicks API"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        from .. import sandbox

        sandbox.add_arguments(parser)

    def execute(self, args: argparse.Namespace) -> int:
        from .. import sandbox

        sandbox.serve(args)
        return EXIT_OK
