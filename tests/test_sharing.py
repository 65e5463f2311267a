"""Commands that share the warehouse with a running sync (docs/operating.md, Reading while a sync
runs): `status`, `report`, `transform` and `reset` started at a sweep of moments across a sync
(before its first checkpoint, during a checkpoint's load, between two checkpoints, during the run
history's final load), on a DuckDB file and on PostgreSQL. The sync ends with exit 0, the
sandbox's ground truth and its history row `success`; each other command exits with its
documented code, without a traceback or dlt's warning wall.

Each command (and the sync) is a fork of one process that imported the CLI beforehand, made
when the test says, so that it starts at the moment named, not seconds of imports later: before the first
checkpoint the sandbox holds the sync's `/domains` request until the command is done; a load is
seen as its package in the working folder's `load/normalized/` (dlt moves it to `loaded/` when
the load commits). Whether a command started while a load ran is measured, not assumed, and a
minimum of overlaps is required."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from aiclicks_pipeline.checkpoints import SyncFailed
from aiclicks_pipeline.commands.base import EXIT_BUSY, EXIT_OK, EXIT_STALE
from aiclicks_pipeline.errors import explain_failure
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import ENDPOINTS

from .support import (
    REPO,
    START,
    PostgresWarehouse,
    Warehouse,
    WarehouseFile,
    assert_equals_truth,
    duckdb_held_by_another_process,
    once,
    postgres_url,
    wait_until,
)

PIPELINE = "aiclicks"
DOMAINS = 3  # one a checkpoint (--checkpoint-requests 1): three checkpoints, four loads
FINAL_LOAD = DOMAINS + 1  # the run history's final row
BEFORE = ("before the first checkpoint", None)
LAST = ("during", FINAL_LOAD)
# (when, which load): the sweep of each sync
MOMENTS: List[Tuple[str, Optional[int]]] = [BEFORE, ("during", 1), ("after", 1), ("during", 2), LAST]
DLT_NOISE = ("Traceback", "PipelineStepFailed", "DestinationConnectionError", "check if you configured")
POLL_S = 0.003
LOAD_ID = re.compile(r"\d+\.\d+")

# One process imports the CLI and what the commands need, once; the sync and each command are
# forks of it, started when the test says (a line on its stdin), their output in files of their
# folder: a command starts at the moment named, not seconds of imports later. time.monotonic()
# is the system's, so the fork's start compares with the test's clock.
ZYGOTE = """
import importlib, json, os, sys, time
os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
from aiclicks_pipeline.cli import main
for module in json.loads(sys.argv[1]):
    importlib.import_module(module)
print("ready", flush=True)
for line in sys.stdin:
    folder, args = json.loads(line)
    started = time.monotonic()
    if os.fork() == 0:
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT, 0o644), fd)
        for name, value in (("pid", os.getpid()), ("started", started)):
            with open(os.path.join(folder, name), "w") as file:
                file.write(repr(value))
        code = 1
        try:
            code = main(args)
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            with open(os.path.join(folder, "code.part"), "w") as file:
                file.write(str(code))
            os.rename(os.path.join(folder, "code.part"), os.path.join(folder, "code"))
            os._exit(code)
