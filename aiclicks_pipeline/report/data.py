"""The report's numbers: what each chart shows, per domain, read from the dbt marts.

The marts are the one place the numbers are defined (which host is the domain's own, a
competitor's or a third party's; the latest snapshot; the change against the previous one):
`aiclicks-pipeline transform` builds them, the report only picks what each chart shows
(the latest window, the top hosts and queries). A section whose mart is not built (transform
skips a mart whose tables a partial sync did not load) is left empty with a warning. All
domains are read in one query per section, so 500 domains cost the same few queries as 3. The
SQL is plain (window functions), read the same by DuckDB, PostgreSQL, BigQuery and Snowflake.
"""

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ..settings import DEFAULT_SNAPSHOT_DAYS, ENDPOINTS
from .warehouse import ReportError, WarehouseReader

# most-cited hosts and fan-out queries kept per domain (per assistant for fan-out)
TOP_HOSTS = 12
TOP_QUERIES = 5
SOURCE_TYPES = ("own", "competitor", "third_party")
SPARKLINE_DAYS = 30
TRANSFORM_HINT = "build them with `aiclicks-pipeline transform` (after `aiclicks-pipeline run`)"


@dataclass
class ReportData:
    """Everything the HTML shows. `domains` holds one dict per domain, as `read_report` builds
    it: id, name, website, newest_generated_at, and one entry per chart (trend, share_of_voice,
    assistants, sources, fanout) plus the index row (summary); each is JSON as it stands."""

    where: str
    dataset: str
    models_schema: str
    newest_generated_at: Optional[str]
    last_sync_at: Optional[str]
    loads: int
    domains: List[Dict[str, Any]]
    warnings: List[str] = field(default_factory=list)
    elapsed_s: float = 0.0


# --- SQL, one query per section on its mart -------------------------------------------------------


def _in_domains(column: str, domain_ids: Optional[Sequence[str]]) -> str:
    if not domain_ids:
        return "1 = 1"
    quoted = ", ".join("'" + domain_id.replace("'", "''") + "'" for domain_id in domain_ids)
    return f"{column} in ({quoted})"


def trend_sql(mart: str, ids: Optional[Sequence[str]]) -> str:
    return f"""
        select domain_id, date_day as day, visibility_pct, mentions_count, citations_count
        from {mart}
        where {_in_domains('domain_id', ids)}"""


def share_of_voice_sql(mart: str, ids: Optional[Sequence[str]]) -> str:
    return f"""
        select domain_id, days, snapshot_date, brand_id, brand_name, is_own_brand,
               mentions_count, sov_pct, sov_rank, previous_snapshot_date, previous_sov_pct
        from {mart}
        where is_latest_snapshot and {_in_domains('domain_id', ids)}"""


def assistants_sql(mart: str, ids: Optional[Sequence[str]]) -> str:
    """The channels of the latest leaderboard snapshot (a channel only the citations name has
    no visibility to show)."""
    return f"""
        select domain_id, days, snapshot_date, channel_name, visibility_pct, avg_position
        from (
            select domain_id, days, snapshot_date, channel_name, visibility_pct, avg_position,
                   max(snapshot_date) over (partition by domain_id, days) as latest_snapshot_date
            from {mart}
            where in_leaderboard and {_in_domains('domain_id', ids)}
        ) as dated
        where snapshot_date = latest_snapshot_date"""


def sources_sql(mart: str, ids: Optional[Sequence[str]]) -> str:
    """Cited hosts of the latest citations snapshot, with their citations and URLs."""
    return f"""
        select domain_id, days, snapshot_date, cited_host, source_type,
               min(competitor_name) as competitor_name,
               sum(frequency) as citations, count(*) as urls
        from {mart}
        where is_latest_snapshot and {_in_domains('domain_id', ids)}
        group by domain_id, days, snapshot_date, cited_host, source_type"""


