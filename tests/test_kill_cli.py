"""A kill of the CLI as a user runs it, during its extract, normalize and load steps, then the
next run (the same day or the next; the CLI's main() in the test's process) ends equal to a
clean load: nothing doubled, nothing skipped. tests/test_kill.py sweeps the kill through the
load step."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth

from .support import REPO, START, Warehouse, assert_equals_truth, cli_here, run_args

PIPELINE = "aiclicks"  # the CLI's default pipeline name


def extraction_started(sandbox, pipeline_dir: Path) -> bool:
    return sandbox.stats.requests >= 8


def normalisation_started(sandbox, pipeline_dir: Path) -> bool:
    """An extracted package, and the working folder's state records it (dlt saves the state a
    moment after it commits the package: a kill in between is test_kill.py's
    test_a_kill_after_the_package_is_committed_but_before_the_state_is_saved)."""
    state = pipeline_dir / "state.json"
    return (
        any((pipeline_dir / "normalize" / "extracted").glob("*/"))
        and state.exists()
        and '"sources"' in state.read_text()
    )


def load_started(sandbox, pipeline_dir: Path) -> bool:
    return any((pipeline_dir / "load" / "normalized").glob("*/started_jobs/*"))


STAGES = {"extract": extraction_started, "normalize": normalisation_started, "load": load_started}
# each step once, the same day or the next (the sweep below covers the load in depth)
CASES = [("extract", True), ("normalize", False), ("load", True)]


@pytest.mark.parametrize(
    "stage, next_day", CASES, ids=[f"{s}-{'next day' if n else 'same day'}" for s, n in CASES]
)
def test_sigkill_of_the_cli_then_rerun_equals_a_clean_load(stage, next_day, tmp_path):
    started_when = STAGES[stage]
    with run_sandbox(
        seed=31, domains=3, prompts=(300, 500), start=START, frozen=True, rate_limit=None,
        faults={"latency_ms": 20},
    ) as sandbox:
        env = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key}
        args = [sys.executable, "-m", "aiclicks_pipeline", *run_args(sandbox, tmp_path)]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__AICLICKS")}
        process = subprocess.Popen(
            args, env={**environment, **env}, cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        pipeline_dir = tmp_path / "pipelines" / PIPELINE
        deadline = time.monotonic() + 120
        while not started_when(sandbox, pipeline_dir):
            assert process.poll() is None, f"the sync ended before its {stage} step could be killed"
            assert time.monotonic() < deadline, f"{stage} never started"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
        first_now = sandbox.clock.now()
        if next_day:
            sandbox.advance(days=1)
        sandbox.set_faults(latency_ms=0)
        sandbox.reset_stats()

        rerun = cli_here(*run_args(sandbox, tmp_path), env=env)  # the next run: in this process

        assert rerun.returncode == 0, rerun.stderr
        truth = WarehouseTruth(sandbox.account)
        if stage == "extract":  # nothing was committed: the rerun is the first sync
            truth.record_sync(sandbox.clock.now(), days=90)
        else:  # the killed run's data is loaded by the rerun, then (next day) the new days
            truth.record_sync(first_now, days=90)
            if next_day:
                truth.record_sync(sandbox.clock.now(), days=7)
                # the rerun asked the API: a day after a crash is not silently skipped
                assert any(r["path"].endswith("/visibility-time-series") for r in sandbox.stats.log)
        warehouse = Warehouse(tmp_path, duckdb_name="cli.duckdb")
        assert_equals_truth(warehouse, truth)
        # the run history: a killed run whose checkpoint was committed (by the rerun, which
        # finished its load) left its row, which the rerun marked interrupted
        outcomes = sorted(o for (o,) in warehouse.query("select outcome from aiclicks._aiclicks_runs"))
        assert outcomes == (["success"] if stage == "extract" else ["interrupted", "success"])
        # nothing of the killed run is left in the working folder
        leftovers = [p for p in (pipeline_dir / "normalize").iterdir() if p.name not in ("extracted", ".version")]
        assert not leftovers and not list((pipeline_dir / "normalize" / "extracted").iterdir())
        assert not list((pipeline_dir / "load" / "normalized").iterdir())
