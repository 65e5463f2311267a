"""Errors a user understands, raised from the HTTP responses of the AIclicks API.

Every message names the request (path and domain, never the key) and the server's
`X-Request-Id`, which AIclicks support asks for.
"""

import json
import re
from typing import Any, Callable, List, Optional, Tuple
from urllib.parse import urlsplit

from dlt.sources.helpers.rest_client.exceptions import IgnoreResponseException
from requests import HTTPError, Response
from requests.exceptions import ConnectTimeout, Timeout
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .settings import API_PREFIX, ERROR_DETAILS
from .values import query_value

KEYS_HELP = "Create or copy a key in the AIclicks dashboard under Settings -> Developers -> Create API Key"


# The command line's exit codes (docs/command-line.md, One error base, one exit code each). An error carries its own
# (`AIclicksError.exit_code`); `cli.main` maps every failure to one line and that code, once.
EXIT_OK = 0
EXIT_FAILED = 1  # a failure, a bad option or name included: the message says what
EXIT_STALE = 2  # status: data older than --max-age-hours (or missing)
EXIT_PARTIAL = 3  # some domains were not loaded; every other one was
EXIT_BUSY = 75  # EX_TEMPFAIL: another sync of the pipeline runs; try again later
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C); 143 for SIGTERM: interrupts.EXIT_CODES


class AIclicksError(Exception):
    """Base of the errors this package raises on purpose: the message is what a user reads (one
    line, no class name), `exit_code` what the command line exits with."""

    exit_code: int = EXIT_FAILED

    def done_so_far(self) -> Optional[str]:
        """What the command did before it failed, shown above the message (None: nothing)."""
        return None


class UsageError(AIclicksError, ValueError):
    """A bad option, name, path or setting, refused before anything was asked or changed."""


class BusyError(AIclicksError):
    """Another process holds what the command needs (the run lock, the DuckDB file)."""

    exit_code = EXIT_BUSY


class MissingApiKeyError(AIclicksError, ValueError):
    """No key was configured."""


class InvalidApiKeyError(AIclicksError, ValueError):
    """A configured key that cannot be one (whitespace inside it)."""


class UnknownDestinationError(UsageError):
    """A destination name dlt does not know."""


class DaysOutOfRangeError(UsageError):
    """A `days` option (`initial_days`, `snapshot_days`) the API cannot serve."""


class AIclicksHTTPError(AIclicksError, HTTPError):
    """A response the API answered with an error status or an unreadable body."""

    def __init__(self, message: str, response: Optional[Response] = None) -> None:
        HTTPError.__init__(self, message, response=response)
        self.message = message

    @property
    def status_code(self) -> Optional[int]:
        return self.response.status_code if self.response is not None else None

    def __str__(self) -> str:
        return self.message


class AuthenticationError(AIclicksHTTPError):
    """401: the key is missing, malformed, revoked or unknown."""


class AccessDeniedError(AIclicksHTTPError):
    """403 for the key as a whole: developer access is off for the key's team."""


class DomainAccessDeniedError(AIclicksHTTPError):
    """403 for one domain: the key may not read it (its allowlist changed while `/domains`
    still lists it; docs/api-notes.md, Reading: a 403 for one domain)."""


class DomainNotFoundError(AIclicksHTTPError):
    """404: the domain does not exist or is outside the key's allowed domains."""


class DomainSkipped(IgnoreResponseException):
    """A domain that answered 404, or 403 to every key: skipped with a warning, every other
    domain still loads (dlt's client ends the walk of a list on it)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"domain skipped after {response.status_code}")
        self.response = response


class EndpointNotFoundError(AIclicksHTTPError):
    """404 on a path the API does not have: the base URL is wrong."""


class BadRequestError(AIclicksHTTPError):
    """400 / 422: the API refused the request's parameters."""


class RateLimitedError(AIclicksHTTPError):
    """429 after every retry."""


class ServerError(AIclicksHTTPError):
    """5xx after every retry."""


