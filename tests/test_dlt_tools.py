"""dlt's own tools find what `aiclicks-pipeline run` loaded, from the project folder and with
their default arguments: `dlt.attach("aiclicks").dataset()`, `dlt pipeline aiclicks info |
trace | schema | drop`, the dashboard (`dlt pipeline aiclicks show`). And a warehouse an older
version of the package loaded carries on incrementally. Real processes: the CLI, dlt's CLI and
Python, each test with its own `DLT_DATA_DIR` (dlt's `~/.dlt`).
"""

import html
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import DEFAULT_DUCKDB_FILE, ENDPOINTS

from .support import (
    ATTACH, DLT, Folder, WarehouseFile, assert_table_matches, clean_env, days_asked, python,
    small_sandbox, sync,
)

def dlt_cli(folder: Folder, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DLT), *args], cwd=folder.path, env=clean_env(folder),
                          capture_output=True, text=True, timeout=120)


def loaded_folder(tmp_path: Path, sandbox) -> Folder:
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    done, _ = folder.run(sandbox)
    assert done.returncode == 0, done.stderr
    return folder


def test_dlt_attach_and_dlts_cli_find_the_warehouse(tmp_path):
    with small_sandbox() as sandbox:
        folder = loaded_folder(tmp_path, sandbox)
        warehouse = WarehouseFile(folder.warehouse)
        expected = {table: warehouse.query(f"select count(*) from aiclicks.{table}")[0][0]
                    for table in warehouse.tables() if not table.startswith("_dlt")}

        attached = python(folder, ATTACH)

        assert attached.returncode == 0, attached.stderr
        read = json.loads(attached.stdout)
        assert read["visibility_daily"] == expected["visibility_daily"] > 0
        assert {t: n for t, n in read["counts"].items() if t in expected} == expected
        # dlt's default file for the pipeline name was not created beside it
        assert sorted(p.name for p in folder.path.iterdir()) == [DEFAULT_DUCKDB_FILE]

        info = dlt_cli(folder, "pipeline", "aiclicks", "info")
        assert info.returncode == 0, info.stderr
        assert f"duckdb_database: {folder.warehouse}" in info.stdout
        assert "dataset_name: aiclicks" in info.stdout and "visibility_daily" in info.stdout

        trace = dlt_cli(folder, "pipeline", "aiclicks", "trace")
        assert trace.returncode == 0, trace.stderr
        assert f"duckdb:///{folder.warehouse}" in trace.stdout and "is LOADED" in trace.stdout

        schema = dlt_cli(folder, "pipeline", "aiclicks", "schema")
        assert schema.returncode == 0, schema.stderr
        for table in ENDPOINTS:
            assert f"\n  {table}:\n" in schema.stdout

        # dlt asks before it drops; --yes answers for a script
        dropped = dlt_cli(folder, "--yes", "pipeline", "aiclicks", "drop", "visibility_daily")

        assert dropped.returncode == 0, dropped.stderr
        assert "same directory" not in dropped.stdout + dropped.stderr
        assert "visibility_daily" not in warehouse.tables()
        # the next run reloads what was dropped, whole, and asks nothing else
        result = sync(folder, sandbox)
        assert result.status == "success", result.error
        assert result.windows_asked == {"visibility_daily": [90]}
        assert result.rows == {"visibility_daily": expected["visibility_daily"]}
        assert warehouse.query("select count(*) from aiclicks.visibility_daily")[0][0] == expected["visibility_daily"]


