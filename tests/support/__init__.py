"""What the tests share, in one package (a test file imports from here, never from another test
file; fixtures are in conftest.py): the sandbox's start, the CLI in a subprocess or in this
process, project folders with their own dlt data dir, dlt's own tools, and a probe of the
pipeline a project's configuration resolves to; by topic, re-exported here:
- warehouses.py: a warehouse of each destination kind behind one interface, and their
  comparison with the sandbox's ground truth;
- doubles.py: the servers that stand in for BigQuery and S3 (an emulator, an S3 double)."""

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
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Tuple
from urllib.parse import urlsplit

import duckdb

from aiclicks_pipeline.checkpoints import SyncResult, run_sync
from aiclicks_pipeline.pipeline import make_pipeline
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import DEFAULT_DUCKDB_FILE

from .doubles import *  # noqa: F401, F403 - re-exported
from .doubles import new_private_key_pem
from .warehouses import *  # noqa: F401, F403 - re-exported

START = datetime(2026, 6, 17, 10, 0, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[2]


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


def once() -> Callable[[], bool]:
    """A test's "the first time": True for the first call only, whichever of the sandbox's
    request threads makes it (a sync fetches several domains of an endpoint at a time)."""
    first = threading.Lock()
    return lambda: first.acquire(blocking=False)


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
    return new_private_key_pem().replace("\n", "\\n")
