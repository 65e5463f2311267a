"""Starting and stopping the sandbox: from Python (`run_sandbox`) and from the command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ..settings import MAX_DAYS
from .account import Account
from .cache import ResponseCache
from .clock import SandboxClock
from .faults import Faults
from .keys import POOL_API_KEYS, SANDBOX_API_KEY, WINDOW_PHASES
from .ratelimit import FixedWindowLimiter
from .server import ADMIN_PREFIX, SandboxApp, SandboxHTTPServer
from .stats import Stats

READY_TIMEOUT = 10.0


class Sandbox:
    """A sandbox server on 127.0.0.1 with its account, clock, faults and stats.

    Use ``run_sandbox(...)`` (a context manager) rather than calling ``start``/``close``.
    The account's history is anchored at the clock's start, so a fixed ``start`` gives the same
    data on every run and machine.
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        domains: int = 3,
        prompts: Tuple[int, int] = (20, 200),
        competitors: Tuple[int, int] = (2, 6),
        fanout_rate: float = 0.2,
        start: Optional[Union[datetime, str]] = None,
        frozen: bool = False,
        rate_limit: Optional[int] = 60,
        rate_window: float = 60.0,
        cache_ttl: float = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Optional[Union[Faults, Mapping[str, Any]]] = None,
        fault_seed: int = 0,
        max_days: int = MAX_DAYS,
    ):
        self.clock = SandboxClock(start, frozen)
        self.account = Account(seed, domains, prompts, competitors, fanout_rate, anchor=self.clock.now())
        if not isinstance(faults, Faults):
            faults = Faults().update(faults or {})
        self.app = SandboxApp(
            self.account,
            self.clock,
            faults,
            FixedWindowLimiter(rate_limit, rate_window, WINDOW_PHASES),
            ResponseCache(self.clock, cache_ttl),
            fault_seed,
            max_days,
        )
        self._server = SandboxHTTPServer((host, port), self.app)
        self._thread: Optional[threading.Thread] = None
        self.api_key = SANDBOX_API_KEY
        # full-access keys of the same team, each its own rate-limit window: a key pool
        self.pool_keys = POOL_API_KEYS

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def faults(self) -> Faults:
        return self.app.faults

    @property
    def stats(self) -> Stats:
        return self.app.stats

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> "Sandbox":
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
            name="aiclicks-sandbox",
            daemon=True,
        )
        self._thread.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll /_sandbox/health until it answers (the socket already listens, so the first
        poll normally succeeds; the short pause only applies if it did not)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base_url + ADMIN_PREFIX + "health", timeout=timeout) as r:
                    if json.load(r).get("ok"):
                        return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- controls ---------------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> Faults:
        return self.faults.update(changes)

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Force ``kind`` ("500", "502", "503", "429", "drop", "malformed") on the next
        ``count`` API requests that pass authentication and the rate limit."""
        self.app.injector.fail_next(kind, count)

    def advance(self, days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
        return self.clock.advance(days=days, hours=hours, seconds=seconds)

    def add_prompts(self, domain_id: str, n: int = 1) -> List[dict]:
        """New prompts created now (cached responses stay as they are until they expire)."""
        return self.account.add_prompts(domain_id, n, self.clock.now())

    def on_request(self, callback: Callable[[str, Dict[str, str]], None]) -> None:
        """Call ``callback(path, query)`` before every API request is served."""
        self.app.callbacks.append(callback)

    def reset_stats(self) -> None:
        self.stats.reset()

    def clear_cache(self) -> None:
        self.app.cache.clear()


@contextlib.contextmanager
def run_sandbox(**kwargs: Any) -> Iterator[Sandbox]:
    """Start a sandbox on a free port of 127.0.0.1 (``port=0``), yield it ready, shut it down.

    kwargs: see ``Sandbox`` (seed, domains, prompts, competitors, start, frozen, rate_limit,
    rate_window, cache_ttl, port, faults, fault_seed, max_days).
    """
    with Sandbox(**kwargs) as sandbox:
        yield sandbox


# --- command line ---------------------------------------------------------------------------

_FAULT_OPTIONS = (
    ("--latency-ms", "latency_ms", int, "sleep this long before every API answer"),
    ("--error-rate", "error_rate", float, "share of requests answered 500/502/503"),
    ("--drop-rate", "drop_rate", float, "share of responses cut off mid-body"),
    ("--malformed-rate", "malformed_rate", float, "share of 200s with truncated JSON"),
    ("--burst-429-every", "burst_429_every", int, "after every N requests inject a 429 burst"),
    ("--burst-429-len", "burst_429_len", int, "length of each injected 429 burst"),
)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of `aiclicks-pipeline sandbox` / `python -m aiclicks_pipeline.sandbox`."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--domains", type=int, default=3)
    parser.add_argument("--prompts", type=int, nargs=2, default=(20, 200), metavar=("MIN", "MAX"))
    parser.add_argument("--competitors", type=int, nargs=2, default=(2, 6), metavar=("MIN", "MAX"))
    parser.add_argument("--start", help="ISO instant the clock starts at (default: now)")
    parser.add_argument("--frozen", action="store_true", help="the clock stands still")
    parser.add_argument("--rate-limit", type=int, default=60, help="requests per window, 0 = off")
    parser.add_argument("--rate-window", type=float, default=60.0, help="seconds")
    parser.add_argument("--cache-ttl", type=float, default=3600, help="seconds, 0 = no cache")
    parser.add_argument(
        "--max-days", type=int, default=MAX_DAYS, choices=(MAX_DAYS, 365),
        help=f"the largest `days` served ({MAX_DAYS}: the API introduction's maximum; 365: the "
        "endpoint pages')",
    )
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--extra-fields", action="store_true", help="add unknown fields")
    for option, _, kind, text in _FAULT_OPTIONS:
        parser.add_argument(option, type=kind, default=None, help=text)
    return parser


def serve(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground until Ctrl-C."""
    faults = {name: getattr(args, name) for _, name, _, _ in _FAULT_OPTIONS if getattr(args, name) is not None}
    faults["extra_fields"] = args.extra_fields
    sandbox = Sandbox(
        seed=args.seed,
        domains=args.domains,
        prompts=tuple(args.prompts),
        competitors=tuple(args.competitors),
        start=args.start,
        frozen=args.frozen,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        cache_ttl=args.cache_ttl,
        host=args.host,
        port=args.port,
        faults=faults,
        fault_seed=args.fault_seed,
        max_days=args.max_days,
    )
    with sandbox:
        # A fake key for a local fake API: printing it is the point.
        print(f"AIclicks sandbox at {sandbox.base_url}", flush=True)
        print(f"API key: {sandbox.api_key}", flush=True)
        print(f"More keys of the team (a key pool): {', '.join(sandbox.pool_keys[1:4])}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0