def fanout_sql(mart: str, ids: Optional[Sequence[str]]) -> str:
    """The top queries per domain and assistant, with the assistant's totals."""
    return f"""
        select domain_id, channel_name, query_text, emissions, prompts, query_order,
               channel_emissions, channel_queries
        from (
            select domain_id, channel_name, query_text, emissions, prompts,
                   row_number() over (
                       partition by domain_id, channel_name order by emissions desc, query_text
                   ) as query_order,
                   sum(emissions) over (partition by domain_id, channel_name) as channel_emissions,
                   count(*) over (partition by domain_id, channel_name) as channel_queries
            from {mart}
            where {_in_domains('domain_id', ids)}
        ) as ranked
        where query_order <= {TOP_QUERIES}"""


# section -> (the mart it reads, its query)
SECTIONS: Dict[str, tuple] = {
    "trend": ("aiclicks__daily_visibility", trend_sql),
    "share_of_voice": ("aiclicks__share_of_voice", share_of_voice_sql),
    "assistants": ("aiclicks__model_performance", assistants_sql),
    "sources": ("aiclicks__citation_sources", sources_sql),
    "fanout": ("aiclicks__fanout_query_frequency", fanout_sql),
}
# the marts the report reads (tests/unit: every one is a mart of the dbt package)
REPORT_MARTS = tuple(mart for mart, _ in SECTIONS.values())


# --- values ---------------------------------------------------------------------------------------


