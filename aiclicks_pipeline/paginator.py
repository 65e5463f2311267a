"""The paginator every AIclicks endpoint shares.

It reads the envelope (the data selector is `$`), so one class serves every shape of
`data` (docs/api-notes.md, Envelope):
- a list with `data.total_pages` is walked page by page with the largest allowed `size`;
- a payload without `total_pages` (time series, rankings, an unpaged `/fanout-queries`: docs/api-notes.md,
  Reading: pagination of /fanout-queries and what total counts) is one page;
- an offset-paged list that changes while it is walked (new prompts shift a newest-first list
  across page boundaries, one prompt added and another removed leave `total` as it was;
  docs/api-notes.md, Pagination) is found out without a request more: at the last page, the
  walk is whole only when no item was seen twice and the items seen are as many as `total`.
  Otherwise it is walked once more from page 1, at a page size the server has not cached
  (merge on the primary key drops the repeats);
- the request's `days` window is set per domain just before the first request, from the sync's
  per-domain cursors.
"""

from typing import Any, Callable, Iterable, List, Optional, Set, Tuple

from requests import Request, Response

from dlt.sources.helpers.rest_client.paginators import BasePaginator

from .values import as_int, query_value

WindowFunction = Callable[[str], Optional[int]]


class ItemTally:
    """The items a walk has seen, by the field that tells them apart."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.seen: Set[Any] = set()
        self.unkeyed = 0  # items without the key: counted, not compared
        self.repeated = False

    def add(self, items: Iterable[Any]) -> None:
        for item in items:
            value = item.get(self.key) if isinstance(item, dict) else None
            if value is None:
                self.unkeyed += 1
            elif value in self.seen:
                self.repeated = True
            else:
                self.seen.add(value)

    @property
    def count(self) -> int:
        return len(self.seen) + self.unkeyed


class EnvelopePaginator(BasePaginator):
    def __init__(
        self,
        page_size: Optional[int] = None,
        window_days: Optional[WindowFunction] = None,
        max_rewalks: int = 1,
        item_key: Optional[str] = None,
        nested_items: Optional[Tuple[str, str]] = None,
    ) -> None:
        super().__init__()
        self.page_size = page_size
        self.window_days = window_days
        self.max_rewalks = max_rewalks
        self.item_key = item_key
        self.nested_items = nested_items
        self.page = 1
        self.rewalks = 0
        self._start_walk()

    def _start_walk(self) -> None:
        self.items = ItemTally(self.item_key) if self.item_key else None
        self.nested = ItemTally(self.nested_items[1]) if self.nested_items else None

    def init_request(self, request: Request) -> None:
        request.params = dict(request.params or {})
        if self.window_days is not None:
            days = self.window_days(request.params.get("domain_id"))
            if days is not None:
                request.params["days"] = days
        if self.page_size:
            request.params["page"] = self.page
            request.params["size"] = self.page_size

    def update_state(self, response: Response, data: Optional[List[Any]] = None) -> None:
        envelope = data[0] if data and isinstance(data[0], dict) else {}
        payload = envelope.get("data")
        payload = payload if isinstance(payload, dict) else {}
        total_pages = as_int(payload.get("total_pages"))
        if total_pages is not None:
            self._tally(payload.get("items"))
        if total_pages is not None and self.page < total_pages:
            self.page += 1
            self._has_next_page = True
        elif (
            total_pages is not None
            and self.rewalks < self.max_rewalks
            and not self._walk_is_whole(as_int(payload.get("total")))
        ):
            # the list changed while it was walked: walk it once more, one row a page smaller
            # than the pages asked, so the query strings differ and the server's cache cannot
            # answer with the old pages
            asked = as_int(query_value(response.request.url if response.request else None, "size"))
            self.rewalks += 1
            self.page = 1
            size = asked or self.page_size
            if size and size > 1:
                self.page_size = size - 1
            self._start_walk()
            self._has_next_page = True
        else:
            self._has_next_page = False

    def _tally(self, items: Any) -> None:
        items = [item for item in items or [] if isinstance(item, dict)]
        if self.items is not None:
            self.items.add(items)
        if self.nested is not None and self.nested_items is not None:
            for item in items:
                self.nested.add(item.get(self.nested_items[0]) or [])

    def _walk_is_whole(self, total: Optional[int]) -> bool:
        """No item seen twice, and as many seen as `total` says there are (a nested list's
        `total` may count its items or their entries: either matches)."""
        tallies = [tally for tally in (self.items, self.nested) if tally is not None]
        if not tallies:
            return True
        if any(tally.repeated for tally in tallies):
            return False
        return total is None or any(tally.count == total for tally in tallies)

    def update_request(self, request: Request) -> None:
        if self._has_next_page:
            request.params["page"] = self.page
            if self.page_size:
                request.params["size"] = self.page_size
