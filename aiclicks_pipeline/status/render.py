"""`status` for a person (`render_text`: tables, a summary of the domains, the worst of them,
the last runs) and for a monitor (`render_json`)."""

import statistics
from typing import Any, Dict, List, Optional, Sequence

from ..history import RUNNING
from ..windows import parse_timestamp
from .model import (
    FRESH,
    INCOMPLETE,
    NEVER_LOADED,
    SEVERITY,
    STALE,
    UNLISTED,
    DomainStatus,
    WarehouseStatus,
    age_hours,
    table_order,
)

DEFAULT_WORST = 10


def render_json(status: WarehouseStatus) -> Dict[str, Any]:
    ages = _ages(status)
    return {
        "warehouse": status.description,
        "now": _iso(status.now),
        "max_age_hours": status.max_age_hours,
        "stale": status.is_stale,
        "pipelines": {name: _iso(at) for name, at in sorted(status.pipelines.items())},
        "tables": [
            {
                "table": t.name,
                "rows": t.rows,
                "last_load_at": _iso(t.last_load_at),
                "newest_generated_at": _iso(t.newest_generated_at),
            }
            for t in status.tables
        ],
        "domains_summary": {
            "total": len(status.domains),
            **{name.replace(" ", "_"): len(status.by_status(name)) for name in SEVERITY},
            "skipped_by_last_run": len(status.skipped_by_last_run),
            "age_hours_median": _round(statistics.median(ages)) if ages else None,
            "age_hours_max": _round(max(ages)) if ages else None,
        },
        "domains": [_domain_json(d) for d in status.worst()],
        "runs": status.runs,
        "running": [sync.as_json() for sync in status.running],
    }


def render_text(
    status: WarehouseStatus,
    worst: int = DEFAULT_WORST,
    detail: bool = False,
    domain_ids: Optional[Sequence[str]] = None,
) -> str:
    """The screen a person reads: tables, a summary of the domains and the worst `worst` of
    them (every one with `detail`, or those of `domain_ids` with their tables), runs."""
    lines = [f"Warehouse: {status.description}; now {_minute(status.now)} UTC"]
    if status.pipelines:
        states = ", ".join(
            f"{name} (state of {_minute(at)})" for name, at in sorted(status.pipelines.items())
        )
        lines.append(f"Pipelines: {states}")
    lines += [f"Now {sync.describe()}." for sync in status.running]
    lines.append("")
    lines.append(f"  {'table':<22}{'rows':>10}  {'last load (UTC)':<18}  newest generated_at (UTC)")
    for t in status.tables:
        if t.rows is None:
            lines.append(f"  {t.name:<22}{'-':>10}  not loaded")
            continue
        newest = _minute(t.newest_generated_at) if t.newest_generated_at else ""
        lines.append(f"  {t.name:<22}{t.rows:>10}  {_minute(t.last_load_at):<18}  {newest}")
    lines.append("")
    lines.extend(_domain_summary(status))
    if domain_ids:
        wanted = set(domain_ids)
        chosen = [d for d in status.worst() if d.domain_id in wanted]
        unknown = sorted(wanted - {d.domain_id for d in chosen})
        if unknown:
            lines.append(f"  not in the warehouse: {', '.join(unknown)}")
        lines.extend(_domain_lines(status, chosen, per_table=True))
    elif status.domains:
        shown = status.worst() if detail else status.worst()[:worst]
        title = "All domains, worst first" if detail or len(shown) == len(status.domains) else (
            f"The {len(shown)} worst domains (--detail: all; --domains ID,ID: their tables)"
        )
        lines.append(f"{title}:")
        lines.extend(_domain_lines(status, shown, per_table=False))
    lines.append("")
    lines.extend(_run_lines(status.runs))
    lines.append("")
    limit = _hours(status.max_age_hours)
    if status.is_stale:
        why = f"{len(status.behind)} domain(s) behind" if status.behind else "no fresh domain"
        lines.append(f"STALE: {why} (data older than {limit} h, or missing); exit 2.")
    else:
        lines.append(f"OK: every domain's data is under {limit} h old.")
    return "\n".join(lines)


def domain_note(domain: DomainStatus) -> str:
    notes = []
    if domain.status == NEVER_LOADED:
        notes.append("never loaded")
    if domain.status == UNLISTED:
        notes.append("no longer listed by the API")
    if domain.missing and domain.status != NEVER_LOADED:
        notes.append(f"no data yet for {', '.join(domain.missing)}")
    if domain.skipped_by_last_run:
        notes.append(f"skipped by the last run: {domain.skipped_by_last_run}")
    return "; ".join(notes)


