"""dlt's working folder as users really share it (workdir.py): two project folders of one user,
two accounts, two runs started at the same instant, `plan` beside a run. Every run is the CLI
in its own process, in its project folder with the default (relative) DuckDB file, and every
test has its own `DLT_DATA_DIR` (dlt's `~/.dlt`), so nothing touches the user's.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Tuple

from aiclicks_pipeline.pipeline import make_pipeline
from aiclicks_pipeline.settings import DEFAULT_DUCKDB_FILE
from aiclicks_pipeline.source import aiclicks_source
from aiclicks_pipeline.workdir import (
    AnotherSyncRunning,
    describe_holder,
    pipeline_lock,
    running_holder,
)

from .support import PIPELINE, Folder, days_asked, small_sandbox, wait_until

EXIT_BUSY = 75


def snapshot(*paths: Path) -> Dict[str, Tuple[int, int]]:
    """Every file under `paths`: (size, mtime in ns). Equal snapshots: nothing was written."""
    files: Dict[str, Tuple[int, int]] = {}
    for root in paths:
        candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in candidates:
            stat = path.stat()
            files[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return files


def test_two_folders_of_one_user_keep_their_own_warehouse_and_state(tmp_path):
    """Projects A and B share dlt's data dir (so its working folder `pipelines/aiclicks`)."""
    data_dir = tmp_path / "dlt"
    a, b = Folder(tmp_path / "a", data_dir), Folder(tmp_path / "b", data_dir)
    with small_sandbox() as sandbox:
        done, first = a.run(sandbox)
        assert done.returncode == 0, done.stderr
        assert days_asked(first) == {90}
        a_before = snapshot(a.warehouse)

        done, in_b = b.run(sandbox)

        assert done.returncode == 0, done.stderr
        assert days_asked(in_b) == {90}, "B inherited A's cursors"
        assert snapshot(a.warehouse) == a_before, "B's run wrote into A's warehouse"
        assert b.domain_ids() == set(sandbox.account.domain_ids())
        assert "last used with" in done.stderr and str(a.warehouse) in done.stderr
        b_before = snapshot(b.warehouse)
        sandbox.advance(days=1)

        done, next_day = a.run(sandbox)

        assert done.returncode == 0, done.stderr
        assert days_asked(next_day) == {7}, "A's state was not restored from A's warehouse"
        assert next_day["rows_total"] > 0
        assert snapshot(b.warehouse) == b_before, "A's run wrote into B's warehouse"
        assert not (tmp_path / DEFAULT_DUCKDB_FILE).exists()


def test_two_accounts_with_two_keys_in_two_folders(tmp_path):
    data_dir = tmp_path / "dlt"
    a, b = Folder(tmp_path / "client_a", data_dir), Folder(tmp_path / "client_b", data_dir)
    with small_sandbox(seed=5) as account_a, small_sandbox(seed=6) as account_b:
        ids_a, ids_b = set(account_a.account.domain_ids()), set(account_b.account.domain_ids())
        assert not ids_a & ids_b
        for folder, sandbox in ((a, account_a), (b, account_b), (a, account_a)):
            done, summary = folder.run(sandbox)
            assert done.returncode == 0, done.stderr
            sandbox.advance(days=1)
        # A's second run continued its own account: 7 days, not a new backfill
        assert days_asked(summary) == {7}

    assert a.domain_ids() == ids_a and b.domain_ids() == ids_b


def test_a_folder_holding_another_warehouses_unfinished_load_is_left_alone(tmp_path):
    """A's run stopped after extracting (its package waits in the shared working folder): a
    run in B says so in one line and changes nothing; A's next run finishes the package."""
    data_dir = tmp_path / "dlt"
    a, b = Folder(tmp_path / "a", data_dir), Folder(tmp_path / "b", data_dir)
    with small_sandbox() as sandbox:
        pipeline = make_pipeline(pipelines_dir=str(data_dir / "pipelines"), duckdb_file=str(a.warehouse))
        source = aiclicks_source(base_url=sandbox.base_url, api_key=sandbox.api_key)
        pipeline.extract(source.with_resources("domains", "prompts"))
        assert pipeline.has_pending_data
        before = snapshot(a.working_folder)

        done = b.cli(sandbox, "run", "--quiet")

        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "unfinished load" in lines[0] and str(a.warehouse) in lines[0]
        assert snapshot(a.working_folder) == before
        assert not b.warehouse.exists()

        done, summary = a.run(sandbox)
        assert done.returncode == 0, done.stderr
        assert len(summary["finished_pending_loads"]) == 1
        assert a.domain_ids() == set(sandbox.account.domain_ids())


