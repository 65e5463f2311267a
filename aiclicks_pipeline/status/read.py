"""Reading what `status` shows from the warehouse (warehouse.py's reader), never writing.

From the dataset it reads
- each table's rows, the time of its newest load (`_dlt_load_id` joined to `_dlt_loads`) and its
  newest `generated_at`;
- each pipeline's state as dlt committed it (`_dlt_pipeline_state`, the newest row of a
  completed load, decoded with dlt's own functions): per resource and domain the cursor (the
  newest `generated_at` loaded) and `synced_at` (when it was last synced). Every pipeline of
  the dataset counts (the shards of one account share it);
- the run history (`_aiclicks_runs`, history.py): the last runs, and the domains the last run
  of each pipeline skipped.
"""

from datetime import datetime
from typing import Any, Dict, Optional

from ..errors import AIclicksError
from ..history import last_runs, skipped_by_last_runs
from ..settings import ENDPOINTS
from ..warehouse import Warehouse
from ..windows import parse_timestamp, utc_now
from .model import CHILD_TABLES, DEFAULT_MAX_AGE_HOURS, TableStatus, WarehouseStatus, domain_statuses

DEFAULT_RUNS = 5


class StatusError(AIclicksError):
    """Nothing loaded in the dataset (no dlt tables there)."""


def read_status(
    warehouse: Warehouse,
    max_age_hours: float = DEFAULT_MAX_AGE_HOURS,
    runs: int = DEFAULT_RUNS,
    now: Optional[datetime] = None,
) -> WarehouseStatus:
    """The status of the dataset `warehouse` reads."""
    now = now or utc_now()
    if not warehouse.has_tables(["_dlt_loads"]):
        raise StatusError(
            f"Nothing loaded in {warehouse.description}: no dlt tables there "
            "(load it first with `aiclicks-pipeline run`, or check --dataset)"
        )
    load_times = _load_times(warehouse)
    tables = [_table_status(warehouse, name, load_times) for name in (*ENDPOINTS, *CHILD_TABLES)]
    states = _pipeline_states(warehouse)
    history = last_runs(warehouse, runs)
    skipped = skipped_by_last_runs(warehouse)
    names = _domain_names(warehouse)
    domains = domain_statuses(states, names, skipped, now, max_age_hours)
    return WarehouseStatus(
        description=warehouse.description,
        now=now,
        max_age_hours=max_age_hours,
        pipelines={name: at for name, (at, _) in states.items()},
        tables=tables,
        domains=domains,
        runs=history,
    )


def _load_times(warehouse: Warehouse) -> Dict[str, datetime]:
    rows = warehouse.rows(
        f"select load_id, inserted_at from {warehouse.table('_dlt_loads')} where status = 0"
    )
    return {str(r["load_id"]): parse_timestamp(r["inserted_at"]) for r in rows}


def _table_status(warehouse: Warehouse, name: str, load_times: Dict[str, datetime]) -> TableStatus:
    if not warehouse.has_tables([name]):
        return TableStatus(name, None)
    table = warehouse.table(name)
    if name in CHILD_TABLES:
        (row,) = warehouse.rows(f"select count(*) as n from {table}")
        return TableStatus(name, int(row["n"]))
    (row,) = warehouse.rows(
        f"select count(*) as n, max(_dlt_load_id) as last_load, max(generated_at) as newest from {table}"
    )
    return TableStatus(
        name,
        int(row["n"]),
        load_times.get(str(row["last_load"])) if row["last_load"] is not None else None,
        parse_timestamp(row["newest"]) if row["newest"] is not None else None,
    )


def _pipeline_states(warehouse: Warehouse) -> Dict[str, Any]:
    """Per pipeline of the dataset: (time of the load that committed it, its state), the newest
    state of a completed load, as dlt restores it."""
    from dlt.common.versioned_state import decompress_state
    from dlt.pipeline.state_sync import migrate_state_to_current

    if not warehouse.has_tables(["_dlt_pipeline_state"]):
        return {}
    state, loads = warehouse.table("_dlt_pipeline_state"), warehouse.table("_dlt_loads")
    rows = warehouse.rows(
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
        states[name] = (parse_timestamp(row["inserted_at"]), decoded)
    return states


def _domain_names(warehouse: Warehouse) -> Dict[str, Optional[str]]:
    if not warehouse.has_tables(["domains"]):
        return {}
    return {
        str(r["id"]): r["name"]
        for r in warehouse.rows(f"select id, name from {warehouse.table('domains')}")
    }
