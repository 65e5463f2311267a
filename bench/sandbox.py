"""The sandbox API in its own process, and the same account rebuilt here as ground truth.

The server runs in a child process so that neither its CPU (it computes every response) nor
its memory is counted against the sync, and the GIL is not shared with the client. Its account
is a pure function of its options, so the parent rebuilds it locally to compute floors from
the data itself, never from the client's code.

    python -m bench.sandbox '{"domains": 20, "frozen": true, ...}'   # prints the base URL

The parent talks to it on its stdin: a line `arrivals` is answered with the number of API
requests that have arrived so far (counted before the server's latency and work, so that
arrivals ahead of `stats()["requests"]` are requests in flight); closing stdin ends it.
"""

import json
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timezone
from typing import Any, Dict, Optional

import requests

from aiclicks_pipeline.sandbox import SANDBOX_API_KEY, Account, Sandbox, SandboxClock
from aiclicks_pipeline.sandbox.server import ADMIN_PREFIX

# every run serves the same data: a fixed, frozen clock
START = datetime(2026, 6, 17, 10, 0, 0, tzinfo=timezone.utc)


class SandboxProcess:
    """`with SandboxProcess(domains=20, ...) as sandbox:` a sandbox on a free local port.

    Options are `Sandbox`'s (seed, domains, prompts, fanout_rate, rate_limit, rate_window,
    cache_ttl, faults, ...), and `warm=True` to serve every page once before the timed run
    (`warm_cache`); the clock is frozen at START unless given.
    """

    def __init__(self, **options: Any) -> None:
        options.setdefault("start", START.isoformat())
        options.setdefault("frozen", True)
        self.options = options
        self.api_key = SANDBOX_API_KEY
        self.base_url = ""
        self._process: Optional[subprocess.Popen] = None

    def __enter__(self) -> "SandboxProcess":
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.sandbox", json.dumps(self.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.__exit__()
            raise RuntimeError("the sandbox process did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._process is not None:
            self._process.stdin.close()  # the child serves until its stdin closes
            self._process.wait(timeout=30)
            self._process = None

    @property
    def account(self) -> Account:
        """The served account, rebuilt here from the same options."""
        option = self.options.get
        clock = SandboxClock(option("start"), option("frozen"))
        return Account(
            option("seed", 1),
            option("domains", 3),
            tuple(option("prompts", (20, 200))),
            tuple(option("competitors", (2, 6))),
            option("fanout_rate", 0.2),
            anchor=clock.now(),
        )

    @property
    def now(self) -> datetime:
        """The server's (frozen) clock."""
        return SandboxClock(self.options.get("start"), self.options.get("frozen")).now()

    def arrivals(self) -> int:
        """API requests arrived so far (cheap: no copy of the request log, unlike stats())."""
        self._process.stdin.write("arrivals\n")
        self._process.stdin.flush()
        return int(self._process.stdout.readline())

    def set_faults(self, **changes: Any) -> None:
        requests.post(self.base_url + ADMIN_PREFIX + "faults", json=changes, timeout=60).raise_for_status()

    def stats(self) -> Dict[str, Any]:
        """What the server counted: requests, by path, by status, rate-limited (real/injected)."""
        return requests.get(self.base_url + ADMIN_PREFIX + "stats", timeout=60).json()

    def reset_stats(self) -> None:
        requests.post(self.base_url + ADMIN_PREFIX + "stats/reset", timeout=60)


def warm_cache(sandbox: Sandbox) -> None:
    """Every page of a first sync served once, with the rate limit and the latency off, then
    the stats reset: the timed sync's responses are then cache hits (the same query strings,
    byte for byte: floor.py asks them as a sync does), so the sandbox computing its account
    does not take the CPU the client is measured on (the real API computes on its own
    machines). Without it a cold sandbox took 4.6 s of a 2-core machine for the 201 responses
    of the time figures' account, nearly the whole 5.0 s floor of 4 keys."""
    from .floor import fetch_all  # here: a sandbox not warmed has no use for duckdb

    app = sandbox.app
    limit, latency_ms = app.limiter.limit, app.faults.latency_ms
    app.limiter.limit, app.faults.latency_ms = 0, 0
    try:
        with tempfile.TemporaryDirectory(prefix="aiclicks-bench-warm-") as folder:
            fetch_all(sandbox.base_url, sandbox.api_key, folder)
    finally:
        app.limiter.limit, app.faults.latency_ms = limit, latency_ms
        app.stats.reset()


def main(options_json: str) -> None:
    arrived = [0]
    lock = threading.Lock()

    def count(path: str, query: Dict[str, str]) -> None:
        with lock:
            arrived[0] += 1

    options = json.loads(options_json)
    warm = options.pop("warm", False)
    with Sandbox(port=0, **options) as sandbox:
        if warm:
            warm_cache(sandbox)
        sandbox.on_request(count)
        print(sandbox.base_url, flush=True)
        for line in sys.stdin:  # until the parent closes it (or dies)
            if line.strip() == "arrivals":
                print(arrived[0], flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
