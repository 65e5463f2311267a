"""Targeted reset: the next run reloads chosen tables of chosen domains, as if loaded for the
first time, and everything else stays incremental.

A resource keeps, per domain, a cursor and a sync time in its dlt state (sync.py). A reset:
1. removes those of the chosen (resource, domain) pairs from the pipeline's state and commits
   the state to the warehouse the way dlt drops state (`dlt pipeline <name> drop --state-paths
   ... --state-only`: dlt's `pipeline_drop`, a load of the state alone), so a worker that keeps
   nothing restores it too;
2. deletes the rows of those pairs (and their child rows, `citations__models`, through
   `_dlt_root_id`) in one transaction (on a lakehouse, which has none across tables, child
   tables first, each in one commit of its table format), so the reload is exact: rows the API no longer returns
   (a prompt deleted, a URL no longer cited, a day a sparse series dropped) go, instead of
   staying beside the reloaded ones. `keep_rows` skips this: the reload then merges over them.

The state goes first: if the process dies between the two steps, the next run reloads over
rows not yet deleted (nothing is lost) and the reset can be run again. Only pairs the pipeline's
state holds are reset, so the rows another pipeline loaded (another shard) are never touched.
The next run asks a reset pair for `initial_days` (incremental tables) or the current snapshot
(aggregates); what the API no longer serves (past days' snapshots, days older than that window)
is not reloaded, which is what `keep_rows` is for. Rows are counted and deleted through
warehouse.py's reader on the pipeline's own SQL client, the same on every destination.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import dlt
from dlt.common.schema.utils import get_nested_tables
from dlt.pipeline.pipeline import Pipeline

from .destinations import delete_lakehouse_rows, deletes_with_sql
from .errors import AIclicksError
from .plan import resource_states
from .settings import ENDPOINTS
from .sync import CURSORS_KEY, SYNCED_KEY
from .warehouse import Warehouse, pipeline_warehouse

# rows deleted per statement (an IN list of domain ids)
DELETE_BATCH = 500


class ResetError(AIclicksError):
    """Nothing can be reset (the pipeline never loaded, an unknown resource)."""


@dataclass
class ResetPlan:
    pipeline_name: str
    # resource -> the domains whose state is reset (those the pipeline's state holds)
    domains: Dict[str, List[str]]
    # resource -> domains asked for that the pipeline never loaded it for (nothing to reset)
    not_loaded: Dict[str, List[str]]
    # table -> rows to delete (child tables included); empty with keep_rows
    rows: Dict[str, int] = field(default_factory=dict)
    whole_resources: bool = False
    keep_rows: bool = False

    @property
    def is_empty(self) -> bool:
        return not any(self.domains.values())

    @property
    def pairs(self) -> int:
        return sum(len(domains) for domains in self.domains.values())

    def describe(self) -> str:
        lines = [f"Reset of pipeline {self.pipeline_name}:"]
        for resource, domains in self.domains.items():
            tables = {t: n for t, n in self.rows.items() if _root(t) == resource}
            what = ""
            if not self.keep_rows:
                each = ", ".join(f"{t} {n}" for t, n in sorted(tables.items()))
                what = f", {sum(tables.values())} row(s) to delete" + (f" ({each})" if len(tables) > 1 else "")
            lines.append(f"  {resource}: {len(domains)} domain(s){what}")
        for resource, domains in self.not_loaded.items():
            if domains:
                lines.append(
                    f"  {resource}: not loaded by this pipeline for {', '.join(domains)} (nothing to reset)"
                )
        if self.is_empty:
            lines.append("  nothing to reset")
        elif self.keep_rows:
            lines.append("  rows are kept: the next run merges the reload over them")
        else:
            lines.append(
                "  the next run reloads them as a first sync would (initial_days, the current "
                "snapshot); snapshots of past days and days older than that window cannot be "
                "reloaded (--keep-rows keeps the rows)"
            )
        return "\n".join(lines)


def plan_reset(
    pipeline: Pipeline,
    resources: Sequence[str],
    domain_ids: Optional[Sequence[str]] = None,
    keep_rows: bool = False,
) -> ResetPlan:
    """What a reset of `resources` (of `domain_ids`, default every domain) would change, from
    the state restored from the warehouse. Changes nothing."""
    unknown = sorted(set(resources) - set(ENDPOINTS))
    if unknown:
        raise ResetError(f"Unknown resources {unknown}; choose from {', '.join(ENDPOINTS)}")
    if not resources:
        raise ResetError(f"Name the resources to reset; choose from {', '.join(ENDPOINTS)}")
    states = resource_states(pipeline)  # restores the state from the warehouse when newer there
    if not pipeline.default_schema_name:
        raise ResetError(
            f"Pipeline {pipeline.pipeline_name} has loaded nothing into this warehouse "
            "(check --pipeline-name, --shard, --dataset): nothing to reset"
        )
    plan = ResetPlan(
        pipeline.pipeline_name, {}, {}, whole_resources=domain_ids is None, keep_rows=keep_rows
    )
    for resource in (name for name in ENDPOINTS if name in resources):
        state = states.get(resource, {})
        loaded = set(state.get(CURSORS_KEY) or {}) | set(state.get(SYNCED_KEY) or {})
        wanted = sorted(loaded) if domain_ids is None else list(dict.fromkeys(domain_ids))
        plan.domains[resource] = [d for d in wanted if d in loaded]
        plan.not_loaded[resource] = [d for d in wanted if d not in loaded]
    if not keep_rows and not plan.is_empty:
        with pipeline_warehouse(pipeline) as warehouse:
            for table, (sql, ids) in _deletes(warehouse, pipeline, plan, "select count(*) as n"):
                counted = sum(
                    int(row["n"])
                    for batch in _batches(ids)
                    for row in warehouse.rows(sql.format(ids=_placeholders(batch)), *batch)
                )
                plan.rows[table] = plan.rows.get(table, 0) + counted
    return plan


def apply_reset(pipeline: Pipeline, plan: ResetPlan) -> Optional[str]:
    """Commits the reset of `plan` (state, then rows); returns the load id of the state."""
    from dlt.pipeline.helpers import pipeline_drop

    from .pipeline import run_settings

    if plan.is_empty:
        return None
    paths = []
    for resource, domains in plan.domains.items():
        for key in (CURSORS_KEY, SYNCED_KEY):
            if plan.whole_resources:
                paths.append(f"resources.{resource}.{key}")
            else:
                paths += [f"resources.{resource}.{key}.{_quoted(d)}" for d in domains]
    with dlt.config.values(run_settings(pipeline)):
        drop = pipeline_drop(pipeline, state_paths=paths, state_only=True)
        drop()
    load_info = pipeline.last_trace.last_load_info if pipeline.last_trace else None
    load_id = load_info.loads_ids[-1] if drop.drop_state and load_info and load_info.loads_ids else None
    if not plan.keep_rows:
        with pipeline_warehouse(pipeline) as warehouse:
            if deletes_with_sql(pipeline.destination):
                deletes = _deletes(warehouse, pipeline, plan, "delete")
                with warehouse.transaction():
                    for _, (sql, ids) in deletes:
                        for batch in _batches(ids):
                            warehouse.execute(sql.format(ids=_placeholders(batch)), *batch)
            else:  # a lakehouse: the same rows, selected, then deleted table by table
                for table, (sql, ids) in _deletes(warehouse, pipeline, plan, "select _dlt_id"):
                    row_ids = [
                        str(row["_dlt_id"])
                        for batch in _batches(ids)
                        for row in warehouse.rows(sql.format(ids=_placeholders(batch)), *batch)
                    ]
                    delete_lakehouse_rows(pipeline, table, row_ids)
    return load_id


def _deletes(warehouse: Warehouse, pipeline: Pipeline, plan: ResetPlan, verb: str) -> List[Any]:
    """(table, (SQL with an `{ids}` slot, domain ids)) per table, child tables first; only the
    tables the warehouse has."""
    schema = pipeline.default_schema
    statements = []
    for resource, domains in plan.domains.items():
        if not domains or resource not in schema.tables or not warehouse.has_tables([resource]):
            continue
        spec = ENDPOINTS[resource]
        column = "domain_id" if "domain_id" in spec["columns"] else spec["primary_key"][0]
        root = warehouse.table(resource)
        where_root = f"{column} in ({{ids}})"
        for nested in reversed(get_nested_tables(schema.tables, resource)[1:]):
            if not warehouse.has_tables([nested["name"]]):
                continue
            statements.append((nested["name"], (
                f"{verb} from {warehouse.table(nested['name'])} where _dlt_root_id in "
                f"(select _dlt_id from {root} where {where_root})", domains,
            )))
        statements.append((resource, (f"{verb} from {root} where {where_root}", domains)))
    return statements


def _batches(ids: List[str]) -> List[List[str]]:
    return [ids[i:i + DELETE_BATCH] for i in range(0, len(ids), DELETE_BATCH)]


def _placeholders(ids: List[str]) -> str:
    return ", ".join(["%s"] * len(ids))


def _quoted(key: str) -> str:
    """A state key as one JSON path element (domain ids are UUIDs: dashes need quoting)."""
    quote = "'" if "'" not in key else '"'
    return f"{quote}{key}{quote}"


def _root(table: str) -> str:
    return table.split("__", 1)[0]
