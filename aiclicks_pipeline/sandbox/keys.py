"""The sandbox's fake credentials: one team, API keys with different reach, and a pool of
full-access keys for syncs that take several keys (each its own rate-limit window)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional

from .account import Account

SANDBOX_API_KEY = "ak_live_sandbox_0123456789abcdef"
RESTRICTED_API_KEY = "ak_live_sandbox_restricted_0123456789"
NO_ACCESS_API_KEY = "ak_live_sandbox_noaccess_0123456789"
# a key whose creator allowed it no domain: valid, and it sees none
NO_DOMAINS_API_KEY = "ak_live_sandbox_nodomains_0123456789"
# more full-access keys of the same team, for a key pool (docs/api-notes.md, Rate limit: a
# second key on a team has its own budget); SANDBOX_API_KEY is the pool's first
POOL_API_KEYS = (SANDBOX_API_KEY,) + tuple(
    f"ak_live_sandbox_pool{i}_0123456789abcdef" for i in range(2, 9)
)

_NAMESPACE = uuid.UUID("6f1c2b1e-8d5a-4c3e-9a7b-5e2d1f0a9c84")
USER_ID = str(uuid.uuid5(_NAMESPACE, "user"))
TEAM_ID = str(uuid.uuid5(_NAMESPACE, "team"))
TEAM_NAME = "Sandbox Team"


@dataclass(frozen=True)
class ApiKey:
    token: str
    name: str
    created_at: str
    # "all": every domain; "first_half": the creator's allowlist is the first half of them;
    # "none": an empty allowlist
    scope: str
    developer_access: bool = True
    # where in the rate-limit window's length this key's windows start (a fraction of it):
    # the keys of a pool do not turn their windows together
    window_phase: float = 0.0

    @property
    def id(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.token))

    def allowed_domain_ids(self, account: Account) -> List[str]:
        ids = account.domain_ids()
        if self.scope == "none":
            return []
        return ids if self.scope == "all" else ids[: len(ids) // 2]


API_KEYS: Dict[str, ApiKey] = {
    key.token: key
    for key in (
        ApiKey(SANDBOX_API_KEY, "Sandbox full access", "2026-02-14T10:11:02.318Z", "all"),
        ApiKey(RESTRICTED_API_KEY, "Sandbox restricted", "2026-03-01T08:00:00.000Z", "first_half"),
        ApiKey(NO_DOMAINS_API_KEY, "Sandbox no domains", "2026-03-03T08:00:00.000Z", "none"),
        ApiKey(
            NO_ACCESS_API_KEY,
            "Sandbox no access",
            "2026-03-02T08:00:00.000Z",
            "all",
            developer_access=False,
        ),
        *(
            ApiKey(token, f"Sandbox pool key {i}", "2026-03-04T08:00:00.000Z", "all",
                   window_phase=(i - 1) / len(POOL_API_KEYS))
            for i, token in enumerate(POOL_API_KEYS[1:], start=2)
        ),
    )
}
WINDOW_PHASES: Dict[str, float] = {token: key.window_phase for token, key in API_KEYS.items()}


def authenticate(authorization: Optional[str]) -> Optional[ApiKey]:
    """The key of an ``Authorization: Bearer <key>`` header; None if missing, malformed or
    unknown (all three get the same 401; docs/api-notes.md, Reading: status codes for 401 and 404)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return API_KEYS.get(token.strip())