"""
# what the forks import beforehand: everything but dbt, which `transform` imports after waiting
IMPORTS = [
    "aiclicks_pipeline.checkpoints", "aiclicks_pipeline.pipeline", "aiclicks_pipeline.reset",
    "aiclicks_pipeline.report", "aiclicks_pipeline.status", "aiclicks_pipeline.transform",
    "aiclicks_pipeline.warehouse", "dlt.destinations.impl.duckdb.sql_client",
    "dlt.destinations.impl.postgres.sql_client",
]


# --- the warehouses ---------------------------------------------------------------------------


@dataclass
class Shared:
    """A warehouse (DuckDB file or PostgreSQL schema), the options naming it, the environment
    of every process on it, and the sandbox."""

    kind: str
    folder: Path
    sandbox: object
    options: List[str]
    env: Dict[str, str]
    tables: object  # the tests' queries (support.py)
    models: str = "aiclicks_models"  # the dbt models' schema

    def where(self, pipelines_dir: Optional[Path] = None) -> List[str]:
        return [*self.options, "--pipelines-dir", str(pipelines_dir or self.pipelines_dir)]

    @property
    def pipelines_dir(self) -> Path:
        return self.folder / "pipelines"

    @property
    def load_dir(self) -> Path:
        """Where dlt keeps a normalized package until its load commits."""
        return self.pipelines_dir / PIPELINE / "load" / "normalized"

    def run_args(self, *extra: str) -> List[str]:
        return ["run", "--quiet", "--json", "--base-url", self.sandbox.base_url,
                "--checkpoint-requests", "1", *extra, *self.where()]


@pytest.fixture(params=["duckdb", "postgres"])
def shared(request, tmp_path):
    with run_sandbox(seed=11, domains=DOMAINS, prompts=(10, 30), start=START, frozen=True,
                     rate_limit=None) as sandbox:
        env = {"SOURCES__AICLICKS__API_KEY": sandbox.api_key, "DLT_DATA_DIR": str(tmp_path / "dlt"),
               "RUNTIME__DLTHUB_TELEMETRY": "false"}
        if request.param == "duckdb":
            path = tmp_path / "w.duckdb"
            yield Shared("duckdb", tmp_path, sandbox, ["--duckdb-file", str(path)], env, WarehouseFile(path))
            return
        tables = PostgresWarehouse(tmp_path / "queries", postgres_url(), name="aiclicks_queries")
        env["DESTINATION__POSTGRES__CREDENTIALS"] = tables.url
        try:
            yield Shared("postgres", tmp_path, sandbox,
                         ["--destination", "postgres", "--dataset", tables.dataset], env, tables,
                         models=tables.models_schema)
        finally:
            tables.drop()


# --- processes ---------------------------------------------------------------------------------


def environment(extra: Dict[str, str]) -> Dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    return {**base, **extra}


class Zygote:
    """The process the commands of a sweep are forked from (ZYGOTE)."""

    def __init__(self, shared: Shared) -> None:
        self.folder = shared.folder / "commands"
        self.folder.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, json.dumps(IMPORTS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=environment(shared.env), cwd=REPO,
        )
        self.guard = threading.Lock()  # the sandbox's and the watcher's threads start commands
        assert self.process.stdout.readline().strip() == "ready"

    def command(self, args: List[str]) -> "Command":
        folder = self.folder / uuid.uuid4().hex[:8]
        folder.mkdir()
        return Command(self, folder, args)

    def fork(self, command: "Command") -> None:
        with self.guard:
            self.process.stdin.write(json.dumps([str(command.folder), command.args]) + "\n")
            self.process.stdin.flush()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


class Command:
    """One command line, forked from the zygote when told to go."""

    def __init__(self, zygote: Zygote, folder: Path, args: List[str]) -> None:
        self.zygote = zygote
        self.folder = folder
        self.args = args
        self.went = False

    def go(self) -> None:
        if not self.went:
            self.went = True
            self.zygote.fork(self)

    def _read(self, name: str) -> Optional[str]:
        path = self.folder / name
        return path.read_text() if path.exists() else None

    @property
    def started_at(self) -> Optional[float]:
        started = self._read("started")
        return float(started) if started else None

    @property
    def pid(self) -> int:
        wait_until(lambda: self._read("pid"), 60, f"{self.args[0]} to start")
        return int(self._read("pid"))

    @property
    def ended(self) -> bool:
        return (self.folder / "code").exists()

    def finish(self, timeout: float = 600) -> subprocess.CompletedProcess:
        wait_until(lambda: self.ended, timeout, f"{self.args[0]} to end")
        code = int(self._read("code"))
        return subprocess.CompletedProcess(self.args, code, self._read("stdout"), self._read("stderr"))


class LoadWatcher(threading.Thread):
    """Watches `load/normalized/` of the sync's working folder: when the n-th package appears
    (its load begins) and when it leaves (its load committed), calling `on_change(event, n)`."""

    def __init__(self, folder: Path, on_change: Callable[[str, int], None]) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.on_change = on_change
        self.appeared: Dict[int, float] = {}
        self.committed: Dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        numbers: Dict[str, int] = {}
        present: set = set()
        while not self.stop.is_set():
            try:  # a load package is named by its load id; normalize's temporary folders not
                now_present = {p.name for p in self.folder.iterdir() if LOAD_ID.fullmatch(p.name)}
            except OSError:
                now_present = set()
            now = time.monotonic()
            for package in sorted(now_present - present):
                numbers[package] = len(numbers) + 1
                self.appeared[numbers[package]] = now
                self.on_change("during", numbers[package])
            for package in present - now_present:
                self.committed[numbers[package]] = now
                self.on_change("after", numbers[package])
            present = now_present
            self.stop.wait(POLL_S)


@dataclass
class Sweep:
    """A sync, and beside it one command per moment of MOMENTS."""

    sync: subprocess.CompletedProcess
    summary: dict
    sync_pid: int
    commands: Dict[Tuple[str, Optional[int]], Command] = field(default_factory=dict)
    watcher: Optional[LoadWatcher] = None
    came: List[Tuple[str, Optional[int]]] = field(default_factory=list)  # the moments that came

    def overlapped_loads(self) -> List[Tuple[str, Optional[int]]]:
        """The "during" moments whose command started before that load committed."""
        return [
            moment for moment, command in self.commands.items()
            if moment[0] == "during"
            and command.started_at is not None
            and command.started_at < self.watcher.committed.get(moment[1], float("inf"))
        ]


def sweep(
    shared: Shared,
    make_args: Callable[[Tuple[str, Optional[int]]], List[str]],
    *run_extra: str,
    waiting: Optional[Tuple[str, Optional[int]]] = None,
) -> Sweep:
    """Runs a sync with a command started at each moment (`make_args(moment)` its arguments).
    The sync's next API request waits until the commands started so far have ended (all but
    the one `waiting` for the sync to end): a command started before the first checkpoint, or
    during or after a checkpoint's load, ends before the next checkpoint begins. Only the last
    moment, the run history's final load, is followed by no request: a writer started then may
    find the sync gone."""
    zygote = Zygote(shared)
    commands = {moment: zygote.command(make_args(moment)) for moment in MOMENTS}
    domains_path = ENDPOINTS["domains"]["path"]
    asked_domains = threading.Event()

    def pause_the_sync(path: str, query: Dict[str, str]) -> None:
        if path.endswith(domains_path) and not asked_domains.is_set():
            asked_domains.set()  # the sync holds its lock and asks /domains first
            commands[BEFORE].go()
        for moment, command in commands.items():
            if command.went and moment != waiting:
                wait_until(lambda: command.ended, 300, f"{command.args[0]} to end")

    def on_change(event: str, load: int) -> None:
        command = commands.get((event, load))
        if command is not None:
            command.go()

    shared.sandbox.app.callbacks.append(pause_the_sync)
    watcher = LoadWatcher(shared.load_dir, on_change)
    watcher.start()
    sync = zygote.command(shared.run_args(*run_extra))
    try:
        sync.go()
        done = sync.finish()
    finally:
        came = [moment for moment, command in commands.items() if command.went]
        watcher.stop.set()
        watcher.join()
        shared.sandbox.app.callbacks.remove(pause_the_sync)
        for command in commands.values():
            command.go()  # a moment that never came (the test fails below): let it end
        for command in commands.values():
            command.finish()
        zygote.close()
    summary = json.loads(done.stdout) if done.stdout.strip() else {}
    return Sweep(done, summary, sync.pid, commands, watcher, came)


def assert_sync_unharmed(shared: Shared, done: Sweep, truth: WarehouseTruth) -> None:
    """Exit 0, equal to the ground truth, its history row `success`, no dlt wall of text."""
    sync = done.sync
    assert sync.returncode == EXIT_OK, sync.stderr
    assert done.summary["status"] == "success"
    assert done.summary["checkpoints"] == {"total": DOMAINS, "committed": DOMAINS}
    for text in DLT_NOISE + ("could not be written", "WARNING"):
        assert text not in sync.stdout + sync.stderr, sync.stderr
    assert_equals_truth(shared.tables, truth)
    ((outcome, committed),) = shared.tables.query(
        "select outcome, checkpoints_committed from aiclicks._aiclicks_runs "
        f"where run_id = '{done.summary['run_id']}'"
    )
    assert (outcome, committed) == ("success", DOMAINS)
    assert done.came == MOMENTS, f"moments that never came: {set(MOMENTS) - set(done.came)}"


def assert_overlaps(done: Sweep) -> None:
    """Of the three "during a load" moments, at least two started while that load ran."""
    overlapped = done.overlapped_loads()
    assert len(overlapped) >= 2, (overlapped, done.watcher.appeared, done.watcher.committed)


def one_line(done: subprocess.CompletedProcess) -> str:
    for text in DLT_NOISE:
        assert text not in done.stdout + done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def progress_of(moment: Tuple[str, Optional[int]]) -> str:
    """What a sync's lock says of its progress at `moment` (a pattern)."""
    return "before its first checkpoint" if moment == BEFORE else r"checkpoint [1-3] of 3(, ETA [^)]+)?"


