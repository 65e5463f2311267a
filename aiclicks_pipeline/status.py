"""`aiclicks-pipeline status`: how fresh the warehouse is and what the last runs did, read from
the warehouse alone.

It reads, never writes: no API request, no run lock, nothing in a working folder. From the
dataset it reads
- each table's rows, the time of its newest load (`_dlt_load_id` joined to `_dlt_loads`) and its
  newest `generated_at`;
- each pipeline's state as dlt committed it (`_dlt_pipeline_state`, the newest row of a
  completed load, decoded with dlt's own functions): per resource and domain the cursor (the
  newest `generated_at` loaded) and `synced_at` (when it was last synced). Every pipeline of
  the dataset counts (the shards of one account share it);
- the run history (`_aiclicks_runs`, history.py): the last runs, and the domains the last run
  of each pipeline skipped.

A domain's data age is the age of its oldest cursor over the tables the dataset loads: every
table of the domain holds data at least that new. A domain is stale past `max_age_hours`; one
with no cursor at all was never loaded; one missing some tables is incomplete. A domain the API
stopped listing (its `domains` row no longer refreshed while others' are) is shown apart and
does not make the data stale. On a server warehouse this works while a sync runs (the state
read is the last committed checkpoint's); a DuckDB file being written is locked by its writer.
"""

import shutil
import statistics
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

from .errors import AIclicksError
from .history import JSON_COLUMNS, RUNNING, RUNS_TABLE
from .settings import DEFAULT_DATASET, ENDPOINTS
from .source import SOURCE_NAME
from .sync import CURSORS_KEY, SYNCED_KEY
from .windows import parse_timestamp, utc_now

DEFAULT_MAX_AGE_HOURS = 36.0
DEFAULT_WORST = 10
DEFAULT_RUNS = 5
# dlt's child table of citations: rows and loads only (its rows carry no generated_at)
CHILD_TABLES = ("citations__models",)
FRESH, STALE, INCOMPLETE, NEVER_LOADED, UNLISTED = "fresh", "stale", "incomplete", "never loaded", "unlisted"
# worst first
SEVERITY = {NEVER_LOADED: 0, STALE: 1, INCOMPLETE: 2, UNLISTED: 3, FRESH: 4}


class StatusError(AIclicksError):
    """The warehouse cannot be read (no file, no dataset)."""


class WarehouseBusy(AIclicksError):
    """The DuckDB file is held by another process (a sync writing it)."""


@dataclass
class TableStatus:
    name: str
    rows: Optional[int]  # None: the table is not in the dataset
    last_load_at: Optional[datetime] = None
    newest_generated_at: Optional[datetime] = None


@dataclass
class DomainStatus:
    domain_id: str
    name: Optional[str]
    status: str
    # the oldest cursor over the loaded tables, and its age
    oldest_cursor: Optional[datetime] = None
    age_hours: Optional[float] = None
    # the sync time of its least recently synced table
    last_synced_at: Optional[datetime] = None
    missing: List[str] = field(default_factory=list)
    cursors: Dict[str, datetime] = field(default_factory=dict)
    synced_at: Dict[str, datetime] = field(default_factory=dict)
    skipped_by_last_run: Optional[str] = None

    def note(self) -> str:
        notes = []
        if self.status == NEVER_LOADED:
            notes.append("never loaded")
        if self.status == UNLISTED:
            notes.append("no longer listed by the API")
        if self.missing and self.status != NEVER_LOADED:
            notes.append(f"no data yet for {', '.join(self.missing)}")
        if self.skipped_by_last_run:
            notes.append(f"skipped by the last run: {self.skipped_by_last_run}")
        return "; ".join(notes)

    def as_json(self) -> Dict[str, Any]:
        return {
            "domain_id": self.domain_id,
            "name": self.name,
            "status": self.status,
            "oldest_cursor": _iso(self.oldest_cursor),
            "age_hours": _round(self.age_hours),
            "last_synced_at": _iso(self.last_synced_at),
            "missing_tables": list(self.missing),
            "skipped_by_last_run": self.skipped_by_last_run,
            "cursors": {name: _iso(value) for name, value in sorted(self.cursors.items())},
            "synced_at": {name: _iso(value) for name, value in sorted(self.synced_at.items())},
        }


