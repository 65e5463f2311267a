"""Reading loosely typed values: integers the API may send as numbers or strings, and query
parameters of a request's URL."""

from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit


def as_int(value: Any) -> Optional[int]:
    """`3`, `3.0`, `"3"` or `"3.0"` -> 3; anything else (None, a bool, text) -> None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def query_value(url: Optional[str], key: str) -> Optional[str]:
    """The first value of query parameter `key` in `url`, or None."""
    return parse_qs(urlsplit(url or "").query).get(key, [None])[0]
