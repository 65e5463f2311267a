"""`aiclicks-pipeline validate`: is the key good, what may it see, how much budget is left."""

import argparse

from ..session import fetch_envelope
from ..settings import VALIDATE_PATH
from .base import EXIT_OK, Command, resolve_key_and_url


class ValidateCommand(Command):
    command = "validate"
    help_string = "check the key: team, domains, rate limit"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base-url")

    def execute(self, args: argparse.Namespace) -> int:
        api_key, base_url = resolve_key_and_url(args)
        body = fetch_envelope(api_key, base_url, VALIDATE_PATH)
        data = body.get("data") or {}
        key = data.get("key") or {}
        print(f"Key valid: {data.get('valid')} ({data.get('key_type')}) {key.get('name', '')}".rstrip())
        for team in data.get("teams") or []:
            access = "on" if team.get("developer_access") else "OFF"
            print(
                f"Team: {team.get('name')} ({team.get('id')}), developer access {access}, "
                f"{team.get('domains_count')} domain(s)"
            )
        allowed = data.get("allowed_domains")
        if allowed is not None:
            print(f"Allowed domains ({len(allowed)}):")
            for domain in allowed:
                print(f"  {domain.get('id')}  {domain.get('name')}  {domain.get('website')}")
        limit = data.get("rate_limit") or {}
        print(
            f"Rate limit: {limit.get('limit_per_minute')} requests/minute, "
            f"{limit.get('remaining')} left, window resets at {limit.get('reset_at')}"
        )
        return EXIT_OK