BARRIER_RUN = """
import os, sys
from pathlib import Path
from aiclicks_pipeline.cli import main
with open(sys.argv[1], "rb") as barrier:  # the test holds the pipe open: this does not block
    Path(sys.argv[2]).touch()
    barrier.read()  # returns when the test closes its end
sys.exit(main(sys.argv[3:]))
"""


def start_at_once(folder: Folder, sandbox, runs: List[List[str]], tmp: Path) -> List[subprocess.CompletedProcess]:
    """Starts one process per entry of `runs`, each with everything imported and waiting on a
    pipe the test holds; when all are waiting, the test closes it: they call the CLI at the
    same instant."""
    fifo = tmp / "barrier"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    held = os.open(fifo, os.O_RDWR)  # a writer, so the children's opens do not block
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    environment.update(folder.env(sandbox))
    ready = [tmp / f"ready-{n}" for n in range(len(runs))]
    for flag in ready:
        flag.unlink(missing_ok=True)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", BARRIER_RUN, str(fifo), str(flag), *args, "--base-url", sandbox.base_url],
            cwd=folder.path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for args, flag in zip(runs, ready)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready):
            assert all(p.poll() is None for p in processes), "a process ended before the barrier"
            assert time.monotonic() < deadline, "the processes never reached the barrier"
            time.sleep(0.01)
    finally:
        os.close(held)  # every reader's read() returns now
    done = []
    for process, args in zip(processes, runs):
        stdout, stderr = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return done


def test_two_runs_started_at_the_same_instant_one_runs_one_says_so(tmp_path):
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    run = ["run", "--quiet", "--resync-after-minutes", "0", "--resources", "domains,prompts"]
    with small_sandbox() as sandbox:
        for round_number in range(3):
            first, second = start_at_once(folder, sandbox, [run, run], tmp_path)
            winners = [d for d in (first, second) if d.returncode == 0]
            losers = [d for d in (first, second) if d.returncode == EXIT_BUSY]
            assert len(winners) == 1 and len(losers) == 1, (round_number, first.stderr, second.stderr)
            (loser,) = losers
            assert loser.stdout == ""
            lines = loser.stderr.strip().splitlines()
            assert len(lines) == 1, loser.stderr
            assert lines[0].startswith(f"aiclicks-pipeline: Another sync of pipeline {PIPELINE} is running (pid ")
            assert lines[0].endswith("; try again when it ends.")
            assert "pid unknown" not in lines[0]
            # each round after the first is a run after a loser's: it runs as usual
            (winner,) = winners
            assert "Sync finished" in winner.stdout
            sandbox.advance(days=1)

        # the loser touched nothing: the lock held here, a run meets it
        before = snapshot(folder.working_folder, folder.warehouse)
        with pipeline_lock(PIPELINE, str(folder.data_dir / "pipelines")):
            loser = folder.cli(sandbox, "run", "--quiet")
        assert loser.returncode == EXIT_BUSY, loser.stderr
        assert f"(pid {os.getpid()}, in {Path.cwd()})" in loser.stderr
        assert snapshot(folder.working_folder, folder.warehouse) == before


def test_plan_beside_a_running_sync_says_so_and_touches_nothing(tmp_path):
    """A plan reads the warehouse and the state a running sync is writing; DuckDB lets no
    other process open a file while one writes it, so a plan that read it could fail the
    sync's load. It takes the same lock and, when a sync holds it, says so."""
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    with small_sandbox() as sandbox:
        done, _ = folder.run(sandbox)
        assert done.returncode == 0, done.stderr
        before = snapshot(folder.working_folder, folder.warehouse)
        with pipeline_lock(PIPELINE, str(folder.data_dir / "pipelines")):
            planned = folder.cli(sandbox, "plan")
        assert planned.returncode == EXIT_BUSY, planned.stderr
        lines = planned.stderr.strip().splitlines()
        assert len(lines) == 1 and "Another sync of pipeline aiclicks is running" in lines[0]
        assert snapshot(folder.working_folder, folder.warehouse) == before

        planned = folder.cli(sandbox, "plan")
        assert planned.returncode == 0, planned.stderr
        assert " requests for 2 domain(s)" in planned.stdout


