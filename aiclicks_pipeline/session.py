"""The HTTP session every request of a sync goes through: key, request id, timeouts, throttle,
retries.

- Auth: `Authorization: Bearer <key>`, and our own `X-Request-Id` on every request, so that
  every failure can quote one (docs/api-notes.md, Headers). The key is never part of a repr or a message.
- Throttle: a request waits for room in the key's rate-limit window (throttle.py).
- Retries (the API docs' advice; docs/api-notes.md, Rate limit): a 429 waits exactly `Retry-After`; 5xx, a dropped connection,
  a timeout or a malformed body back off exponentially with jitter; bounded attempts.
- Page size (docs/api-notes.md, Reading: page size of /prompts): the docs disagree on the largest `size` (500 or 100). If the server
  refuses ours, every later request to that path asks the general maximum instead; pages
  stay consistent because the paginator follows the server's `total_pages`.
"""

import logging
import os
import random
import time
import uuid
from typing import Any, Callable, Dict, Optional, Set
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout

from dlt.common.configuration import configspec
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException

from .errors import (
    KEYS_HELP,
    AIclicksHTTPError,
    BadRequestError,
    ConnectionFailedError,
    InvalidApiKeyError,
    MalformedResponseError,
    MissingApiKeyError,
    connection_problem,
    describe_request,
    is_connect_failure,
    raise_for_api_error,
)
from .settings import API_KEY_ENV, API_PREFIX
from .server_clock import ClockReading
from .sync import SyncContext
from .throttle import RateLimitThrottle

logger = logging.getLogger("aiclicks_pipeline")

TRANSIENT_ERRORS = (ConnectionError, Timeout, ChunkedEncodingError)
# attempts to reach a host that has not answered yet and refuses or does not resolve
CONNECT_ATTEMPTS = 3
# the general maximum page size (docs/api-notes.md, Pagination), where an endpoint refuses its documented one
FALLBACK_PAGE_SIZE = 100


def resolve_api_key(configured: Optional[str]) -> str:
    """The key to send: the configured one, else `AICLICKS_API_KEY` (the name the API's own docs
    use), without the spaces or line break a paste brings along. The key is never quoted."""
    candidates = (configured, os.environ.get(API_KEY_ENV))
    api_key = next((c.strip() for c in candidates if isinstance(c, str) and c.strip()), "")
    if not api_key:
        raise MissingApiKeyError(
            f"No AIclicks API key: set SOURCES__AICLICKS__API_KEY or {API_KEY_ENV}, or "
            "`api_key` under [sources.aiclicks] in .dlt/secrets.toml. " + KEYS_HELP + "."
        )
    if any(character.isspace() for character in api_key):
        raise InvalidApiKeyError(
            f"The AIclicks API key has a space or line break inside it ({len(api_key)} "
            "characters), so it cannot be a key: copy it again in one piece. " + KEYS_HELP + "."
        )
    return api_key


def api_root(base_url: str) -> str:
    """`https://host/api/v1/` from the base URL as a user gives it: the API's root, with or
    without a trailing slash or the `/api/v1` prefix the API's docs print after the host."""
    if not isinstance(base_url, str) or not base_url.strip().startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    root = base_url.strip().rstrip("/")
    if root.endswith(API_PREFIX):
        root = root[: -len(API_PREFIX)].rstrip("/")
    return f"{root}{API_PREFIX}/"


@configspec
class ApiKeyAuth(BearerTokenAuth):
    """`Authorization: Bearer <key>` plus a fresh `X-Request-Id` on every request."""

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        request.headers.setdefault("X-Request-Id", str(uuid.uuid4()))
        return request

    def __repr__(self) -> str:
        return "ApiKeyAuth(token=***)"

    __str__ = __repr__


