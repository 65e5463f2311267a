"""`python -m bench` (`make bench`): the four figures of a sync against their floors, printed
and written to bench/RESULTS.md. Not part of the test suite; takes a few minutes."""

import argparse
import os
import sys
import time
from datetime import datetime, timezone

from .figures import MEMORY_SIZES, SIZES, measure_all
from .machine import machine
from .report import print_report, write_results

RESULTS = os.path.join(os.path.dirname(__file__), "RESULTS.md")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, allow_abbrev=False)
    parser.add_argument("--reps", type=int, default=3, help="runs per size for throughput and memory")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="throughput: domains, comma-separated")
    parser.add_argument("--memory-sizes", default=",".join(map(str, MEMORY_SIZES)),
                        help="memory: domains, comma-separated (the largest is most of the time)")
    parser.add_argument("--results", default=RESULTS, help="where to write the results ('' = nowhere)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    memory_sizes = [int(size) for size in args.memory_sizes.split(",")]

    details = machine()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"aiclicks-pipeline benchmarks, {date}", flush=True)
    started = time.monotonic()
    results = measure_all(args.reps, sizes, memory_sizes, progress=lambda text: print(text, flush=True))
    elapsed = time.monotonic() - started

    print_report(details, results, elapsed)
    if args.results:
        command = "python -m bench" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
        write_results(args.results, command, date, details, results, elapsed)
        print(f"Written to {os.path.relpath(args.results)}.")
    return 0  # a missed target is a finding, shown in the table, not a failed command


if __name__ == "__main__":
    sys.exit(main())
