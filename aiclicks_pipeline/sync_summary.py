"""A sync's result for whoever reads it: the lines a user reads after a run (`render_text`), the
JSON a scheduler reads (`render_json`: `run --json`, `--summary-file`, an Airflow task's XCom),
and the one-line verdicts the command line prints (`progress_line`, `partial_line`).

`SyncResult` (checkpoints.py) is the data; this module is the only place that words it.
"""

from typing import Any, Dict, Optional

from .checkpoints import SyncResult
from .pipeline import describe_where
from .run_status import FAILED, INTERRUPTED
from .windows import lost_dates_line

TITLES = {INTERRUPTED: "Sync stopped", FAILED: "Sync failed"}


def progress_line(result: SyncResult) -> str:
    """`committed 212 of 500 domains; run again to continue` and the like: the counts of
    `render_json(result)["domains"]`, in words."""
    if result.status == INTERRUPTED and not result.domains_total:
        return "stopped before the first checkpoint; nothing was committed"
    if not result.domains_total:
        return "no domains to sync"
    text = f"committed {result.domains_committed} of {result.domains_total} domains"
    if result.domains_fresh:
        text += f", {result.domains_fresh} left out (synced within the resync interval)"
    if result.skipped_domains:
        text += f", {len(result.skipped_domains)} skipped"
    if result.domains_left:
        text += "; run again to continue"
    return text


def partial_line(result: SyncResult) -> Optional[str]:
    """Why a run that ended is partial (exit 3), or None when it is not."""
    reasons = []
    if result.skipped_domains:
        reasons.append(f"{len(result.skipped_domains)} domain(s) skipped (listed above)")
    if result.unknown_domains:
        reasons.append(
            f"{len(result.unknown_domains)} --domains id(s) the key does not list "
            f"({', '.join(result.unknown_domains)})"
        )
    if reasons:
        loaded = result.domains_committed + result.domains_fresh
        return f"Partial sync: {'; '.join(reasons)}; the other {loaded} domain(s) are loaded."
    if not result.domains_total:
        return "Partial sync: no domains to sync (the key lists none, or the shard holds none)."
    return None


def where_text(result: SyncResult) -> str:
    """Where the run loads: `duckdb file /x/aiclicks_warehouse.duckdb, dataset aiclicks`."""
    return describe_where(result.where)


def render_text(result: SyncResult, title: Optional[str] = None) -> str:
    """What a user reads after a sync: rows per table, requests, 429s, windows, skips."""
    stats = result.stats
    title = title or TITLES.get(result.status, "Sync finished")
    lines = [f"\n{title} after {result.elapsed_s:.1f}s: {progress_line(result)}"]
    if result.where:
        lines.append(f"  into {where_text(result)}")
    if result.finished_pending:
        lines.append(f"  first finished {len(result.finished_pending)} load(s) an interrupted run left")
    lines.append(f"  {'table':<28}{'rows written':>14}")
    lines += [f"  {table:<28}{count:>14}" for table, count in result.rows.items()]
    lines.append(f"  {'total':<28}{result.total_rows:>14}")
    lines.append(
        f"  requests: {stats.requests} (planned {result.planned_requests}), "
        f"429s met: {stats.rate_limited}, connection errors: {stats.connection_errors}, "
        f"responses already loaded (skipped): {stats.skipped_responses}"
    )
    if result.checkpoints_total:
        lines.append(f"  checkpoints committed: {result.checkpoints_committed} of {result.checkpoints_total}")
    if result.windows_asked:
        windows = ", ".join(f"{name}={days}" for name, days in sorted(result.windows_asked.items()))
        lines.append(f"  days asked: {windows}")
    if stats.rate_limit_wait_s >= 1:
        lines.append(
            f"  waited {stats.rate_limit_wait_s:.0f}s for the API's rate limit "
            "(the key's requests per minute), not for the API or the warehouse"
        )
    if result.unrecoverable_dates:
        lines.append(f"  {lost_dates_line(result.unrecoverable_dates)}")
    if result.skipped_domains:
        lines.append(f"  SKIPPED {len(result.skipped_domains)} domain(s):")
        lines += [f"    {domain_id}: {reason}" for domain_id, reason in result.skipped_domains.items()]
    return "\n".join(lines)


def render_json(result: SyncResult) -> Dict[str, Any]:
    """The run for a scheduler or a monitor: every figure of `render_text`, as JSON values."""
    stats = result.stats
    return {
        "status": result.status,
        "run_id": result.run_id,
        "destination": dict(result.where),
        "started_at": result.started_at.isoformat() if result.started_at else None,
        "finished_at": result.finished_at.isoformat() if result.finished_at else None,
        "duration_s": round(result.elapsed_s, 3),
        "requests": stats.requests,
        "planned_requests": result.planned_requests,
        "rate_limited": stats.rate_limited,
        "rate_limit_wait_s": round(stats.rate_limit_wait_s, 3),
        "connection_errors": stats.connection_errors,
        "responses_by_status": stats.as_dict()["responses_by_status"],
        "rows": dict(result.rows),
        "rows_total": result.total_rows,
        "domains": {
            "total": result.domains_total,
            "committed": result.domains_committed,
            "fresh": result.domains_fresh,
            "skipped": len(result.skipped_domains),
            "left": result.domains_left,
        },
        "skipped_domains": dict(result.skipped_domains),
        "unknown_domains": list(result.unknown_domains),
        "checkpoints": {"total": result.checkpoints_total, "committed": result.checkpoints_committed},
        "days_asked": {name: days for name, days in sorted(result.windows_asked.items())},
        "unrecoverable_dates": dict(result.unrecoverable_dates),
        "finished_pending_loads": list(result.finished_pending),
        "load_ids": list(result.load_ids),
        "signal": result.signal,
        "error": result.error,
    }


__all__ = ["partial_line", "progress_line", "render_json", "render_text", "where_text"]
