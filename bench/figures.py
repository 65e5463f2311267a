"""The four figures of issue #7, each a ratio against a floor measured or computed in the same
run: requests per sync, time under the rate limit, throughput, memory.

Every sync runs in a fresh process (child.py) against a sandbox in another process
(sandbox.py); floors come from the account's ground truth (plan.py) or from the simplest
direct load of the same pages (floor.py).
"""

import statistics
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from aiclicks_pipeline.settings import ENDPOINTS

from .child import run_job
from .plan import request_plan
from .sandbox import SandboxProcess

# "Realistic sizes" for the request and time figures: 20 domains of 20-300 prompts, fan-out as
# the sandbox makes it (about 90k rows a first sync).
ACCOUNT = {"seed": 7, "domains": 20, "prompts": (20, 300)}
# The rate limit scaled down tenfold in time (60 requests per 6 s instead of per minute), and
# what a real API takes to answer.
RATE_LIMIT = {"rate_limit": 60, "rate_window": 6.0, "faults": {"latency_ms": 150}}
# Throughput and memory: more domains, smaller ones, so that 500 stay within minutes on 2 cores.
SIZES = (10, 100, 500)
SIZED_ACCOUNT = {"seed": 7, "prompts": (10, 40), "fanout_rate": 0.05}

TIME_TARGET = 1.10
MEMORY_TARGET = 1.5


@dataclass
class Figure:
    name: str
    measured: str
    floor: str
    ratio: float
    target: str
    ok: Optional[bool]  # None: no pass/fail target, the figure is reported


@dataclass
class Results:
    figures: List[Figure] = field(default_factory=list)
    # phase breakdowns and counts the report quotes
    details: Dict[str, Any] = field(default_factory=dict)


def measure_all(
    reps: int = 3, sizes: Sequence[int] = SIZES, progress: Callable[[str], None] = print
) -> Results:
    results = Results()
    progress("requests: a full sync and a no-change sync of 20 domains ...")
    measure_requests(results)
    progress(f"time: {reps} full syncs of 20 domains under 60 requests / 6 s, 150 ms a request ...")
    measure_time(results, reps)
    progress(f"throughput and memory: {', '.join(map(str, sizes))} domains, {reps} runs each ...")
    measure_throughput_and_memory(results, reps, sizes, progress)
    return results


def _sync(sandbox: SandboxProcess, workdir: str = "", **options: Any) -> Dict[str, Any]:
    """A sync in a fresh process; into `workdir`'s pipeline, else into a new one."""
    job = {"kind": "sync", "base_url": sandbox.base_url, "api_key": sandbox.api_key, **options}
    if workdir:
        return run_job({**job, "workdir": workdir})
    with tempfile.TemporaryDirectory(prefix="aiclicks-bench-") as fresh:
        return run_job({**job, "workdir": fresh})


def _floor(sandbox: SandboxProcess) -> Dict[str, Any]:
    """The floor's direct load in a fresh process and folder."""
    job = {"kind": "floor", "base_url": sandbox.base_url, "api_key": sandbox.api_key}
    with tempfile.TemporaryDirectory(prefix="aiclicks-bench-") as fresh:
        return run_job({**job, "workdir": fresh})


def measure_requests(results: Results) -> None:
    """Requests of a full and a no-change sync, as the server counted them, against the plan."""
    with SandboxProcess(**ACCOUNT, rate_limit=None) as sandbox, tempfile.TemporaryDirectory(
        prefix="aiclicks-bench-"
    ) as workdir:
        plan = request_plan(sandbox.account, sandbox.now)
        for run, label in (("full", "full sync"), ("no_change", "no-change sync")):
            sandbox.reset_stats()
            synced = _sync(sandbox, workdir)
            made = sandbox.stats()["requests"]
            rows = sum(synced["rows"].values())
            ok = made == plan[run] and (run == "full" or rows == 0)
            results.figures.append(
                Figure(f"requests, {label}", f"{made} ({rows:,} rows)", f"{plan[run]} (plan)",
                       made / plan[run], "1.00" + (", 0 rows" if run == "no_change" else ""), ok)
            )


