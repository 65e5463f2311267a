"""The HTTP session every request of a sync goes through: keys, request id, timeouts, throttle,
retries.

- Auth: `Authorization: Bearer <key>`, and our own `X-Request-Id` on every request, so that
  every failure can quote one (docs/api-notes.md, Headers). The key is never part of a repr or a message.
- Keys and throttle: a request waits for room in the rate-limit window of one of the run's
  keys, whichever has some (keypool.py, throttle.py). A key the API refuses as a whole (401,
  a team's 403) is set aside and the request goes to another; with none left it fails.
- Domains: a domain that answers 404, or 403 to every key (the key may not read it), is
  skipped (`SyncContext.skip_domain`) and its list ends there; every other domain loads.
- Retries (the API docs' advice; docs/api-notes.md, Rate limit): a 429 waits exactly `Retry-After`; 5xx, a dropped connection,
  a timeout or a malformed body back off exponentially with jitter; bounded attempts.
- Page size (docs/api-notes.md, Reading: page size of /prompts): the docs disagree on the largest `size` (500 or 100). If the server
  refuses ours, every later request to that path asks the general maximum instead; pages
  stay consistent because the paginator follows the server's `total_pages`.
"""

import json
import logging
import os
import random
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Union
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
    AccessDeniedError,
    AIclicksHTTPError,
    AuthenticationError,
    BadRequestError,
    ConnectionFailedError,
    DomainAccessDeniedError,
    DomainNotFoundError,
    DomainSkipped,
    InvalidApiKeyError,
    MalformedResponseError,
    MissingApiKeyError,
    connection_problem,
    describe_request,
    error_detail,
    is_connect_failure,
    raise_for_api_error,
    request_id,
)
from .keypool import KeyPool, PoolKey
from .settings import API_KEY_ENV, API_KEYS_ENV, API_PREFIX
from .server_clock import ClockReading
from .sync import SyncContext
from .values import query_value

logger = logging.getLogger("aiclicks_pipeline")

TRANSIENT_ERRORS = (ConnectionError, Timeout, ChunkedEncodingError)
# attempts to reach a host that has not answered yet and refuses or does not resolve
CONNECT_ATTEMPTS = 3
# the general maximum page size (docs/api-notes.md, Pagination), where an endpoint refuses its documented one
FALLBACK_PAGE_SIZE = 100


def resolve_api_keys(
    configured: Optional[str] = None, configured_keys: Union[None, str, Sequence[str]] = None
) -> List[str]:
    """The keys to send, in order, without repeats: `api_key` and `api_keys` as configured (dlt's
    config: `.dlt/secrets.toml`, `SOURCES__AICLICKS__API_KEY(S)`), else the environment's
    `AICLICKS_API_KEY` (the name the API's own docs use) and `AICLICKS_API_KEYS`. A list comes as
    a TOML or JSON list, or as text with commas or spaces between keys. The spaces or line
    break a paste brings along are dropped. A key is never quoted."""
    keys = _key_list(configured, configured_keys) or _key_list(
        os.environ.get(API_KEY_ENV), os.environ.get(API_KEYS_ENV)
    )
    if not keys:
        raise MissingApiKeyError(
            f"No AIclicks API key: set SOURCES__AICLICKS__API_KEY or {API_KEY_ENV}, or "
            "`api_key` under [sources.aiclicks] in .dlt/secrets.toml (several keys: `api_keys`, "
            f"a list, or {API_KEYS_ENV}). " + KEYS_HELP + "."
        )
    for position, api_key in enumerate(keys, start=1):
        if any(character.isspace() for character in api_key):
            which = "The AIclicks API key" if len(keys) == 1 else f"AIclicks API key {position}"
            raise InvalidApiKeyError(
                f"{which} has a space or line break inside it ({len(api_key)} characters), so "
                "it cannot be a key: copy it again in one piece. " + KEYS_HELP + "."
            )
    return keys


def resolve_api_key(configured: Optional[str]) -> str:
    """The one key to send (the first, when several are configured)."""
    return resolve_api_keys(configured)[0]


def configured_api_keys() -> List[str]:
    """The keys dlt's config and the environment give (`resolve_api_keys`), for the commands
    that ask the API outside a sync."""
    import dlt

    return resolve_api_keys(
        dlt.secrets.get("sources.aiclicks.api_key"), dlt.secrets.get("sources.aiclicks.api_keys")
    )