def assert_refused(done: Sweep, moment: Tuple[str, Optional[int]]) -> None:
    """The command at `moment` refused at once: exit 75, one line naming the sync and how far
    it is, nothing on stdout."""
    refused = done.commands[moment].finish()
    assert refused.returncode == EXIT_BUSY and refused.stdout == "", (moment, refused.stderr)
    assert re.fullmatch(
        rf"aiclicks-pipeline: Another sync of pipeline {PIPELINE} is running \(pid "
        rf"{done.sync_pid}, in {re.escape(str(REPO))}; {progress_of(moment)}\); try again "
        r"when it ends\.",
        one_line(refused),
    ), (moment, refused.stderr)


def truth_of(sandbox) -> WarehouseTruth:
    """What a first sync (and any sync again on the sandbox's frozen clock) loads."""
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    return truth


# --- the pairs ---------------------------------------------------------------------------------


def test_run_and_status(shared):
    """A first sync: before its first checkpoint status says a sync runs and has committed
    nothing (exit 75); later it shows the sync running (from the lock here; from the run
    history's `running` row where the lock is out of sight) and the checkpoints committed."""
    elsewhere = shared.folder / "another_machine"

    def status_args(moment):
        # "after load 1": as on a machine without the sync's working folder
        folder = elsewhere if moment == ("after", 1) else None
        return ["status", "--json", "--max-age-hours", "1000000", *shared.where(folder)]

    done = sweep(shared, status_args)

    assert_sync_unharmed(shared, done, truth_of(shared.sandbox))
    assert_overlaps(done)
    first = done.commands[BEFORE].finish()
    assert first.returncode == EXIT_BUSY and first.stdout == ""
    assert re.fullmatch(
        rf"aiclicks-pipeline: Now a sync of pipeline {PIPELINE} is running \(pid {done.sync_pid} on "
        r"this machine, started [\d-]+ [\d:]+ UTC; before its first checkpoint\), and it has "
        r"committed nothing yet: ask again after its first checkpoint\.",
        one_line(first),
    ), first.stderr
    for moment in MOMENTS[1:]:
        status = done.commands[moment].finish()
        if moment == ("during", 1) and status.returncode == EXIT_BUSY:
            # it read before the first load committed: still nothing to tell
            assert "checkpoint 1 of 3" in one_line(status), status.stderr
            assert "and it has committed nothing yet" in status.stderr
            continue
        assert status.returncode in (EXIT_OK, EXIT_STALE), (moment, status.stderr)
        assert not any(text in status.stderr for text in DLT_NOISE), status.stderr
        report = json.loads(status.stdout)
        run = {r["run_id"]: r for r in report["runs"] or []}.get(done.summary["run_id"])
        if moment == LAST and not report["running"]:
            # the sync's last load committed and it let go of its lock before status looked
            assert run["outcome"] == "success", report
            continue
        (running,) = report["running"]
        if moment == ("after", 1):  # the sync paused between its checkpoints 1 and 2
            assert running["seen_in"] == "run history" and running["pid"] is None
            assert run["outcome"] == "running" and running["checkpoints_committed"] == 1
            assert running["checkpoints_total"] == DOMAINS
        else:
            assert running["seen_in"] == "run lock" and running["pid"] == done.sync_pid
            assert re.fullmatch(progress_of(moment), running["progress"]), running
            assert running["run_id"] == done.summary["run_id"]
        # the domains' state is that of the loads committed: the load carrying the row, or
        # the one before while that load runs
        loaded = [d for d in report["domains"] if d["status"] != "never loaded"]
        committed = run["checkpoints_committed"] if run else 0
        assert committed - 1 <= len(loaded) <= DOMAINS


