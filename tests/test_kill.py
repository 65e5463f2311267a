"""A kill at any moment, then the next run (the same day or the next), ends equal to a clean
load: nothing doubled, nothing skipped.

- a sweep through the load step: a load is started again and again from the same moment (a
  copy of the working folder and warehouse taken just before a load), in a forked process
  killed 0, 20, 40, ... ms into it until a load ends before its kill, in two rounds offset
  by 10 ms; after each kill the next run must finish the interrupted load and equal the
  ground truth;
- a kill between dlt's commit of a package and its save of the state;
- a kill in the middle of DuckDB's own write of a metadata block at a checkpoint, which leaves
  the file with a half-written block: the next run repairs it (each page at which the write can
  stop: tests/unit/test_duckdb_repair.py).
The CLI as a user runs it, killed during its extract, normalize and load steps:
tests/test_kill_cli.py.
"""

import os
import shutil
import signal
import time
from datetime import timedelta
from pathlib import Path

import pytest
from dlt.pipeline.pipeline import Pipeline

from aiclicks_pipeline.checkpoints import SyncFailed
from aiclicks_pipeline.errors import EXIT_FAILED
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.workdir import finish_pending_loads

from .support import (
    START, Warehouse, WarehouseFile, assert_equals_truth, cli_here, run_args, tear_the_next_checkpoint,
)


def test_a_kill_after_the_package_is_committed_but_before_the_state_is_saved(tmp_path):
    """dlt commits an extracted package a moment before it saves the working folder's state.
    Killed in between, the package's state is unknown to the folder: the next run discards it
    (nothing of it was loaded) and syncs that checkpoint again."""
    with run_sandbox(seed=31, domains=2, prompts=(20, 40), start=START, frozen=True, rate_limit=None) as sandbox:
        warehouse = Warehouse(tmp_path)
        save_state = Pipeline._save_state
        saved = []

        def die_at_the_second_save(self, state):  # the first save is the working folder's binding
            saved.append(1)
            if "sources" in state:
                raise StopBeforeLoad()
            save_state(self, state)

        with pytest.MonkeyPatch.context() as patch, pytest.raises(SyncFailed):
            patch.setattr(Pipeline, "_save_state", die_at_the_second_save)
            warehouse.sync(sandbox)
        assert warehouse.new_pipeline().list_extracted_load_packages()
        sandbox.advance(days=1)

        rerun = Warehouse(tmp_path).sync(sandbox)

        assert not rerun.finished_pending and rerun.windows_asked["visibility_daily"] == [90]
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(sandbox.clock.now(), days=90)
        assert_equals_truth(Warehouse(tmp_path), truth)
        assert not Warehouse(tmp_path).pipeline.list_extracted_load_packages()


# --- the sweep through the load step -----------------------------------------------------


class StopBeforeLoad(Exception):
    pass


# the account whose first checkpoint's load is swept: small, as a load's time is mostly dlt's
# own work per table and job (every table, the child table included, still has rows), and each
# moment of the sweep costs a load and a resume
SWEPT_ACCOUNT = dict(seed=31, domains=2, prompts=(10, 20), start=START, frozen=True, rate_limit=None)


@pytest.fixture(scope="module")
def before_load(tmp_path_factory):
    """A sandbox, and a copy of a working folder and warehouse just before a checkpoint's
    load: extracted and normalized, nothing of it loaded yet. Restored where it was taken
    (the working folder is bound to the warehouse's absolute path)."""
    folder = tmp_path_factory.mktemp("before_load")
    with run_sandbox(**SWEPT_ACCOUNT) as sandbox:
        warehouse = Warehouse(folder / "work")

        def stop_before_load(self, *args, **kwargs):
            raise StopBeforeLoad()

        with pytest.MonkeyPatch.context() as patch, pytest.raises(SyncFailed):
            patch.setattr(Pipeline, "load", stop_before_load)
            warehouse.sync(sandbox)
        assert warehouse.pipeline.list_normalized_load_packages()
        shutil.copytree(folder / "work", folder / "snapshot")
        yield sandbox, folder / "snapshot"


def copy_of(snapshot: Path, _unused: Path = None) -> Path:
    """The snapshot restored where it was taken; returns that folder."""
    work = snapshot.with_name("work")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(snapshot, work)
    return work


def load_in_a_child(folder: Path) -> int:
    """Forks a process that loads the pending package of `folder`; returns its pid once the
    load is about to start."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: load, then leave without running the parent's cleanup
        code = 1
        try:
            os.close(read_end)
            pipeline = Warehouse(folder).pipeline
            os.write(write_end, b"1")
            pipeline.load()
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    assert os.read(read_end, 1) == b"1"
    os.close(read_end)
    return pid


def time_a_full_load(snapshot: Path) -> float:
    """Seconds from the child's start of the load (when a sweep's kill moment starts to
    count) to its exit."""
    folder = copy_of(snapshot)
    pid = load_in_a_child(folder)
    started = time.monotonic()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return time.monotonic() - started


STEP_S = 0.020
MAX_MOMENTS = 32
# a round stops at a load that ends before its kill, or at this many times the timed load
# (a machine that slow during the sweep has had more of its load swept than planned)
MAX_STRETCH = 3


def data_tables(path: Path) -> dict:
    """Every row of every table of the dataset, as multisets; dlt's own tables and the run
    history (whose rows tell a killed run and its rerun from an unbroken one) left out."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as connection:
        tables = [name for (name,) in connection.execute(
            "select table_name from information_schema.tables where table_schema = 'aiclicks'"
        ).fetchall() if not name.startswith("_")]
        return {
            table: sorted(map(repr, connection.execute(f"select * from aiclicks.{table}").fetchall()))
            for table in tables
        }


