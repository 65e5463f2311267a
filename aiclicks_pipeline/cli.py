"""`aiclicks-pipeline`: run a sync, check a key, plan nothing by hand, try it all on a sandbox."""

import argparse
import logging
import sys
from typing import Any, Dict, List, Optional, Sequence


from .errors import AIclicksError, find_api_error
from .settings import (
    API_KEY_ENV,
    API_PREFIX,
    DEFAULT_BASE_URL,
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_PIPELINE_NAME,
    ENDPOINTS,
    VALIDATE_PATH,
)

EXIT_FAILED = 1
EXIT_PARTIAL = 3


def _csv(value: str) -> List[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", help=f"API root (default from config, else {DEFAULT_BASE_URL})")
    parser.add_argument("--domains", type=_csv, help="comma-separated domain ids (default: all)")
    parser.add_argument(
        "--shard", help="k/n: load the k-th of n stable shares of the domains (state kept apart)"
    )
    parser.add_argument(
        "--resources", type=_csv, help=f"comma-separated tables to load: {', '.join(ENDPOINTS)}"
    )
    parser.add_argument("--initial-days", type=int, help="history of a first sync (default 90)")
    parser.add_argument("--lookback-days", type=int, help="recent days re-read every sync (default 2)")
    parser.add_argument("--snapshot-days", type=int, help="window of the aggregates (default 30)")


def add_destination_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--destination",
        help="any dlt destination: duckdb, postgres, bigquery, snowflake, ... "
        "(default: destination_type from .dlt/ or DESTINATION_TYPE, else duckdb)",
    )
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset / schema name")
    parser.add_argument(
        "--duckdb-file", default=DEFAULT_DUCKDB_FILE, help="DuckDB file (destination duckdb)"
    )
    parser.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME)
    parser.add_argument("--pipelines-dir", help="where dlt keeps its working state")
    parser.add_argument("--full-refresh", action="store_true", help="drop the tables and state first")
    parser.add_argument(
        "--loader-file-format", help="dlt file format (default: jsonl where the destination takes it)"
    )
    parser.add_argument(
        "--schema-contract",
        choices=["evolve", "freeze"],
        help="what an API schema change does: evolve (default) or freeze to fail on it",
    )


def source_options(args: argparse.Namespace) -> Dict[str, Any]:
    """Only what was given on the command line; dlt's config supplies the rest."""
    options = {
        "base_url": args.base_url,
        "domain_ids": args.domains,
        "shard": args.shard,
        "initial_days": args.initial_days,
        "lookback_days": args.lookback_days,
        "snapshot_days": args.snapshot_days,
    }
    return {key: value for key, value in options.items() if value is not None}


def print_summary(result: Any, title: str = "Sync finished", out: Any = None) -> None:
    out = out or sys.stdout
    stats = result.stats
    print(f"\n{title} in {result.elapsed_s:.1f}s", file=out)
    print(f"  {'table':<28}{'rows written':>14}", file=out)
    for table, count in result.rows.items():
        print(f"  {table:<28}{count:>14}", file=out)
    print(f"  {'total':<28}{result.total_rows:>14}", file=out)
    print(
        f"  requests: {stats.requests}, 429s met: {stats.rate_limited}, "
        f"connection errors: {stats.connection_errors}, "
        f"responses already loaded (skipped): {stats.skipped_responses}",
        file=out,
    )
    if result.windows_asked:
        windows = ", ".join(f"{name}={days}" for name, days in sorted(result.windows_asked.items()))
        print(f"  days asked: {windows}", file=out)
    if result.skipped_domains:
        print(f"  SKIPPED {len(result.skipped_domains)} domain(s):", file=out)
        for domain_id, reason in result.skipped_domains.items():
            print(f"    {domain_id}: {reason}", file=out)


def pipeline_for(args: argparse.Namespace, progress: Any = None) -> Any:
    """The dlt pipeline the destination options describe."""
    from .pipeline import make_pipeline

    return make_pipeline(
        destination=args.destination,
        dataset_name=args.dataset,
        pipeline_name=pipeline_name_for(args),
        pipelines_dir=args.pipelines_dir,
        duckdb_file=args.duckdb_file,
        progress=progress,
    )