def test_run_and_reset(shared):
    """reset refuses at once while a sync runs (exit 75), in one line saying how far it is,
    and changes nothing."""
    done = sweep(shared, lambda moment: ["reset", "--resources", "prompts", "--yes", *shared.where()])

    truth = truth_of(shared.sandbox)
    last = done.commands[LAST].finish()
    if last.returncode == EXIT_OK:  # it came to the lock after the sync let go: a reset as any
        assert f"Reset {DOMAINS} (table, domain) pair(s)" in last.stdout, last.stdout
        truth.forget(["prompts"], shared.sandbox.account.domain_ids())
    assert_sync_unharmed(shared, done, truth)
    assert_overlaps(done)
    for moment in MOMENTS:
        if moment != LAST or last.returncode != EXIT_OK:
            assert_refused(done, moment)


def test_run_and_transform_then_run_and_report(shared):
    """transform --no-wait says in one line that a sync runs (exit 75); transform waits for
    the sync to end, saying so, then builds. The report, on the models it built, reads while a
    second sync runs, at every moment."""
    waiting = ("during", 1)

    def transform_args(moment):
        wait = [] if moment == waiting else ["--no-wait"]
        # the models the report reads (their dbt tests are test_dbt.py's)
        return ["transform", "--no-freshness", "--select", "resource_type:model", "resource_type:seed",
                "--schema", shared.models, "--work-dir", str(shared.folder / "dbt"), *wait,
                *shared.where()]

    done = sweep(shared, transform_args, waiting=waiting)

    truth = truth_of(shared.sandbox)
    assert_sync_unharmed(shared, done, truth)
    assert_overlaps(done)
    for moment in MOMENTS:
        transform = done.commands[moment].finish()
        if moment == waiting:
            assert transform.returncode == EXIT_OK, transform.stderr
            assert re.fullmatch(
                rf"Waiting up to 3600 s for the sync of pipeline {PIPELINE} to end \(pid "
                rf"{done.sync_pid}, in {re.escape(str(REPO))}; {progress_of(moment)}\); "
                r"--no-wait to not wait",
                transform.stderr.strip().splitlines()[0],
            ), transform.stderr
            assert f"dbt build on {shared.kind} finished" in transform.stdout
            assert "failed" not in transform.stdout
            # built after the sync ended: every domain is in the models
            ((domains,),) = shared.tables.query(
                f"select count(distinct domain_id) from {shared.models}.aiclicks__daily_visibility"
            )
            assert domains == DOMAINS
            continue
        finished = done.commands[moment].finish()
        if moment == LAST and "Another sync" not in finished.stderr:
            # it came to the lock after the sync let go of it: a build as any, or a refusal
            # naming the transform that waited
            assert finished.returncode == EXIT_OK or re.fullmatch(
                rf"aiclicks-pipeline: Another transform of pipeline {PIPELINE} is running \(pid "
                r"\d+, in [^;)]+\); try again when it ends\.",
                one_line(finished),
            ), finished.stderr
            continue
        assert_refused(done, moment)

    reports = shared.folder / "reports"
    again = sweep(
        shared,
        lambda moment: ["report", "--out", str(reports / f"{moment[0]}{moment[1]}.html"),
                        "--models-schema", shared.models, *shared.where()],
        "--resync-after-minutes", "0",
    )

    assert_sync_unharmed(shared, again, truth)
    assert_overlaps(again)
    for moment in MOMENTS:
        report = again.commands[moment].finish()
        assert report.returncode == EXIT_OK, (moment, report.stderr)
        assert report.stdout.startswith(f"Report of {DOMAINS} domain(s) from the dbt models"), report.stdout
        assert not any(text in report.stdout + report.stderr for text in DLT_NOISE), report.stderr
        assert (reports / f"{moment[0]}{moment[1]}.html").stat().st_size > 100_000


