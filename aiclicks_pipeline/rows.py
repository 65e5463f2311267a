"""Turns an API envelope into warehouse rows (the shapes of docs/api-notes.md,
Envelope; the endpoint table's `shape`).

Every row gets the envelope's `generated_at`, its `domain_id` where the endpoint is scoped, and
for window aggregates the `days` window and the `snapshot_date` (UTC date of `generated_at`).
Unknown fields pass through untouched: the API's changes are additive (docs/api-notes.md,
Reading: new fields appear without notice) and dlt turns
them into new columns.
"""

import logging
from typing import Any, Dict, Iterator, Optional

from .settings import ENDPOINTS
from .windows import snapshot_date

logger = logging.getLogger("aiclicks_pipeline")


def envelope_items(envelope: Dict[str, Any]) -> list:
    payload = envelope.get("data")
    if isinstance(payload, dict):
        items = payload.get("items")
    else:
        # tolerate a bare list under `data`
        items = payload
    return [item for item in items or [] if isinstance(item, dict)]


def without_repeated_items(envelope: Dict[str, Any]) -> Dict[str, Any]:
    """The envelope of a list read whole (`/domains`) with each item `id` once, the first: a
    domain listed twice would otherwise be synced, counted and planned twice."""
    seen: set = set()
    unique, repeated = [], []
    for item in envelope_items(envelope):
        item_id = str(item.get("id"))
        if item_id in seen:
            repeated.append(item_id)
            continue
        seen.add(item_id)
        unique.append(item)
    if not repeated:
        return envelope
    logger.warning("The API listed %s more than once; each is synced once.", ", ".join(sorted(set(repeated))))
    data = envelope.get("data")
    data = {**data, "items": unique} if isinstance(data, dict) else unique
    return {**envelope, "data": data}


def envelope_rows(
    resource: str, envelope: Dict[str, Any], domain_id: Optional[str], days: Optional[int]
) -> Iterator[Dict[str, Any]]:
    spec = ENDPOINTS[resource]
    generated_at = envelope.get("generated_at")
    stamp: Dict[str, Any] = {"generated_at": generated_at}
    if spec["domain_scoped"]:
        stamp["domain_id"] = domain_id
    if spec.get("window") == "snapshot":
        stamp["days"] = days
        stamp["snapshot_date"] = snapshot_date(generated_at) if generated_at else None

    if spec["shape"] == "fanout":
        yield from _fanout_rows(envelope, stamp, spec["nested_items"][0])
        return
    for item in envelope_items(envelope):
        yield {**item, **stamp}


def _fanout_rows(
    envelope: Dict[str, Any], stamp: Dict[str, Any], nested: str
) -> Iterator[Dict[str, Any]]:
    """One row per emission (docs/api-notes.md, Endpoint: /fanout-queries), carrying its prompt's id and text."""
    for prompt in envelope_items(envelope):
        prompt_fields = {
            f"prompt_{key}": value
            for key, value in prompt.items()
            if key != nested and not isinstance(value, (dict, list))
        }
        for emission in prompt.get(nested) or []:
            if isinstance(emission, dict):
                yield {**prompt_fields, **emission, **stamp}
