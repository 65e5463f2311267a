"""A sync's memory: the malloc arena cap and the trims of glibc's and Arrow's free pages
(memory.py), the states let go, DuckDB's load settings and its load jobs by the load's size
(their effect on a long sync's peak is measured by the bench: bench/RESULTS.md, Memory)."""

import os
import subprocess
import sys
import threading
import time

import pytest
from dlt.common.destination.client import RunnableLoadJob

from aiclicks_pipeline import duckdb_load, memory

from .support import Warehouse

GLIBC = memory._glibc() is not None


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only (Linux)")
def test_threads_after_the_cap_share_two_arenas():
    """Real glibc: 16 threads that each allocate make at most 2 arenas once capped (more
    without the cap); counted from glibc's own malloc_info report."""
    script = r"""
import ctypes, os, sys, tempfile, threading
from aiclicks_pipeline import memory
if sys.argv[1] == "cap":
    memory.cap_malloc_arenas()
hold, ready, done = [], threading.Barrier(17), threading.Event()
def work():
    hold.append([bytearray(4000) for _ in range(50)])
    ready.wait(); done.wait()
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
ready.wait()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile(suffix=".xml") as out:
    stream = libc.fopen(out.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream)); libc.fclose(ctypes.c_void_p(stream))
    print(open(out.name).read().count("<heap nr="))
done.set()
for t in threads: t.join()
"""
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}

    def arenas(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, env=env, check=True)
        return int(done.stdout.strip())

    assert arenas("cap") <= memory.ARENAS
    assert arenas("nocap") > memory.ARENAS