def command_run(args: argparse.Namespace) -> int:
    from .pipeline import run_sync

    pipeline = pipeline_for(args, progress=None if args.quiet else "log")
    result = run_sync(
        pipeline,
        resources=args.resources,
        full_refresh=args.full_refresh,
        loader_file_format=args.loader_file_format,
        schema_contract=args.schema_contract,
        **source_options(args),
    )
    print_summary(result)
    if result.skipped_domains:
        print(
            f"Partial sync: {len(result.skipped_domains)} domain(s) skipped, all others loaded.",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    return 0


def fetch(api_key: str, base_url: str, path: str) -> Dict[str, Any]:
    """One GET through the sync's session (key, request id, retries, errors)."""
    from .errors import raise_for_api_error
    from .session import AIclicksSession, ApiKeyAuth
    from .sync import SyncContext

    session = AIclicksSession(SyncContext(), max_attempts=3)
    session.auth = ApiKeyAuth(token=api_key)
    response = session.get(
        f"{base_url.rstrip('/')}{API_PREFIX}/{path}", hooks={"response": [raise_for_api_error]}
    )
    return response.json()


def resolve_key_and_url(args: argparse.Namespace) -> tuple:
    import os

    import dlt

    api_key = dlt.secrets.get("sources.aiclicks.api_key") or os.environ.get(API_KEY_ENV)
    if not api_key:
        raise AIclicksError(
            f"No API key: set SOURCES__AICLICKS__API_KEY or {API_KEY_ENV}, or [sources.aiclicks] "
            "api_key in .dlt/secrets.toml"
        )
    base_url = args.base_url or dlt.config.get("sources.aiclicks.base_url") or DEFAULT_BASE_URL
    return api_key, base_url


def command_validate(args: argparse.Namespace) -> int:
    api_key, base_url = resolve_key_and_url(args)
    body = fetch(api_key, base_url, VALIDATE_PATH)
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
    return 0


def command_plan(args: argparse.Namespace) -> int:
    from .plan import make_plan, print_plan

    api_key, base_url = resolve_key_and_url(args)
    validate_body = fetch(api_key, base_url, VALIDATE_PATH)
    domains_body = fetch(api_key, base_url, ENDPOINTS["domains"]["path"])
    pipeline = pipeline_for(args)
    options = source_options(args)
    options.pop("base_url", None)
    plan = make_plan(validate_body, domains_body, pipeline, **options)
    print_plan(plan, sys.stdout)
    return 0


def pipeline_name_for(args: argparse.Namespace) -> str:
    if not args.shard:
        return args.pipeline_name
    # each shard keeps its own dlt state (and cursors) beside the others in the dataset
    return f"{args.pipeline_name}_shard_{args.shard.replace('/', '_of_')}"


def command_transform(args: argparse.Namespace) -> int:
    from .transform import run_transform

    result = run_transform(
        duckdb_file=args.duckdb_file,
        dataset=args.dataset,
        target=args.target,
        schema=args.schema,
        work_dir=args.work_dir,
        quiet=args.quiet,
    )
    print(result.summary())
    return 0


def command_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(workdir=args.workdir, domains=args.sandbox_domains, seed=args.seed)


def command_sandbox(args: argparse.Namespace) -> int:
    from . import sandbox

    sandbox.serve(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiclicks-pipeline",
        description="Load the AIclicks API into your warehouse with dlt.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="sync the configured API into the destination")
    add_source_arguments(run)
    add_destination_arguments(run)
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(func=command_run)

    validate = commands.add_parser("validate", help="check the key: team, domains, rate limit")
    validate.add_argument("--base-url")
    validate.set_defaults(func=command_validate)

    from .transform import DEFAULT_MODELS_SCHEMA, DEFAULT_TARGET, TARGETS

    transform = commands.add_parser(
        "transform", help="dbt build: the packaged dbt models and tests on the loaded data"
    )
    transform.add_argument(
        "--duckdb-file", default=DEFAULT_DUCKDB_FILE, help="the DuckDB file a sync wrote"
    )
    transform.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset the sync loaded")
    transform.add_argument(
        "--schema", default=DEFAULT_MODELS_SCHEMA, help="schema the models are written to"
    )
    transform.add_argument(
        "--target", default=DEFAULT_TARGET, choices=TARGETS,
        help="dbt profile target (credentials from AICLICKS_* variables, see the README)",
    )
    transform.add_argument("--work-dir", help="dbt's target/ and logs/ (default: beside the file)")
    transform.add_argument("--quiet", action="store_true", help="no dbt progress lines")
    transform.set_defaults(func=command_transform)

    plan = commands.add_parser(
        "plan", help="print the requests the next run makes and the time the rate limit needs"
    )
    add_source_arguments(plan)
    add_destination_arguments(plan)
    plan.set_defaults(func=command_plan)

    demo = commands.add_parser("demo", help="start a sandbox API and sync it into DuckDB, twice")
    demo.add_argument("--workdir", default="demo_output", help="folder for the DuckDB file and state")
    demo.add_argument("--sandbox-domains", type=int, default=3)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=command_demo)

    sandbox_parser = commands.add_parser("sandbox", help="serve a local AIclicks API")
    from . import sandbox

    sandbox.add_arguments(sandbox_parser)
    sandbox_parser.set_defaults(func=command_sandbox)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure ends in one readable line and a non-zero code
        api_error = find_api_error(exc)
        message = str(api_error) if api_error is not None else f"{type(exc).__name__}: {exc}"
        print(f"aiclicks-pipeline: {message}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