# --- a holder that does not let go --------------------------------------------------------------


def test_a_sync_gives_up_on_a_file_held_too_long_and_the_next_run_loads_what_it_left(
    tmp_path, monkeypatch
):
    """A process holding the DuckDB file past `warehouse_wait_seconds` (a notebook left open)
    fails the checkpoint whose load meets it, in one line saying how long it waited; its load
    package stays, and the next run loads it first."""
    monkeypatch.setenv("SOURCES__AICLICKS__WAREHOUSE_WAIT_SECONDS", "1")
    warehouse = Warehouse(tmp_path)
    with run_sandbox(seed=11, domains=DOMAINS, prompts=(10, 30), start=START, frozen=True,
                     rate_limit=None) as sandbox, ExitStack() as held:
        second = sorted(sandbox.account.domain_ids())[1]
        holders: List[subprocess.Popen] = []
        first_time = once()

        def hold_when_checkpoint_2_starts(path: str, query: Dict[str, str]) -> None:
            if query.get("domain_id") == second and first_time():
                holders.append(held.enter_context(duckdb_held_by_another_process(warehouse.duckdb_path)))

        sandbox.on_request(hold_when_checkpoint_2_starts)
        with pytest.raises(SyncFailed) as failed:
            warehouse.sync(sandbox, checkpoint_requests=1)
        (holder,) = holders
        message = explain_failure(failed.value)
        assert message.startswith(
            f"The warehouse file {warehouse.duckdb_path} is in use by another process (pid {holder.pid}: "
        ), message
        assert message.endswith(
            "), still after waiting 1 s: close it there (a notebook, a DuckDB shell, another sync) "
            "and run again."
        ), message
        assert failed.value.result.checkpoints_committed == 1
        assert warehouse.pipeline.has_pending_data
        held.close()  # the notebook is closed

        again = warehouse.sync(sandbox, checkpoint_requests=1)

    assert len(again.finished_pending) == 1 and again.status == "success"
    assert_equals_truth(warehouse, truth_of(sandbox))
    outcomes = {run_id: outcome for run_id, outcome in warehouse.query(
        "select run_id, outcome from aiclicks._aiclicks_runs")}
    assert outcomes == {failed.value.result.run_id: "interrupted", again.run_id: "success"}
