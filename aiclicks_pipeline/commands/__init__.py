"""The subcommands of `aiclicks-pipeline`, one module each (the shape of dlt's own CLI).

A command module parses its options and calls the module that does the work (pipeline.py,
plan.py, transform.py, report/, demo.py, ...); nothing below the commands imports them.
"""

from typing import List

from .base import Command
from .demo import DemoCommand
from .plan import PlanCommand
from .report import ReportCommand
from .reset import ResetCommand
from .run import RunCommand
from .sandbox import SandboxCommand
from .status import StatusCommand
from .transform import TransformCommand
from .validate import ValidateCommand

COMMANDS: List[Command] = [
    RunCommand(),
    StatusCommand(),
    ResetCommand(),
    ValidateCommand(),
    TransformCommand(),
    ReportCommand(),
    PlanCommand(),
    DemoCommand(),
    SandboxCommand(),
]

__all__ = ["COMMANDS", "Command"]