class MalformedResponseError(AIclicksHTTPError):
    """A 2xx whose body is not the JSON object the API documents."""


def request_label(response: Response) -> str:
    return describe_request(response.request.url if response.request is not None else response.url)


def describe_request(url: str) -> str:
    """`GET /api/v1/prompts (domain <id>)`: what was asked, without query noise or secrets."""
    parts = urlsplit(url or "")
    domain_id = query_value(url, "domain_id")
    label = f"GET {parts.path}"
    return f"{label} (domain {domain_id})" if domain_id else label


def base_url_of(url: str) -> str:
    """The base URL a request URL was built from: everything before the API's prefix."""
    parts = urlsplit(url or "")
    path = parts.path
    cut = path.rfind(API_PREFIX + "/")
    prefix = path[:cut] if cut >= 0 else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}"


def request_id(response: Response) -> str:
    return response.headers.get("X-Request-Id") or "none"


def error_detail(response: Response) -> str:
    """The `detail` of an error body: a string, or FastAPI's list of validation errors."""
    try:
        detail: Any = response.json().get("detail")
    except (ValueError, AttributeError):
        return (response.text or "").strip()[:300] or response.reason or ""
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg', item)}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)


def error_for_response(response: Response) -> AIclicksHTTPError:
    """Builds the error for a failed response, with a message that says what to do."""
    status = response.status_code
    detail = error_detail(response)
    where = f"{request_label(response)} [X-Request-Id: {request_id(response)}]"
    if status == 401:
        return AuthenticationError(
            f"AIclicks rejected the API key (401: {detail}). {KEYS_HELP}, then set "
            f"SOURCES__AICLICKS__API_KEY or AICLICKS_API_KEY. {where}",
            response,
        )
    if status == 403 and is_domain_refusal(response):
        return DomainAccessDeniedError(
            f"The API key may not read this domain (403: {detail}). {where}", response
        )
    if status == 403:
        return AccessDeniedError(
            f"Developer API access is not enabled for this key's team (403: {detail}). "
            f"A team admin can enable it, or contact support@aiclicks.io. {where}",
            response,
        )
    if status == 404 and is_domain_not_found(response):
        return DomainNotFoundError(
            f"Domain not found or not allowed for this key (404: {detail}). {where}", response
        )
    if status == 404:
        url = response.request.url if response.request is not None else response.url
        return EndpointNotFoundError(
            f"The server has no {urlsplit(url or '').path} (404: {detail}): the base URL looks "
            f"wrong. Check {base_url_of(url)!r}; it should be the API's root, such as "
            f"https://api.aiclicks.io. {where}",
            response,
        )
    if status in (400, 422):
        return BadRequestError(f"The API refused the request ({status}: {detail}). {where}", response)
    if status == 429:
        return RateLimitedError(
            f"Still rate limited after every retry (429: {detail}). {where}", response
        )
    if status >= 500:
        return ServerError(
            f"The API failed after every retry ({status}: {detail or response.reason}). {where}",
            response,
        )
    return AIclicksHTTPError(f"Unexpected response {status}: {detail}. {where}", response)


def is_domain_not_found(response: Response) -> bool:
    """A 404 the API gives for a domain (unknown, or outside the key's allowed domains): its
    documented detail, on a request that named a domain. Any other 404 (a framework's
    `Not Found` for a path the API does not have) means the URL is wrong."""
    url = response.request.url if response.request is not None else response.url
    if response.status_code != 404 or not query_value(url, "domain_id"):
        return False
    return ERROR_DETAILS[404].lower() in error_detail(response).lower()


def is_domain_refusal(response: Response) -> bool:
    """A 403 that concerns the domain asked, not the key: on a request that named a domain, with
    another detail than the documented one for a team without developer access (which names
    the team). Whether the key's other requests succeed decides the rest (keypool.py)."""
    url = response.request.url if response.request is not None else response.url
    if response.status_code != 403 or not query_value(url, "domain_id"):
        return False
    detail = error_detail(response).lower()
    return ERROR_DETAILS[403].lower() not in detail and "team" not in detail


