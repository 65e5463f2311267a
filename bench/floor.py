"""The throughput floor: the same JSON pages a full sync reads, fetched and put into DuckDB by
the simplest direct code (requests, one file of bodies per endpoint, DuckDB's `read_json`).

No dlt: no schema, no state, no merge, no child tables, no retries, one request at a time.
What a sync does beyond this is the price of those; the benchmark reports it as a ratio.

Beside it, `dlt_alone_job`: the same rows, fetched and read into Arrow as the floor does
(untimed), then one bare dlt run of them (extract, normalize, a merge load into DuckDB, one
table per endpoint on the sync's primary keys): what dlt itself takes for these rows, with
none of this package's requests, checkpoints, state or run history. A sync cannot be faster
than that; the benchmark reports it beside the throughput figures.
"""

import os
import time
from typing import Any, Dict, Iterator

import duckdb
import requests

from aiclicks_pipeline.settings import (
    API_PREFIX,
    DEFAULT_INITIAL_DAYS,
    DEFAULT_SNAPSHOT_DAYS,
    DOMAIN_RESOURCES,
    ENDPOINTS,
)

WINDOW_DAYS = {"incremental": DEFAULT_INITIAL_DAYS, "snapshot": DEFAULT_SNAPSHOT_DAYS}

# envelope fields stamped on every row, as the sync does
STAMP = {
    "items": "domain_id, generated_at",
    "snapshot": "domain_id, generated_at, days, generated_at::date AS snapshot_date",
}


def floor_job(base_url: str, api_key: str, workdir: str) -> Dict[str, Any]:
    started = time.monotonic()
    requests_made = fetch_all(base_url, api_key, workdir)
    fetched = time.monotonic()
    rows = load_all(workdir)
    loaded = time.monotonic()
    return {
        "rows": rows,
        "total_rows": sum(rows.values()),
        "requests": requests_made,
        "elapsed_s": loaded - started,
        "steps_s": {"fetch": fetched - started, "load": loaded - fetched},
    }


def dlt_alone_job(base_url: str, api_key: str, workdir: str) -> Dict[str, Any]:
    """The floor's rows fetched and read into Arrow (untimed), then one bare dlt run of them,
    timed: its rows per table and its steps."""
    fetch_all(base_url, api_key, workdir)
    tables = read_tables(workdir)
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name="aiclicks_bench_dlt_alone",
        pipelines_dir=os.path.join(workdir, "pipelines"),
        destination=dlt.destinations.duckdb(os.path.join(workdir, "dlt_alone.duckdb")),
        dataset_name="aiclicks",
    )
    resources = [
        dlt.resource(table, name=name, write_disposition="merge", primary_key=list(ENDPOINTS[name]["primary_key"]))
        for name, table in tables.items()
    ]
    started = time.monotonic()
    pipeline.run(resources, loader_file_format="parquet")
    loaded = time.monotonic()
    counts = pipeline.last_trace.last_normalize_info.row_counts
    rows = {name: counts.get(name, 0) for name in tables}
    return {
        "rows": rows,
        "total_rows": sum(rows.values()),
        "elapsed_s": loaded - started,
        "steps_s": {step.step: step.finished_at.timestamp() - step.started_at.timestamp()
                    for step in pipeline.last_trace.steps if step.step in ("extract", "normalize", "load")},
    }


def fetch_all(base_url: str, api_key: str, workdir: str) -> int:
    """Every page of every endpoint, bodies appended as lines to `<endpoint>.jsonl`."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {api_key}"
    root = f"{base_url.rstrip('/')}{API_PREFIX}/"
    files = {name: open(_body_file(workdir, name), "wb") for name in ENDPOINTS}
    count = 0
    try:
        domains = session.get(root + ENDPOINTS["domains"]["path"], timeout=60)
        domains.raise_for_status()
        files["domains"].write(domains.content + b"\n")
        count += 1
        for domain in domains.json()["data"]["items"]:
            for name in DOMAIN_RESOURCES:
                for body in _pages(session, root, name, domain["id"]):
                    files[name].write(body + b"\n")
                    count += 1
    finally:
        for file in files.values():
            file.close()
    return count


def _pages(session: requests.Session, root: str, name: str, domain_id: str) -> Iterator[bytes]:
    spec = ENDPOINTS[name]
    params: Dict[str, Any] = {**spec.get("params", {}), "domain_id": domain_id}
    if spec.get("window"):
        params["days"] = WINDOW_DAYS[spec["window"]]
    page, total_pages = 1, 1
    while page <= total_pages:
        if spec.get("page_size"):
            params.update(page=page, size=spec["page_size"][1])
        response = session.get(root + spec["path"], params=params, timeout=60)
        response.raise_for_status()
        yield response.content
        total_pages = response.json()["data"].get("total_pages") or 1
        page += 1


def read_tables(workdir: str) -> Dict[str, Any]:
    """Each endpoint's rows from its file of bodies as an Arrow table, read as `load_all` reads them."""
    with duckdb.connect() as connection:
        return {
            name: connection.execute(_select(name, _body_file(workdir, name))).to_arrow_table()
            for name in ENDPOINTS
        }


def load_all(workdir: str) -> Dict[str, int]:
    """One `CREATE TABLE ... AS SELECT` per endpoint from its file of bodies."""
    rows: Dict[str, int] = {}
    with duckdb.connect(os.path.join(workdir, "floor.duckdb")) as connection:
        for name in ENDPOINTS:
            connection.execute(f"CREATE TABLE {name} AS {_select(name, _body_file(workdir, name))}")
            rows[name] = connection.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    return rows


def _select(name: str, path: str) -> str:
    spec = ENDPOINTS[name]
    source = f"read_json('{path}', format = 'newline_delimited')"
    if not spec["domain_scoped"]:
        return f"SELECT generated_at, unnest(data.items, recursive := true) FROM {source}"
    stamp = STAMP["snapshot" if spec.get("window") == "snapshot" else "items"]
    if spec["shape"] == "fanout":
        return (
            f"SELECT {stamp}, prompt.id AS prompt_id, prompt.text AS prompt_text, "
            "unnest(prompt.fanout_queries, recursive := true) "
            f"FROM (SELECT {stamp}, unnest(data.items) AS prompt FROM {source})"
        )
    return f"SELECT {stamp}, unnest(data.items, recursive := true) FROM {source}"


def _body_file(workdir: str, name: str) -> str:
    return os.path.join(workdir, f"{name}.jsonl")
