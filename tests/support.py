"""What the tests share, in one module (a test file imports from here, never from another test
file; fixtures are in conftest.py): the sandbox's start, warehouses (a DuckDB file, a PostgreSQL
server) and their comparison with the sandbox's ground truth, the CLI in a subprocess or in
this process, project folders with their own dlt data dir, dlt's own tools, and a probe of the
pipeline a project's configuration resolves to."""

import contextlib
import http.client
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple
from urllib.parse import urlsplit

import dlt
import duckdb
import pytest

from aiclicks_pipeline.checkpoints import SyncResult, run_sync
from aiclicks_pipeline.pipeline import make_pipeline
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import CHILD_TABLES, DEFAULT_DATASET, DEFAULT_DUCKDB_FILE, ENDPOINTS
from aiclicks_pipeline.windows import parse_timestamp

START = datetime(2026, 6, 17, 10, 0, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[1]
POSTGRES_ENV = "AICLICKS_TEST_POSTGRES"
NO_POSTGRES = (
    f"no PostgreSQL server given: set {POSTGRES_ENV}=postgresql://user:password@host:5432/db "
    "to load into one (.ci/run starts one and sets it)"
)


# --- warehouses -----------------------------------------------------------------------------------


class Warehouse:
    """A dlt pipeline into a DuckDB file, and the queries tests ask of it."""

    kind = "duckdb"
    dataset = DEFAULT_DATASET

    def __init__(
        self, folder: Path, name: str = "aiclicks_test", duckdb_name: str = "warehouse.duckdb"
    ) -> None:
        self.folder = folder
        self.duckdb_path = folder / duckdb_name
        self.pipelines_dir = folder / "pipelines"
        self.name = name
        self.pipeline = self.new_pipeline()

    def new_pipeline(self) -> Any:
        return make_pipeline(
            pipeline_name=self.name,
            pipelines_dir=str(self.pipelines_dir),
            duckdb_file=str(self.duckdb_path),
        )

    def sync(self, sandbox: Any, **options: Any) -> SyncResult:
        options.setdefault("base_url", sandbox.base_url)
        options.setdefault("api_key", sandbox.api_key)
        options.setdefault("backoff_factor", 0.01)
        return run_sync(self.pipeline, **options)

    def query(self, sql: str) -> List[Tuple[Any, ...]]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            return connection.execute(sql).fetchall()

    def tables(self) -> set:
        rows = self.query(
            f"select table_name from information_schema.tables where table_schema = '{DEFAULT_DATASET}'"
        )
        return {name for (name,) in rows}

    def rows(self, table: str) -> List[Dict[str, Any]]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            cursor = connection.execute(f"select * from {DEFAULT_DATASET}.{table}")
            columns = [c[0] for c in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def keyed(self, table: str) -> Dict[Tuple[str, ...], Dict[str, Any]]:
        key = ENDPOINTS[table]["primary_key"]
        return {tuple(str(row[c]) for c in key): row for row in self.rows(table)}

    def citation_models(self) -> set:
        rows = self.query(
            f"""select c.domain_id, c.days, c.snapshot_date, c.url, m.value
            from {DEFAULT_DATASET}.citations c
            join {DEFAULT_DATASET}.citations__models m on m._dlt_parent_id = c._dlt_id"""
        )
        return {tuple(str(v) for v in row) for row in rows}

    def drop(self) -> None:
        pass


class WarehouseFile(Warehouse):
    """The queries of the tests' Warehouse on a DuckDB file, without a pipeline of its own."""

    def __init__(self, path: Path) -> None:
        self.duckdb_path = path


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        pytest.skip(NO_POSTGRES)
    return url


class PostgresWarehouse(Warehouse):
    """The conftest warehouse's queries, answered by a PostgreSQL server."""

    kind = "postgres"

    def __init__(self, folder: Path, url: str, name: str = "aiclicks_test") -> None:
        self.url = url
        # a schema per test: tests never see each other's tables or dlt state
        self.dataset = f"aiclicks_t{uuid.uuid4().hex[:10]}"
        super().__init__(folder, name=name)

    @property
    def models_schema(self) -> str:
        """Where `transform --target postgres` writes the dbt models of this dataset."""
        return f"{self.dataset}_models"

    def new_pipeline(self) -> Any:
        return make_pipeline(
            destination=dlt.destinations.postgres(credentials=self.url),
            dataset_name=self.dataset,
            pipeline_name=self.name,
            pipelines_dir=str(self.pipelines_dir),
        )

    def _cursor_rows(self, sql: str) -> Tuple[List[str], List[Tuple[Any, ...]]]:
        import psycopg2

        sql = sql.replace(f"{DEFAULT_DATASET}.", f"{self.dataset}.")
        with psycopg2.connect(self.url) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return [c[0] for c in cursor.description], cursor.fetchall()

    def query(self, sql: str) -> List[Tuple[Any, ...]]:
        return self._cursor_rows(sql)[1]

    def tables(self) -> set:
        rows = self.query(
            "select table_name from information_schema.tables "
            f"where table_schema = '{self.dataset}'"
        )
        return {name for (name,) in rows}

    def rows(self, table: str) -> List[Dict[str, Any]]:
        columns, rows = self._cursor_rows(f"select * from {self.dataset}.{table}")
        return [dict(zip(columns, row)) for row in rows]

    def drop(self) -> None:
        import psycopg2

        with psycopg2.connect(self.url) as connection, connection.cursor() as cursor:
            for schema in (self.dataset, f"{self.dataset}_staging", self.models_schema):
                cursor.execute(f"drop schema if exists {schema} cascade")


def open_warehouse(kind: str, folder: Path, name: str = "aiclicks_test") -> Warehouse:
    if kind == "postgres":
        return PostgresWarehouse(folder, postgres_url(), name=name)
    return Warehouse(folder, name=name)


# --- the warehouse against the sandbox's ground truth ---------------------------------------------


def normalise(value: Any) -> Any:
    if isinstance(value, datetime):
        return parse_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and "T" in value:
        try:
            return parse_timestamp(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, int) and not isinstance(value, bool):
        return round(float(value), 9)
    return value


def assert_table_matches(warehouse: Any, truth: WarehouseTruth, table: str) -> int:
    """Same keys, and every field the API sent has the same value. Returns the row count."""
    loaded = warehouse.keyed(table)
    expected = truth.rows(table)
    missing = set(expected) - set(loaded)
    extra = set(loaded) - set(expected)
    assert not missing and not extra, (
        f"{table}: {len(missing)} missing (e.g. {sorted(missing)[:2]}), "
        f"{len(extra)} unexpected (e.g. {sorted(extra)[:2]})"
    )
    for key, expected_row in expected.items():
        row = loaded[key]
        for column, value in expected_row.items():
            if column == "models":
                continue
            assert normalise(row[column]) == normalise(value), (
                f"{table} {key} {column}: warehouse {row[column]!r} != truth {value!r}"
            )
    return len(expected)


def assert_keys_unique(warehouse: Warehouse) -> None:
    """No primary key twice in any loaded table."""
    present = warehouse.tables()
    for table, spec in ENDPOINTS.items():
        if table not in present:
            continue
        key = ", ".join(spec["primary_key"])
        ((duplicates,),) = warehouse.query(
            f"select count(*) from (select {key} from {DEFAULT_DATASET}.{table} "
            f"group by {key} having count(*) > 1) as d"
        )
        assert duplicates == 0, f"{warehouse.kind}: {table} has duplicate keys"


def assert_child_rows_belong(warehouse: Warehouse) -> int:
    """Every child row hangs off a parent row; no (parent, position) twice. Returns the count."""
    for child, spec in CHILD_TABLES.items():
        parent = spec["parent"]
        ((orphans,),) = warehouse.query(
            f"select count(*) from {DEFAULT_DATASET}.{child} c "
            f"left join {DEFAULT_DATASET}.{parent} p on p._dlt_id = c._dlt_parent_id "
            "where p._dlt_id is null"
        )
        assert orphans == 0, f"{warehouse.kind}: {orphans} {child} rows without a parent"
        ((twice,),) = warehouse.query(
            f"select count(*) from (select _dlt_parent_id, _dlt_list_idx from {DEFAULT_DATASET}.{child} "
            "group by _dlt_parent_id, _dlt_list_idx having count(*) > 1) as d"
        )
        assert twice == 0, f"{warehouse.kind}: {child} holds a list position twice"
    ((children,),) = warehouse.query(f"select count(*) from {DEFAULT_DATASET}.citations__models")
    return children


def assert_equals_truth(warehouse: Warehouse, truth: WarehouseTruth) -> Dict[str, int]:
    """Every table row for row, the citations' model slugs, no key twice. Returns the row
    counts per table."""
    counts = {table: assert_table_matches(warehouse, truth, table) for table in ENDPOINTS}
    assert warehouse.citation_models() == set(truth.keys("citations__models"))
    assert_keys_unique(warehouse)
    return counts


def assert_equals_clean_load(warehouse, sandbox, **truth_options):
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90, **truth_options)
    for table in ENDPOINTS:
        assert_table_matches(warehouse, truth, table)
    assert warehouse.citation_models() == set(truth.keys("citations__models"))


# --- the CLI --------------------------------------------------------------------------------------


def cli(*args, env=None, cwd=None, timeout=300):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SOURCES__AICLICKS", "AICLICKS_"))
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "aiclicks_pipeline", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd or REPO,
        timeout=timeout,
    )


