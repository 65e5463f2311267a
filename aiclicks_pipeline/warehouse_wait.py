"""Waiting for a DuckDB file another process holds: the one rule of both sides of a warehouse
shared with a running sync.

DuckDB lets one process write a file and no other process open it meanwhile, and a process
reading it (even read-only) keeps a writer out too. A sync opens the file many times (each
checkpoint's load holds it from its first job to its last: duckdb_load.py), so a reader can get
in between two checkpoints. Both sides therefore wait when they meet the other:

- **The sync waits for a reader.** Wherever dlt opens the file in this process
  (`DuckDbConnectionPool.borrow_conn`, patched once when the package is imported: a
  checkpoint's load, the run history's row, the state restored or pruned, `reset`), a lock held
  by another process makes it try again every `POLL_S`, for up to `writer_wait_s` (the sync's
  `warehouse_wait_seconds` setting: `DEFAULT_WRITER_WAIT_S` unless configured). Then it fails
  as before, saying how long it waited: the pending load package stays in the working folder
  and the next run loads it.
- **A reader waits for a load** (`status`, `report`, `transform` opening the file:
  warehouse.py), for up to its own `--wait`.

The sync logs a wait longer than `NOTICE_AFTER_S` once as a warning naming the holder; a
shorter one, the usual brush of a reader with a checkpoint, only at INFO (`-v`), as a reader
logs its waits.
"""

import logging
import threading
import time
from typing import Callable, Optional, TypeVar

from dlt.common.runtime import signals as dlt_signals

from .destinations import DUCKDB_LOCK

logger = logging.getLogger("aiclicks_pipeline")

T = TypeVar("T")

DEFAULT_WRITER_WAIT_S = 120.0
POLL_S = 0.05
NOTICE_AFTER_S = 5.0
_PATCHED = "_aiclicks_waits_for_readers"

# how long dlt's opening of a DuckDB file in this process waits for another holder (a global:
# dlt's load opens the file from its worker threads)
_writer_wait_s = DEFAULT_WRITER_WAIT_S
_writer_wait_guard = threading.Lock()


def lock_holder(exc: BaseException) -> Optional[str]:
    """`/x/w.duckdb (PID 4242)` when `exc` says another process holds a DuckDB file, else None."""
    match = DUCKDB_LOCK.search(str(exc))
    if match is None:
        return None
    return f"{match['file']} (PID {match['pid']})" if match["pid"] else match["file"]


def retry_while_held(
    attempt: Callable[[], T],
    held_by: Callable[[BaseException], Optional[str]],
    wait_s: float,
    purpose: str,
    notice: bool = True,
) -> T:
    """`attempt()`, tried again every POLL_S while it fails with an error `held_by` names a
    holder of (None: another error, raised at once), for up to `wait_s` seconds; then its error
    is raised. `purpose` (open, read) is what the log lines say the wait is for; `notice`: warn
    once when the wait gets long (else a reader's one line, if it gives up, says it all)."""
    started = time.monotonic()
    noticed = False
    while True:
        try:
            result = attempt()
        except Exception as exc:
            holder = held_by(exc)
            waited = time.monotonic() - started
            if holder is None or waited >= wait_s:
                raise
            if notice and not noticed and waited >= NOTICE_AFTER_S:
                logger.warning(
                    "%s is held by another process: waiting up to %.0f s to %s it",
                    holder, wait_s, purpose,
                )
                noticed = True
            dlt_signals.sleep(min(POLL_S, max(wait_s - waited, 0.0)))
            dlt_signals.raise_if_signalled()  # a stop requested meanwhile ends the wait
            continue
        waited = time.monotonic() - started
        if waited >= POLL_S:
            logger.info("Waited %.1f s to %s a DuckDB file another process held", waited, purpose)
        return result


def set_writer_wait_s(seconds: float) -> None:
    """From now on, this process's opening of a DuckDB file waits up to `seconds` for another
    holder (a sync sets its `warehouse_wait_seconds`)."""
    global _writer_wait_s
    with _writer_wait_guard:
        _writer_wait_s = float(seconds)


def apply() -> None:
    """Idempotent: wraps dlt's `DuckDbConnectionPool.borrow_conn` once (module docstring).
    The pool's state changes only after DuckDB opened the file, so an attempt that met the lock
    left nothing to undo."""
    from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool

    if getattr(DuckDbConnectionPool, _PATCHED, False):
        return
    original = DuckDbConnectionPool.borrow_conn

    def borrow_conn(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        wait_s = _writer_wait_s
        started = time.monotonic()
        try:
            return retry_while_held(
                lambda: original(self, *args, **kwargs), lock_holder, wait_s, "open"
            )
        except Exception as exc:
            if lock_holder(exc) is None or wait_s <= 0:
                raise
            # dlt wraps this error; its text is what the user is told (errors.KNOWN_CAUSES)
            exc.args = (f"{exc} (waited {time.monotonic() - started:.0f} s for it)",)
            raise

    borrow_conn.__doc__ = original.__doc__
    DuckDbConnectionPool.borrow_conn = borrow_conn  # type: ignore[method-assign]
    setattr(DuckDbConnectionPool, _PATCHED, True)


__all__ = [
    "DEFAULT_WRITER_WAIT_S",
    "apply",
    "lock_holder",
    "retry_while_held",
    "set_writer_wait_s",
]
