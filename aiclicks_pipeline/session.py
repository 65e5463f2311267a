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
import random
import time
import uuid
from typing import Any, Callable, Dict, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout

from dlt.common.configuration import configspec
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException

from .errors import (
    AIclicksHTTPError,
    BadRequestError,
    ConnectionFailedError,
    MalformedResponseError,
    describe_request,
    raise_for_api_error,
)
from .settings import API_PREFIX
from .sync import SyncContext
from .throttle import RateLimitThrottle

logger = logging.getLogger("aiclicks_pipeline")

TRANSIENT_ERRORS = (ConnectionError, Timeout, ChunkedEncodingError)
# the general maximum page size (docs/api-notes.md, Pagination), where an endpoint refuses its documented one
FALLBACK_PAGE_SIZE = 100


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
        for attempt in range(1, self.max_attempts + 1):
            self.context.check_stop()
            self.throttle.acquire()
            try:
                # the response hooks run inside: errors and bad bodies raise from here
                response = super().send(request, **kwargs)
            except TRANSIENT_ERRORS as exc:
                self.throttle.release(None)
                self.context.count_connection_error()
                if attempt == self.max_attempts:
                    raise ConnectionFailedError(
                        f"The connection failed {attempt} times ({type(exc).__name__}). "
                        f"{describe_request(request.url)} [X-Request-Id: {request.headers.get('X-Request-Id')}]"
                    ) from None
                delay = self.backoff(attempt)
                logger.info("Connection error on %s, retry in %.1fs", describe_request(request.url), delay)
            except AIclicksHTTPError as exc:
                failed = exc.response
                self.throttle.release(failed)
                self.context.count_response(exc.status_code or 0)
                delay = self.retry_delay(exc, attempt)
                if isinstance(exc, BadRequestError) and self._learn_page_size_cap(request, exc):
                    request, delay = self._capped(request), 0.0
                if delay is None:
                    raise
                logger.info("%s; retry in %.1fs", exc, delay)
            except IgnoreResponseException as exc:
                # a response the source chose to skip (a domain that 404s): still a request
                skipped = getattr(exc, "response", None)
                self.throttle.release(skipped)
                self.context.count_response(skipped.status_code if skipped is not None else 0)
                raise
            except BaseException:
                self.throttle.release(None)
                raise
            else:
                self.throttle.release(response)
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
    session.auth = ApiKeyAuth(token=api_key)
    response = session.get(
        f"{base_url.rstrip('/')}{API_PREFIX}/{path}", hooks={"response": [raise_for_api_error]}
    )
    return response.json()
