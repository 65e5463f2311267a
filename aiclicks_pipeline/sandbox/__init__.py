"""A local fake of the AIclicks v1 API: deterministic data, faults on demand.

    from aiclicks_pipeline.sandbox import run_sandbox, SANDBOX_API_KEY

    with run_sandbox(seed=1, start="2026-06-17T10:00:00Z", frozen=True) as sandbox:
        requests.get(sandbox.base_url + "/api/v1/domains",
                     headers={"Authorization": f"Bearer {sandbox.api_key}"})

The readings taken where the API's docs are unclear are listed in ``server.py``'s docstring
(and explained in docs/api-notes.md, Readings).
"""

from .account import Account
from .clock import SandboxClock
from .faults import FAULT_KINDS, Faults
from .keys import NO_ACCESS_API_KEY, NO_DOMAINS_API_KEY, RESTRICTED_API_KEY, SANDBOX_API_KEY
from .runner import Sandbox, add_arguments, run_sandbox, serve

__all__ = [
    "Account",
    "FAULT_KINDS",
    "Faults",
    "NO_ACCESS_API_KEY",
    "NO_DOMAINS_API_KEY",
    "RESTRICTED_API_KEY",
    "SANDBOX_API_KEY",
    "Sandbox",
    "SandboxClock",
    "add_arguments",
    "run_sandbox",
    "serve",
]
