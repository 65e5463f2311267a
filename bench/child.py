"""A measured job in a fresh Python process: a dlt sync (or the floor's direct load), its
timings, rows, requests and peak RSS.

A fresh process per job keeps one job's memory and warm caches out of the next, and the
peak RSS is the job's own (the sandbox runs in another process).

    python -m bench.child '{"kind": "sync", "base_url": ..., "api_key": ..., "workdir": ...}'
"""

import json
import math
import os
import subprocess
import sys
import threading
import time
from array import array
from typing import Any, Dict, List, Tuple

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

STEPS = ("extract", "normalize", "load")


def run_job(job: Dict[str, Any], timeout: float = 900) -> Dict[str, Any]:
    """Runs `job` in a child process and returns what it printed (a JSON object)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.child", json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench job {job['kind']} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class RssSampler:
    """Samples this process's resident set every few milliseconds, so that a peak can be told
    per step (the kernel's own high-water mark, VmHWM, only knows the whole process)."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        # two flat arrays, 16 bytes a sample: a list of tuples took ~12 MB of the very RSS it
        # measured over a 2,000-domain sync (100,000 samples), and none of a 10-domain one's
        self.times = array("d")
        self.rss_mb = array("d")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.times.append(time.time())
            self.rss_mb.append(_status_mb("VmRSS"))
            self._stop.wait(self.interval_s)

    def peak_between(self, start: float, end: float) -> float:
        return max((rss for at, rss in zip(self.times, self.rss_mb) if start <= at <= end), default=0.0)


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_for_window(window_s: float) -> None:
    """Sleeps until just after the rate limit's next fixed window starts (windows are aligned
    to epoch multiples: docs/api-notes.md, Rate limit), so that a run starts with a whole window, not a lucky or an
    unlucky part of one."""
    now = time.time()
    time.sleep(math.ceil(now / window_s) * window_s - now + 0.02)


class StepTimer:
    """Times every extract, normalize and load call of a pipeline: a sync in checkpoints is
    many of each (dlt's `last_trace` holds only the last step)."""

    def __init__(self, pipeline: Any) -> None:
        self.calls: List[Tuple[str, float, float]] = []  # (step, started, finished), epoch s
        for step in STEPS:
            setattr(pipeline, step, self._timed(step, getattr(pipeline, step)))

    def _timed(self, step: str, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.time()
            try:
                return method(*args, **kwargs)
            finally:
                self.calls.append((step, started, time.time()))

        return timed

    def seconds(self) -> Dict[str, float]:
        return {step: sum(end - start for s, start, end in self.calls if s == step) for step in STEPS}

    def per_call(self, step: str) -> List[float]:
        return [end - start for s, start, end in self.calls if s == step]

    def peaks(self, rss: RssSampler) -> Dict[str, float]:
        return {
            step: max((rss.peak_between(start, end) for s, start, end in self.calls if s == step), default=0.0)
            for step in STEPS
        }


def sync_job(
    base_url: str, api_key: str, workdir: str, align_window_s: float = 0, **options: Any
) -> Dict[str, Any]:
    """One sync into the pipeline kept in `workdir` (a first sync, or the next one); `options`
    are run_sync's (resync_after_minutes, checkpoint_requests, ...)."""
    from aiclicks_pipeline.checkpoints import run_sync
    from aiclicks_pipeline.pipeline import make_pipeline

    pipeline = make_pipeline(
        pipeline_name="aiclicks_bench",
        pipelines_dir=os.path.join(workdir, "pipelines"),
        duckdb_file=os.path.join(workdir, "bench.duckdb"),
    )
    steps = StepTimer(pipeline)
    if align_window_s:
        wait_for_window(align_window_s)
    with RssSampler() as rss:
        started = time.time()
        result = run_sync(pipeline, base_url=base_url, api_key=api_key, backoff_factor=0.01, **options)
        # the whole call: the run history's final load too (the run's elapsed_s ends before it)
        call_s = time.time() - started
    # the checkpoints' extractions, not the run history's final load after them
    extracts = [end for step, _, end in steps.calls if step == "extract"][: result.checkpoints_committed]
    return {
        "status": result.status,
        "rows": result.rows,
        "requests": result.stats.requests,
        "rate_limited": result.stats.rate_limited,
        "elapsed_s": result.elapsed_s,
        "call_s": call_s,
        "checkpoints": result.checkpoints_committed,
        # from the start to the end of the last checkpoint's extraction: the requests
        "to_last_extract_s": (max(extracts) - started) if extracts else 0.0,
        "steps_s": steps.seconds(),
        # the checkpoints' loads, not the run history's final one (a tenth of 16 loads is one)
        "load_s_per_checkpoint": steps.per_call("load")[: result.checkpoints_committed],
        "peak_rss_mb": steps.peaks(rss),
    }


def main(job: Dict[str, Any]) -> None:
    kind = job.pop("kind")
    if kind == "sync":
        result = sync_job(**job)
    elif kind == "floor":
        from .floor import floor_job

        result = floor_job(**job)
    elif kind == "dlt_alone":
        from .floor import dlt_alone_job

        result = dlt_alone_job(**job)
    else:
        raise ValueError(f"unknown bench job {kind!r}")
    result["process_peak_rss_mb"] = _status_mb("VmHWM")
    print(json.dumps(result))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
