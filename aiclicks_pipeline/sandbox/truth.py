"""Ground truth in warehouse form: the rows a correct loader holds after a series of syncs.

A test tells `WarehouseTruth` when each sync ran (the sandbox clock) and which `days` window
each incremental resource asked for; it replays the account's API-level truth (account.py)
through the table keys of the endpoint table, the way merge loading keeps them: the latest
sync's row wins per key, and rows of earlier, larger windows stay.
"""

from datetime import datetime
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from ..settings import DEFAULT_SNAPSHOT_DAYS, ENDPOINTS
from .account import Account

SERIES_METRICS = {
    "visibility_daily": "visibility",
    "mentions_daily": "mentions",
    "citability_daily": "citability",
    "citations_daily": "citations",
}
DaysChoice = Union[int, Callable[[str, str], int]]


class WarehouseTruth:
    def __init__(self, account: Account, snapshot_days: int = DEFAULT_SNAPSHOT_DAYS) -> None:
        self.account = account
        self.snapshot_days = snapshot_days
        self.tables: Dict[str, Dict[Tuple[Any, ...], Dict[str, Any]]] = {
            name: {} for name in list(ENDPOINTS) + ["citations__models"]
        }

    def record_sync(
        self,
        now: datetime,
        days: DaysChoice = 90,
        domain_ids: Optional[Iterable[str]] = None,
        resources: Optional[Iterable[str]] = None,
    ) -> None:
        """One sync at `now`; `days` is the incremental window, or a function of
        (resource, domain_id) giving it."""
        selected = set(resources or ENDPOINTS)
        wanted = set(domain_ids) if domain_ids is not None else None
        domains = [d for d in self.account.domains(now) if wanted is None or d["id"] in wanted]
        if "domains" in selected:
            for domain in domains:
                self._put("domains", domain)
        snapshot_date = now.date().isoformat()
        for domain in domains:
            domain_id = domain["id"]
            for name in selected - {"domains"}:
                window = days(name, domain_id) if callable(days) else days
                for row in self._rows(name, domain_id, window, now, snapshot_date):
                    self._put(name, row)

    def forget(self, resources: Iterable[str], domain_ids: Iterable[str]) -> None:
        """What `aiclicks-pipeline reset` deletes: the rows of those resources and domains,
        child rows included."""
        wanted = set(domain_ids)
        for name in resources:
            spec = ENDPOINTS[name]
            column = "domain_id" if "domain_id" in spec["columns"] else spec["primary_key"][0]
            for key in [k for k, row in self.tables[name].items() if str(row[column]) in wanted]:
                del self.tables[name][key]
                if name == "citations":
                    children = self.tables["citations__models"]
                    for child in [c for c in children if c[:-1] == key]:
                        del children[child]

    def _rows(
        self, name: str, domain_id: str, window: int, now: datetime, snapshot_date: str
    ) -> List[Dict[str, Any]]:
        account = self.account
        scoped = {"domain_id": domain_id}
        snapshot = {**scoped, "days": self.snapshot_days, "snapshot_date": snapshot_date}
        if name == "prompts":
            return [{**p, **scoped} for p in account.prompts(domain_id, now)]
        if name == "fanout_queries":
            return [
                {
                    "id": e["id"],
                    "prompt_id": group["id"],
                    "prompt_text": group["text"],
                    "query": e["query"],
                    "model": e["model"],
                    **scoped,
                }
                for group in account.fanout(domain_id, window, now)
                for e in group["fanout_queries"]
            ]
        if name in SERIES_METRICS:
            return [
                {**item, **scoped}
                for item in account.series(SERIES_METRICS[name], domain_id, window, now)
            ]
        if name == "brand_rankings":
            return [{**i, **snapshot} for i in account.brand_rankings(domain_id, self.snapshot_days, now)]
        if name == "model_leaderboard":
            return [
                {**i, **snapshot} for i in account.model_leaderboard(domain_id, self.snapshot_days, now)
            ]
        if name == "citations":
            rows = [{**i, **snapshot} for i in account.citations(domain_id, self.snapshot_days, now)]
            for row in rows:
                for model in row["models"]:
                    self._put_child(row, model)
            return [{k: v for k, v in row.items() if k != "models"} for row in rows]
        raise KeyError(name)

    def _put(self, name: str, row: Dict[str, Any]) -> None:
        key = tuple(str(row[column]) for column in ENDPOINTS[name]["primary_key"])
        self.tables[name][key] = row

    def _put_child(self, parent: Dict[str, Any], model: str) -> None:
        key = tuple(str(parent[c]) for c in ENDPOINTS["citations"]["primary_key"])
        # merge replaces a parent's child rows as a whole
        children = self.tables["citations__models"]
        if model == parent["models"][0]:
            for stale in [k for k in children if k[:-1] == key]:
                del children[stale]
        children[key + (model,)] = {"model": model}

    def keys(self, name: str) -> set:
        return set(self.tables[name])

    def rows(self, name: str) -> Dict[Tuple[Any, ...], Dict[str, Any]]:
        return self.tables[name]
