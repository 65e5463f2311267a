"""`aiclicks-pipeline plan`: the requests the next sync will make, and how long the keys' rate
limits make it take, before anything runs.

It asks the API `/validate` once per key (each key's rate limit: its limit per minute, what is
left, when its window resets; the response's `X-RateLimit-Limit` is the limit per window, so
the two give the window's length) and `/domains` once (the domains and the server's clock),
reads the per-domain cursors from the pipeline's state (local, else restored from the
destination), and estimates page counts from what the warehouse already holds.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dlt.pipeline.pipeline import Pipeline
from requests import Response

from .settings import DEFAULT_DATASET, DOMAIN_RESOURCES, ENDPOINTS
from .source import SOURCE_NAME, shard_filter
from .sync import SyncContext
from .throttle import WINDOW_S, Budget, seconds_for
from .values import as_int
from .windows import lost_dates_line, parse_timestamp
from .workdir import sync_with_destination

logger = logging.getLogger("aiclicks_pipeline")

# what a previous load tells of the pages a domain's list needs (rows per page of the list),
# one grouped query per list for all domains
PAGE_COUNT_SQL = {
    "prompts": "select domain_id, count(*) from {dataset}.prompts group by domain_id",
    "fanout_queries": (
        "select domain_id, count(distinct prompt_id) from {dataset}.fanout_queries group by domain_id"
    ),
    "citations": (
        "select c.domain_id, count(*) from {dataset}.citations c join (select domain_id,"
        " max(snapshot_date) as snapshot_date from {dataset}.citations group by domain_id) l"
        " on c.domain_id = l.domain_id and c.snapshot_date = l.snapshot_date group by c.domain_id"
    ),
}


@dataclass
class EndpointPlan:
    resource: str
    days: Optional[int]
    requests: int
    known: bool  # False when the page count is a guess (nothing loaded yet)
    fresh: bool = False  # synced within the resync interval: the run leaves it out


@dataclass
class SyncPlan:
    budgets: List[Budget]  # one per key that told its rate limit
    domains: Dict[str, List[EndpointPlan]] = field(default_factory=dict)
    resync_after_minutes: float = 0.0
    # per domain, the dates before the API's horizon its windows need: lost (windows.py)
    horizon_gaps: Dict[str, Tuple[Any, Any]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return 1 + sum(p.requests for plans in self.domains.values() for p in plans)

    def estimated_seconds(self) -> float:
        """Fixed windows of every key at once: what is left now, then each key's limit per
        window (throttle.seconds_for); 0 without a limit (a caller the API does not limit)."""
        return seconds_for(self.requests, self.budgets) if self.budgets else 0.0


def seconds_to_reset(validate_body: Dict[str, Any]) -> Optional[float]:
    """Seconds until the key's window resets, by `/validate`: its `reset_at` and its
    `generated_at` are both on the server's clock (which may be far from ours)."""
    rate = (validate_body.get("data") or {}).get("rate_limit") or {}
    reset_at = rate.get("reset_at")
    if reset_at is None:
        return None
    generated_at = validate_body.get("generated_at")
    try:
        server_now = parse_timestamp(generated_at).timestamp() if generated_at else time.time()
        return max(float(reset_at) - server_now, 0.0)
    except (TypeError, ValueError):
        return None


def budget_of(validate: Response) -> Optional[Budget]:
    """One key's rate limit from its `/validate` answer: `limit_per_minute` and the header's
    limit per window give the window (60 s when either is missing, as documented)."""
    body = validate.json()
    rate = (body.get("data") or {}).get("rate_limit") or {}
    per_minute = as_int(rate.get("limit_per_minute"))
    if not per_minute:
        return None
    per_window = as_int(validate.headers.get("X-RateLimit-Limit")) or per_minute
    window_s = min(WINDOW_S * per_window / per_minute, WINDOW_S)
    remaining = as_int(rate.get("remaining"))
    to_reset = seconds_to_reset(body)
    return Budget(
        left=per_window if remaining is None else remaining,
        limit=per_window,
        window_s=window_s,
        reset_in_s=window_s if to_reset is None else min(to_reset, window_s),
    )


def make_plan(
    validate_body: Dict[str, Any],
    domains_body: Dict[str, Any],
    pipeline: Optional[Pipeline],
    domain_ids: Optional[List[str]] = None,
    shard: Optional[str] = None,
    initial_days: Optional[int] = None,
    lookback_days: Optional[int] = None,
    snapshot_days: Optional[int] = None,
    resync_after_minutes: float = 0.0,
    budgets: Sequence[Budget] = (),
) -> SyncPlan:
    """What the next run asks: like a run, it leaves out each resource of a domain synced
    within `resync_after_minutes` (checkpoints.py), on the server's clock (`/validate` is
    never cached, so its `generated_at` is the server's now). `budgets`: each key's rate limit
    (`budget_of`)."""
    plan = SyncPlan(list(budgets), resync_after_minutes=max(resync_after_minutes, 0.0))
    states = resource_states(pipeline)
    windows = {"initial_days": initial_days, "lookback_days": lookback_days, "snapshot_days": snapshot_days}
    context = SyncContext(**{k: v for k, v in windows.items() if v is not None})
    context.begin(validate_body.get("generated_at") or domains_body.get("generated_at"), states)
    in_shard = shard_filter(shard)
    rows = known_rows(pipeline)
    for domain in (domains_body.get("data") or {}).get("items") or []:
        domain_id = str(domain.get("id"))
        if (domain_ids and domain_id not in domain_ids) or not in_shard(domain_id):
            continue
        due = context.due_resources(domain_id, DOMAIN_RESOURCES, plan.resync_after_minutes * 60)
        plan.domains[domain_id] = [
            EndpointPlan(name, context.window_days(name, domain_id), *requests_for(rows, name, domain_id))
            if name in due else EndpointPlan(name, None, 0, True, fresh=True)
            for name in DOMAIN_RESOURCES
        ]
    plan.horizon_gaps = dict(context.horizon_gaps)
    return plan


