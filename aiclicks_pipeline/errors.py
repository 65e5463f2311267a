"""Errors a user understands, raised from the HTTP responses of the AIclicks API.

Every message names the request (path and domain, never the key) and the server's
`X-Request-Id`, which AIclicks support asks for.
"""

import json
from typing import Any, Optional
from urllib.parse import urlsplit

from requests import HTTPError, Response

from .values import query_value

KEYS_HELP = "Create or copy a key in the AIclicks dashboard under Settings -> Developers -> Create API Key"


class AIclicksError(Exception):
    """Base of the errors this package raises on purpose."""


class MissingApiKeyError(AIclicksError, ValueError):
    """No key was configured."""


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
    """403: developer access is off for the key's team."""


class DomainNotFoundError(AIclicksHTTPError):
    """404: the domain does not exist or is outside the key's allowed domains."""


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
    if status == 403:
        return AccessDeniedError(
            f"Developer API access is not enabled for this key's team (403: {detail}). "
            f"A team admin can enable it, or contact support@aiclicks.io. {where}",
            response,
        )
    if status == 404:
        return DomainNotFoundError(
            f"Domain not found or not allowed for this key (404: {detail}). {where}", response
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
    return response


def find_api_error(exc: BaseException) -> Optional[AIclicksError]:
    """Finds our error inside the exceptions dlt wraps around it (PipelineStepFailed, ...)."""
    seen = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AIclicksError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class ConnectionFailedError(AIclicksError):
    """The connection dropped or timed out on every attempt."""
