"""The figures as a table on the terminal, and as `bench/RESULTS.md`."""

from typing import Any, Dict, List, Sequence

from .figures import RATE_LIMIT, Figure, Results

# the benchmark's rate-limit window against the real API's (60 requests per minute)
TIME_SCALE = 60.0 / RATE_LIMIT["rate_window"]

HEADER = ("figure", "measured", "floor", "ratio", "target", "")
VERDICTS = {True: "ok", False: "MISSED", None: ""}

RATIOS = (
    "Ratios are measured / floor: requests made / planned; sync wall time / (planned requests "
    "/ limit x window); sync time / floor time for the same rows (= floor rows/s / sync rows/s); "
    "peak RSS at the largest size / at the smallest."
)

LIMITS = """\
- **Time under the rate limit.** The requests take the floor: the extract step ends inside
  the last window, at {extract_ratio:.2f} x the floor. What is left is the local processing
  after the last response (normalize and load, {after_extract_s:.1f} s for {rows:,} rows),
  which dlt starts only once extraction is done. The limit here is scaled tenfold (6 s
  windows); at the real 60 s window the same sync would take about {real_ratio:.2f} x its floor.
- **Throughput.** The floor parses nothing in Python: DuckDB reads the bodies. A sync turns
  every row into a Python dict (extract), normalizes it row by row (dlt's relational
  normalizer: flatten, `_dlt_id`, type coercion) and merges it through a staging dataset
  (load: delete-insert with de-duplication). At {domains} domains: extract {extract:.1f} s
  against the floor's fetch {fetch:.1f} s (dlt's per-request machinery, client CPU-bound),
  normalize {normalize:.1f} s (no counterpart in the floor), load {load:.1f} s against
  {floor_load:.1f} s.
- **Memory.** Extract and normalize stream: their peak moves {pipeline_ratio:.2f} x from the
  smallest size to the largest. The load's peak grows with the rows of the biggest table:
  DuckDB keeps the pages it writes and the merge's de-duplication window in its buffer pool,
  and dlt loads the tables in parallel; the floor's own DuckDB load grows {floor_ratio:.2f} x.
  DuckDB's `memory_limit` and `threads` (`[destination.duckdb.credentials.global_config]`)
  and `[load] workers` bound it at the cost of a slower load, and a limit too small for a
  big merge fails the load instead of slowing it: left at DuckDB's defaults.
"""


def table(rows: Sequence[Sequence[str]]) -> List[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def figure_rows(figures: Sequence[Figure]) -> List[Sequence[str]]:
    return [
        (f.name, f.measured, f.floor, f"{f.ratio:.2f}", f.target, VERDICTS[f.ok])
        for f in figures
    ]


def print_report(machine: Dict[str, str], results: Results, elapsed_s: float) -> None:
    print()
    for line in table([(key + ":", value) for key, value in machine.items()]):
        print(line)
    print()
    for line in table([HEADER, *figure_rows(results.figures)]):
        print(line)
    print()
    print(RATIOS)
    print(f"Benchmark time: {elapsed_s:.0f} s.")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def write_results(
    path: str, command: str, date: str, machine: Dict[str, str], results: Results, elapsed_s: float
) -> None:
    time_ = results.details["time"]
    lines = [
        "# Benchmark results",
        "",
        f"`{command}`, {date}, {elapsed_s:.0f} s. Written by the run; see README, Benchmarks.",
        "",
        *markdown_table(("machine", ""), machine.items()),
        "",
        "## Figures",
        "",
        *markdown_table(HEADER, figure_rows(results.figures)),
        "",
        RATIOS,
        "",
        "## Where the time goes",
        "",
        f"Under the rate limit: {time_['requests']} requests ({time_['planned']} planned), "
        f"{time_['rows']:,} rows; " + _steps(time_["steps_s"]) + f"; floor {time_['floor_s']:.1f} s. "
        f"The extract step alone is {time_['extract_ratio']:.2f} x the floor.",
        "",
        *markdown_table(
            ("domains", "rows", "sync s", "sync steps", "floor s", "floor steps",
             "peak RSS MB: extract+normalize / load / process", "floor peak RSS MB"),
            [
                (domains, f"{s['rows']:,}", f"{s['sync_s']:.2f}", _steps(s["steps_s"]),
                 f"{s['floor_s']:.2f}", _steps(s["floor_steps_s"]),
                 f"{s['pipeline_rss_mb']:.0f} / {s['load_rss_mb']:.0f} / {s['peak_rss_mb']:.0f}",
                 f"{s['floor_peak_rss_mb']:.0f}")
                for domains, s in results.details["sizes"].items()
            ],
        ),
        "",
        "Throughput and memory: medians of the runs; the server's response cache is filled "
        "before the timed runs, so that both the sync and the floor are served alike.",
        "",
        "## What limits the rest",
        "",
        LIMITS.format(**_limits(results)),
    ]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def _steps(steps: Dict[str, float]) -> str:
    return ", ".join(f"{step} {seconds:.2f} s" for step, seconds in steps.items())


def _limits(results: Results) -> Dict[str, Any]:
    """The numbers the 'What limits the rest' text quotes."""
    time_, sizes = results.details["time"], results.details["sizes"]
    largest, smallest = sizes[max(sizes)], sizes[min(sizes)]
    real_floor_s = time_["floor_s"] * TIME_SCALE
    return {
        **time_,
        "real_ratio": (time_["extract_ratio"] * real_floor_s + time_["after_extract_s"]) / real_floor_s,
        "domains": max(sizes),
        **largest["steps_s"],
        "fetch": largest["floor_steps_s"]["fetch"],
        "floor_load": largest["floor_steps_s"]["load"],
        "pipeline_ratio": largest["pipeline_rss_mb"] / smallest["pipeline_rss_mb"],
        "floor_ratio": largest["floor_peak_rss_mb"] / smallest["floor_peak_rss_mb"],
    }
