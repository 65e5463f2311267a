"""Servers that stand in for production warehouses in the tests, started by the tests on
127.0.0.1 (ephemeral ports) and stopped when the test session ends:

- **BigQuery**: `bqemulator` (PyPI), taking real loads from dlt's unmodified `bigquery`
  destination. `AICLICKS_TEST_BQEMULATOR` names its executable, in a virtualenv of its own
  (its pins clash with ours). google-cloud-bigquery reads the endpoint from
  `BIGQUERY_EMULATOR_HOST` itself; the credentials are a service account whose key is made at
  test time and whose `token_uri` is a token endpoint in the test process.
- **S3**: `moto_server` (moto[server], PyPI), `AICLICKS_TEST_MOTO_SERVER` names it; each test
  gets a bucket of its own (one PUT).

`.ci/doubles install DIR` makes both virtualenvs and prints the two variables to export; CI
(`.ci/run`) does that. Without them the tests that need a server skip, saying how to get it.
The fixtures that start them (`bigquery_emulator`, `s3_double`) are in conftest.py.

What the tests need of a double is its `env()` (the variables a CLI run in a subprocess
takes, the dlt way) and a dlt destination factory for a pipeline in the test's process.
"""

import json
import os
import re
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

BQEMULATOR_ENV = "AICLICKS_TEST_BQEMULATOR"
MOTO_SERVER_ENV = "AICLICKS_TEST_MOTO_SERVER"
HOW_TO_GET_THEM = (
    "`.ci/doubles install DIR` installs it and prints the variable to export (.ci/run does that)"
)
NO_BQEMULATOR = (
    f"no BigQuery emulator given: set {BQEMULATOR_ENV} to a bqemulator executable; "
    + HOW_TO_GET_THEM
)
NO_MOTO_SERVER = (
    f"no S3 double given: set {MOTO_SERVER_ENV} to a moto_server executable; " + HOW_TO_GET_THEM
)
# the emulator's DuckDB loads these extensions when it starts and downloads any it does not
# find in its HOME; each ships as a PyPI package of the emulator's virtualenv
BQEMULATOR_DUCKDB_EXTENSIONS = ("spatial", "avro")
READY_TIMEOUT_S = 120.0
PROJECT = "test-project"


def executable_from_env(variable: str, why_skipped: str) -> str:
    """The executable `variable` names, or the test skips saying how to get one."""
    path = os.environ.get(variable, "").strip()
    if not path:
        pytest.skip(why_skipped)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{variable}={path} is not an executable")
    return path


