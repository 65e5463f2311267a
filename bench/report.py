"""The figures as a table on the terminal, and as `bench/RESULTS.md`."""

import statistics
from typing import Any, Dict, List, Sequence

from .figures import Figure, Results


HEADER = ("figure", "measured", "floor", "ratio", "target", "")
VERDICTS = {True: "ok", False: "MISSED", None: ""}

RATIOS = (
    "Ratios are measured / floor: requests made / planned; sync wall time / (planned requests "
    "/ (keys x limit) x window); sync time / floor time for the same rows (= floor rows/s / sync rows/s); "
    "peak RSS at the largest size / at the smallest."
)

LIMITS = """\
- **Time under the rate limit.** The requests take the floor. A sync commits in checkpoints,
  each one dlt run: extract (the requests), then normalize and load, during which no request
  is sent; then the run's history row is loaded. The throttle spends every request of a
  window: it used to end each window with 2-3 of its 60 unused (it took a response's
  `Remaining` less every request in flight, some of which the server had counted already),
  5% of the rate; once a window's requests are all answered it now takes the lowest
  `Remaining` as exact. Under the real 60 s window a checkpoint's local work (a few seconds)
  mostly falls into the wait for the next window, and what is left after the last response
  weighs little against the floor: {real_ratio:.2f} x. With the window scaled tenfold (6 s)
  the same seconds weigh ten times as much: {scaled_ratio:.2f} x, of which {after_extract:.1f} s
  come after the last extraction (the last checkpoint's normalize and load, then the history
  row's small load). Overlapping a checkpoint's load with the next one's requests would
  remove most of the rest; dlt runs the steps of one pipeline one after the other, and two
  steps at once on one pipeline's state and schema are not safe, so this is left as is.
- **Throughput.** The floor parses nothing in Python: DuckDB reads the bodies. A sync hands
  dlt each table's rows as Arrow tables, a few large ones a checkpoint, each made from about
  1,000 rows of responses at a time (items.py), written to parquet and read by DuckDB as
  they are: dlt's row-by-row normalizer only sees the rows that
  do not fit a declared table (citations, whose `models` list dlt unnests; fields the API
  adds) and the run history. What is left is mostly per checkpoint, not per row. At {domains}
  domains a sync commits {checkpoints:.0f} checkpoints, each one dlt run: extract, normalize,
  and a load that merges about 13 tables through a staging dataset; the same sync in one
  checkpoint takes {one_s:.1f} s ({one_ratio:.2f} x the floor), so each further checkpoint
  costs {per_checkpoint:.2f} s. Measured with a CPU profile, most of that is dlt's own work per
  run, whatever its rows: resolving its configuration (about 100 times a run: the destination's
  on every capabilities check and client, a file writer's on every file), the schema, the
  package's files and state, a job and a merge per table. Steps summed at {domains} domains:
  extract {extract:.1f} s against the floor's fetch {fetch:.1f} s (the floor sends one request
  at a time; the sync two endpoints side by side, one domain at a time each, as the sandbox
  answers within milliseconds: more threads only contended for Python's lock, keypool.py),
  normalize {normalize:.1f} s (no counterpart in the floor), load {load:.1f} s against
  {floor_load:.1f} s. What dlt itself needs is measured beside it: the same rows, already
  fetched and in Arrow, in one bare dlt run that merges them into DuckDB (no requests, no
  checkpoints, no state, no run history) take {alone_small_ratio:.2f} x the floor at
  {small_domains} domains ({alone_small_s:.2f} s; the sync {sync_small_s:.2f} s) and
  {alone_large_ratio:.2f} x at {domains} ({alone_large_s:.2f} s; the sync {sync_large_s:.2f} s).
  dlt alone is {alone_small_share:.0%} of the sync's time at {small_domains} domains and
  {alone_large_share:.0%} at {domains}: the rest is this package's requests, checkpoints,
  state and run history. The lever is the
  number of checkpoints: the default `checkpoint_requests` is two minutes of the limit the
  keys state (120 a key at the real limit, where the waits hide the fixed cost), at most 1,200,
  as here where no limit is stated; it is also what a stopped sync may have to ask again.
- **Memory.** Three things grew with the account, all found by measuring. Each checkpoint's
  copy of dlt's state (a cursor and a sync time per domain and resource) stayed referenced by
  the sync's roll-back bookkeeping, so memory grew with the square of the account (154 copies
  at 2,000 domains); it is forgotten once its checkpoint commits (sync.py). glibc's malloc
  gave each step's new threads arenas of their own that it never handed back; two arenas and
  a `malloc_trim` after each checkpoint stop that (memory.py). And a checkpoint's merge
  (delete-insert) read the key columns of the whole target table into DuckDB's cache: late in
  a 2,000-domain sync 116 MB of `fanout_queries` ids (random UUIDs, so no row group could be
  skipped). Checkpoints take the domains in id order, so a table is stored in runs of
  `domain_id`; and the merge chooses the rows it replaces by an `IN` on the keys
  (dlt_fixes.py): DuckDB ran dlt's correlated `EXISTS` as a join on `IS NOT DISTINCT FROM`,
  which it does not narrow by the staging rows' bounds, so it still read every row. On the
  last checkpoint's warehouse of 2,000 domains that DELETE took +186 MB and 0.45 s, as an IN
  +10 MB and 0.11 s; the sync's peak went from 599 to 537 MB.
  What is left: between checkpoints RSS creeps by about 45 MB over a 2,000-domain sync (not
  Python objects, whose count stays flat, nor DuckDB, whose connect-insert-close loop stays
  flat: most likely fragmentation around the state's entries, which grow with every
  committed domain). And about one load in four peaks 70-80 MB above the others: at
  the connection's close DuckDB's checkpoint merges the small row groups the last loads
  appended (its vacuum) into a full one (122,880 rows), rewriting every column of them. A
  10-domain sync never fills a row group, so it never pays this; it is bounded by one row
  group, not by the account. `max_vacuum_tasks=0` removes it, but DuckDB then never compacts
  row groups with deleted rows either, and each day's re-read of the last days would leave
  the daily tables mostly dead rows; so DuckDB's default stays. The largest part of a load
  was its largest table's (`fanout_queries`) copy into staging and its merge: DuckDB's
  settings for a sync's loads (destinations.DUCKDB_LOAD_CONFIG: one worker thread, one row
  group buffered per INSERT instead of five, a background thread handing freed memory back)
  and a deduplication of the staging rows by the lowest `rowid` instead of a `ROW_NUMBER()`
  window (dlt_fixes.py) took a 2,000-domain sync's peak from 821 to 636 MB. Then Arrow's
  allocator (mimalloc) was found keeping 50-100 MB of an extraction's freed tables resident
  under every load, now released with glibc's free pages (memory.py: 504 -> 405 MB), and
  dlt's 20 load jobs side by side added the largest copy's buffers to the other tables'
  merges: one job at a time into DuckDB 405 -> 355 MB, at about 0.2 s more per checkpoint's
  load without a rate limit; so a load takes its jobs one at a time only when its files are
  more than 8 MB (a 2,000-domain checkpoint's are 22 MB, a throughput checkpoint's 3 MB;
  duckdb_load.load_workers_settings). Load step peaks:
  {load_small:.0f} MB at {memory_small:,} domains, {load_large:.0f} MB at {memory_large:,}
  (extraction {extract_small:.0f} / {extract_large:.0f} MB); the whole sync's peak is
  {memory_ratio:.2f} x. A DuckDB `memory_limit` caps little of the peak (256 MB: 727 -> 701 MB)
  and one below 200 MB can fail loads with Out of Memory, so it stays DuckDB's default.
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
    lines = [
        "# Benchmark results",
        "",
        f"`{command}`, {date}, {elapsed_s:.0f} s. Written by the run; see docs/benchmarks.md.",
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
        *[_time_line(results.details[key]) for key in ("time", "time_real")],
        *pool_lines(results.details["key_pool"]),
        "",
        *markdown_table(
            ("domains", "rows", "sync s", "sync steps", "floor s", "floor steps", "dlt alone s",
             "dlt alone steps", "peak RSS MB: sync / floor"),
            [
                (domains, f"{s['rows']:,}", f"{s['sync_s']:.2f}", _steps(s["steps_s"]),
                 f"{s['floor_s']:.2f}", _steps(s["floor_steps_s"]), f"{s['dlt_alone']['sync_s']:.2f}",
                 _steps(s["dlt_alone"]["steps_s"]), f"{s['peak_rss_mb']:.0f} / {s['floor_peak_rss_mb']:.0f}")
                for domains, s in results.details["sizes"].items()
            ],
        ),
        "",
        "Throughput: medians of the runs; the server's response cache is filled before the timed "
        "runs, so that both the sync and the floor are served alike. A sync's time is the whole "
        "`run_sync` call, the run history's final load included. dlt alone: the floor's rows, "
        "fetched and read into Arrow first (untimed), then one bare dlt run of them (extract, "
        "normalize, merge load into DuckDB, one table per endpoint on the sync's primary keys).",
        "",
        "## Stopped syncs",
        "",
        *_stops(results.details["kill"], results.details["stops"]),
        "",
        "## Memory",
        "",
        *markdown_table(
            ("domains", "rows", "requests", "checkpoints", "sync s",
             "peak RSS MB: extract / normalize / load / process", "load s per checkpoint: first / last tenth"),
            [_memory_row(domains, run) for domains, run in results.details["memory"].items()],
        ),
        "",
        "## What limits the rest",
        "",
        LIMITS.format(**_limits(results)),
    ]
    with open(path, "w") as out:
        out.write("\n".join(lines))


def _time_line(time_: Dict[str, Any]) -> str:
    return (
        f"- {time_['window_s']:.0f} s windows: {time_['requests']} requests ({time_['planned']} planned), "
        f"{time_['rows']:,} rows in {time_['checkpoints']} checkpoints; summed over them: "
        + _steps(time_["steps_s"]) + f"; floor {time_['floor_s']:.1f} s. The last extraction ends at "
        f"{time_['extract_ratio']:.2f} x the floor. "
        "Ratios of the runs: " + ", ".join(f"{ratio:.3f}" for ratio in time_["ratios"]) + "."
    )


def pool_lines(pool: Dict[int, Dict[str, Any]]) -> List[str]:
    """The key-pool figure's runs: where its time went beside the floor."""
    return [
        f"- {keys} key(s), 6 s windows: {run['requests']} requests ({run['planned']} planned); "
        + _steps(run["steps_s"]) + f"; floor {run['floor_s']:.1f} s. The last extraction ends at "
        f"{run['extract_ratio']:.2f} x the floor, {run['after_extract_s']:.1f} s before the end."
        for keys, run in pool.items()
    ]


