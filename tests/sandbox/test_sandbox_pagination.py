"""Paging arithmetic of /prompts, /fanout-queries and /citations, and rows shifting mid-run."""

import math

from sandbox_support import START

from aiclicks_pipeline.sandbox.clock import parse_instant

NOW = parse_instant(START)


def all_pages(client, name, size, **params):
    """Every page of a paginated endpoint, as (page data, ...) until page > total_pages."""
    pages, page = [], 1
    while True:
        data = client.data(name, page=page, size=size, **params)
        pages.append(data)
        if page >= data["total_pages"]:
            return pages
        page += 1


def test_prompts_pages_add_up_newest_first(sandbox, client, domain_id):
    expected = sandbox.account.prompts(domain_id, NOW)
    pages = all_pages(client, "prompts", 7, domain_id=domain_id)
    total = len(expected)
    assert total % 7, "pick a size that leaves a partial last page"
    assert all(p["total"] == total and p["size"] == 7 for p in pages)
    assert pages[0]["total_pages"] == len(pages) == math.ceil(total / 7)
    assert len(pages[-1]["items"]) == total % 7
    rows = [item for p in pages for item in p["items"]]
    assert rows == expected
    created = [r["created_at"] for r in rows]
    assert created == sorted(created, reverse=True)
    assert all(r["created_at"] <= "2026-06-17T10:00:00.000Z" for r in rows)


def test_prompts_default_size_max_size_and_page_past_the_end(client, domain_id):
    first = client.data("prompts", domain_id=domain_id)
    assert first["size"] == 50 and first["page"] == 1
    everything = client.data("prompts", domain_id=domain_id, size=500)
    assert everything["total_pages"] == 1 and len(everything["items"]) == everything["total"]
    beyond = client.data("prompts", domain_id=domain_id, page=everything["total_pages"] + 1)
    assert beyond["items"] == [] and beyond["total"] == everything["total"]


def test_fanout_pages_are_prompt_groups_and_total_counts_emissions(sandbox, client, domain_id):
    expected = sandbox.account.fanout(domain_id, 30, NOW)
    pages = all_pages(client, "fanout_queries", 10, domain_id=domain_id)
    emissions = sum(len(g["fanout_queries"]) for g in expected)
    assert emissions > len(expected), "total must be distinguishable from the group count"
    assert all(p["total"] == emissions for p in pages)
    assert pages[0]["total_pages"] == math.ceil(len(expected) / 10) == len(pages)
    assert [g for p in pages for g in p["items"]] == expected
    ids = [e["id"] for g in expected for e in g["fanout_queries"]]
    assert len(ids) == len(set(ids))


def test_fanout_model_filter(sandbox, client, domain_id):
    channel = sandbox.account.channels(domain_id)[0]
    body = client.get("fanout_queries", {"domain_id": domain_id, "model": channel, "size": 100}).json()
    assert body["model"] == channel
    models = {e["model"] for g in body["data"]["items"] for e in g["fanout_queries"]}
    assert models == {channel}
    everything = client.data("fanout_queries", domain_id=domain_id, size=100)
    assert body["data"]["total"] < everything["total"]
    nothing = client.data("fanout_queries", domain_id=domain_id, model="NoSuchModel")
    assert nothing == {"items": [], "total": 0, "page": 1, "size": 25, "total_pages": 0}


def test_citations_pages(sandbox, client, domain_id):
    expected = sandbox.account.citations(domain_id, 30, NOW)
    pages = all_pages(client, "citations", 10, domain_id=domain_id)
    assert pages[0]["total"] == len(expected) and len(pages) == math.ceil(len(expected) / 10)
    assert [c for p in pages for c in p["items"]] == expected


def test_prompts_added_mid_pagination_shift_rows(sandbox, client, domain_id):
    """A prompt added between page 1 and page 2 pushes page 1's last row onto page 2."""
    added = []

    def add_before_page_2(path, query):
        if path.endswith("/prompts") and query.get("page") == "2" and not added:
            added.extend(sandbox.add_prompts(domain_id, 1))

    sandbox.on_request(add_before_page_2)
    page1 = client.data("prompts", domain_id=domain_id, size=5, page=1)
    page2 = client.data("prompts", domain_id=domain_id, size=5, page=2)
    assert page2["total"] == page1["total"] + 1
    assert page2["items"][0] == page1["items"][-1]  # seen twice: dedupe on id
    fresh = client.data("prompts", domain_id=domain_id, size=5, page=1, x="no-cache")
    assert fresh["items"][0]["id"] == added[0]["id"]