def cli_here(*args, env=None):
    """The CLI's `main()` in this process, with the environment `cli` gives a subprocess and
    the log lines its `logging.basicConfig` would print to stderr: for tests about what a
    command prints and returns, not about the process (a new interpreter costs seconds of
    imports). A run's process behaviour (signals, locks between processes, dlt's own logging
    set up from the environment) is tested with `cli`."""
    from aiclicks_pipeline.cli import main

    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))]:
        del os.environ[key]
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    # what main()'s basicConfig sets up in a fresh process (here pytest's handlers make it a no-op)
    logs = logging.StreamHandler(err)
    logs.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO if {"-v", "--verbose"} & set(args) else logging.WARNING)
    root.addHandler(logs)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse: --version, --help, a usage error
                code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 2
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def run_args(sandbox, folder):
    return [
        "run", "--quiet",
        "--base-url", sandbox.base_url,
        "--duckdb-file", str(folder / "cli.duckdb"),
        "--pipelines-dir", str(folder / "pipelines"),
    ]


# --- another process holding a DuckDB file -------------------------------------------------------


@contextlib.contextmanager
def duckdb_held_by_another_process(path: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the DuckDB file open for writing (a sync, a notebook) until the
    block ends; yields that process (its pid is what messages name)."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Polls `condition` until it holds (never a sleep standing for a wait); fails naming `what`
    after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# --- a plain forwarding HTTP proxy -----------------------------------------------------------------
# A plain forwarding HTTP proxy, as a corporate network puts between a client and the API:
# it takes `GET http://host:port/path` from a client whose `HTTP_PROXY` names it, asks the origin,
# and answers with the origin's status, headers and body, adding its own `Date` and `Server`
# first as any HTTP server does (`BaseHTTPRequestHandler.send_response`). So the client sees two
# `Date` headers, the proxy's (its clock) and the origin's.

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}


class ForwardingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")

    def _forward(self, method: str) -> None:
        target = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            path = target.path + (f"?{target.query}" if target.query else "")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream.request(method, path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status)  # the proxy's own Date and Server go first
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            upstream.close()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def forwarding_proxy() -> Iterator[str]:
    """A proxy on a free port of 127.0.0.1; yields its URL (for `HTTP_PROXY`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ForwardingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# --- responses ------------------------------------------------------------------------------------


def http_date(epoch: float) -> str:
    """An HTTP `Date` header: whole seconds, rounded down, as servers send it."""
    return formatdate(epoch, usegmt=True)


# --- project folders, as users share dlt's working folder -----------------------------------------

PIPELINE = "aiclicks"  # the CLI's default pipeline name


def small_sandbox(seed: int = 11, **options):
    return run_sandbox(seed=seed, domains=2, prompts=(20, 40), start=START, frozen=True,
                       rate_limit=None, **options)


class Folder:
    """A project folder: the CLI runs in it with dlt's data dir shared with other folders."""

    def __init__(self, path: Path, data_dir: Path) -> None:
        self.path = path
        self.data_dir = data_dir
        path.mkdir(parents=True, exist_ok=True)

    @property
    def warehouse(self) -> Path:
        return self.path / DEFAULT_DUCKDB_FILE

    @property
    def working_folder(self) -> Path:
        return self.data_dir / "pipelines" / PIPELINE

    def env(self, sandbox) -> Dict[str, str]:
        return {"SOURCES__AICLICKS__API_KEY": sandbox.api_key, "DLT_DATA_DIR": str(self.data_dir)}

    def cli(self, sandbox, *args: str) -> subprocess.CompletedProcess:
        return cli(*args, "--base-url", sandbox.base_url, env=self.env(sandbox), cwd=self.path)

    def run(self, sandbox, *args: str) -> Tuple[subprocess.CompletedProcess, dict]:
        done = self.cli(sandbox, "run", "--quiet", "--json", *args)
        return done, (json.loads(done.stdout) if done.stdout.strip() else {})

    def domain_ids(self) -> set:
        with duckdb.connect(str(self.warehouse), read_only=True) as connection:
            return {d for (d,) in connection.execute("select id from aiclicks.domains").fetchall()}