def _stops(kill: Dict[str, Any], stops: List[Dict[str, Any]]) -> List[str]:
    lines = [
        f"Killed (SIGKILL) when {kill['made_before_kill']} of {kill['planned']} planned requests had "
        f"been answered; the rerun asked {kill['rerun_requests']} ({kill['left']} were left, so "
        f"{kill['repeated']} repeated, `/domains` included), committed "
        f"{kill['checkpoints']['committed']} checkpoint(s) and ended `{kill['rerun_status']}`.",
        "",
    ]
    lines += markdown_table(
        ("moment", "signal", "s to exit", "exit code", "committed"),
        [
            (stop["moment"], stop["signal"], f"{stop['exit_s']:.2f}",
             f"{stop['exit_code']}" + ("" if stop["exit_code"] == stop["expected_code"] else f" (expected {stop['expected_code']})"),
             stop["committed"] or "(no summary)")
            for stop in stops
        ],
    )
    return lines


def _memory_row(domains: int, run: Dict[str, Any]) -> Sequence[Any]:
    peaks = run["peak_rss_mb"]
    loads = run["load_s_per_checkpoint"]
    tenth = max(len(loads) // 10, 1)
    return (
        f"{domains:,}", f"{sum(run['rows'].values()):,}", run["requests"], run["checkpoints"],
        f"{run['elapsed_s']:.0f}",
        f"{peaks['extract']:.0f} / {peaks['normalize']:.0f} / {peaks['load']:.0f} / {run['process_peak_rss_mb']:.0f}",
        f"{statistics.median(loads[:tenth]):.2f} / {statistics.median(loads[-tenth:]):.2f}",
    )


def _steps(steps: Dict[str, float]) -> str:
    return ", ".join(f"{step} {seconds:.2f} s" for step, seconds in steps.items())


def _checkpoint_cost(size: Dict[str, Any]) -> Dict[str, Any]:
    """What the sync of `size` costs per checkpoint: against the same sync in one checkpoint."""
    one = size.get("one_checkpoint") or size
    extra = max(size["checkpoints"] - 1, 1)
    return {
        "checkpoints": size["checkpoints"],
        "one_s": one["sync_s"],
        "one_ratio": one["sync_s"] / one["floor_s"],
        "per_checkpoint": (size["sync_s"] - one["sync_s"]) / extra,
    }


def _limits(results: Results) -> Dict[str, Any]:
    """The numbers the 'What limits the rest' text quotes."""
    scaled, real, sizes = results.details["time"], results.details["time_real"], results.details["sizes"]
    largest, smallest = sizes[max(sizes)], sizes[min(sizes)]
    memory = results.details["memory"]
    small, large = min(memory), max(memory)
    return {
        "real_ratio": real["elapsed_s"] / real["floor_s"],
        "scaled_ratio": scaled["elapsed_s"] / scaled["floor_s"],
        "after_extract": scaled["after_extract_s"],
        "domains": max(sizes),
        **largest["steps_s"],
        "fetch": largest["floor_steps_s"]["fetch"],
        "small_domains": min(sizes),
        "alone_small_ratio": smallest["dlt_alone"]["sync_s"] / smallest["dlt_alone"]["floor_s"],
        "alone_small_s": smallest["dlt_alone"]["sync_s"],
        "sync_small_s": smallest["sync_s"],
        "alone_large_ratio": largest["dlt_alone"]["sync_s"] / largest["dlt_alone"]["floor_s"],
        "alone_large_s": largest["dlt_alone"]["sync_s"],
        "sync_large_s": largest["sync_s"],
        "alone_small_share": smallest["dlt_alone"]["sync_s"] / smallest["sync_s"],
        "alone_large_share": largest["dlt_alone"]["sync_s"] / largest["sync_s"],
        "floor_load": largest["floor_steps_s"]["load"],
        **_checkpoint_cost(largest),
        "memory_ratio": memory[large]["process_peak_rss_mb"] / memory[small]["process_peak_rss_mb"],
        "memory_small": small,
        "memory_large": large,
        "extract_small": memory[small]["peak_rss_mb"]["extract"],
        "extract_large": memory[large]["peak_rss_mb"]["extract"],
        "load_small": memory[small]["peak_rss_mb"]["load"],
        "load_large": memory[large]["peak_rss_mb"]["load"],
    }
