"""duckdb_load.py: a sync's load step holds its DuckDB file open from the first job to the last,
and frees DuckDB's cached blocks where dlt would have closed the file (its speed and memory:
bench/RESULTS.md)."""

from types import SimpleNamespace

import duckdb

from aiclicks_pipeline import duckdb_load
from dlt.destinations.impl.duckdb.configuration import DuckDbConnectionPool

from .support import Folder, small_sandbox, sync


def memory_limit(connection) -> str:
    return connection.execute("select current_setting('memory_limit')").fetchone()[0]


def test_every_job_of_a_sync_finds_its_file_held_and_the_memory_limit_is_kept(tmp_path, monkeypatch):
    """Real sync, real DuckDB: each connection dlt's load borrows is borrowed while the load
    step holds the file; the cached blocks are freed between jobs; the memory limit DuckDB had
    is the one it has after."""
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    borrows_held, borrows_loose, frees = [], [], []
    original_borrow = DuckDbConnectionPool.borrow_conn
    original_free = duckdb_load.free_cached_blocks

    def borrow(self, *args, **kwargs):
        held = self.credentials._conn_str() in duckdb_load._held
        (borrows_held if held else borrows_loose).append(self)
        return original_borrow(self, *args, **kwargs)

    def free(connection, limit):
        frees.append(memory_limit(connection))
        original_free(connection, limit)
        frees.append(memory_limit(connection))

    monkeypatch.setattr(DuckDbConnectionPool, "borrow_conn", borrow)
    monkeypatch.setattr(duckdb_load, "free_cached_blocks", free)
    with small_sandbox() as sandbox:
        result = sync(folder, sandbox)
    assert result.status == "success" and result.total_rows > 0
    # the loads' jobs (each checkpoint's and the final row's: a dozen and more) ran held open;
    # the few borrows outside a load (the state restored, the plan's row counts) did not
    assert len(borrows_held) > 2 * len(borrows_loose) > 0
    # set back to the same limit each time: it does not creep down with DuckDB's rounding
    # ("18.8 GiB" set reads "18.7 GiB"), which a limit read back each time would
    assert len(frees) > 10 and len(set(frees[1::2])) == 1
    assert not duckdb_load._held  # let go when the load step ended
    # and the file is whole and closed: another process may open it now
    with duckdb.connect(str(folder.warehouse), read_only=True) as connection:
        assert connection.execute("select count(*) from aiclicks.domains").fetchone()[0] == 2


def test_freeing_cached_blocks_gives_back_memory_and_keeps_the_limit(tmp_path):
    """Real DuckDB: blocks read by a query stay cached in its buffer manager; freed, DuckDB's
    own memory report drops, and its memory limit (a user's, here 3 GB) is set back exactly."""
    connection = duckdb.connect(str(tmp_path / "w.duckdb"), config={"memory_limit": "3GB"})
    connection.execute("create table t as select range as a, md5(range::varchar) as b from range(400000)")
    connection.execute("checkpoint")
    connection.close()
    connection = duckdb.connect(str(tmp_path / "w.duckdb"), config={"memory_limit": "3GB"})
    limit = memory_limit(connection)
    connection.execute("select count(distinct b) from t").fetchall()

    def used() -> int:
        return connection.execute("select sum(memory_usage_bytes) from duckdb_memory()").fetchone()[0]

    before = used()
    configured = SimpleNamespace(global_config={"memory_limit": "3GB"})
    keep = duckdb_load.memory_limit_to_keep(connection, configured)
    duckdb_load.free_cached_blocks(connection, keep)
    assert used() < before / 4
    for _ in range(3):  # freed again and again, the limit stays the user's 3 GB
        duckdb_load.free_cached_blocks(connection, keep)
    assert memory_limit(connection) == limit
    assert duckdb_load.memory_limit_to_keep(connection, SimpleNamespace(global_config=None)) == limit
    connection.close()


def test_other_destinations_are_left_as_they_are(tmp_path):
    """Only a DuckDB pipeline's load is wrapped."""
    import dlt

    pipeline = dlt.pipeline("p", destination=dlt.destinations.filesystem(str(tmp_path / "lake")),
                            pipelines_dir=str(tmp_path / "w"))
    load = pipeline.load
    with duckdb_load.duckdb_open_while_loading(pipeline):
        assert pipeline.load == load
