"""The key-pool figure alone: `python -m bench.key_pool` (about a minute). `python -m bench`
measures it among the others; this prints its rows without writing bench/RESULTS.md."""

import sys

from .figures import Results, measure_key_pool
from .report import HEADER, figure_rows, pool_lines, table


def main() -> int:
    results = Results()
    measure_key_pool(results)
    for line in table([HEADER, *figure_rows(results.figures)]):
        print(line)
    print("\n".join(pool_lines(results.details["key_pool"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