def test_arrows_free_memory_is_handed_back_where_glibcs_trim_is_not_enough():
    """Arrow tables built in threads and dropped, as an extraction's are: Arrow's allocator
    keeps their memory resident; glibc's trim alone gives none of it back, release_free_memory
    most of it (in a subprocess: its RSS is its own)."""
    script = r"""
import sys, threading
import pyarrow as pa
from aiclicks_pipeline import memory

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def build():
    tables = [pa.table({"text": [f"row {i} of a page" for i in range(20000)], "n": list(range(20000))})
              for _ in range(40)]
    del tables

start = rss()
threads = [threading.Thread(target=build) for _ in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
held = rss()
libc = memory._glibc()
if libc is not None:
    libc.malloc_trim(0)
trimmed = rss()
memory.release_free_memory()
print(start, held, trimmed, rss())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    start, held, trimmed, released = map(float, done.stdout.split())
    assert held - start > 50  # the tables' memory was kept after they were dropped
    assert released - start < (held - start) / 2, (start, held, trimmed, released)
    if GLIBC:
        assert trimmed - start > (held - start) / 2  # not glibc's: the trim alone is not it


def test_a_committed_checkpoints_states_are_let_go():
    """The sync keeps the states it changed only while their checkpoint is in flight (to roll
    a skipped domain back); kept longer, every checkpoint's copy of every domain's cursors
    stayed in memory (sync.py)."""
    from aiclicks_pipeline.sync import SyncContext

    context = SyncContext()
    context.begin("2026-06-17T10:00:00+00:00", {})
    in_flight, committed = {}, {}
    context.record_response("prompts", committed, "committed", "2026-06-17T10:00:00+00:00")
    context.checkpoint_committed()
    context.record_response("prompts", in_flight, "in-flight", "2026-06-17T10:00:00+00:00")

    assert list(context._changed_states) == ["in-flight"]
    context.skip_domain("in-flight", "gone")
    context.skip_domain("committed", "gone")
    assert "in-flight" not in in_flight.get("cursors", {})  # rolled back: not yet committed
    assert committed["cursors"] == {"committed": "2026-06-17T10:00:00+00:00"}  # in the warehouse


def test_a_syncs_duckdb_loads_get_the_memory_settings(tmp_path, monkeypatch):
    """pipeline.run_settings gives a DuckDB pipeline's loads destinations.DUCKDB_LOAD_CONFIG (its
    effect on the peak: bench/RESULTS.md, Memory); a `global_config` the user gives replaces them."""
    import dlt

    from aiclicks_pipeline.destinations import DUCKDB_LOAD_CONFIG
    from aiclicks_pipeline.pipeline import make_pipeline, run_settings

    def load_settings():
        pipeline = make_pipeline(pipelines_dir=str(tmp_path / "p"), duckdb_file=str(tmp_path / "w.duckdb"))
        with dlt.config.values(run_settings(pipeline)):
            return _duckdb_settings(pipeline)

    monkeypatch.delenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", raising=False)
    settings = load_settings()
    assert settings["threads"] == str(DUCKDB_LOAD_CONFIG["threads"])
    assert settings["write_buffer_row_group_count"] == str(DUCKDB_LOAD_CONFIG["write_buffer_row_group_count"])
    assert settings["allocator_background_threads"] == "true"

    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"threads": 2, "memory_limit": "1GB"}')
    settings = load_settings()
    assert settings["threads"] == "2" and settings["memory_limit"].startswith("953.")  # 1GB, the user's
    assert settings["write_buffer_row_group_count"] != "1"  # DuckDB's default: the user's replace ours


@pytest.mark.parametrize("one_at_a_time_above, workers, overlap", [
    (0, None, False),  # a load larger than the bound: one job at a time
    (None, None, True),  # the sandbox's few rows, under the bound: dlt's jobs side by side
    (0, "4", True),  # yours wins
])
def test_a_syncs_duckdb_load_runs_its_jobs_by_its_size(sandbox, tmp_path, monkeypatch, one_at_a_time_above,
                                                      workers, overlap):
    """duckdb_load.load_workers_settings: a load whose files sum to more than
    LOAD_JOBS_ONE_AT_A_TIME runs one job at a time (the buffers of jobs side by side added up to
    a sync's peak; bench/RESULTS.md, Memory), a smaller one dlt's 20 at a time; a `LOAD__WORKERS`
    you set wins. Each job is held a moment, so that jobs allowed to overlap do."""
    guard, running, most = threading.Lock(), [0], [0]
    run_managed = RunnableLoadJob.run_managed

    def counted(self, *args, **kwargs):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.02)
            return run_managed(self, *args, **kwargs)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(RunnableLoadJob, "run_managed", counted)
    if one_at_a_time_above is not None:
        monkeypatch.setattr(duckdb_load, "LOAD_JOBS_ONE_AT_A_TIME", one_at_a_time_above)
    if workers:
        monkeypatch.setenv("LOAD__WORKERS", workers)
    else:
        monkeypatch.delenv("LOAD__WORKERS", raising=False)
    assert Warehouse(tmp_path / "w").sync(sandbox).status == "success"
    assert (most[0] > 1) is overlap


def test_the_load_files_counted_are_those_not_yet_loaded(tmp_path):
    """load_files_bytes: the normalized packages' new jobs; none before anything was
    normalized, none once they are loaded."""
    import dlt

    from aiclicks_pipeline.pipeline import make_pipeline

    pipeline = make_pipeline(pipelines_dir=str(tmp_path / "p"), duckdb_file=str(tmp_path / "w.duckdb"))
    assert duckdb_load.load_files_bytes(pipeline) == 0  # nothing normalized yet
    pipeline.extract(dlt.resource([{"id": n, "text": os.urandom(50).hex()} for n in range(1000)], name="rows"))
    pipeline.normalize()
    pending = duckdb_load.load_files_bytes(pipeline)
    assert pending > 50_000  # the rows' random text, 50 bytes a row at least
    pipeline.load()
    assert duckdb_load.load_files_bytes(pipeline) == 0


def _duckdb_settings(pipeline):
    pool = pipeline.destination_client().config.credentials.conn_pool
    conn = pool.borrow_conn()
    try:
        return dict(conn.sql(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('threads', 'write_buffer_row_group_count', 'allocator_background_threads', 'memory_limit')"
        ).fetchall())
    finally:
        pool.return_conn(conn)