def _key_list(single: Any, several: Any) -> List[str]:
    if isinstance(several, str):
        text = several.strip()
        try:
            parsed = json.loads(text) if text.startswith("[") else None
        except ValueError:
            parsed = None
        several = parsed if isinstance(parsed, list) else text.replace(",", " ").split()
    candidates = [single, *(several or [])]
    keys: List[str] = []
    for candidate in candidates:
        key = candidate.strip() if isinstance(candidate, str) else ""
        if key and key not in keys:
            keys.append(key)
    return keys


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
        keys: Optional[KeyPool] = None,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff_factor: float = 1.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 16,
    ) -> None:
        super().__init__()
        self.context = context
        # the run's keys and their rate limits; without any, the request's own Authorization
        self.keys = keys or KeyPool()
        # the pool is what the display reads as the throttle (its waits, its rate)
        self.throttle = self.keys
        # the server's clock as its responses tell it (the throttle converts resets with it)
        self.server_clock = self.keys.server_clock
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
        # the keys that answered 403 for this request's domain: another key may read it
        refused_by = self.keys.denying(query_value(request.url, "domain_id"))
        attempt = 0
        while True:
            self.context.check_stop()
            key, held_s = self.keys.acquire(exclude=refused_by)
            if held_s:
                self.context.count_rate_limit_wait(held_s)
            sent_at = self.server_clock.clock()
            try:
                # the response hooks run inside: errors and bad bodies raise from here
                response = super().send(key.authorize(request), **kwargs)
            except TRANSIENT_ERRORS as exc:
                attempt += 1
                self.keys.release(key, None)
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
                try:
                    # a refused key is set aside before its slot is given back: a thread woken
                    # by the release must not take it for one more request
                    taken_over = self._another_key_may(key, exc, refused_by)
                finally:
                    self.keys.release(key, failed, self._received(request, failed, sent_at))
                    self.context.count_response(exc.status_code or 0)
                if taken_over:
                    continue
                attempt += 1
                delay = self.retry_delay(exc, attempt)
                if isinstance(exc, BadRequestError) and self._learn_page_size_cap(request, exc):
                    request, delay = self._capped(request), 0.0
                if delay is None:
                    raise
                logger.info("%s; retry in %.1fs", exc, delay)
                if exc.status_code == 429:
                    if not self.keys.has_budget_elsewhere(key):
                        self.context.count_rate_limit_wait(self.keys.sit_out(delay, self._wait))
                    continue
            except IgnoreResponseException as exc:
                # a response the source chose to skip: still a request
                skipped = getattr(exc, "response", None)
                self.keys.release(key, skipped, self._received(request, skipped, sent_at))
                self.context.count_response(skipped.status_code if skipped is not None else 0)
                raise
            except BaseException:
                self.keys.release(key, None)
                raise
            else:
                self.keys.release(key, response, self._received(request, response, sent_at))
                self.context.count_response(response.status_code)
                return response
            self._wait(delay)

    def _another_key_may(
        self, key: PoolKey, exc: AIclicksHTTPError, refused_by: Set[PoolKey]
    ) -> bool:
        """What a refusal means for the request: True when another key takes it over. A domain
        not found, or refused by every key, is skipped (raises DomainSkipped). A key refused as
        a whole (401, a team's 403, or 403s for several domains in a row) is set aside; once
        none is left its refusal raises, here and in every thread that asks for a key."""
        if isinstance(exc, DomainNotFoundError):
            self._skip_domain(exc)
        if isinstance(exc, DomainAccessDeniedError):
            refused_by.add(key)
            domain_id = str(query_value(exc.response.url, "domain_id"))
            if not self.keys.refused_domain(key, domain_id):
                if self.keys.has_other(refused_by):
                    return True
                self._skip_domain(exc)
            exc = AccessDeniedError(
                f"The API refused {key.label} one domain after another and answered nothing "
                f"else (403: {error_detail(exc.response)}): the key seems to have lost its "
                f"access. {describe_request(exc.response.url)} "
                f"[X-Request-Id: {request_id(exc.response)}]",
                exc.response,
            )
        elif not isinstance(exc, (AuthenticationError, AccessDeniedError)):
            return False
        if self.keys.set_aside(key, exc):
            if self.keys.has_other(refused_by):
                return True
            self._skip_domain(exc)  # every key left refused this domain
        raise self.keys.refusal() from None

    def _skip_domain(self, exc: AIclicksHTTPError) -> None:
        """The domain of `exc`'s request is left out of this run, in the API's own words."""
        response = exc.response
        domain_id = str(query_value(response.url, "domain_id"))
        self.context.skip_domain(
            domain_id,
            f"the API answered {response.status_code}: {error_detail(response)} "
            f"[X-Request-Id: {request_id(response)}]",
        )
        raise DomainSkipped(response) from None

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
    """One GET outside a sync (`validate`, `plan`) with one key, through the same request id,
    retries and errors as a sync's requests."""
    return fetch_response(api_key, base_url, path).json()


def fetch_response(api_key: str, base_url: str, path: str) -> Response:
    """`fetch_envelope`'s response, headers and all (its `X-RateLimit-*`)."""
    session = AIclicksSession(SyncContext(), max_attempts=3)
    session.auth = ApiKeyAuth(token=resolve_api_key(api_key))
    return session.get(f"{api_root(base_url)}{path}", hooks={"response": [raise_for_api_error]})