def requests_for(rows: Dict[str, Dict[str, int]], resource: str, domain_id: str) -> Tuple[int, bool]:
    """(requests, known) of one resource of one domain: one per page of what was loaded last,
    one when nothing was (`known` False: a guess)."""
    page_size = (ENDPOINTS[resource].get("page_size") or (None, None))[1]
    if not page_size:
        return 1, True
    loaded = rows.get(resource, {}).get(domain_id)
    if loaded is None:
        return 1, False
    return max(1, math.ceil(loaded / page_size)), True


def resource_states(pipeline: Optional[Pipeline], restore: bool = True) -> Dict[str, Dict[str, Any]]:
    """Each resource's dlt state (per-domain cursors and sync times), after restoring the
    state from the destination when it is newer there (a worker that starts from an empty
    disk)."""
    if pipeline is None:
        return {}
    if restore:
        try:
            sync_with_destination(pipeline)
        except Exception:  # no destination yet, nothing loaded: a first run
            logger.debug("no state restored for %s", pipeline.pipeline_name, exc_info=True)
    sources = pipeline.state.get("sources", {})
    resources = sources.get(SOURCE_NAME, {}).get("resources", {})
    return {name: dict(state) for name, state in resources.items()}


def known_rows(pipeline: Optional[Pipeline]) -> Dict[str, Dict[str, int]]:
    """Rows the warehouse holds per paged resource and domain: {resource: {domain_id: rows}}."""
    counts: Dict[str, Dict[str, int]] = {}
    if pipeline is None:
        return counts
    dataset = pipeline.dataset_name or DEFAULT_DATASET
    try:
        with pipeline.sql_client() as client:
            for resource, sql in PAGE_COUNT_SQL.items():
                try:
                    result = client.execute_sql(sql.format(dataset=client.fully_qualified_dataset_name()))
                except Exception:  # table not there yet
                    continue
                counts[resource] = {str(domain): int(n) for domain, n in result or []}
    except Exception:  # no destination yet, nothing loaded: a first run
        logger.debug("no row counts from %s", dataset, exc_info=True)
    return counts


def print_plan(plan: SyncPlan, out: Any, detail: bool = False) -> None:
    """Totals per endpoint and for the run, then the time the limit needs; the lines per
    domain and endpoint only with `detail` (an account of 500 domains fits a screen)."""
    guessed = any(not p.known for plans in plan.domains.values() for p in plans)
    if detail:
        print(f"{'domain':<38}{'endpoint':<20}{'days':>6}{'requests':>10}", file=out)
        for domain_id, plans in plan.domains.items():
            for p in plans:
                requests = "fresh" if p.fresh else f"{p.requests}{'' if p.known else '+'}"
                print(f"{domain_id:<38}{p.resource:<20}{p.days or '':>6}{requests:>10}", file=out)
        print(file=out)
    print(f"{'endpoint':<20}{'days asked':>16}{'requests':>10}", file=out)
    print(f"{'domains':<20}{'':>16}{1:>10}", file=out)
    for name in DOMAIN_RESOURCES:
        plans = [p for ps in plan.domains.values() for p in ps if p.resource == name]
        if not plans:
            continue
        days = ",".join(str(d) for d in sorted({p.days for p in plans if p.days}))
        requests = f"{sum(p.requests for p in plans)}{'' if all(p.known for p in plans) else '+'}"
        print(f"{name:<20}{days:>16}{requests:>10}", file=out)
    print(f"\n{plan.requests} requests for {len(plan.domains)} domain(s)", file=out)
    if plan.budgets:
        seconds = plan.estimated_seconds()
        keys = len(plan.budgets)
        per_minute = sum(b.limit * 60 / b.window_s for b in plan.budgets)
        windows = "/".join(sorted({f"{b.window_s:g}" for b in plan.budgets}))
        print(
            f"Rate limit {per_minute:.0f}/minute"
            + (f" over {keys} keys" if keys > 1 else "")
            + f" (windows of {windows} s), {sum(b.left for b in plan.budgets)} left now: "
            f"about {seconds:.0f}s of waiting for the limit ({seconds / 60:.1f} min), "
            "plus the API's own response time.",
            file=out,
        )
    if plan.horizon_gaps:
        print(lost_dates_line(plan.horizon_gaps), file=out)
    fresh = [domain_id for domain_id, plans in plan.domains.items() if all(p.fresh for p in plans)]
    partly = sum(1 for plans in plan.domains.values() if any(p.fresh for p in plans)) - len(fresh)
    if fresh or partly:
        print(
            f"Left out as synced within the last {plan.resync_after_minutes:g} minutes: "
            f"{len(fresh)} domain(s) in full, {partly} in part (--resync-after-minutes 0 asks again).",
            file=out,
        )
    if guessed:
        print("'+': nothing loaded yet to count pages from; one page a domain assumed.", file=out)
    if not detail and plan.domains:
        print("Per domain: add --detail.", file=out)