def test_a_kill_at_any_moment_of_the_load_then_the_next_run_equals_a_clean_load(before_load):
    """Sweeps SIGKILL through the load step in 20 ms steps (coarser only where a slow machine
    stretches the load past MAX_MOMENTS steps, to bound the suite's time), in two rounds offset
    by half a step: together, a kill every 10 ms. A round goes on until a load ends before its
    kill, so it covers the whole load however fast or slow the machine is during the sweep.
    After each kill the next run's resume must give exactly the rows of an unbroken load (same
    rows, same `_dlt_id`s, nothing doubled); the first kill of each round is followed by a
    whole next run compared with the sandbox's ground truth."""
    sandbox, snapshot = before_load
    # the middle of three: one load slowed by a busy moment would stretch every step
    load_s = sorted(time_a_full_load(snapshot) for _ in range(3))[1]
    clean = data_tables(snapshot.with_name("work") / "warehouse.duckdb")
    assert clean["citations"] and clean["citations__models"]
    step_s = max(STEP_S, load_s / MAX_MOMENTS)
    last_moment = MAX_STRETCH * load_s
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    for round_number, offset in enumerate((0.0, step_s / 2)):
        kills = 0
        moment = offset
        while True:
            folder = copy_of(snapshot)
            pid = load_in_a_child(folder)
            time.sleep(moment)
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            killed = os.WIFSIGNALED(status)

            if kills == 0:  # the whole next run, against the ground truth
                rerun = Warehouse(folder).sync(sandbox)
                assert rerun.status == "success"
                assert rerun.stats.requests == 1  # every domain was synced by the killed run
                assert_equals_truth(Warehouse(folder), truth)
            else:  # the next run's first step: finishing what the killed one left
                finish_pending_loads(Warehouse(folder).pipeline)
            assert data_tables(folder / "warehouse.duckdb") == clean, (round_number, moment)
            if not killed:  # the sweep went past the load's end
                break
            kills += 1
            moment += step_s
            if moment > last_moment:  # a machine slowed this much: more of the load was swept
                break
        # the sweep really went through the load: a load is several steps long
        assert kills >= 5, (round_number, load_s, step_s, kills)


def jobs_of_the_pending_load(folder: Path, state: str) -> list:
    return list((folder / "pipelines" / "aiclicks_test" / "load" / "normalized").glob(f"*/{state}/*"))


def test_a_kill_during_the_load_then_next_days_run_loads_both_days(before_load, tmp_path):
    """Killed once its first job started, and once some job completed (waited for, not timed:
    the small load can be over before a timed kill on a busy machine)."""
    _, snapshot = before_load
    for state in ("started_jobs", "completed_jobs"):
        folder = copy_of(snapshot)
        pid = load_in_a_child(folder)
        deadline = time.monotonic() + 60
        while not jobs_of_the_pending_load(folder, state):
            assert os.waitpid(pid, os.WNOHANG) == (0, 0), f"the load ended before any of its {state}"
            assert time.monotonic() < deadline, f"no {state} came"
            time.sleep(0.001)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), "the load ended before the kill"
        # the same account (same seed and start) a day later
        with run_sandbox(**SWEPT_ACCOUNT) as sandbox:
            sandbox.advance(days=1)

            rerun = Warehouse(folder).sync(sandbox)

            assert rerun.finished_pending and rerun.stats.requests > 1
            assert rerun.windows_asked["visibility_daily"] == [7]
            truth = WarehouseTruth(sandbox.account)
            truth.record_sync(START, days=90)
            truth.record_sync(sandbox.clock.now(), days=7)
            assert_equals_truth(Warehouse(folder), truth)


# --- a kill in the middle of DuckDB's checkpoint --------------------------------------------


def test_a_kill_in_the_middle_of_duckdbs_checkpoint_then_the_next_run_repairs_the_file(tmp_path):
    """DuckDB rewrites its metadata blocks in place at a checkpoint, and a kill between two
    pages of that write leaves one half-written: DuckDB refuses the file (duckdb_repair.py;
    the sweep above meets it about once in a few hundred kills). `status` says so, changing
    nothing; the next `run` repairs the block, finishes the killed load and loads the next day."""
    path = tmp_path / "cli.duckdb"
    with run_sandbox(**SWEPT_ACCOUNT) as sandbox:
        key = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key}
        assert cli_here(*run_args(sandbox, tmp_path), env=key).returncode == 0
        sandbox.advance(days=1)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Pipeline, "load", lambda *_, **__: (_ for _ in ()).throw(StopBeforeLoad()))
            assert cli_here(*run_args(sandbox, tmp_path), env=key).returncode == EXIT_FAILED
        location = tear_the_next_checkpoint(path, pages=3)
        torn = path.read_bytes()

        status = cli_here("status", "--duckdb-file", str(path))

        assert status.returncode == EXIT_FAILED
        (line,) = status.stderr.strip().splitlines()
        assert f"Cannot open the DuckDB file {path}: IO Error: Corrupt database file" in line
        assert f"in block at location {location}" in line
        assert "the next `aiclicks-pipeline run` checks the file and repairs it" in line
        assert path.read_bytes() == torn

        sandbox.advance(days=1)
        rerun = cli_here(*run_args(sandbox, tmp_path), env=key)

        assert rerun.returncode == 0, rerun.stderr
        assert f"its block at byte {location} was half-written by a run killed" in rerun.stderr
        assert "Finishing 1 load package(s) an interrupted run left" in rerun.stderr
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(START, days=90)
        truth.record_sync(START + timedelta(days=1), days=7)
        truth.record_sync(sandbox.clock.now(), days=7)
        assert_equals_truth(WarehouseFile(path), truth)