@dataclass
class WarehouseStatus:
    description: str
    now: datetime
    max_age_hours: float
    pipelines: Dict[str, Optional[datetime]]  # pipeline -> time of its state's load
    tables: List[TableStatus]
    domains: List[DomainStatus]
    runs: Optional[List[Dict[str, Any]]]  # None: no run history in the dataset

    def by_status(self, status: str) -> List[DomainStatus]:
        return [d for d in self.domains if d.status == status]

    @property
    def skipped_by_last_run(self) -> List[DomainStatus]:
        return [d for d in self.domains if d.skipped_by_last_run]

    @property
    def behind(self) -> List[DomainStatus]:
        """Domains whose data is older than the threshold, or missing."""
        return [d for d in self.domains if d.status in (STALE, INCOMPLETE, NEVER_LOADED)]

    @property
    def is_stale(self) -> bool:
        return bool(self.behind) or not any(d.status == FRESH for d in self.domains)

    def worst(self) -> List[DomainStatus]:
        return sorted(
            self.domains,
            key=lambda d: (SEVERITY[d.status], -(d.age_hours or 0.0), d.domain_id),
        )

    def as_json(self) -> Dict[str, Any]:
        ages = [d.age_hours for d in self.domains if d.age_hours is not None and d.status != UNLISTED]
        return {
            "warehouse": self.description,
            "now": _iso(self.now),
            "max_age_hours": self.max_age_hours,
            "stale": self.is_stale,
            "pipelines": {name: _iso(at) for name, at in sorted(self.pipelines.items())},
            "tables": [
                {
                    "table": t.name,
                    "rows": t.rows,
                    "last_load_at": _iso(t.last_load_at),
                    "newest_generated_at": _iso(t.newest_generated_at),
                }
                for t in self.tables
            ],
            "domains_summary": {
                "total": len(self.domains),
                **{status.replace(" ", "_"): len(self.by_status(status)) for status in SEVERITY},
                "skipped_by_last_run": len(self.skipped_by_last_run),
                "age_hours_median": _round(statistics.median(ages)) if ages else None,
                "age_hours_max": _round(max(ages)) if ages else None,
            },
            "domains": [d.as_json() for d in self.worst()],
            "runs": self.runs,
        }

    def render(self, worst: int = DEFAULT_WORST, detail: bool = False,
               domain_ids: Optional[Sequence[str]] = None) -> str:
        """The screen a person reads: tables, a summary of the domains and the worst `worst`
        of them (every one with `detail`, or those of `domain_ids` with their tables), runs."""
        lines = [f"Warehouse: {self.description}; now {_minute(self.now)} UTC"]
        if self.pipelines:
            states = ", ".join(
                f"{name} (state of {_minute(at)})" for name, at in sorted(self.pipelines.items())
            )
            lines.append(f"Pipelines: {states}")
        lines.append("")
        lines.append(f"  {'table':<22}{'rows':>10}  {'last load (UTC)':<18}  newest generated_at (UTC)")
        for t in self.tables:
            if t.rows is None:
                lines.append(f"  {t.name:<22}{'-':>10}  not loaded")
                continue
            newest = _minute(t.newest_generated_at) if t.newest_generated_at else ""
            lines.append(f"  {t.name:<22}{t.rows:>10}  {_minute(t.last_load_at):<18}  {newest}")
        lines.append("")
        lines.extend(self._domain_summary())
        if domain_ids:
            wanted = set(domain_ids)
            chosen = [d for d in self.worst() if d.domain_id in wanted]
            unknown = sorted(wanted - {d.domain_id for d in chosen})
            if unknown:
                lines.append(f"  not in the warehouse: {', '.join(unknown)}")
            lines.extend(self._domain_lines(chosen, per_table=True))
        elif self.domains:
            shown = self.worst() if detail else self.worst()[:worst]
            title = "All domains, worst first" if detail or len(shown) == len(self.domains) else (
                f"The {len(shown)} worst domains (--detail: all; --domains ID,ID: their tables)"
            )
            lines.append(f"{title}:")
            lines.extend(self._domain_lines(shown, per_table=False))
        lines.append("")
        lines.extend(self._run_lines())
        lines.append("")
        if self.is_stale:
            why = (
                f"{len(self.behind)} domain(s) behind" if self.behind else "no fresh domain"
            )
            lines.append(f"STALE: {why} (data older than {_hours(self.max_age_hours)} h, or missing); exit 2.")
        else:
            lines.append(f"OK: every domain's data is under {_hours(self.max_age_hours)} h old.")
        return "\n".join(lines)

    def _domain_summary(self) -> List[str]:
        counts = {status: len(self.by_status(status)) for status in SEVERITY}
        parts = [f"{counts[FRESH]} fresh (under {_hours(self.max_age_hours)} h)"]
        parts += [f"{counts[s]} {s}" for s in (STALE, INCOMPLETE, NEVER_LOADED, UNLISTED) if counts[s]]
        lines = [f"Domains: {len(self.domains)}: {', '.join(parts)}"]
        skipped = self.skipped_by_last_run
        if skipped:
            lines[0] += f"; {len(skipped)} skipped by the last run"
        ages = [d.age_hours for d in self.domains if d.age_hours is not None and d.status != UNLISTED]
        if ages:
            lines.append(
                f"  data age (the oldest table of each domain): median {_age(statistics.median(ages))}, "
                f"worst {_age(max(ages))}"
            )
        return lines

    def _domain_lines(self, domains: List[DomainStatus], per_table: bool) -> List[str]:
        lines = [f"  {'domain':<38}{'name':<18}{'status':<14}{'data age':>10}  {'last synced':<17}  note"]
        for d in domains:
            age = _age(d.age_hours) if d.age_hours is not None else "-"
            synced = _minute(d.last_synced_at) if d.last_synced_at else "-"
            name = (d.name or "")[:16]
            lines.append(f"  {d.domain_id:<38}{name:<18}{d.status:<14}{age:>10}  {synced:<17}  {d.note()}")
            if per_table:
                for table in sorted(set(d.cursors) | set(d.synced_at), key=_table_order):
                    cursor = d.cursors.get(table)
                    cursor_age = _age(_age_hours(self.now, cursor)) if cursor else "-"
                    synced_at = _minute(d.synced_at[table]) if table in d.synced_at else "-"
                    lines.append(
                        f"      {table:<20} newest generated_at {_minute(cursor) if cursor else '-':<17} "
                        f"({cursor_age} old), synced {synced_at}"
                    )
        return lines

    def _run_lines(self) -> List[str]:
        if self.runs is None:
            return ["Runs: no run history in the dataset yet (the next `aiclicks-pipeline run` starts it)."]
        if not self.runs:
            return ["Runs: none recorded."]
        several = len({run.get("pipeline_name") for run in self.runs}) > 1
        lines = [f"Last {len(self.runs)} run(s):"]
        header = (
            f"  {'started (UTC)':<17}{'took':>8}  {'outcome':<12}{'requests':>9}{'429s':>6}"
            f"{'rows':>9}  domains"
        )
        lines.append(header + ("  pipeline" if several else ""))
        for run in self.runs:
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