def raise_for_api_error(response: Response, *args: Any, **kwargs: Any) -> Response:
    """A `requests` response hook: error statuses and unreadable bodies become our errors.

    Raised inside the session's `send`, so the retry layer sees them and retries 429, 5xx and
    malformed bodies before they ever reach the user.
    """
    if response.status_code >= 400:
        raise error_for_response(response)
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise MalformedResponseError(
            f"The API sent a body that is not valid JSON ({exc}). "
            f"{request_label(response)} [X-Request-Id: {request_id(response)}]",
            response,
        ) from None
    if not isinstance(body, dict):
        raise MalformedResponseError(
            f"The API sent {type(body).__name__} where a JSON object was expected. "
            f"{request_label(response)} [X-Request-Id: {request_id(response)}]",
            response,
        )
    # dlt's client reads the body again as `response.json()` (with simplejson): the one parse
    # is kept (a parse of every page spared)
    response.json = lambda **kwargs: body  # type: ignore[method-assign]
    return response


def causes(exc: BaseException) -> List[BaseException]:
    """`exc` and the exceptions it wraps (dlt wraps ours in PipelineStepFailed, ...)."""
    chain: List[BaseException] = []
    current: Optional[BaseException] = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def find_api_error(exc: BaseException) -> Optional[AIclicksError]:
    """Finds our error inside the exceptions dlt wraps around it (PipelineStepFailed, ...)."""
    return next((c for c in causes(exc) if isinstance(c, AIclicksError)), None)


# Failures of other libraries whose own text sends a user the wrong way, as (pattern in the
# innermost message, one line that says what happened). dlt reports DuckDB's lock conflict as
# a connection failure ("check credentials ... internet connection may be down").
KNOWN_CAUSES: List[Tuple["re.Pattern[str]", Callable[["re.Match[str]"], str]]] = [
    (
        re.compile(
            r'Could not set lock on file "(?P<path>[^"]+)"'
            r"(?:: Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\))?"
            # how long this process waited for it (warehouse_wait.py)
            r"(?:.*\(waited (?P<waited>\d+) s for it\))?",
            re.S,
        ),
        lambda match: (
            f"The warehouse file {match['path']} is in use by another process"
            + (f" (pid {match['pid']}: {match['program']})" if match["pid"] else "")
            + (f", still after waiting {match['waited']} s" if match["waited"] else "")
            + ": close it there (a notebook, a DuckDB shell, another sync) and run again."
        ),
    ),
]


def explain_failure(exc: BaseException) -> Optional[str]:
    """One line a user understands for `exc`: our own error's message, or a known cause found
    among the exceptions dlt wrapped around it; None when nothing is known of it."""
    api_error = find_api_error(exc)
    if api_error is not None:
        return str(api_error)
    for cause in reversed(causes(exc)):  # the innermost says it most precisely
        for pattern, explain in KNOWN_CAUSES:
            match = pattern.search(str(cause))
            if match:
                return explain(match)
    return None


class ConnectionFailedError(AIclicksError):
    """The connection dropped or timed out on every attempt."""


def is_connect_failure(exc: BaseException) -> bool:
    """True when no connection was made at all (refused, the host name did not resolve, the
    connect timed out), as opposed to one that dropped or timed out while reading."""
    if isinstance(exc, ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError and its kinds too


def connection_problem(exc: BaseException) -> str:
    """What went wrong with a connection, in a few words."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NameResolutionError):
        return "the host name does not resolve"
    if isinstance(reason, NewConnectionError):
        return "connection refused" if "refused" in str(reason).lower() else "could not connect"
    if is_connect_failure(exc):
        return "connecting timed out"
    if isinstance(exc, Timeout):
        return "no answer within the timeout"
    return f"the connection dropped ({type(exc).__name__})"