class AIclicksSession(requests.Session):
    def __init__(
        self,
        context: SyncContext,
        throttle: Optional[RateLimitThrottle] = None,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff_factor: float = 1.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 16,
    ) -> None:
        super().__init__()
        self.context = context
        self.throttle = throttle or RateLimitThrottle()
        # the server's clock as its responses tell it (the throttle converts resets with it)
        self.server_clock = self.throttle.server_clock
        self._answered_hosts: Set[str] = set()
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_factor = backoff_factor
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.page_size_caps: Dict[str, int] = {}
        self._environment_settings: Dict[Any, Dict[str, Any]] = {}
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Dict[str, Any]:
        """requests' proxy and CA settings from the environment, read once per scheme and host.

        dlt asks for them before every request, and requests scans all of `os.environ` each
        time (a fifth of the extract step's CPU); the environment does not change during a sync.
        """
        key = (urlsplit(url)[:2], repr(proxies), stream, verify, cert)
        settings = self._environment_settings.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment_settings[key] = settings
        return {**settings, "proxies": dict(settings["proxies"] or {})}

    def backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.backoff_factor * 2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        request = self._capped(request)
        host = urlsplit(request.url or "").netloc
        for attempt in range(1, self.max_attempts + 1):
            self.context.check_stop()
            held_s = self.throttle.acquire()
            if held_s:
                self.context.count_rate_limit_wait(held_s)
            sent_at = self.server_clock.clock()
            try:
                # the response hooks run inside: errors and bad bodies raise from here
                response = super().send(request, **kwargs)
            except TRANSIENT_ERRORS as exc:
                self.throttle.release(None)
                self.context.count_connection_error()
                problem = connection_problem(exc)
                # a host that never answered and refuses or does not resolve is most likely
                # a wrong base URL: a few quick attempts, not minutes of back-off
                never_reached = host not in self._answered_hosts and is_connect_failure(exc)
                if attempt == self.max_attempts or (never_reached and attempt >= CONNECT_ATTEMPTS):
                    raise ConnectionFailedError(
                        f"The connection to {host} failed {attempt} times ({problem}): check the "
                        f"base URL and the network. {describe_request(request.url)} "
                        f"[X-Request-Id: {request.headers.get('X-Request-Id')}]"
                    ) from None
                delay = self.backoff(attempt)
                logger.info(
                    "%s on %s %s, retry in %.1fs", problem, host, describe_request(request.url), delay
                )
            except AIclicksHTTPError as exc:
                failed = exc.response
                self.throttle.release(failed, self._received(request, failed, sent_at))
                self.context.count_response(exc.status_code or 0)
                delay = self.retry_delay(exc, attempt)
                if isinstance(exc, BadRequestError) and self._learn_page_size_cap(request, exc):
                    request, delay = self._capped(request), 0.0
                if delay is None:
                    raise
                logger.info("%s; retry in %.1fs", exc, delay)
                if exc.status_code == 429:
                    self.context.count_rate_limit_wait(self.throttle.sit_out(delay, self._wait))
                    continue
            except IgnoreResponseException as exc:
                # a response the source chose to skip (a domain that 404s): still a request
                skipped = getattr(exc, "response", None)
                self.throttle.release(skipped, self._received(request, skipped, sent_at))
                self.context.count_response(skipped.status_code if skipped is not None else 0)
                raise
            except BaseException:
                self.throttle.release(None)
                raise
            else:
                self.throttle.release(response, self._received(request, response, sent_at))
                self.context.count_response(response.status_code)
                return response
            self._wait(delay)
        raise AssertionError("unreachable")

    def _wait(self, delay: float) -> None:
        """Sleeps before a retry; a stop request cuts the wait short."""
        if self.sleep is time.sleep:
            if self.context.stop.wait(delay):
                self.context.check_stop()
        else:
            self.sleep(delay)

    def _received(
        self, request: PreparedRequest, response: Optional[Response], sent_at: float
    ) -> Optional[ClockReading]:
        """Every response: the server clock reads its `Date`, `-v` logs it."""
        if response is None:
            return None
        # when its headers arrived (requests times that), not after the body was parsed
        received_at = min(sent_at + response.elapsed.total_seconds(), self.server_clock.clock())
        self._answered_hosts.add(urlsplit(request.url or "").netloc)
        headers = response.headers
        if logger.isEnabledFor(logging.INFO):
            parts = urlsplit(request.url or "")
            logger.info(
                "%s %s%s -> %s in %.0f ms [X-Request-Id: %s, X-Cache: %s]",
                request.method,
                parts.path,
                f"?{parts.query}" if parts.query else "",
                response.status_code,
                (received_at - sent_at) * 1000,
                headers.get("X-Request-Id") or request.headers.get("X-Request-Id"),
                headers.get("X-Cache", "-"),
            )
        return self.server_clock.observe(headers.get("Date"), sent_at, received_at)

    def _learn_page_size_cap(self, request: PreparedRequest, exc: AIclicksHTTPError) -> bool:
        """True when the server refused a page size above the fallback
        (docs/api-notes.md, Reading: page size of /prompts)."""
        parts = urlsplit(request.url or "")
        size = dict(parse_qsl(parts.query)).get("size")
        if not size or not size.isdigit() or int(size) <= FALLBACK_PAGE_SIZE:
            return False
        if "size" not in str(exc):
            return False
        if parts.path not in self.page_size_caps:  # several threads may learn it at once
            logger.warning(
                "%s refused size=%s; asking size=%s from now on", parts.path, size, FALLBACK_PAGE_SIZE
            )
            self.page_size_caps[parts.path] = FALLBACK_PAGE_SIZE
        return True

    def _capped(self, request: PreparedRequest) -> PreparedRequest:
        parts = urlsplit(request.url or "")
        cap = self.page_size_caps.get(parts.path)
        if cap is None:
            return request
        query = [(k, str(min(int(v), cap)) if k == "size" and v.isdigit() else v)
                 for k, v in parse_qsl(parts.query)]
        capped = request.copy()
        capped.url = urlunsplit(parts._replace(query=urlencode(query)))
        return capped

    def retry_delay(self, exc: AIclicksHTTPError, attempt: int) -> Optional[float]:
        """Seconds to wait before the next attempt, or None when the error is final."""
        status = exc.status_code or 0
        if attempt >= self.max_attempts:
            return None
        if status == 429:
            retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
            try:
                return max(float(retry_after), 0.0)
            except (TypeError, ValueError):
                return self.backoff(attempt)
        if status >= 500 or isinstance(exc, MalformedResponseError):
            return self.backoff(attempt)
        return None


def fetch_envelope(api_key: str, base_url: str, path: str) -> Dict[str, Any]:
    """One GET outside a sync (`validate`, `plan`), through the same key, request id, retries
    and errors as a sync's requests."""
    session = AIclicksSession(SyncContext(), max_attempts=3)
    session.auth = ApiKeyAuth(token=resolve_api_key(api_key))
    response = session.get(f"{api_root(base_url)}{path}", hooks={"response": [raise_for_api_error]})
    return response.json()