def read_status(
    reader: Any,
    max_age_hours: float = DEFAULT_MAX_AGE_HOURS,
    runs: int = DEFAULT_RUNS,
    now: Optional[datetime] = None,
) -> WarehouseStatus:
    """The status of the dataset `reader` reads (report/warehouse.py's readers)."""
    now = now or utc_now()
    if not reader.has_tables(["_dlt_loads"]):
        raise StatusError(
            f"Nothing loaded in {reader.description}: no dlt tables there "
            "(load it first with `aiclicks-pipeline run`, or check --dataset)"
        )
    load_times = _load_times(reader)
    tables = [_table_status(reader, name, load_times) for name in (*ENDPOINTS, *CHILD_TABLES)]
    states = _pipeline_states(reader)
    history = _runs(reader, runs)
    skipped = _skipped_by_last_runs(reader)
    names = _domain_names(reader)
    domains = _domain_statuses(states, names, skipped, now, max_age_hours)
    return WarehouseStatus(
        description=reader.description,
        now=now,
        max_age_hours=max_age_hours,
        pipelines={name: at for name, (at, _) in states.items()},
        tables=tables,
        domains=domains,
        runs=history,
    )


# --- reading --------------------------------------------------------------------------------


def _load_times(reader: Any) -> Dict[str, datetime]:
    rows = reader.rows(f"select load_id, inserted_at from {reader.table('_dlt_loads')} where status = 0")
    return {str(r["load_id"]): _utc(r["inserted_at"]) for r in rows}


def _table_status(reader: Any, name: str, load_times: Dict[str, datetime]) -> TableStatus:
    if not reader.has_tables([name]):
        return TableStatus(name, None)
    table = reader.table(name)
    if name in CHILD_TABLES:
        (row,) = reader.rows(f"select count(*) as n from {table}")
        return TableStatus(name, int(row["n"]))
    (row,) = reader.rows(
        f"select count(*) as n, max(_dlt_load_id) as last_load, max(generated_at) as newest from {table}"
    )
    return TableStatus(
        name,
        int(row["n"]),
        load_times.get(str(row["last_load"])) if row["last_load"] is not None else None,
        _utc(row["newest"]) if row["newest"] is not None else None,
    )


