"""`aiclicks-pipeline demo`: the main job on a fresh machine (demo.py does the work)."""

import argparse

from .base import Command


class DemoCommand(Command):
    command = "demo"
    help_string = "start a sandbox API and sync it into DuckDB, twice"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--workdir", default="demo_output", help="folder for the DuckDB file and state")
        parser.add_argument("--sandbox-domains", type=int, default=3)
        parser.add_argument("--seed", type=int, default=7)

    def execute(self, args: argparse.Namespace) -> int:
        from ..demo import run_demo

        return run_demo(workdir=args.workdir, domains=args.sandbox_domains, seed=args.seed)
