"""A local HTTP server that behaves like the AIclicks v1 API (docs/api-notes.md), for tests and
demos.

Where the API's docs leave the behaviour open, the sandbox takes the reading that is HARDEST on
a client, so a pipeline that passes against it survives the real API either way. The list
below is what the sandbox does; docs/api-notes.md says why, under the reading named in each
item:

1.  `days` echo: the RAW requested value (e.g. `days=10` echoes 10 while the data covers the
    7-day bucket), or the default 30 when omitted (Reading: the days echo). A client must not
    take the echo as the window it got.
2.  `days` snapping: to the nearest bucket of DAYS_BUCKETS, ties to the SMALLER bucket
    (60 -> 30), so a window can be shorter than asked (Reading: days maximum and snapping).
    `days` above 90 is refused (the API introduction's maximum, the stricter of the docs'
    two readings); `max_days=365` serves the endpoint pages' 1-365 instead.
3.  Invalid params (non-integer, `page` < 1, `size` outside 1..max, `days` outside
    1..max_days) are rejected with 422 and a FastAPI-style body whose `detail` is a LIST
    (`[{"loc": ["query", "size"], "msg": ..., "type": ...}]`), never clamped
    (Reading: invalid parameters). `detail` is therefore sometimes a string, sometimes a list.
4.  `/fanout-queries` is paginated: `page`/`size` as in settings (25/100); pages are over
    prompt groups but `data.total` counts EMISSIONS, so `total` is neither the number of items
    nor `total_pages * size` (Reading: pagination of /fanout-queries and what total counts).
5.  `/citations` is paginated too (25/100); `total` counts URLs (Reading: pagination of
    /citations).
6.  Time-series density: visibility and citability are dense (0 on days without responses);
    mentions and citations are SPARSE (no row on those days). Exact zeros are sent as the
    integer 0 among floats (as in the docs' examples) (Reading: time-series density).
7.  Revisions: today's values are partial and yesterday's still move; a day is final from
    the day after tomorrow on. A load that does not re-read the last 2 days keeps wrong values
    (Reading: revisions of recent days).
8.  Domain scope: a domain outside the key's `allowed_domains`, an unknown id and a non-UUID
    id all get the same 404 "Domain not found"; an empty `domain_id=` is "omitted" (400)
    (Reading: status codes for 401 and 404).
9.  Cache: the longer TTL (1 hour, stalest data), keyed on path + the raw query string byte for
    byte (parameter order and encoding matter), not on the key (Caching; Reading: cache TTL).
    Also keyed on the key's domain scope (else a restricted key would be served another key's
    /domains) and on the sandbox's shape faults (extra_fields, vanished/hidden domains) so
    switching them takes effect at once. A HIT returns the stored body unchanged, with its old
    `generated_at` (Reading: generated_at on cache hits). Errors are never cached;
    `/validate` is always BYPASS. `X-Cache` is BYPASS on errors.
10. Rate limit (Rate limit): one window per key, each key's windows shifted by its own phase
    (the keys of a pool turn at different moments); `/validate`'s `limit_per_minute` is the
    limit per minute whatever the window (60 per 10 s is 360). Cache hits, `/validate` and 4xx (400/404/422) consume budget; a
    5xx (injected) is refunded; a real 429 consumes nothing (the budget is already spent); an
    injected 429 burst consumes budget. 401/403 happen before the limiter (no budget to charge)
    and unknown paths 404 before authentication (FastAPI routes first). The no-access key gets
    403 on /validate too. Windows are fixed and aligned to epoch multiples of the window, on
    REAL time; `X-RateLimit-Reset` and `/validate`'s `reset_at` state the window's end on the
    sandbox clock (its now plus the seconds left), like `Date`, so a sandbox clock set apart
    from real time is a server whose clock is skewed from the client's.
11. Ordering (Reading: ordering): `/domains` in account order; `/fanout-queries` groups by
    their most recent emission (an activity feed: new emissions reorder pages between runs);
    `/citations` by frequency descending, then url. Newest-first `/prompts` shift when prompts
    are added.
12. Empty paginated lists have `total_pages` 0 (not 1); a page past the end is 200 with no
    items. `/domains` keeps its documented trivial envelope (`total_pages` always 1)
    (Pagination).
13. `/citations` `first_seen` is all-time and may precede the window (Reading: citations
    fields).
14. `/fanout-queries?model=` with an unknown channel returns an empty list (200), not 422; the
    raw value is echoed (Endpoint: /fanout-queries).
15. Repeated query params: the last one wins; unknown params are ignored (Reading: invalid
    parameters).
16. With rate limiting disabled (`rate_limit` 0/None) the `X-RateLimit-*` headers are omitted
    (as a JWT caller may see) and `/validate` reports `remaining`/`reset_at` null
    (Reading: callers without rate-limit headers).
17. `generated_at`, the `Date` header and the rate limit's reset come from the sandbox clock,
    so they may be far from the machine's time, as a skewed server's clock is (Headers).
18. Competitors (in /brand-rankings) and prompts appear over time as the clock passes their
    creation; a sync must cope with lists that grow between runs and between pages
    (Reading: lists that grow).
19. A domain a key may no longer read (`forbidden_domains`) stays listed by `/domains` and
    answers 403 `Access to this domain is not allowed for this API key.` on its endpoints,
    after the rate limit (a 4xx that counts) (Reading: a 403 for one domain).
20. A key revoked mid-run (`revoke_after_requests`) answers 401 from then on; its first 401s
    wait until nothing else of that key is in the server, so `stats.after_first_401` counts
    exactly the requests a client sent with that key after it could have seen one.
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

from ..settings import API_PREFIX, DEFAULT_DAYS, ENDPOINTS, ERROR_DETAILS, MAX_DAYS, VALIDATE_PATH
from .account import Account, iso_ms, snap_days
from .cache import ResponseCache
from .clock import SandboxClock
from .faults import SERVER_ERRORS, FaultInjector, Faults
from .keys import TEAM_ID, TEAM_NAME, USER_ID, ApiKey, authenticate
from .ratelimit import FixedWindowLimiter, RateState
from .stats import Stats

ADMIN_PREFIX = "/_sandbox/"
# what the API answers on the endpoints of a domain a key may no longer read while `/domains`
# still lists it (docs/api-notes.md, Reading: a 403 for one domain)
DOMAIN_FORBIDDEN_DETAIL = "Access to this domain is not allowed for this API key."
# a revoked key's first 401 waits until the server answered nothing else for this long
REVOKE_SETTLE_S = 1.0
REVOKE_SETTLE_LIMIT_S = 10.0
SERIES_SUFFIX = "-time-series"

# Added by the `extra_fields` fault to the envelope and to every object inside `data`
# (docs/api-notes.md, Reading: new fields appear without notice).
EXTRA_FIELDS = {
    "x_sandbox_note": "unknown field added by the sandbox",
    "x_sandbox_meta": {"revision": 2, "tags": ["sandbox", "extra"]},
}


@dataclass
class Response:
    status: int
    payload: Any = None  # JSON-able; ignored when `body` is set
    body: Optional[bytes] = None
    headers: Dict[str, str] = field(default_factory=dict)
    x_cache: Optional[str] = None
    fault: Optional[str] = None  # "drop" / "malformed": applied when sending
    rate_limited: Optional[str] = None  # "real" / "injected", for the stats

    def encoded(self) -> bytes:
        if self.body is None:
            self.body = dumps(self.payload)
        return self.body


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def error(status: int, detail: Any = None) -> Response:
    """An error body `{"detail": ...}`; the documented text for the status unless given."""
    return Response(status, {"detail": ERROR_DETAILS[status] if detail is None else detail})


def with_extra_fields(value: Any) -> Any:
    if isinstance(value, dict):
        decorated = {key: with_extra_fields(item) for key, item in value.items()}
        decorated.update(copy.deepcopy(EXTRA_FIELDS))
        return decorated
    if isinstance(value, list):
        return [with_extra_fields(item) for item in value]
    return value


# Fields the `changed_types` fault sends as another type: a count becomes a label.
CHANGED_TYPE_FIELDS = ("estimated_search_volume",)


def with_changed_types(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: f"{item / 1000:.1f}k" if key in CHANGED_TYPE_FIELDS and isinstance(item, int)
            else with_changed_types(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [with_changed_types(item) for item in value]
    return value


def paginate(items: List[Any], page: int, size: int, total: Optional[int] = None) -> dict:
    start = (page - 1) * size
    return {
        "items": items[start : start + size],
        "total": len(items) if total is None else total,
        "page": page,
        "size": size,
        "total_pages": math.ceil(len(items) / size),
    }


class QueryParams:
    """Validates integer query params and collects FastAPI/pydantic-v2 style errors."""

    _INTEGER = re.compile(r"[+-]?\d+")

    def __init__(self, query: Dict[str, str]):
        self.query = query
        self.errors: List[dict] = []

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        problem: Tuple[str, str, Dict[str, int]]
        if not self._INTEGER.fullmatch(raw.strip()):
            problem = (
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                {},
            )
        elif int(raw) < low:
            problem = ("greater_than_equal", f"Input should be greater than or equal to {low}", {"ge": low})
        elif int(raw) > high:
            problem = ("less_than_equal", f"Input should be less than or equal to {high}", {"le": high})
        else:
            return int(raw)
        kind, msg, ctx = problem
        detail = {"type": kind, "loc": ["query", name], "msg": msg, "input": raw}
        if ctx:
            detail["ctx"] = ctx
        self.errors.append(detail)
        return default


class SandboxApp:
    """The API behaviour, independent of the socket handling."""

    def __init__(
        self,
        account: Account,
        clock: SandboxClock,
        faults: Faults,
        limiter: FixedWindowLimiter,
        cache: ResponseCache,
        fault_seed: int = 0,
        max_days: int = MAX_DAYS,
    ):
        self.account = account
        self.max_days = max_days
        self.clock = clock
        self.injector = FaultInjector(faults, fault_seed)
        self.limiter = limiter
        self.cache = cache
        self.stats = Stats()
        # API requests that arrived; per key (its Authorization) those being answered (not
        # counting held 401s), and when its last answer was made: for the revocation's quiet
        # moment (Faults.revoke_after_requests)
        self._arrived = 0
        self._serving: Counter = Counter()
        self._last_answer_at: Dict[str, float] = {}
        self._settled: Set[str] = set()
        self._state_lock = threading.Lock()
        self.callbacks: List[Callable[[str, Dict[str, str]], None]] = []
        self.routes = {f"{API_PREFIX}/{spec['path']}": name for name, spec in ENDPOINTS.items()}
        self.routes[f"{API_PREFIX}/{VALIDATE_PATH}"] = VALIDATE_PATH

    @property
    def faults(self) -> Faults:
        return self.injector.faults

    # --- entry point ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers, body: bytes) -> Response:
        url = urlsplit(target)
        request_id = headers.get("X-Request-Id") or str(uuid.uuid4())
        if url.path.startswith(ADMIN_PREFIX):
            response = self._admin(method, url.path, body)
        elif url.path.startswith(API_PREFIX + "/"):
            arrived_at = time.monotonic()
            query = {name: values[-1] for name, values in parse_qs(url.query, keep_blank_values=True).items()}
            response = self._counted_api(method, url.path, url.query, query, headers)
            response.x_cache = response.x_cache or "BYPASS"  # X-Cache on every API response
            key = authenticate(headers.get("Authorization"))
            self.stats.record(
                url.path, query, response.status, request_id, response.x_cache,
                response.fault, response.rate_limited, arrived_at=arrived_at,
                key=key.name if key is not None else None,
            )
        else:
            response = error(404, "Not Found")
        response.headers["X-Request-Id"] = request_id
        return response

    # --- the API pipeline: route, auth, rate limit, faults, domain, params, payload ----------

    def _counted_api(self, method: str, path: str, raw_query: str, query: Dict[str, str], headers) -> Response:
        caller = headers.get("Authorization") or ""
        with self._state_lock:
            self._arrived += 1
            self._serving[caller] += 1
            arrived = self._arrived
            serving = sum(self._serving.values())
        self.stats.serving(serving)
        try:
            return self._api(method, path, raw_query, query, headers, arrived)
        finally:
            with self._state_lock:
                self._serving[caller] -= 1
                self._last_answer_at[caller] = time.monotonic()

    def _api(
        self, method: str, path: str, raw_query: str, query: Dict[str, str], headers, arrived: int
    ) -> Response:
        for callback in list(self.callbacks):
            callback(path, query)
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        name = self.routes.get(path)
        if name is None:
            return error(404, "Not Found")
        if method != "GET":
            return error(405, "Method Not Allowed")
        key = authenticate(headers.get("Authorization"))
        if key is not None and self._revoked(key, arrived):
            self._settle(headers.get("Authorization") or "")
            key = None
        if key is None or self.faults.key_revoked:
            return self._with_rate_headers(error(401), self.limiter.peek(""))
        if not key.developer_access or self.faults.team_access_off:
            return self._with_rate_headers(error(403), self.limiter.peek(key.token))

        rate = self.limiter.acquire(key.token) if self.limiter.enabled else None
        if rate is not None and not rate.allowed:
            response = error(429)
            response.rate_limited = "real"
            response.headers["Retry-After"] = str(rate.retry_after)
            return self._with_rate_headers(response, rate)

        fault = self.injector.decide()
        if fault in ("500", "502", "503"):
            status = int(fault)
            if rate is not None:
                rate = self.limiter.refund(key.token)
            response = error(status, SERVER_ERRORS[status])
            response.fault = fault
        elif fault == "429":
            response = error(429)
            response.fault, response.rate_limited = fault, "injected"
            response.headers["Retry-After"] = str(max(1, int(self.faults.burst_retry_after)))
        else:
            response = self._serve(name, path, raw_query, query, key, rate)
            response.fault = fault
        return self._with_rate_headers(response, rate)

    def _revoked(self, key: ApiKey, arrived: int) -> bool:
        """Revoked by `Faults.revoke_after_requests` by the time this request arrived."""
        faults = self.faults
        after = faults.revoke_after_requests
        return 0 < after < arrived and (not faults.revoke_keys or key.token in faults.revoke_keys)

    def _settle(self, caller: str) -> None:
        """Holds a revoked key's first 401s until every other request of that key was answered
        and none came for REVOKE_SETTLE_S: whatever a client had in flight with it has arrived
        by then. Its later 401s are answered at once."""
        with self._state_lock:
            self._serving[caller] -= 1  # this one waits; it is not being served
        deadline = time.monotonic() + REVOKE_SETTLE_LIMIT_S
        try:
            while time.monotonic() < deadline:
                with self._state_lock:
                    quiet = time.monotonic() - self._last_answer_at.get(caller, 0.0)
                    if caller in self._settled or (self._serving[caller] == 0 and quiet >= REVOKE_SETTLE_S):
                        self._settled.add(caller)
                        return
                time.sleep(0.01)
        finally:
            with self._state_lock:
                self._serving[caller] += 1

    def _with_rate_headers(self, response: Response, rate: Optional[RateState]) -> Response:
        if rate is not None and self.limiter.enabled:
            response.headers["X-RateLimit-Limit"] = str(rate.limit)
            response.headers["X-RateLimit-Remaining"] = str(rate.remaining)
            response.headers["X-RateLimit-Reset"] = str(self._reset_on_clock(rate))
        return response

    def _reset_on_clock(self, rate: RateState) -> int:
        """The window's end on the sandbox clock, as `X-RateLimit-Reset` states it."""
        return rate.reset_on(self.clock.now().timestamp(), time.time())

    def _serve(self, name, path, raw_query, query, key: ApiKey, rate) -> Response:
        if name == VALIDATE_PATH:
            return Response(200, self._decorate(self._envelope(self._validate(key, rate), {})))

        spec = ENDPOINTS[name]
        domain_id = query.get("domain_id") if spec["domain_scoped"] else None
        if spec["domain_scoped"]:
            if not domain_id:
                return error(400)
            if not self._domain_reachable(key, domain_id):
                return error(404)
            if self._forbidden(key, domain_id):
                return error(403, DOMAIN_FORBIDDEN_DETAIL)

        params = QueryParams(query)
        echo: Dict[str, Any] = {}
        if domain_id:
            echo["domain_id"] = domain_id
        if spec.get("window"):
            echo["days"] = params.integer("days", DEFAULT_DAYS, 1, self.max_days)
        if spec.get("page_size"):
            default_size, max_size = spec["page_size"]
            if self.faults.page_size_cap:
                max_size = min(max_size, self.faults.page_size_cap)
            echo["page"] = params.integer("page", 1, 1, 2**31 - 1)
            echo["size"] = params.integer("size", default_size, 1, max_size)
        for param, default in spec.get("params", {}).items():
            echo[param] = query.get(param, default)
        if params.errors:
            return error(422, params.errors)

        faults = self.faults
        cache_key = (
            path, raw_query, key.scope, faults.extra_fields, faults.changed_types,
            frozenset(faults.vanished_domains), frozenset(faults.hidden_404_domains),
            frozenset(faults.relisted_domains),
        )
        body = self.cache.get(cache_key)
        if body is not None:
            return Response(200, body=body, x_cache="HIT")
        # one instant per response: its data, its `generated_at` and its age in the cache (a
        # test may move the clock while a request of a killed client is still being served)
        now = self.clock.now()
        data = self._data(name, spec, key, echo, now)
        body = dumps(self._decorate(self._envelope(data, echo, now)))
        self.cache.put(cache_key, body, now)
        return Response(200, body=body, x_cache="MISS")

    def _envelope(self, data: Any, echo: Dict[str, Any], now: Optional[datetime] = None) -> dict:
        return {"data": data, **echo, "generated_at": iso_ms(now or self.clock.now())}

    def _decorate(self, payload: dict) -> dict:
        if self.faults.changed_types:
            payload = with_changed_types(payload)
        return with_extra_fields(payload) if self.faults.extra_fields else payload

    # --- payloads ---------------------------------------------------------------------------

    def _data(self, name: str, spec, key: ApiKey, echo: Dict[str, Any], now: datetime) -> dict:
        domain_id = echo.get("domain_id")
        days = snap_days(echo["days"]) if "days" in echo else None
        account = self.account
        if name == "domains":
            listed = set(self._listed_domain_ids(key))
            items = [d for d in account.domains(now) if d["id"] in listed]
            items += [d for d in items if d["id"] in self.faults.relisted_domains]
            return {"items": items, "total": len(items), "page": 1, "size": len(items), "total_pages": 1}
        if name == "prompts":
            if self.injector.take_churn(echo["page"]):
                account.churn_prompts(domain_id, now)
            return paginate(account.prompts(domain_id, now), echo["page"], echo["size"])
        if name == "fanout_queries":
            groups = account.fanout(domain_id, days, now, echo["model"])
            emissions = sum(len(g["fanout_queries"]) for g in groups)
            return paginate(groups, echo["page"], echo["size"], total=emissions)
        if name == "citations":
            return paginate(account.citations(domain_id, days, now), echo["page"], echo["size"])
        if spec["path"].endswith(SERIES_SUFFIX):
            metric = spec["path"][: -len(SERIES_SUFFIX)]
            return {"items": account.series(metric, domain_id, days, now)}
        if name == "brand_rankings":
            return {"items": account.brand_rankings(domain_id, days, now)}
        if name == "model_leaderboard":
            return {"items": account.model_leaderboard(domain_id, days, now)}
        raise LookupError(f"no payload for endpoint {name!r}")

    def _validate(self, key: ApiKey, rate: Optional[RateState]) -> dict:
        listed = set(self._listed_domain_ids(key))
        allowed = [
            {"id": info.id, "name": info.name, "website": info.website}
            for info in map(self.account.domain_info, self.account.domain_ids())
            if info.id in listed
        ]
        return {
            "valid": True,
            "key_type": "api_key",
            "key": {"id": key.id, "name": key.name, "created_at": key.created_at},
            "user_id": USER_ID,
            "teams": [
                {
                    "id": TEAM_ID,
                    "name": TEAM_NAME,
                    "developer_access": key.developer_access,
                    # forced to 0 without developer access (docs/api-notes.md, Endpoint: /validate)
                    "domains_count": len(allowed) if key.developer_access else 0,
                }
            ],
            "allowed_domains": allowed,
            "rate_limit": {
                # per minute, as named: a time-scaled window of 10 s and 60 is 360 a minute
                "limit_per_minute": round(self.limiter.limit * 60 / self.limiter.window) or None,
                "remaining": rate.remaining if rate else None,
                "reset_at": self._reset_on_clock(rate) if rate else None,
            },
        }

    def _listed_domain_ids(self, key: ApiKey) -> List[str]:
        vanished = self.faults.vanished_domains
        return [d for d in key.allowed_domain_ids(self.account) if d not in vanished]

    def _forbidden(self, key: ApiKey, domain_id: str) -> bool:
        faults = self.faults
        return domain_id in faults.forbidden_domains and (
            not faults.forbidden_for_keys or key.token in faults.forbidden_for_keys
        )

    def _domain_reachable(self, key: ApiKey, domain_id: str) -> bool:
        return (
            domain_id in self._listed_domain_ids(key)
            and domain_id not in self.faults.hidden_404_domains
        )

    # --- admin ------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        route = (method, path[len(ADMIN_PREFIX) :].strip("/"))
        try:
            changes = json.loads(body or b"{}")
        except ValueError:
            return error(400, "body must be JSON")
        try:
            if route == ("GET", "health"):
                return Response(200, {"ok": True, "now": iso_ms(self.clock.now())})
            if route == ("GET", "stats"):
                return Response(200, self.stats.snapshot())
            if route == ("POST", "stats/reset"):
                self.stats.reset()
                return Response(200, {"ok": True})
            if route == ("GET", "faults"):
                return Response(200, self.faults.as_json())
            if route == ("POST", "faults"):
                fail_next = changes.pop("fail_next", None)
                self.faults.update(changes)
                if fail_next:
                    self.injector.fail_next(fail_next["kind"], int(fail_next.get("count", 1)))
                return Response(200, self.faults.as_json())
            if route == ("GET", "clock"):
                return Response(200, {"now": iso_ms(self.clock.now())})
            if route == ("POST", "clock"):
                now = self.clock.advance(
                    days=changes.get("advance_days", 0),
                    hours=changes.get("advance_hours", 0),
                    seconds=changes.get("advance_seconds", 0),
                )
                return Response(200, {"now": iso_ms(now)})
            if route == ("POST", "prompts"):
                added = self.account.add_prompts(
                    changes["domain_id"], int(changes.get("n", 1)), self.clock.now()
                )
                return Response(200, {"items": added})
        except (KeyError, TypeError, ValueError) as problem:
            return error(400, str(problem))
        return error(404, "Not Found")


class SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, every response has a Content-Length
    # Headers and body go out in two writes; with Nagle on, a keep-alive client waits for the
    # delayed ACK (~40 ms) on every request.
    disable_nagle_algorithm = True
    server: "SandboxHTTPServer"

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.server.app.handle(method, self.path, self.headers, body)
        payload = response.encoded()
        if response.fault == "malformed":
            # A strict prefix of a compact JSON object is never valid JSON.
            payload = payload[: max(1, len(payload) * 2 // 3)]
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.x_cache:
            self.send_header("X-Cache", response.x_cache)
        self.end_headers()
        if response.fault == "drop":
            # Promise the whole body, deliver half, hang up.
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)

    def date_time_string(self, timestamp=None) -> str:
        return formatdate(self.server.app.clock.now().timestamp(), usegmt=True)

    def log_message(self, format, *args) -> None:  # quiet: tests and the CLI print what matters
        pass


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # keep-alive connections must not block shutdown

    def __init__(self, address: Tuple[str, int], app: SandboxApp):
        super().__init__(address, SandboxRequestHandler)
        self.app = app

    def handle_error(self, request, client_address) -> None:
        # a client killed or stopped mid-request (what the kill tests do): not the server's error
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)
