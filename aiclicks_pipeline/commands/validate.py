"""`aiclicks-pipeline validate`: is each key good, what may it see, how much budget is left."""

import argparse
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from ..settings import VALIDATE_PATH
from .base import EXIT_FAILED, EXIT_OK, Command, check_base_url, resolve_keys_and_url


class ValidateCommand(Command):
    command = "validate"
    help_string = "check the key(s): team, domains, rate limit"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--base-url")

    def check_arguments(self, args: argparse.Namespace) -> None:
        check_base_url(args.base_url)

    def execute(self, args: argparse.Namespace) -> int:
        from ..errors import AIclicksHTTPError
        from ..keypool import key_label
        from ..session import fetch_envelope

        api_keys, base_url = resolve_keys_and_url(args)
        if len(api_keys) == 1:  # a refused key fails the command in one line, as any request
            print_validation(fetch_envelope(api_keys[0], base_url, VALIDATE_PATH))
            return EXIT_OK
        per_minute: List[int] = []
        refused = 0
        for position, api_key in enumerate(api_keys, start=1):
            label = key_label(position, len(api_keys), api_key)
            try:
                body = fetch_envelope(api_key, base_url, VALIDATE_PATH)
            except AIclicksHTTPError as exc:
                refused += 1
                print(f"{label[0].upper()}{label[1:]}: REFUSED: {exc}\n")
                continue
            name = ((body.get("data") or {}).get("key") or {}).get("name")
            print(f"{label[0].upper()}{label[1:]}" + (f" ({name})" if name else "") + ":")
            print_validation(body)
            limit = ((body.get("data") or {}).get("rate_limit") or {}).get("limit_per_minute")
            per_minute += [int(limit)] if limit else []
            print()
        usable = len(api_keys) - refused
        print(
            f"Key pool: {usable} of {len(api_keys)} key(s) usable"
            + (f", {sum(per_minute)} requests/minute together" if per_minute else "")
        )
        return EXIT_FAILED if refused else EXIT_OK


def print_validation(body: Dict[str, Any]) -> None:
    """What `/validate` said of one key."""
    from ..plan import seconds_to_reset

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