# --- the run lock's description: what another process on this machine is told --------------------

HOLDER = """
import sys
from aiclicks_pipeline.workdir import pipeline_lock
with pipeline_lock(sys.argv[1], sys.argv[2]) as lock:
    lock.describe(checkpoint=2, checkpoints=5, eta="1 min", run_id="r1")
    print("held", flush=True)
    sys.stdin.read()  # until the test closes it
"""


def hold_lock(pipelines_dir: Path) -> subprocess.Popen:
    """A sync of pipeline `aiclicks` in checkpoint 2 of 5, holding the lock in another process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, PIPELINE, str(pipelines_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_the_lock_describes_the_sync_and_others_read_it_without_taking_it(tmp_path):
    folder = str(tmp_path / "pipelines")
    assert running_holder(PIPELINE, folder) is None  # no working folder here

    holder = hold_lock(tmp_path / "pipelines")
    try:
        seen = running_holder(PIPELINE, folder)
        assert seen["pid"] == holder.pid and seen["run_id"] == "r1"
        assert describe_holder(seen) == f"pid {holder.pid}, in {os.getcwd()}; checkpoint 2 of 5, ETA 1 min"
        # refused at once, in one line saying how far it is
        try:
            with pipeline_lock(PIPELINE, folder, activity="reset"):
                raise AssertionError("the lock was taken from its holder")
        except AnotherSyncRunning as busy:
            assert str(busy) == (
                f"Another sync of pipeline {PIPELINE} is running (pid {holder.pid}, in "
                f"{os.getcwd()}; checkpoint 2 of 5, ETA 1 min); try again when it ends."
            )
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    # released: nothing holds it, and the file describes no one
    assert running_holder(PIPELINE, folder) is None
    assert (tmp_path / "pipelines" / f"{PIPELINE}.lock").read_bytes() == b""


def test_a_command_queues_behind_the_lock_and_takes_it_when_the_sync_ends(tmp_path):
    folder = str(tmp_path / "pipelines")
    holder = hold_lock(tmp_path / "pipelines")
    told: List[dict] = []
    taken = threading.Event()

    def queue() -> None:
        with pipeline_lock(PIPELINE, folder, "transform", wait_s=120, on_wait=told.append):
            taken.set()

    queued = threading.Thread(target=queue)
    queued.start()
    try:
        wait_until(lambda: told, 60, "the queued command to be told who holds the lock")
        assert told[0]["checkpoint"] == 2 and not taken.is_set()
    finally:
        holder.stdin.close()  # the sync ends
        holder.wait(timeout=60)
    queued.join(timeout=60)
    assert taken.is_set() and len(told) == 1


def test_looking_at_the_lock_never_makes_a_sync_fail_to_take_it(tmp_path):
    """`running_holder` looks with a shared lock for an instant; a sync taking the lock in
    that instant retries instead of reporting a holder that is none."""
    folder = str(tmp_path / "pipelines")
    stop = threading.Event()
    looks = [0]

    def look() -> None:
        while not stop.is_set():
            running_holder(PIPELINE, folder)
            looks[0] += 1

    lookers = [threading.Thread(target=look) for _ in range(2)]
    with pipeline_lock(PIPELINE, folder):
        pass  # the lock file exists
    for looker in lookers:
        looker.start()
    taken = 0
    try:
        # until the lookers looked 300 times (how often the threads take turns is the
        # machine's: a fixed number of takes saw 20 looks on a busy CI machine)
        deadline = time.monotonic() + 60
        while looks[0] < 300 or taken < 300:
            with pipeline_lock(PIPELINE, folder):
                taken += 1
            assert time.monotonic() < deadline, f"{looks[0]} looks in 60 s"
    finally:
        stop.set()
        for looker in lookers:
            looker.join()
    assert taken >= 300 and looks[0] >= 300