def measure_time(results: Results, reps: int) -> None:
    """Wall time of a full sync under the rate limit against requests / limit x window (the
    median of `reps` syncs, each against a fresh sandbox)."""
    limit, window = RATE_LIMIT["rate_limit"], RATE_LIMIT["rate_window"]
    runs = []
    for _ in range(reps):
        with SandboxProcess(**ACCOUNT, **RATE_LIMIT) as sandbox:
            planned = request_plan(sandbox.account, sandbox.now)["full"]
            synced = _sync(sandbox, align_window_s=window)
            stats = sandbox.stats()
        synced["too_many"] = stats["rate_limited"].get("real", 0) + synced["rate_limited"]
        synced["served"] = stats["requests"]
        runs.append(synced)
    floor_s = planned / limit * window
    run = sorted(runs, key=lambda r: r["elapsed_s"])[len(runs) // 2]
    too_many = max(r["too_many"] for r in runs)
    ratio = run["elapsed_s"] / floor_s
    spread = f" ({min(r['elapsed_s'] for r in runs):.1f}-{max(r['elapsed_s'] for r in runs):.1f})"
    results.figures.append(
        Figure("time under the rate limit",
               f"{run['elapsed_s']:.1f} s{spread if reps > 1 else ''}, {too_many} x 429",
               f"{floor_s:.1f} s ({planned} req)", ratio, f"<= {TIME_TARGET:.2f}, 0 x 429",
               ratio <= TIME_TARGET and too_many == 0)
    )
    extract_s = run["steps_s"].get("extract", 0.0)
    results.details["time"] = {
        "floor_s": floor_s,
        "elapsed_s": run["elapsed_s"],
        "requests": run["served"],
        "planned": planned,
        "rows": sum(run["rows"].values()),
        "steps_s": run["steps_s"],
        "extract_ratio": extract_s / floor_s,
        "after_extract_s": run["elapsed_s"] - extract_s,
    }
    results.figures.append(
        Figure("time, extract step only", f"{extract_s:.1f} s", f"{floor_s:.1f} s",
               extract_s / floor_s, f"<= {TIME_TARGET:.2f}", extract_s / floor_s <= TIME_TARGET)
    )


def measure_throughput_and_memory(
    results: Results, reps: int, sizes: Sequence[int], progress: Callable[[str], None]
) -> None:
    """Per size: the floor's direct load and a sync, interleaved `reps` times (medians)."""
    by_size: Dict[int, Dict[str, Any]] = {}
    for domains in sizes:
        with SandboxProcess(**SIZED_ACCOUNT, domains=domains, rate_limit=None) as sandbox:
            # fill the server's response cache first: every timed run is then served alike
            _floor(sandbox)
            floors, syncs = [], []
            for _ in range(reps):
                floors.append(_floor(sandbox))
                syncs.append(_sync(sandbox))
        by_size[domains] = _summarise(floors, syncs)
        progress(f"  {domains} domains: {by_size[domains]['rows']} rows, "
                 f"sync {by_size[domains]['sync_s']:.1f} s, floor {by_size[domains]['floor_s']:.1f} s")
    for domains, size in by_size.items():
        ratio = size["sync_s"] / size["floor_s"]
        results.figures.append(
            Figure(f"throughput, {domains} domains", f"{size['rows'] / size['sync_s']:,.0f} rows/s",
                   f"{size['rows'] / size['floor_s']:,.0f} rows/s", ratio, "smallest", None)
        )
    smallest, largest = by_size[min(by_size)], by_size[max(by_size)]
    for label, key, judged in (
        ("whole sync", "peak_rss_mb", True),
        ("extract + normalize", "pipeline_rss_mb", True),
        ("the floor's direct load", "floor_peak_rss_mb", False),
    ):
        ratio = largest[key] / smallest[key]
        results.figures.append(
            Figure(f"peak RSS, {label}", f"{largest[key]:.0f} MB at {max(by_size)}",
                   f"{smallest[key]:.0f} MB at {min(by_size)}", ratio,
                   f"<= {MEMORY_TARGET:.1f}" if judged else "(for comparison)",
                   ratio <= MEMORY_TARGET if judged else None)
        )
    results.details["sizes"] = by_size


def _summarise(floors: List[Dict[str, Any]], syncs: List[Dict[str, Any]]) -> Dict[str, Any]:
    rows = {sum(s["rows"].get(t, 0) for t in ENDPOINTS) for s in syncs}
    floor_rows = {f["total_rows"] for f in floors}
    if rows != floor_rows or len(rows) != 1:
        raise RuntimeError(f"the sync loaded {rows} rows, the floor {floor_rows}: not the same pages")
    median = statistics.median
    steps = {step: median(s["steps_s"][step] for s in syncs) for step in syncs[0]["steps_s"]}
    floor_steps = {step: median(f["steps_s"][step] for f in floors) for step in floors[0]["steps_s"]}
    return {
        "rows": rows.pop(),
        "sync_s": median(s["elapsed_s"] for s in syncs),
        "floor_s": median(f["elapsed_s"] for f in floors),
        "steps_s": steps,
        "floor_steps_s": floor_steps,
        "peak_rss_mb": median(s["process_peak_rss_mb"] for s in syncs),
        "pipeline_rss_mb": median(
            max(s["peak_rss_mb"]["extract"], s["peak_rss_mb"]["normalize"]) for s in syncs
        ),
        "load_rss_mb": median(s["peak_rss_mb"]["load"] for s in syncs),
        "floor_peak_rss_mb": median(f["process_peak_rss_mb"] for f in floors),
    }