def _number(value: Any) -> Any:
    """A JSON number: Decimal (PostgreSQL's sums) to float, integral floats of counts kept."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def _change(value: Any, before: Any) -> Optional[float]:
    """A difference of percentages in points, rounded clear of float noise (as the marts do)."""
    if value is None or before is None:
        return None
    return round(float(value) - float(before), 6)


def _day(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def _as_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return date.fromisoformat(_day(value))


def utc_timestamp(value: Any) -> Optional[str]:
    """`2026-06-17 10:00 UTC`, from a timestamp with or without a zone (naive = UTC)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _by_domain(rows: Iterable[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    grouped: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[str(row["domain_id"])].append(row)
    return grouped


def _latest_window(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The rows of one snapshot window: the newest snapshot; on a tie the default window
    (`snapshot_days`), else the longest."""
    if not rows:
        return []
    windows = {(_day(row["snapshot_date"]), int(row["days"])) for row in rows}
    snapshot, days = max(windows, key=lambda w: (w[0], w[1] == DEFAULT_SNAPSHOT_DAYS, w[1]))
    return [r for r in rows if int(r["days"]) == days and _day(r["snapshot_date"]) == snapshot]


# --- sections, per domain -------------------------------------------------------------------------


def trend_view(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Every calendar day from the first to the last loaded one; a day without a value is
    null (a gap in the chart), never 0."""
    if not rows:
        return {"dates": [], "visibility": [], "mentions": [], "citations": []}
    by_day = {_as_date(row["day"]): row for row in rows}
    first, last = min(by_day), max(by_day)
    dates = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    picked = [by_day.get(day, {}) for day in dates]
    return {
        "dates": [day.isoformat() for day in dates],
        "visibility": [_number(row.get("visibility_pct")) for row in picked],
        "mentions": [_number(row.get("mentions_count")) for row in picked],
        "citations": [_number(row.get("citations_count")) for row in picked],
    }


def share_of_voice_view(rows: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    rows = _latest_window(rows)
    if not rows:
        return None
    brands = [
        {
            "id": str(row["brand_id"]),
            "name": row["brand_name"],
            "own": bool(row["is_own_brand"]),
            "sov": _number(row["sov_pct"]),
            "rank": _number(row["sov_rank"]),
            "mentions": _number(row["mentions_count"]),
            "previous": _number(row["previous_sov_pct"]),
            "change": _change(row["sov_pct"], row["previous_sov_pct"]),
        }
        for row in rows
    ]
    brands.sort(key=lambda b: (-(b["sov"] or 0), not b["own"], str(b["name"])))
    return {
        "days": int(rows[0]["days"]),
        "snapshot": _day(rows[0]["snapshot_date"]),
        "previous_snapshot": _day(rows[0]["previous_snapshot_date"]),
        "brands": brands,
    }


def assistants_view(rows: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    rows = _latest_window(rows)
    if not rows:
        return None
    channels = [
        {
            "channel": row["channel_name"],
            "visibility": _number(row["visibility_pct"]),
            "position": _number(row["avg_position"]),
        }
        for row in rows
    ]
    channels.sort(key=lambda c: (-(c["visibility"] or 0), str(c["channel"])))
    return {"days": int(rows[0]["days"]), "snapshot": _day(rows[0]["snapshot_date"]), "channels": channels}


def sources_view(rows: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    rows = _latest_window(rows)
    if not rows:
        return None
    by_type = {kind: 0 for kind in SOURCE_TYPES}
    for row in rows:
        by_type[row["source_type"]] += _number(row["citations"]) or 0
    hosts = [
        {
            "host": row["cited_host"],
            "type": row["source_type"],
            "competitor": row["competitor_name"],
            "citations": _number(row["citations"]),
            "urls": _number(row["urls"]),
        }
        for row in rows
    ]
    hosts.sort(key=lambda h: (-(h["citations"] or 0), str(h["host"])))
    return {
        "days": int(rows[0]["days"]),
        "snapshot": _day(rows[0]["snapshot_date"]),
        "by_type": by_type,
        "total_hosts": len(hosts),
        "hosts": hosts[:TOP_HOSTS],
    }


def fanout_view(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    channels: Dict[str, Dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (str(r["channel_name"]), int(r["query_order"]))):
        channel = channels.setdefault(
            row["channel_name"],
            {
                "channel": row["channel_name"],
                "emissions": _number(row["channel_emissions"]),
                "distinct_queries": _number(row["channel_queries"]),
                "queries": [],
            },
        )
        channel["queries"].append(
            {
                "query": row["query_text"],
                "emissions": _number(row["emissions"]),
                "prompts": _number(row["prompts"]),
            }
        )
    return sorted(channels.values(), key=lambda c: (-(c["emissions"] or 0), str(c["channel"])))


def summary_view(domain: Dict[str, Any]) -> Dict[str, Any]:
    """The index row: latest visibility and its change over 7 days, own share of voice."""
    trend = domain["trend"]
    known = [(d, v) for d, v in zip(trend["dates"], trend["visibility"]) if v is not None]
    latest = known[-1] if known else None
    week_before = None
    if latest:
        target = (_as_date(latest[0]) - timedelta(days=7)).isoformat()
        week_before = next((v for d, v in known if d == target), None)
    own = None
    if domain["share_of_voice"]:
        own = next((b for b in domain["share_of_voice"]["brands"] if b["own"]), None)
    sources = domain["sources"]
    total_citations = sum(sources["by_type"].values()) if sources else None
    return {
        "visibility": latest[1] if latest else None,
        "visibility_day": latest[0] if latest else None,
        "visibility_change_7d": _change(latest[1], week_before) if latest else None,
        "sov": own["sov"] if own else None,
        "sov_change": own["change"] if own else None,
        "sov_rank": own["rank"] if own else None,
        "brands": len(domain["share_of_voice"]["brands"]) if domain["share_of_voice"] else None,
        "citations": total_citations,
        "own_citations_pct": (
            round(100.0 * sources["by_type"]["own"] / total_citations, 6)
            if sources and total_citations
            else None
        ),
        "sparkline": trend["visibility"][-SPARKLINE_DAYS:],
    }


# --- the whole report -----------------------------------------------------------------------------


def read_report(reader: WarehouseReader, domain_ids: Optional[Sequence[str]] = None) -> ReportData:
    """The report's numbers for every domain (or `domain_ids`), from the dbt marts.

    Raises:
        ReportError: no data loaded, no mart built, or an unknown domain.
    """
    started = time.monotonic()
    t = reader.table
    if not reader.has_tables(["domains"]):
        raise ReportError(
            f"No AIclicks data in {reader.description}: load it first (`aiclicks-pipeline run`)"
        )
    built = {mart for mart in REPORT_MARTS if reader.has_tables([mart], models=True)}
    if not built:
        raise ReportError(
            f"The report reads the dbt models, and schema {reader.models_schema} of "
            f"{reader.description} has none: {TRANSFORM_HINT}"
        )
    warnings: List[str] = []

    domains = reader.rows(
        f"""select id, name, website from {t('domains')}
            where {_in_domains('id', domain_ids)} order by name, id"""
    )
    missing = sorted(set(domain_ids or []) - {str(row["id"]) for row in domains})
    if missing:
        raise ReportError(f"Domain(s) not in {reader.description}: {', '.join(missing)}")
    ids = list(domain_ids) if domain_ids else None

    sections: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for name, (mart, sql) in SECTIONS.items():
        if mart in built:
            sections[name] = _by_domain(reader.rows(sql(t(mart, models=True), ids)))
        else:
            sections[name] = {}
            warnings.append(
                f"{name}: the dbt model {mart} is not built (transform skips it when its tables "
                "are not loaded); section left empty"
            )
    warnings += stale_marts(reader, built)

    newest = newest_generated_at(reader, ids)
    last_sync = {"last_load": None, "loads": 0}
    if reader.has_tables(["_dlt_loads"]):
        (last_sync,) = reader.rows(
            f"select max(inserted_at) as last_load, count(*) as loads from {t('_dlt_loads')} where status = 0"
        )

    views = []
    for row in domains:
        domain_id = str(row["id"])
        domain = {
            "id": domain_id,
            "name": row["name"] or domain_id,
            "website": row["website"],
            "newest_generated_at": utc_timestamp(newest.get(domain_id)),
            "trend": trend_view(sections["trend"].get(domain_id, [])),
            "share_of_voice": share_of_voice_view(sections["share_of_voice"].get(domain_id, [])),
            "assistants": assistants_view(sections["assistants"].get(domain_id, [])),
            "sources": sources_view(sections["sources"].get(domain_id, [])),
            "fanout": fanout_view(sections["fanout"].get(domain_id, [])),
        }
        domain["summary"] = summary_view(domain)
        views.append(domain)
    return ReportData(
        where=reader.description,
        dataset=reader.dataset,
        models_schema=reader.models_schema,
        newest_generated_at=utc_timestamp(max(newest.values(), default=None)),
        last_sync_at=utc_timestamp(last_sync["last_load"]),
        loads=int(last_sync["loads"] or 0),
        domains=views,
        warnings=warnings,
        elapsed_s=time.monotonic() - started,
    )


def newest_generated_at(reader: WarehouseReader, ids: Optional[Sequence[str]]) -> Dict[str, Any]:
    """Per domain, the newest envelope `generated_at` over every loaded domain table."""
    parts = [
        f"select domain_id, max(generated_at) as newest from {reader.table(name)} group by domain_id"
        for name, spec in ENDPOINTS.items()
        if spec["domain_scoped"] and reader.has_tables([name])
    ]
    parts.append(
        f"select id as domain_id, max(generated_at) as newest from {reader.table('domains')} group by id"
    )
    rows = reader.rows(
        f"""select domain_id, max(newest) as newest from ({' union all '.join(parts)}) as per_table
            where {_in_domains('domain_id', ids)} group by domain_id"""
    )
    return {str(row["domain_id"]): row["newest"] for row in rows}


def stale_marts(reader: WarehouseReader, built: Iterable[str]) -> List[str]:
    """A warning when the marts were built before the latest sync (transform not run since)."""
    t = reader.table
    pairs = [
        ("aiclicks__daily_visibility", "date_day", "visibility_daily", "date"),
        ("aiclicks__share_of_voice", "snapshot_date", "brand_rankings", "snapshot_date"),
    ]
    warnings = []
    for mart, mart_column, table, column in pairs:
        if mart not in built or not reader.has_tables([table]):
            continue
        (row,) = reader.rows(
            f"""select (select max({mart_column}) from {t(mart, models=True)}) as modelled,
                       (select max({column}) from {t(table)}) as loaded"""
        )
        modelled, loaded = _day(row["modelled"]), _day(row["loaded"])
        if loaded is not None and (modelled is None or modelled < loaded):
            warnings.append(
                f"the dbt models end on {modelled}, the loaded data on {loaded} "
                f"({mart} vs {table}): run `aiclicks-pipeline transform`"
            )
            break
    return warnings
