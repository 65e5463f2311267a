"""The figures of a stopped sync, with the CLI as a user runs it (`aiclicks-pipeline run`, a
fresh process; the sandbox in another):

- **requests repeated after a kill**: SIGKILL when half the planned requests have reached the
  server, then a rerun; what the rerun asks beyond what was left is what the kill cost. The
  bound is one checkpoint (its requests were not committed) plus the rerun's `/domains`.
- **time from a signal to exit**: SIGINT and SIGTERM at moments where a stop is hardest (a
  rate-limit wait, requests on the wire at a slow server, extraction at full speed, a load),
  timed from the signal to the process's end, with its exit code.

Moments are found by watching the server (requests arrived, bench/sandbox.py) and the
pipeline's working folder, polled every few milliseconds.
"""

import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

from aiclicks_pipeline.checkpoints import DEFAULT_CHECKPOINT_REQUESTS
from aiclicks_pipeline.interrupts import EXIT_CODES

from .plan import request_plan
from .sandbox import SandboxProcess

PIPELINE = "aiclicks"  # the CLI's default pipeline name
# several checkpoints of the default size (about 950 requests), quick without a rate limit
KILL_ACCOUNT = {"seed": 7, "domains": 100, "prompts": (10, 40), "fanout_rate": 0.05}
EXIT_BOUND_S = 3.0
POLL_S = 0.005


