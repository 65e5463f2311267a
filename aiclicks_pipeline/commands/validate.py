"""`aiclicks-pipeline validate`: is the key good, what may it see, how much budget is left."""

import argparse
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from ..session import fetch_envelope
from ..settings import VALIDATE_PATH
from .base import EXIT_OK, Command, check_base_url, resolve_key_and_url


class ValidateCommand(Command):
    command = "validate"
    help_string = "check the key: team, domains, rate limit"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base-url")

    def check_arguments(self, args: argparse.Namespace) -> None:
        check_base_url(args.base_url)

    def execute(self, args: argparse.Namespace) -> int:
        from ..plan import seconds_to_reset

        api_key, base_url = resolve_key_and_url(args)
        body = fetch_envelope(api_key, base_url, VALIDATE_PATH)
        data = body.get("data") or {}
        key = data.get("key") or {}
        print(f"Key valid: {data.get('valid')}")
        for label, value in (
            ("name", key.get("name")),
            ("id", key.get("id")),
            ("created", readable_time(key.get("created_at"))),
            ("type", data.get("key_type")),
            ("user", data.get("user_id")),
        ):
            if value:
                print(f"  {label:<9}{value}")
        teams = data.get("teams") or []
        print(f"Teams ({len(teams)}):")
        for team in teams:
            access = "on" if team.get("developer_access") else "OFF"
            print(
                f"  {team.get('name')} ({team.get('id')}): developer access {access}, "
                f"{team.get('domains_count')} domain(s)"
            )
        allowed = data.get("allowed_domains")
        if allowed is None:
            print("Allowed domains: all of the teams' domains")
        else:
            print(f"Allowed domains ({len(allowed)}):")
            for domain in allowed:
                print(f"  {domain.get('id')}  {domain.get('name')}  {domain.get('website')}")
        print(rate_limit_line(data.get("rate_limit") or {}, seconds_to_reset(body)))
        return EXIT_OK


def readable_time(value: Optional[str]) -> Optional[str]:
    """`2026-02-14T10:11:02.318Z` -> `2026-02-14 10:11:02 UTC`; other text as it is."""
    from ..windows import parse_timestamp

    if not value:
        return None
    try:
        return parse_timestamp(value).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return value


def rate_limit_line(rate: Dict[str, Any], to_reset: Optional[float]) -> str:
    line = f"Rate limit: {rate.get('limit_per_minute')} requests/minute"
    if rate.get("remaining") is not None:
        line += f", {rate['remaining']} left in this window"
    reset_at = rate.get("reset_at")
    if reset_at is not None:
        try:
            at = datetime.fromtimestamp(float(reset_at), timezone.utc).isoformat(timespec="seconds")
        except (TypeError, ValueError, OverflowError):
            at = str(reset_at)
        line += f"; the window resets at {at.replace('+00:00', 'Z')}"
        if to_reset is not None:
            line += f" (in {to_reset:.0f} s)"
    return line