def _domain_json(domain: DomainStatus) -> Dict[str, Any]:
    return {
        "domain_id": domain.domain_id,
        "name": domain.name,
        "status": domain.status,
        "oldest_cursor": _iso(domain.oldest_cursor),
        "age_hours": _round(domain.age_hours),
        "last_synced_at": _iso(domain.last_synced_at),
        "missing_tables": list(domain.missing),
        "skipped_by_last_run": domain.skipped_by_last_run,
        "cursors": {name: _iso(value) for name, value in sorted(domain.cursors.items())},
        "synced_at": {name: _iso(value) for name, value in sorted(domain.synced_at.items())},
    }


def _ages(status: WarehouseStatus) -> List[float]:
    return [d.age_hours for d in status.domains if d.age_hours is not None and d.status != UNLISTED]


def _domain_summary(status: WarehouseStatus) -> List[str]:
    counts = {name: len(status.by_status(name)) for name in SEVERITY}
    parts = [f"{counts[FRESH]} fresh (under {_hours(status.max_age_hours)} h)"]
    parts += [f"{counts[s]} {s}" for s in (STALE, INCOMPLETE, NEVER_LOADED, UNLISTED) if counts[s]]
    lines = [f"Domains: {len(status.domains)}: {', '.join(parts)}"]
    skipped = status.skipped_by_last_run
    if skipped:
        lines[0] += f"; {len(skipped)} skipped by the last run"
    ages = _ages(status)
    if ages:
        lines.append(
            f"  data age (the oldest table of each domain): median {_age(statistics.median(ages))}, "
            f"worst {_age(max(ages))}"
        )
    return lines


def _domain_lines(status: WarehouseStatus, domains: List[DomainStatus], per_table: bool) -> List[str]:
    lines = [f"  {'domain':<38}{'name':<18}{'status':<14}{'data age':>10}  {'last synced':<17}  note"]
    for d in domains:
        age = _age(d.age_hours) if d.age_hours is not None else "-"
        synced = _minute(d.last_synced_at) if d.last_synced_at else "-"
        name = (d.name or "")[:16]
        lines.append(f"  {d.domain_id:<38}{name:<18}{d.status:<14}{age:>10}  {synced:<17}  {domain_note(d)}")
        if per_table:
            for table in sorted(set(d.cursors) | set(d.synced_at), key=table_order):
                cursor = d.cursors.get(table)
                cursor_age = _age(age_hours(status.now, cursor)) if cursor else "-"
                synced_at = _minute(d.synced_at[table]) if table in d.synced_at else "-"
                lines.append(
                    f"      {table:<20} newest generated_at {_minute(cursor) if cursor else '-':<17} "
                    f"({cursor_age} old), synced {synced_at}"
                )
    return lines


def _run_lines(runs: Optional[List[Dict[str, Any]]]) -> List[str]:
    if runs is None:
        return ["Runs: no run history in the dataset yet (the next `aiclicks-pipeline run` starts it)."]
    if not runs:
        return ["Runs: none recorded."]
    several = len({run.get("pipeline_name") for run in runs}) > 1
    lines = [f"Last {len(runs)} run(s):"]
    header = (
        f"  {'started (UTC)':<17}{'took':>8}  {'outcome':<12}{'requests':>9}{'429s':>6}"
        f"{'rows':>9}  domains"
    )
    lines.append(header + ("  pipeline" if several else ""))
    for run in runs:
        started = run.get("started_at")
        took = _duration(run.get("duration_s"))
        domains = (
            f"{run.get('domains_committed') or 0} committed, {run.get('domains_fresh') or 0} fresh, "
            f"{run.get('domains_skipped') or 0} skipped, {run.get('domains_left') or 0} left"
        )
        line = (
            f"  {_minute(started) if started else '-':<17}{took:>8}  {run.get('outcome') or '':<12}"
            f"{run.get('requests') or 0:>9}{run.get('rate_limited') or 0:>6}{run.get('rows_total') or 0:>9}"
            f"  {domains}"
        )
        if several:
            line += f"  {run.get('pipeline_name')}"
        lines.append(line)
        if run.get("outcome") == RUNNING:
            lines.append(
                f"    still running, or stopped without a final word: last checkpoint "
                f"{_minute(run.get('updated_at'))} ({run.get('checkpoints_committed')} of "
                f"{run.get('checkpoints_total')}); the next run marks a stopped one interrupted"
            )
        if run.get("error"):
            lines.append(f"    error: {run['error']}")
    return lines


def _iso(value: Any) -> Optional[str]:
    return None if value is None else parse_timestamp(value).isoformat()


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 2)


def _minute(value: Any) -> str:
    return "-" if value is None else parse_timestamp(value).strftime("%Y-%m-%d %H:%M")


def _hours(value: float) -> str:
    return f"{value:g}"


def _age(hours: float) -> str:
    """Hours up to two days, then days: `5.2 h`, `163.9 d`."""
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"