@contextmanager
def server_process(args: List[str], log: Path, port_pattern: str, env: Dict[str, str]) -> Iterator[int]:
    """Starts `args`, waits until its log prints the port it listens on (`port_pattern`'s
    group), yields that port; stops the process afterwards."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            found = re.search(port_pattern, log.read_text(errors="replace"))
            if found:
                yield int(found.group(1))
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{args[0]} did not start (exit {process.poll()}):\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.05)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _die_with_parent() -> None:
    """In the server's process before it runs: Linux sends it SIGTERM when the test process
    that started it ends, however that ends (a worker killed at CI's time limit included)."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_until(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready")
        time.sleep(0.05)


# --- BigQuery -------------------------------------------------------------------------------


class _TokenHandler(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint, as far as google-auth asks it: any assertion gets a token
    (the emulator checks none)."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"access_token": "emulator-token", "token_type": "Bearer", "expires_in": 3600})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def token_endpoint() -> Iterator[str]:
    """A token endpoint on 127.0.0.1; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token"
    finally:
        server.shutdown()
        server.server_close()


def new_private_key_pem() -> str:
    """A new, throw-away RSA key in PEM (made at test time, never written to the repo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account(project: str, token_uri: str) -> Dict[str, str]:
    """A service-account key file's fields, with a new RSA key."""
    pem = new_private_key_pem()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"aiclicks-tests@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def bqemulator_home(executable: str, home: Path) -> Path:
    """A HOME for the emulator whose DuckDB finds its extensions installed (copied from the
    `duckdb-extension-*` packages of its virtualenv), so it never downloads them."""
    python = Path(executable).with_name("python")
    found = subprocess.run(
        [str(python), "-c", (
            "import duckdb, importlib, pathlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    module = importlib.import_module(f'duckdb_extension_{name}')\n"
            "    root = pathlib.Path(module.__file__).parent / 'extensions' / f'v{duckdb.__version__}'\n"
            "    print(duckdb.__version__, root / f'{name}.duckdb_extension')\n"
        ), *BQEMULATOR_DUCKDB_EXTENSIONS],
        capture_output=True, text=True, check=True,
    )
    for line in found.stdout.splitlines():
        version, path = line.split(" ", 1)
        target = home / ".duckdb" / "extensions" / f"v{version}" / "linux_amd64"
        target.mkdir(parents=True, exist_ok=True)
        # linked, not copied: the spatial extension alone is ~90 MB, and each test has an emulator
        (target / Path(path).name).symlink_to(path)
    return home


@dataclass
class BigQueryEmulator:
    """A running bqemulator and the credentials that reach it."""

    endpoint: str
    project: str
    credentials: Dict[str, str]

    def env(self) -> Dict[str, str]:
        """What a CLI run takes to load into the emulator (`--destination bigquery`)."""
        return {
            # google-cloud-bigquery's own variable: every API and upload URL goes there
            "BIGQUERY_EMULATOR_HOST": self.endpoint,
            "DESTINATION__BIGQUERY__CREDENTIALS": json.dumps(self.credentials),
            # the emulator cannot read gzip'd jsonl; real BigQuery can
            "DATA_WRITER__DISABLE_COMPRESSION": "true",
        }

    def destination(self) -> Any:
        import dlt

        return dlt.destinations.bigquery(credentials=dict(self.credentials))

    def client(self) -> Any:
        from google.cloud import bigquery
        from google.oauth2 import service_account as google_service_account

        credentials = google_service_account.Credentials.from_service_account_info(self.credentials)
        return bigquery.Client(project=self.project, credentials=credentials)

    @contextmanager
    def in_this_process(self) -> Iterator[None]:
        """This process set up for the emulator while the block runs: google-cloud-bigquery
        sends every client's calls there (dlt's, the tests'), and dlt writes its load files
        uncompressed (every load of the process: none of the tests depends on compression)."""
        process_env = {k: v for k, v in self.env().items() if not k.startswith("DESTINATION__")}
        saved = {key: os.environ.get(key) for key in process_env}
        os.environ.update(process_env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value



@contextmanager
def bigquery_emulator_running(executable: str, folder: Path) -> Iterator[BigQueryEmulator]:
    home = bqemulator_home(executable, folder / "home")
    # a HOME and a TMPDIR of its own: its extensions, and its upload files apart from others
    (folder / "tmp").mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(folder / "tmp")}
    args = [
        executable, "start", "--rest-host", "127.0.0.1", "--rest-port", "0",
        "--grpc-host", "127.0.0.1", "--grpc-port", "0", "--project", PROJECT,
        "--log-level", "info",
    ]
    # the REST port is logged once both servers listen (gRPC is announced after it)
    port_pattern = r'"port": (\d+), "event": "rest.listen"'
    with token_endpoint() as token_uri, server_process(args, folder / "bqemulator.log", port_pattern, env) as port:
        yield BigQueryEmulator(
            endpoint=f"http://127.0.0.1:{port}",
            project=PROJECT,
            credentials=service_account(PROJECT, token_uri),
        )


# --- S3 -------------------------------------------------------------------------------------


@dataclass
class S3Double:
    """A running moto server; each `new_bucket()` is made with one PUT."""

    endpoint: str
    # moto takes any keys; these are the ones its docs use
    credentials: Dict[str, str] = field(default_factory=lambda: {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    })

    def new_bucket(self) -> str:
        import requests

        name = f"aiclicks-{uuid.uuid4().hex[:12]}"
        requests.put(f"{self.endpoint}/{name}", timeout=30).raise_for_status()
        return f"s3://{name}"

    def filesystem_credentials(self) -> Dict[str, str]:
        return {**self.credentials, "endpoint_url": self.endpoint}

    def env(self, bucket_url: str) -> Dict[str, str]:
        """What a CLI run takes to write into `bucket_url` (`--destination filesystem`)."""
        prefix = "DESTINATION__FILESYSTEM__"
        env = {f"{prefix}BUCKET_URL": bucket_url}
        for key, value in self.filesystem_credentials().items():
            env[f"{prefix}CREDENTIALS__{key.upper()}"] = value
        return env


@contextmanager
def s3_double_running(executable: str, folder: Path) -> Iterator[S3Double]:
    import requests

    args = [executable, "-H", "127.0.0.1", "-p", "0"]
    with server_process(args, folder / "moto.log", r"Running on http://127\.0\.0\.1:(\d+)", dict(os.environ)) as port:
        endpoint = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return requests.get(endpoint, timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answers, "moto_server")
        yield S3Double(endpoint=endpoint)


__all__ = [
    "BQEMULATOR_ENV", "MOTO_SERVER_ENV", "NO_BQEMULATOR", "NO_MOTO_SERVER", "BigQueryEmulator",
    "S3Double", "bigquery_emulator_running", "executable_from_env", "new_private_key_pem",
    "s3_double_running",
]
