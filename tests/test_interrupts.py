"""A long sync stopped as schedulers and people stop it: SIGINT (Ctrl-C), SIGTERM (a
scheduler's timeout) and SIGKILL, while the throttle waits for the rate limit, while a request
is on the wire and while a checkpoint loads. Each stopped run is the real CLI in its own
process against the sandbox; then the next run (the CLI's main() in the test's process)
continues with what is left and ends equal to the ground truth, having repeated at most one
checkpoint's requests."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth

from .support import REPO, START, Warehouse, assert_equals_truth, cli_here, run_args

CHECKPOINT_REQUESTS = 20
DOMAINS = 6
ACCOUNT = dict(seed=21, domains=DOMAINS, prompts=(10, 40), start=START, frozen=True)
# a time-scaled rate limit: the throttle waits for the next window several times a run
RATE_LIMIT = dict(rate_limit=25, rate_window=1.0)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -signal.SIGKILL}


def cli_args(sandbox, folder: Path) -> list:
    return [*run_args(sandbox, folder), "--checkpoint-requests", str(CHECKPOINT_REQUESTS),
            "--summary-file", str(folder / "summary.json")]


def start_cli(sandbox, folder: Path) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    environment["SOURCES__AICLICKS__API_KEY"] = sandbox.api_key
    return subprocess.Popen(
        [sys.executable, "-m", "aiclicks_pipeline", *cli_args(sandbox, folder)],
        env=environment, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def run_here(sandbox, folder: Path) -> subprocess.CompletedProcess:
    """The same command in this process: the uninterrupted and the next runs (what they ask
    and load is the point, not their process)."""
    return cli_here(*cli_args(sandbox, folder), env={"SOURCES__AICLICKS__API_KEY": sandbox.api_key})


def requests_per_domain(sandbox) -> Counter:
    return Counter(r["query"].get("domain_id") for r in sandbox.stats.log)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """The requests an uninterrupted sync of the account makes, per domain."""
    folder = tmp_path_factory.mktemp("clean")
    with run_sandbox(**ACCOUNT, rate_limit=None) as sandbox:
        done = run_here(sandbox, folder)
        assert done.returncode == 0, done.stderr
        return requests_per_domain(sandbox)


def in_a_rate_limit_wait(sandbox, pipeline_dir: Path, requests_seen: list) -> bool:
    """Past the first window, extracting (nothing to normalize or load), and no request for
    150 ms although the server answers at once: the throttle holds the next one back."""
    if sandbox.stats.requests <= RATE_LIMIT["rate_limit"] or not requests_seen:
        return False
    extracting = not any((pipeline_dir / "normalize" / "extracted").glob("*/")) and not any(
        (pipeline_dir / "load" / "normalized").glob("*/")
    )
    return extracting and time.monotonic() - requests_seen[-1] > 0.15


def on_the_wire(sandbox, pipeline_dir: Path, requests_seen: list) -> bool:
    """A request the server holds for 4 s (longer than the 3 s a stop may take)."""
    return bool(requests_seen)


def in_a_load(sandbox, pipeline_dir: Path, requests_seen: list) -> bool:
    return any((pipeline_dir / "load" / "normalized").glob("*/started_jobs/*"))


MOMENTS = {"rate-limit wait": in_a_rate_limit_wait, "request on the wire": on_the_wire, "load": in_a_load}
CASES = [
    (signal.SIGINT, "rate-limit wait"),
    (signal.SIGINT, "load"),
    (signal.SIGTERM, "request on the wire"),
    (signal.SIGTERM, "load"),
    (signal.SIGKILL, "rate-limit wait"),
    (signal.SIGKILL, "request on the wire"),
]


@pytest.mark.parametrize(
    "signum, moment", CASES, ids=[f"{signal.Signals(s).name} in {m}" for s, m in CASES]
)
def test_a_stopped_sync_exits_fast_and_the_next_run_does_only_what_is_left(signum, moment, clean_run, tmp_path):
    with run_sandbox(**ACCOUNT, **RATE_LIMIT) as sandbox:
        requests_seen: list = []
        if moment == "rate-limit wait":
            sandbox.on_request(lambda path, query: requests_seen.append(time.monotonic()))
        if moment == "request on the wire":
            # after two checkpoints, the next request is held by the server
            def hold_one(path, query):
                if sandbox.stats.requests >= 2 * CHECKPOINT_REQUESTS and not requests_seen:
                    requests_seen.append(path)
                    time.sleep(4)

            sandbox.on_request(hold_one)
        process = start_cli(sandbox, tmp_path)
        pipeline_dir = tmp_path / "pipelines" / "aiclicks"
        deadline = time.monotonic() + 120
        while not MOMENTS[moment](sandbox, pipeline_dir, requests_seen):
            assert process.poll() is None, f"the sync ended before the {moment}: {process.communicate()}"
            assert time.monotonic() < deadline, f"no {moment} came"
            time.sleep(0.002)
        signalled = time.monotonic()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
        exit_s = time.monotonic() - signalled
        sandbox.app.callbacks.clear()
        first_requests = requests_per_domain(sandbox)

        assert process.returncode == EXIT_CODES[signum], err
        if signum != signal.SIGKILL:
            assert exit_s < 3.0, f"{exit_s:.2f}s from the signal to the exit"
            assert "Traceback" not in err
            assert "run again to continue" in err and "committed " in err and f" of {DOMAINS} domains" in err, err
            summary = json.loads((tmp_path / "summary.json").read_text())
            assert summary["status"] == "interrupted" and summary["signal"] == signum
            assert summary["domains"]["committed"] + summary["domains"]["left"] == DOMAINS
        sandbox.reset_stats()

        rerun = run_here(sandbox, tmp_path)

        assert rerun.returncode == 0, rerun.stderr
        truth = WarehouseTruth(sandbox.account)
        truth.record_sync(sandbox.clock.now(), days=90)
        assert_equals_truth(Warehouse(tmp_path, duckdb_name="cli.duckdb"), truth)
        # what the stop cost: at most the checkpoint in flight (and `/domains` again)
        second_requests = requests_per_domain(sandbox)
        repeated = sum((first_requests + second_requests).values()) - sum(clean_run.values())
        assert repeated <= CHECKPOINT_REQUESTS + 1, (repeated, first_requests, second_requests)


def test_the_progress_lines_a_scheduler_log_gets(tmp_path):
    """Off a terminal (an Airflow or CI log): a plain line per checkpoint with the facts."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    with run_sandbox(**ACCOUNT, rate_limit=None) as sandbox:
        environment["SOURCES__AICLICKS__API_KEY"] = sandbox.api_key
        args = [a for a in run_args(sandbox, tmp_path) if a != "--quiet"]
        done = subprocess.run(
            [sys.executable, "-m", "aiclicks_pipeline", *args, "--checkpoint-requests", "20"],
            env=environment, cwd=REPO, capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("aiclicks: ")]
    assert len(lines) >= 3
    assert all(", checkpoint " in line and " domains committed, " in line and " requests, " in line
               and " rows" in line for line in lines)
    assert done.stderr.splitlines()[0].startswith(f"Syncing {DOMAINS} of {DOMAINS} domain(s) into ")
    assert "psutil" not in done.stderr and "UserWarning" not in done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
