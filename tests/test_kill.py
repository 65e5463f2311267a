"""SIGKILL during extraction, normalisation or load; the next run ends equal to a clean one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import ENDPOINTS

from .conftest import START, Warehouse
from .test_cli import REPO, cli, run_args
from .test_source import assert_keys_unique
from .truth_compare import assert_table_matches

PIPELINE = "aiclicks"  # the CLI's default pipeline name


def extraction_started(sandbox, pipeline_dir: Path) -> bool:
    return sandbox.stats.requests >= 8


def normalisation_started(sandbox, pipeline_dir: Path) -> bool:
    return any((pipeline_dir / "normalize" / "extracted").glob("*/"))


def load_started(sandbox, pipeline_dir: Path) -> bool:
    return any((pipeline_dir / "load" / "normalized").glob("*/started_jobs/*"))


STAGES = {
    # stage: (when to kill, extra CLI args that widen that stage so the kill lands inside it)
    "extract": (extraction_started, []),
    "normalize": (normalisation_started, []),
    "load": (load_started, ["--loader-file-format", "insert_values"]),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_then_rerun_equals_a_clean_load(stage, tmp_path):
    started_when, extra = STAGES[stage]
    with run_sandbox(
        seed=31, domains=3, prompts=(300, 500), start=START, frozen=True, rate_limit=None,
        faults={"latency_ms": 20},
    ) as sandbox:
        env = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key}
        args = [sys.executable, "-m", "aiclicks_pipeline", *run_args(sandbox, tmp_path), *extra]
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

        sandbox.set_faults(latency_ms=0)
        rerun = cli(*run_args(sandbox, tmp_path), env=env)
        assert rerun.returncode == 0, rerun.stderr

        warehouse = Warehouse(tmp_path, duckdb_name="cli.duckdb")
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(sandbox.clock.now(), days=90)
        for table in ENDPOINTS:
            assert_table_matches(warehouse, truth, table)
        assert warehouse.citation_models() == set(truth.keys("citations__models"))
        assert_keys_unique(warehouse)