# the paths that read Arrow through DuckDB (DuckDB 2.0 broke them in dlt 1.31): a dataset's
# `.arrow()`, and the dashboard's own views of rows, row counts and loads (its query helpers)
ARROW_READS = """
import json, dlt
from dlt._workspace.helpers.dashboard.config import DashboardConfiguration
from dlt._workspace.helpers.dashboard.utils import queries
pipeline = dlt.attach("aiclicks")
arrow = pipeline.dataset().visibility_daily.arrow()
sql, error, _ = queries.get_default_query_for_table(pipeline, "aiclicks", "visibility_daily", True)
assert not error, error
rows, error, _ = queries.get_query_result(pipeline, sql)
assert not error, error
loads, error, _ = queries.get_loads(DashboardConfiguration(), pipeline)
assert not error, error
print(json.dumps({
    "arrow_rows": arrow.num_rows,
    "arrow_columns": arrow.column_names,
    "view_rows": rows.num_rows,
    "row_counts": queries.get_row_counts(pipeline),
    "loads": len(loads),
}))
"""


def test_arrow_and_the_dashboards_views_read_the_duckdb_warehouse(tmp_path):
    """`dlt.attach("aiclicks").dataset().visibility_daily.arrow()` and the dashboard's views of
    rows, row counts and loads, in a Python of their own after a CLI run."""
    with small_sandbox() as sandbox:
        folder = loaded_folder(tmp_path, sandbox)
    warehouse = WarehouseFile(folder.warehouse)
    ((days,),) = warehouse.query("select count(*) from aiclicks.visibility_daily")
    ((loads,),) = warehouse.query("select count(*) from aiclicks._dlt_loads")

    read = python(folder, ARROW_READS)

    assert read.returncode == 0, read.stderr
    found = json.loads(read.stdout)
    assert found["arrow_rows"] == found["view_rows"] == days > 0
    assert {"domain_id", "date"} <= set(found["arrow_columns"])
    assert found["row_counts"]["visibility_daily"] == days
    assert found["loads"] == loads > 0


# What the package's first versions did, and what docs/command-line.md's Python example still does: a
# plain dlt pipeline, the DuckDB file given relative, nothing of this package's in dlt's local
# state (no bound warehouse, no remembered path)
OLD_VERSION_RUN = """
import dlt
from aiclicks_pipeline import aiclicks_source
pipeline = dlt.pipeline("aiclicks", destination=dlt.destinations.duckdb("aiclicks_warehouse.duckdb"),
                        dataset_name="aiclicks")
pipeline.run(aiclicks_source())
"""


def test_a_warehouse_an_older_version_loaded_continues_incrementally(tmp_path):
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    with small_sandbox() as sandbox:
        truth = WarehouseTruth(sandbox.account)
        old = python(folder, OLD_VERSION_RUN, sandbox=sandbox)
        assert old.returncode == 0, old.stderr
        truth.record_sync(sandbox.clock.now(), days=90)
        sandbox.advance(days=1)

        done, summary = folder.run(sandbox)

        assert done.returncode == 0, done.stderr
        assert days_asked(summary) == {7}
        truth.record_sync(sandbox.clock.now(), days=7)
        warehouse = WarehouseFile(folder.warehouse)
        for table in ENDPOINTS:
            assert_table_matches(warehouse, truth, table)
        attached = python(folder, ATTACH)
        assert attached.returncode == 0, attached.stderr


DASHBOARD_PROBE = """
import asyncio, sys, uuid, websockets
async def main(url):
    # the page is a shell; the dashboard's cells run in marimo's kernel and reach the browser
    # over this socket, as they do for a user's browser
    seen = []
    async with websockets.connect(url, max_size=None) as socket:
        while True:
            try:
                seen.append(await asyncio.wait_for(socket.recv(), 20))
            except asyncio.TimeoutError:
                break
            if '"completed-run"' in seen[-1]:
                break
    print("\\n".join(seen))
asyncio.run(main(sys.argv[1]))
"""


def dashboard_missing() -> str:
    missing = [name for name in ("marimo", "dlthub", "ibis", "pyarrow", "websockets")
               if importlib.util.find_spec(name) is None]
    return f"the dashboard extra is not installed (missing {', '.join(missing)})" if missing else ""


