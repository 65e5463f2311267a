"""A sync run's status: the one set of names for it, wherever it is written or read.

The same word is `SyncResult.status` (checkpoints.py), the `status` of `run --json` and of
`--summary-file`, and the `outcome` column of the run history (history.py, read back by
`status` and by a BI tool or dbt test watching `_aiclicks_runs`).
"""

RUNNING = "running"  # a history row so far: the run goes on, or ended without its final row
SUCCESS = "success"
PARTIAL = "partial"  # some domains skipped or not listed for the key: exit 3
FAILED = "failed"
INTERRUPTED = "interrupted"  # stopped by a signal, or (history) marked so by the next run

RUN_STATUSES = (RUNNING, SUCCESS, PARTIAL, FAILED, INTERRUPTED)