def _pipeline_states(reader: Any) -> Dict[str, Any]:
    """Per pipeline of the dataset: (time of the load that committed it, its state), the newest
    state of a completed load, as dlt restores it."""
    from dlt.common.versioned_state import decompress_state
    from dlt.pipeline.state_sync import migrate_state_to_current

    if not reader.has_tables(["_dlt_pipeline_state"]):
        return {}
    state, loads = reader.table("_dlt_pipeline_state"), reader.table("_dlt_loads")
    rows = reader.rows(
        f"select s.pipeline_name, s.state, l.inserted_at from {state} s "
        f"join {loads} l on l.load_id = s._dlt_load_id "
        f"where l.status = 0 and s._dlt_load_id = (select max(s2._dlt_load_id) from {state} s2 "
        f"join {loads} l2 on l2.load_id = s2._dlt_load_id "
        f"where l2.status = 0 and s2.pipeline_name = s.pipeline_name)"
    )
    states = {}
    for row in rows:
        name = str(row["pipeline_name"])
        decoded = migrate_state_to_current(name, decompress_state(row["state"]))
        states[name] = (_utc(row["inserted_at"]), decoded)
    return states


def _runs(reader: Any, limit: int) -> Optional[List[Dict[str, Any]]]:
    if not reader.has_tables([RUNS_TABLE]):
        return None
    rows = reader.rows(
        f"select * from {reader.table(RUNS_TABLE)} order by started_at desc limit {int(limit)}"
    )
    return [_run_json(row) for row in rows]


def _skipped_by_last_runs(reader: Any) -> Dict[str, str]:
    """The domains the last finished run of each pipeline skipped, {domain_id: reason}."""
    if not reader.has_tables([RUNS_TABLE]):
        return {}
    runs = reader.table(RUNS_TABLE)
    rows = reader.rows(
        f"select r.skipped_domains, r.unknown_domains from {runs} r where r.outcome <> '{RUNNING}' "
        f"and r.started_at = (select max(r2.started_at) from {runs} r2 "
        f"where r2.pipeline_name = r.pipeline_name and r2.outcome <> '{RUNNING}')"
    )
    skipped: Dict[str, str] = {}
    for row in rows:
        skipped.update({str(k): str(v) for k, v in (_json(row["skipped_domains"]) or {}).items()})
        for domain_id in _json(row["unknown_domains"]) or []:
            skipped.setdefault(str(domain_id), "not listed for the API key")
    return skipped


def _domain_names(reader: Any) -> Dict[str, Optional[str]]:
    if not reader.has_tables(["domains"]):
        return {}
    return {str(r["id"]): r["name"] for r in reader.rows(f"select id, name from {reader.table('domains')}")}


def _domain_statuses(
    states: Dict[str, Any],
    names: Dict[str, Optional[str]],
    skipped: Dict[str, str],
    now: datetime,
    max_age_hours: float,
) -> List[DomainStatus]:
    # per resource and domain, the newest cursor and sync time over every pipeline
    cursors: Dict[str, Dict[str, datetime]] = {}
    synced: Dict[str, Dict[str, datetime]] = {}
    for _, state in states.values():
        resources = state.get("sources", {}).get(SOURCE_NAME, {}).get("resources", {})
        for resource, resource_state in resources.items():
            for domain_id, value in (resource_state.get(CURSORS_KEY) or {}).items():
                _keep_newest(cursors.setdefault(str(domain_id), {}), resource, parse_timestamp(value))
            for domain_id, value in (resource_state.get(SYNCED_KEY) or {}).items():
                at = datetime.fromtimestamp(float(value), tz=timezone.utc)
                _keep_newest(synced.setdefault(str(domain_id), {}), resource, at)
    loaded_tables = sorted({r for per_domain in cursors.values() for r in per_domain}, key=_table_order)
    newest_listing = max((c["domains"] for c in cursors.values() if "domains" in c), default=None)
    statuses = []
    for domain_id in sorted(set(names) | set(cursors) | set(synced)):
        own = cursors.get(domain_id, {})
        domain = DomainStatus(
            domain_id=domain_id,
            name=names.get(domain_id),
            status=FRESH,
            cursors=own,
            synced_at=synced.get(domain_id, {}),
            skipped_by_last_run=skipped.get(domain_id),
        )
        data_synced = [at for table, at in domain.synced_at.items() if table != "domains"]
        if data_synced:  # when its least recently synced table was
            domain.last_synced_at = min(data_synced)
        domain.missing = [t for t in loaded_tables if t not in own]
        # its row in `domains` says the API listed it, not that any of its data was loaded
        if set(own) - {"domains"}:
            domain.oldest_cursor = min(own.values())
            domain.age_hours = _age_hours(now, domain.oldest_cursor)
        listed_at = own.get("domains")
        if domain.oldest_cursor is None:
            domain.status = NEVER_LOADED
        elif newest_listing and listed_at and _hours_between(listed_at, newest_listing) > max_age_hours:
            domain.status = UNLISTED
        elif domain.missing:
            domain.status = INCOMPLETE
        elif domain.age_hours is not None and domain.age_hours > max_age_hours:
            domain.status = STALE
        statuses.append(domain)
    return statuses


