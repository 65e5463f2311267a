"""The paginator every AIclicks endpoint shares.

It reads the envelope (the data selector is `$`), so one class serves every shape of
`data` (docs/api-notes.md, Envelope):
- a list with `data.total_pages` is walked page by page with the largest allowed `size`;
- a payload without `total_pages` (time series, rankings, an unpaged `/fanout-queries`: docs/api-notes.md,
  Reading: pagination of /fanout-queries and what total counts) is
  one page;
- an offset-paged, newest-first list that grows or shrinks while it is walked (`/prompts`; docs/api-notes.md,
  Pagination) is
  walked once more from page 1 (at a page size the server has not cached), so rows shifted
  across a page boundary are not missed (merge on the primary key drops the repeats);
- the request's `days` window is set per domain just before the first request, from the sync's
  per-domain cursors.
"""

from typing import Any, Callable, List, Optional

from requests import Request, Response

from dlt.sources.helpers.rest_client.paginators import BasePaginator

from .values import as_int

WindowFunction = Callable[[str], Optional[int]]


class EnvelopePaginator(BasePaginator):
    def __init__(
        self,
        page_size: Optional[int] = None,
        window_days: Optional[WindowFunction] = None,
        max_rewalks: int = 1,
    ) -> None:
        super().__init__()
        self.page_size = page_size
        self.window_days = window_days
        self.max_rewalks = max_rewalks
        self.page = 1
        self.first_total: Optional[int] = None
        self.rewalks = 0

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
        total = as_int(payload.get("total"))
        if self.first_total is None:
            self.first_total = total
        if total_pages is not None and self.page < total_pages:
            self.page += 1
            self._has_next_page = True
        elif (
            total_pages is not None
            and total != self.first_total
            and self.rewalks < self.max_rewalks
        ):
            # the list changed while it was walked: walk it once more, one row a page smaller,
            # so the query strings differ and the server's cache cannot answer with the old pages
            self.rewalks += 1
            self.first_total = total
            self.page = 1
            if self.page_size and self.page_size > 1:
                self.page_size -= 1
            self._has_next_page = True
        else:
            self._has_next_page = False

    def update_request(self, request: Request) -> None:
        if self._has_next_page:
            request.params["page"] = self.page
            if self.page_size:
                request.params["size"] = self.page_size
