"""One error base carrying its exit code, mapped once for every command (cli.main): whatever a
command raises ends in one line and the code the error carries, found also inside the
exceptions dlt wraps around it. Pure tests of the mapping: no server, no warehouse."""

import pytest

from aiclicks_pipeline.commands.run import RunCommand
from aiclicks_pipeline.commands.validate import ValidateCommand
from aiclicks_pipeline.errors import EXIT_BUSY, EXIT_FAILED, AIclicksError, BusyError, UsageError
from aiclicks_pipeline.report.warehouse import ReportError
from aiclicks_pipeline.reset import ResetError
from aiclicks_pipeline.destinations import WarehouseBusy, WarehouseError
from aiclicks_pipeline.status import StatusError
from aiclicks_pipeline.transform import TransformError
from aiclicks_pipeline.workdir import AnotherSyncRunning

from .support import cli_here


@pytest.mark.parametrize("error, code", [
    (TransformError("dbt failed"), EXIT_FAILED),
    (ReportError("no data"), EXIT_FAILED),
    (StatusError("no dataset"), EXIT_FAILED),
    (WarehouseError("no such DuckDB file"), EXIT_FAILED),
    (ResetError("never loaded"), EXIT_FAILED),
    (UsageError("bad option"), EXIT_FAILED),
    (WarehouseBusy("held by pid 7"), EXIT_BUSY),
    (AnotherSyncRunning("a sync runs (pid 7)", {}), EXIT_BUSY),
])
def test_every_commands_error_shares_the_base_and_carries_its_code(error, code, monkeypatch):
    assert isinstance(error, AIclicksError) and error.exit_code == code

    def fails(self, args):
        try:
            raise error
        except AIclicksError as inner:  # as dlt wraps a step's failure
            raise RuntimeError("PipelineStepFailed: check credentials") from inner

    monkeypatch.setattr(ValidateCommand, "execute", fails)
    done = cli_here("validate")

    assert done.returncode == code
    assert done.stderr == f"aiclicks-pipeline: {error}\n"
    assert done.stdout == ""


def test_an_error_of_its_own_code_needs_no_change_in_any_command(monkeypatch):
    class QuotaGone(BusyError):
        pass

    monkeypatch.setattr(ValidateCommand, "execute", lambda self, args: (_ for _ in ()).throw(QuotaGone("later")))
    assert cli_here("validate").returncode == EXIT_BUSY


def test_what_a_failed_command_did_is_shown_above_its_line_and_kept_off_json_stdout(monkeypatch):
    class Built:
        def summary(self):
            return "dbt build on duckdb finished: 12 models"

    def fails(self, args):
        raise TransformError("a dbt test failed: not_null_x", Built())

    monkeypatch.setattr(RunCommand, "check_arguments", lambda self, args: None)
    monkeypatch.setattr(RunCommand, "execute", fails)
    plain = cli_here("run")
    as_json = cli_here("run", "--json")

    assert plain.returncode == as_json.returncode == EXIT_FAILED
    assert plain.stdout == "dbt build on duckdb finished: 12 models\n"
    assert plain.stderr == "aiclicks-pipeline: a dbt test failed: not_null_x\n"
    assert as_json.stdout == ""
    assert as_json.stderr.splitlines() == [
        "dbt build on duckdb finished: 12 models", "aiclicks-pipeline: a dbt test failed: not_null_x"
    ]


def test_an_unexpected_failure_is_still_one_line_and_exit_1(monkeypatch):
    monkeypatch.setattr(ValidateCommand, "execute", lambda self, args: {}["missing"])
    done = cli_here("validate")
    assert done.returncode == EXIT_FAILED
    assert done.stderr == "aiclicks-pipeline: KeyError: 'missing'\n"


def test_no_parser_takes_abbreviations():
    """`--initial-day 5` was taken for `--initial-days 5`: no parser of the package, its
    commands' or its tools' (the sandbox's, the benchmark's), abbreviates."""
    import re
    from pathlib import Path

    from aiclicks_pipeline.cli import _subparsers, build_parser

    parser = build_parser()
    assert not parser.allow_abbrev
    subparsers = _subparsers(parser)
    assert set(subparsers) >= {"run", "plan", "status", "reset", "report", "transform", "validate"}
    assert not any(sub.allow_abbrev for sub in subparsers.values())
    repo = Path(__file__).resolve().parents[1]
    for path in [*repo.glob("aiclicks_pipeline/**/*.py"), *repo.glob("bench/*.py")]:
        for call in re.findall(r"argparse\.ArgumentParser\((.*?)\)\n", path.read_text(), re.S):
            assert "allow_abbrev=False" in call or "add_help=False" in call, (path, call)
