"""A load step into DuckDB with its file open from the first job to the last, its memory freed
between jobs as a close would free it.

dlt opens and closes a DuckDB file for each job of a load (a copy into staging and a merge per
table, the state, the load's record: a dozen or more a checkpoint), and each open reads the
catalog while each close writes a checkpoint and syncs it: about 55 ms a job here, a third of a
10-domain sync. Held open by one more borrow for the whole load step, DuckDB hands the jobs the
database already open (the load step in half the time). But a close was also what gave back
the memory of a job's buffers: held open, DuckDB keeps the blocks a large merge read cached up
to its `memory_limit` (80% of RAM), and a 2,000-domain sync peaked at 821 MB instead of 607.
So where dlt would have closed the file (its last job returned its connection), the blocks
cached are evicted instead: `memory_limit` lowered for a moment, then set back.

The extraction's freed memory is handed back before the load step begins (memory.py).

A large load runs its jobs one at a time: side by side (dlt's default, 20), the largest table's
copy into staging ran beside the other tables' merges and their buffers added up to the sync's
peak. A small one keeps dlt's default, where one at a time only cost time (LOAD_JOBS_ONE_AT_A_TIME).

Only the load step: during the extraction (minutes under the real limit) the file is left to
its readers (`status`, `report`, dbt; warehouse_wait.py), as between jobs before. Other
destinations: nothing changes.
"""

import functools
import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Tuple

import dlt
from dlt.pipeline.pipeline import Pipeline

from .destinations import destination_kind
from .memory import release_free_memory

logger = logging.getLogger("aiclicks_pipeline")

_PATCHED = "_aiclicks_frees_held_memory"
# the DuckDB files a load step holds open in this process, by path: the connection holding each
# and the memory limit it is set back to
_held: Dict[str, Tuple[Any, str]] = {}
_held_guard = threading.Lock()
# low enough that DuckDB evicts every block no statement has pinned (it refuses what it
# cannot free, and the limit is set back either way)
_EVICT_TO = "1MB"
# A load step's jobs run one at a time above this many bytes of load files, side by side below.
# 2,000 sandbox domains (22 MB of files a checkpoint): 405-410 MB peak side by side, 355 MB one at
# a time. 100 and 500 smaller domains (3 MB a checkpoint) peak in their extraction either way,
# and one at a time cost them about 0.2 s a checkpoint (bench/RESULTS.md).
LOAD_JOBS_ONE_AT_A_TIME = 8 * 1024 * 1024


@contextmanager
def duckdb_open_while_loading(pipeline: Pipeline) -> Iterator[None]:
    """For the duration, each load step of `pipeline` (into DuckDB) holds its file open from
    its first job to its last (module docstring)."""
    if destination_kind(pipeline.destination) != "duckdb":
        yield
        return
    load = pipeline.load  # `run` calls `self.load`: an attribute of the instance comes first

    @functools.wraps(load)
    def load_with_file_open(*args: Any, **kwargs: Any) -> Any:
        # what the extraction and normalization freed goes back to the system first: DuckDB
        # allocates through an allocator of its own, and glibc's free pages would stay resident
        # under the load's peak (10 sandbox domains 370 -> 352 MB, 500 domains 503 -> 493 MB)
        release_free_memory()
        # a connection of its own: dlt's load opens the same database through its pool, and
        # DuckDB gives a process one instance per file while any connection to it is open
        with pipeline.sql_client() as client:
            path = client.credentials._conn_str()
            with _held_guard:
                connection = client.native_connection
                _held[path] = (connection, memory_limit_to_keep(connection, client.credentials))
            try:
                with dlt.config.values(load_workers_settings(pipeline)):
                    return load(*args, **kwargs)
            finally:
                with _held_guard:
                    _held.pop(path, None)

    pipeline.load = load_with_file_open  # type: ignore[method-assign]
    try:
        yield
    finally:
        del pipeline.load


def load_workers_settings(pipeline: Pipeline) -> Dict[str, Any]:
    """dlt's `load.workers` for the load step about to run: 1 when its packages' load files sum
    to more than LOAD_JOBS_ONE_AT_A_TIME; nothing (dlt's default) below that, or when you set it."""
    if dlt.config.get("load.workers") is not None:
        return {}
    return {"load.workers": 1} if load_files_bytes(pipeline) > LOAD_JOBS_ONE_AT_A_TIME else {}


def load_files_bytes(pipeline: Pipeline) -> int:
    """The size of the load files of `pipeline`'s normalized packages not yet loaded; 0 before
    anything was normalized (dlt's load then has nothing to do)."""
    packages = pipeline._get_load_storage().normalized_packages
    try:
        return sum(
            os.path.getsize(packages.storage.make_full_path(name))
            for load_id in packages.list_packages()
            for name in packages.list_new_jobs(load_id)
        )
    except FileNotFoundError:
        return 0


def memory_limit_to_keep(connection: Any, credentials: Any) -> str:
    """The `memory_limit` a database is set back to after each eviction: the one configured
    (a `global_config` you give), else the one it has now, read once. Not read back each time:
    DuckDB prints a limit rounded down ("18.8 GiB" set reads "18.7 GiB"), so it would creep
    down a step each time. (Not `RESET`: with 1 MB the limit, it fails for want of memory.)"""
    configured = (getattr(credentials, "global_config", None) or {}).get("memory_limit")
    if configured is not None:
        return str(configured)
    return str(connection.execute("select current_setting('memory_limit')").fetchone()[0])


def free_cached_blocks(connection: Any, limit: str) -> None:
    """Evicts what DuckDB's buffer manager holds unpinned (blocks read, a statement's spilled
    buffers): lowers the database's `memory_limit` for a moment and sets it to `limit`."""
    import duckdb

    cursor = connection.cursor()
    try:
        try:
            cursor.execute(f"SET GLOBAL memory_limit = '{_EVICT_TO}'")
        except duckdb.Error:
            pass  # some blocks are pinned: DuckDB freed what it could and kept its limit
        finally:
            cursor.execute("SET GLOBAL memory_limit = '%s'" % limit.replace("'", "''"))
    finally:
        cursor.close()


def apply() -> None:
    """Idempotent: wraps dlt's `DuckDbConnectionPool.return_conn` once: when the last job of
    a pool returns its connection to a file a load step holds open, where dlt's close would
    have freed the database's memory, its cached blocks are freed instead. Under the pool's
    lock: no job of that pool starts meanwhile (a load's jobs share one pool; the holder's
    connection is idle)."""
    from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool

    if getattr(DuckDbConnectionPool, _PATCHED, False):
        return
    original = DuckDbConnectionPool.return_conn

    def return_conn(self, borrowed_conn):  # type: ignore[no-untyped-def]
        with self._conn_lock:  # reentrant: dlt's return takes it too
            borrows = original(self, borrowed_conn)
            if borrows == 0:
                with _held_guard:
                    held = _held.get(self.credentials._conn_str())
                if held is not None:
                    try:
                        free_cached_blocks(*held)
                    except Exception as exc:  # noqa: BLE001 - memory, not correctness
                        logger.debug("DuckDB's cached blocks not freed: %s", exc)
        return borrows

    return_conn.__doc__ = original.__doc__
    DuckDbConnectionPool.return_conn = return_conn  # type: ignore[method-assign]
    setattr(DuckDbConnectionPool, _PATCHED, True)


__all__ = [
    "apply", "duckdb_open_while_loading", "free_cached_blocks", "load_files_bytes", "load_workers_settings",
    "memory_limit_to_keep",
]