# --- opening the warehouse ------------------------------------------------------------------


@contextmanager
def open_warehouse(
    duckdb_file: Optional[str],
    destination: Optional[str] = None,
    dataset: str = DEFAULT_DATASET,
) -> Iterator[Any]:
    """A read-only reader of the dataset: a DuckDB file opened read-only, or any other dlt
    destination through dlt's SQL client (a throwaway pipeline in a temporary folder, so no
    working folder of a sync is touched)."""
    import duckdb

    from .destinations import configured_destination, destination_kind
    from .report.warehouse import DuckDBReader, SqlClientReader
    from .transform import DEFAULT_MODELS_SCHEMA

    kind = destination_kind(configured_destination(destination))
    if kind == "duckdb":
        path = Path(duckdb_file or "").expanduser().resolve()
        if not path.is_file():
            raise StatusError(f"No DuckDB file {path}: load the data first (`aiclicks-pipeline run`)")
        try:
            connection = duckdb.connect(str(path), read_only=True)
        except duckdb.IOException as exc:
            raise WarehouseBusy(_busy_message(path, str(exc))) from None
        try:
            yield DuckDBReader(connection, path, dataset, DEFAULT_MODELS_SCHEMA)
        finally:
            connection.close()
        return

    from .pipeline import make_pipeline

    folder = tempfile.mkdtemp(prefix="aiclicks_status_")
    try:
        pipeline = make_pipeline(
            destination=destination, dataset_name=dataset, pipeline_name="aiclicks_status",
            pipelines_dir=folder,
        )
        with pipeline.sql_client() as client:
            yield SqlClientReader(client, kind, dataset, DEFAULT_MODELS_SCHEMA)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _busy_message(path: Path, error: str) -> str:
    from .transform import DUCKDB_LOCK

    match = DUCKDB_LOCK.search(error)
    who = f" (pid {match['pid']})" if match and match["pid"] else ""
    return (
        f"{path} is held by another process{who}, most likely a sync writing it: DuckDB lets no "
        "other process read a file while one writes it; run status again when it ends (on a "
        "server warehouse, status reads while a sync runs)."
    )


# --- helpers --------------------------------------------------------------------------------


def _keep_newest(values: Dict[str, datetime], key: str, value: datetime) -> None:
    if key not in values or value > values[key]:
        values[key] = value


def _table_order(name: str) -> int:
    names = list(ENDPOINTS)
    return names.index(name) if name in names else len(names)


def _run_json(row: Dict[str, Any]) -> Dict[str, Any]:
    run = {k: v for k, v in row.items() if not k.startswith("_dlt")}
    for key, value in run.items():
        if isinstance(value, datetime):
            run[key] = _iso(_utc(value))
        elif key in JSON_COLUMNS:
            run[key] = _json(value)
        elif hasattr(value, "__float__") and not isinstance(value, (int, float, bool)):
            run[key] = float(value)  # a Decimal from some warehouses
    return run


def _json(value: Any) -> Any:
    import json

    if value is None or isinstance(value, (dict, list)):
        return value
    return json.loads(value)


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        return parse_timestamp(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _age_hours(now: datetime, then: datetime) -> float:
    """Hours from `then` to `now`; 0 for a time ahead of this machine's clock (the API's
    clock, which stamps generated_at, may be)."""
    return max(_hours_between(then, now), 0.0)


def _hours_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def _iso(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_timestamp(value)
    return value.isoformat()


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 2)


def _minute(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = parse_timestamp(value)
    return _utc(value).strftime("%Y-%m-%d %H:%M")


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