def cli(sandbox: SandboxProcess, workdir: str, *extra: str) -> subprocess.Popen:
    """`aiclicks-pipeline run --json` into `workdir`'s warehouse, started, not waited for."""
    environment = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("SOURCES__AICLICKS", "AICLICKS_"))
    }
    environment.update(SOURCES__AICLICKS__API_KEY=sandbox.api_key, RUNTIME__DLTHUB_TELEMETRY="false")
    return subprocess.Popen(
        [
            sys.executable, "-m", "aiclicks_pipeline", "run", "--quiet", "--json",
            "--base-url", sandbox.base_url,
            "--duckdb-file", os.path.join(workdir, "bench.duckdb"),
            "--pipelines-dir", os.path.join(workdir, "pipelines"),
            *extra,
        ],
        cwd=workdir,  # no project config of the caller's folder
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(moment: Callable[[], bool], process: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not moment():
        if process.poll() is not None:
            raise RuntimeError(f"the sync ended before {what}:\n{process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"no {what} within {timeout:.0f} s")
        time.sleep(POLL_S)


def measure_kill(reps: int = 1) -> Dict[str, Any]:
    """SIGKILL at half the planned requests, then a rerun to the end (`reps` times, each in a
    fresh warehouse); the worst run is reported."""
    runs = []
    for _ in range(reps):
        with SandboxProcess(**KILL_ACCOUNT, rate_limit=None) as sandbox, tempfile.TemporaryDirectory(
            prefix="aiclicks-bench-"
        ) as workdir:
            planned = request_plan(sandbox.account, sandbox.now)["full"]
            # the checkpoint of the real limit: without rate-limit headers the default is larger
            process = cli(sandbox, workdir, *KILL_CHECKPOINT)
            wait_for(lambda: sandbox.arrivals() >= planned // 2, process, "half the requests")
            process.kill()
            process.communicate()
            made = _settled_requests(sandbox)
            sandbox.reset_stats()
            rerun = cli(sandbox, workdir, *KILL_CHECKPOINT)
            out, err = rerun.communicate(timeout=900)
            if rerun.returncode != 0:
                raise RuntimeError(f"the rerun after a kill failed ({rerun.returncode}):\n{err[-2000:]}")
            summary = json.loads(out)
            rerun_requests = sandbox.stats()["requests"]
            left = planned - made
            runs.append({
                "planned": planned,
                "made_before_kill": made,
                "left": left,
                "rerun_requests": rerun_requests,
                "repeated": rerun_requests - left,
                "rerun_status": summary["status"],
                "checkpoints": summary["checkpoints"],
            })
    return max(runs, key=lambda run: run["repeated"])


def _settled_requests(sandbox: SandboxProcess) -> int:
    """The requests the killed run made, once the server has answered every one that arrived."""
    deadline = time.monotonic() + 30
    while True:
        arrived, answered = sandbox.arrivals(), sandbox.stats()["requests"]
        if answered >= arrived or time.monotonic() > deadline:
            return answered
        time.sleep(POLL_S)


# moment: (sandbox options, CLI options, when to signal: f(sandbox, pipeline_dir) -> bool)
def _in_rate_limit_wait(sandbox: SandboxProcess, pipeline_dir: str, state: Dict[str, Any]) -> bool:
    """The window's budget is spent and no request has arrived for half a second: the
    throttle is waiting for the next window."""
    arrived = sandbox.arrivals()
    now = time.monotonic()
    if arrived != state.get("arrived"):
        state.update(arrived=arrived, since=now)
        return False
    return arrived >= RATE_LIMITED["rate_limit"] and now - state["since"] >= 0.5


def _requests_on_the_wire(sandbox: SandboxProcess, pipeline_dir: str, state: Dict[str, Any]) -> bool:
    return sandbox.arrivals() >= 3  # each takes SLOW_SERVER's latency to answer


def _extracting(sandbox: SandboxProcess, pipeline_dir: str, state: Dict[str, Any]) -> bool:
    return sandbox.arrivals() >= 40


def _loading(sandbox: SandboxProcess, pipeline_dir: str, state: Dict[str, Any]) -> bool:
    return bool(glob.glob(os.path.join(pipeline_dir, "load", "normalized", "*", "started_jobs", "*")))


RATE_LIMITED = {"rate_limit": 30, "rate_window": 60.0}
# a limit the sync never reaches, for its headers: without them the throttle sends one request
# at a time (it knows no budget), and a stop would find one request on the wire, not several
SLOW_SERVER = {"rate_limit": 1000, "faults": {"latency_ms": 5000}}
MOMENTS = {
    "rate-limit wait (30 requests / 60 s)": (RATE_LIMITED, _in_rate_limit_wait),
    "requests on the wire (5 s a request)": (SLOW_SERVER, _requests_on_the_wire),
    "extraction at full speed": ({"rate_limit": None}, _extracting),
    "load step": ({"rate_limit": None}, _loading),
}


def measure_signals(reps: int = 1) -> List[Dict[str, Any]]:
    """SIGINT and SIGTERM at each moment, `reps` times: seconds from the signal to exit."""
    stops = []
    for moment, (sandbox_options, when) in MOMENTS.items():
        for signum in (signal.SIGINT, signal.SIGTERM):
            for _ in range(reps):
                stops.append({"moment": moment, "signal": signal.Signals(signum).name,
                              **_stop_once(sandbox_options, when, signum)})
    return stops


def _stop_once(sandbox_options: Dict[str, Any], when: Callable[..., bool], signum: int) -> Dict[str, Any]:
    with SandboxProcess(**KILL_ACCOUNT, **sandbox_options) as sandbox, tempfile.TemporaryDirectory(
        prefix="aiclicks-bench-"
    ) as workdir:
        pipeline_dir = os.path.join(workdir, "pipelines", PIPELINE)
        process = cli(sandbox, workdir)
        state: Dict[str, Any] = {}
        wait_for(lambda: when(sandbox, pipeline_dir, state), process, "the moment to signal")
        signalled = time.monotonic()
        process.send_signal(signum)
        try:
            out, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return {"exit_s": float("inf"), "exit_code": None, "expected_code": EXIT_CODES[signum], "committed": ""}
        exit_s = time.monotonic() - signalled
        summary = _json_or_none(out)
        committed = ""
        if summary:
            domains = summary["domains"]
            committed = f"{domains['committed']} of {domains['total']} domains"
        return {
            "exit_s": exit_s,
            "exit_code": process.returncode,
            "expected_code": EXIT_CODES[signum],
            "committed": committed,
        }


def _json_or_none(text: str) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(text)
    except ValueError:
        return None  # the watchdog ended the process before the summary


def summarise_signals(stops: List[Dict[str, Any]]) -> Dict[str, Any]:
    times = [stop["exit_s"] for stop in stops]
    return {
        "max_s": max(times),
        "median_s": statistics.median(times),
        "codes_ok": all(stop["exit_code"] == stop["expected_code"] for stop in stops),
        "count": len(stops),
    }


KILL_CHECKPOINT = ("--checkpoint-requests", str(DEFAULT_CHECKPOINT_REQUESTS))
CHECKPOINT_AND_DOMAINS = DEFAULT_CHECKPOINT_REQUESTS + 1
