"""paginator.py: the walk of a paged list, and the walk again when the list changed under it."""

from typing import Any, Dict, List, Optional

import requests

from aiclicks_pipeline.paginator import EnvelopePaginator, ItemTally

URL = "https://api.example/api/v1/prompts"


class Walk:
    """Drives a paginator as dlt's REST client does, answering each request from `pages`
    (page number -> items) and recording the (page, size) asked."""

    def __init__(self, paginator: EnvelopePaginator, total: Optional[int] = None) -> None:
        self.paginator = paginator
        self.total = total
        self.asked: List[tuple] = []

    def run(self, pages: Dict[int, List[Any]], limit: int = 20) -> List[tuple]:
        request = requests.Request("GET", URL, params={"domain_id": "d1"})
        self.paginator.init_request(request)
        for _ in range(limit):
            page, size = request.params.get("page"), request.params.get("size")
            self.asked.append((page, size))
            data = {"items": pages[page], "total_pages": len(pages), "total": self.total}
            envelope = {"data": data}
            response = requests.Response()
            response.request = request.prepare()
            self.paginator.update_state(response, [envelope])
            if not self.paginator.has_next_page:
                return self.asked
            self.paginator.update_request(request)
        raise AssertionError(f"no end after {limit} requests: {self.asked}")


def items(*ids: str) -> List[Dict[str, str]]:
    return [{"id": i} for i in ids]


def test_a_stable_list_is_walked_once_at_the_largest_page_size():
    walk = Walk(EnvelopePaginator(page_size=100, item_key="id"), total=5)
    assert walk.run({1: items("a", "b", "c"), 2: items("d", "e")}) == [(1, 100), (2, 100)]


def test_an_item_seen_twice_walks_the_list_again_one_row_a_page_smaller():
    # a prompt added at the top shifts "c" onto page 2 as well
    walk = Walk(EnvelopePaginator(page_size=100, item_key="id"), total=5)
    asked = walk.run({1: items("a", "b", "c"), 2: items("c", "d")})
    assert asked == [(1, 100), (2, 100), (1, 99), (2, 99)]


def test_fewer_items_than_the_total_walks_again_and_a_second_change_does_not_loop():
    walk = Walk(EnvelopePaginator(page_size=50, item_key="id", max_rewalks=1), total=6)
    # one added and one removed: no repeat, but one item short of the total, every time
    asked = walk.run({1: items("a", "b"), 2: items("d", "e", "f")})
    assert asked == [(1, 50), (2, 50), (1, 49), (2, 49)]


def test_a_payload_without_total_pages_is_one_page():
    paginator = EnvelopePaginator(page_size=None, item_key=None)
    request = requests.Request("GET", URL, params={})
    paginator.init_request(request)
    response = requests.Response()
    response.request = request.prepare()
    paginator.update_state(response, [{"data": [{"date": "2026-06-17", "value": 1.0}]}])
    assert not paginator.has_next_page and "page" not in request.params


def test_the_window_is_set_per_domain_before_the_first_request():
    paginator = EnvelopePaginator(window_days=lambda domain_id: {"d1": 7}.get(domain_id))
    request = requests.Request("GET", URL, params={"domain_id": "d1"})
    paginator.init_request(request)
    assert request.params == {"domain_id": "d1", "days": 7}
    other = requests.Request("GET", URL, params={"domain_id": "d2"})
    paginator.init_request(other)
    assert "days" not in other.params


def test_a_nested_list_matches_its_total_by_items_or_by_entries():
    prompts = [
        {"id": "p1", "fanout_queries": [{"id": "e1"}, {"id": "e2"}]},
        {"id": "p2", "fanout_queries": [{"id": "e3"}]},
    ]
    def fanout_paginator():
        return EnvelopePaginator(page_size=25, item_key="id", nested_items=("fanout_queries", "id"))

    for total in (2, 3):  # two prompts, three emissions: either reading of `total` is whole
        assert Walk(fanout_paginator(), total=total).run({1: prompts}) == [(1, 25)]
    assert len(Walk(fanout_paginator(), total=4).run({1: prompts})) == 2


def test_the_tally_counts_unkeyed_items_and_notices_a_repeat():
    tally = ItemTally("id")
    tally.add([{"id": 1}, {"id": 2}, {"other": 3}, "not an object"])
    assert tally.count == 4 and not tally.repeated
    tally.add([{"id": 2}])
    assert tally.repeated and tally.count == 4