@pytest.mark.skipif(bool(dashboard_missing()), reason=dashboard_missing() or "installed")
def test_dlts_dashboard_starts_and_shows_the_pipeline(tmp_path):
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    with small_sandbox() as sandbox:
        assert sync(folder, sandbox).status == "success"
    process = subprocess.Popen(
        [str(DLT), "pipeline", "aiclicks", "show"], cwd=folder.path, env=clean_env(folder),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        # marimo takes its port (2718, or the next free one) and prints it
        url = None
        printed = []
        deadline = time.monotonic() + 90
        while url is None:
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(printed)
            assert time.monotonic() < deadline, "".join(printed)
            printed.append(line)
            found = re.search(r"URL: (http://\S+)", line)
            url = found.group(1).rstrip("/") if found else None
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    page = response.read().decode()
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "".join(printed)
                time.sleep(0.1)
        assert "<html" in page and "marimo" in page

        probe = subprocess.run(
            [sys.executable, "-c", DASHBOARD_PROBE, f"{url.replace('http', 'ws', 1)}/ws?session_id={uuid.uuid4()}"],
            capture_output=True, text=True, timeout=120,
        )

        assert probe.returncode == 0, probe.stderr
        cells = html.unescape(html.unescape(probe.stdout))
        assert '"completed-run"' in cells
        # the pipeline selector opens on this pipeline
        assert re.search(r'data-initial-value=.\["aiclicks"\]', cells), cells[:2000]
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # dlt's CLI and the marimo server it started
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()


# how dlt's trace writes a step's time (humanize.precisedelta): "0.87 seconds", "1 second" (any
# time that rounds to 1.00), "1 minute and 2.50 seconds", "2 minutes"
ELAPSED = r"(?=\d)(?:\d+ (?:hours?|minutes?)(?:, | and )?)*(?:[\d.]+ seconds?)?"


def seconds_of(elapsed: str) -> float:
    unit = {"hour": 3600, "minute": 60, "second": 1}
    return sum(float(n) * unit[u] for n, u in re.findall(r"([\d.]+) (hour|minute|second)", elapsed))


def test_dlts_trace_shows_the_sync_as_one_run(tmp_path):
    """A sync is a dlt run per checkpoint and one for the run history's final row; dlt's trace
    (`dlt pipeline aiclicks trace`, the dashboard's last execution) shows them as one run: its
    steps over every package the sync loaded, and the sync's rows."""
    folder = Folder(tmp_path / "project", tmp_path / "dlt")
    with small_sandbox() as sandbox:
        done, summary = folder.run(sandbox, "--checkpoint-requests", "6")
    assert done.returncode == 0, done.stderr
    assert summary["checkpoints"]["committed"] == 2  # a checkpoint a domain

    trace = dlt_cli(folder, "pipeline", "aiclicks", "trace")

    assert trace.returncode == 0, trace.stderr
    out = trace.stdout
    run = re.search(rf"Run started at .+ and COMPLETED in ({ELAPSED}) with 4 steps\.", out)
    assert run, out
    for step in ("extract", "normalize", "load", "run"):
        assert re.search(rf"^Step {step} COMPLETED in {ELAPSED}\.$", out, re.M), out
    normalized = out.split("Step normalize")[1].split("Step load")[0]
    rows = {table: int(count) for table, count in re.findall(r"^- (\w+): (\d+) row\(s\)$", normalized, re.M)}
    assert {table: count for table, count in rows.items() if not table.startswith("_")} == summary["rows"]
    assert rows["_aiclicks_runs"] == summary["checkpoints"]["committed"] + 1  # so far, and final
    loaded = out.split("Step load")[1].split("Step run")[0]
    packages = re.findall(r"^Load package (\S+) is LOADED and contains no failed jobs$", loaded, re.M)
    # every checkpoint's load, then the final history row's
    assert packages[:-1] == summary["load_ids"] and len(packages) == len(summary["load_ids"]) + 1
    assert f"{len(packages)} load package(s) were loaded to destination duckdb" in loaded
    # the run spans the sync: from its start, at least as long as the sync's own figure
    assert seconds_of(run.group(1)) >= summary["duration_s"]