def sync(folder: Folder, sandbox, **options) -> SyncResult:
    """A sync in this process into the folder's warehouse, through the working folder the CLI
    would use there (for tests about the sync, not the process)."""
    pipeline = make_pipeline(pipelines_dir=str(folder.working_folder.parent), duckdb_file=str(folder.warehouse))
    return run_sync(pipeline, base_url=sandbox.base_url, api_key=sandbox.api_key, backoff_factor=0.01, **options)


def days_asked(summary: dict) -> set:
    return {day for days in summary["days_asked"].values() for day in days if day != 30}


# --- dlt's own tools, in a folder -----------------------------------------------------------------

DLT = Path(sys.executable).with_name("dlt")
ATTACH = """
import json, dlt
dataset = dlt.attach("aiclicks").dataset()
print(json.dumps({
    "visibility_daily": len(dataset.visibility_daily.df()),
    "counts": {row[0]: row[1] for row in dataset.row_counts().fetchall()},
}))
"""


def clean_env(folder: Folder, sandbox=None) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__AICLICKS", "AICLICKS_"))}
    environment.update({"DLT_DATA_DIR": str(folder.data_dir), "RUNTIME__DLTHUB_TELEMETRY": "false"})
    if sandbox is not None:
        environment.update(folder.env(sandbox), SOURCES__AICLICKS__BASE_URL=sandbox.base_url)
    # the venv's scripts first: `dlt pipeline ... show` starts `marimo` from the PATH
    environment["PATH"] = f"{DLT.parent}{os.pathsep}{environment.get('PATH', '')}"
    return environment


def python(folder: Folder, code: str, sandbox=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=folder.path, env=clean_env(folder, sandbox),
                          capture_output=True, text=True, timeout=300)


# --- the pipeline a project's configuration resolves to -------------------------------------------


def run_config_probe(project: Path, env: Dict[str, str]) -> Dict[str, str]:
    """Resolves the pipeline `make_pipeline()` builds in `project` (its .dlt/ and `env`), in a
    fresh interpreter as the CLI would: which destination, staging, format and credentials."""
    probe = """
import json
from aiclicks_pipeline.destinations import configured_loader_file_format, destination_kind
from aiclicks_pipeline.pipeline import make_pipeline
pipeline = make_pipeline(pipelines_dir="pipelines")
client = pipeline.destination_client()
config = client.config
staging = getattr(config, "staging_config", None)
credentials = config.credentials
print(json.dumps({
    "destination": destination_kind(pipeline.destination),
    "staging": destination_kind(pipeline.staging),
    "loader_file_format": configured_loader_file_format(),
    "dataset": client.sql_client.dataset_name,
    "credentials": {k: str(v) for k, v in dict(credentials).items() if v is not None},
    "bucket_url": staging.bucket_url if staging else None,
}))
"""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DESTINATION", "STAGING"))}
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=project,
        env={**environment, "RUNTIME__DLTHUB_TELEMETRY": "false", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def service_account_key() -> str:
    """A real (throw-away) RSA key in PEM, as a TOML string body: gcsfs parses the key when the
    staging client is built."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem.replace("\n", "\\n")
