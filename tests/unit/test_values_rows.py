"""values.py and rows.py: loosely typed numbers, a URL's query, and an envelope turned into rows."""

import logging
from datetime import date

import pytest

from aiclicks_pipeline.rows import envelope_items, envelope_rows, without_repeated_items
from aiclicks_pipeline.source import shard_filter
from aiclicks_pipeline.values import as_int, query_value

GENERATED_AT = "2026-06-17T23:30:00-01:00"  # the UTC day after its local one


@pytest.mark.parametrize("value, expected", [
    (3, 3), (3.0, 3), ("3", 3), ("3.0", 3), (None, None), (True, None), ("three", None), ([], None),
])
def test_a_number_sent_as_a_number_or_a_string_is_read_and_anything_else_is_none(value, expected):
    assert as_int(value) == expected


def test_a_query_value_is_read_from_a_url_or_is_none():
    url = "https://api.example/api/v1/prompts?domain_id=d1&size=100&size=5"
    assert query_value(url, "size") == "100"
    assert query_value(url, "page") is None and query_value(None, "size") is None


def test_items_are_read_from_data_items_or_a_bare_list_and_non_objects_dropped():
    assert envelope_items({"data": {"items": [{"id": 1}, "x", None]}}) == [{"id": 1}]
    assert envelope_items({"data": [{"id": 2}]}) == [{"id": 2}]
    assert envelope_items({"data": None}) == [] and envelope_items({}) == []


def test_a_domain_listed_twice_is_kept_once_and_named(caplog):
    items = [{"id": "a", "n": 1}, {"id": "b"}, {"id": "a", "n": 2}]
    envelope = {"data": {"items": items, "total": 3}}
    with caplog.at_level(logging.WARNING, logger="aiclicks_pipeline"):
        unique = without_repeated_items(envelope)
    assert unique["data"] == {"items": [{"id": "a", "n": 1}, {"id": "b"}], "total": 3}
    assert "listed a more than once" in caplog.text
    same = {"data": {"items": [{"id": "a"}]}}
    assert without_repeated_items(same) is same


def test_a_snapshot_row_carries_its_domain_window_and_utc_snapshot_date():
    items = [{"id": "brand", "sov": 40.0, "new": 1}]
    envelope = {"generated_at": GENERATED_AT, "data": {"items": items}}
    (row,) = envelope_rows("brand_rankings", envelope, "d1", 30)
    # unknown fields pass through: the API's changes are additive
    assert row == {"id": "brand", "sov": 40.0, "new": 1, "generated_at": GENERATED_AT,
                   "domain_id": "d1", "days": 30, "snapshot_date": date(2026, 6, 18)}


def test_domains_are_not_scoped_and_a_series_has_no_snapshot():
    domains = {"generated_at": GENERATED_AT, "data": {"items": [{"id": "d1"}]}}
    (domain,) = envelope_rows("domains", domains, None, None)
    assert domain == {"id": "d1", "generated_at": GENERATED_AT}
    series = {"generated_at": GENERATED_AT, "data": [{"date": "2026-06-17", "value": 5}]}
    (day,) = envelope_rows("visibility_daily", series, "d1", 7)
    assert day == {
        "date": "2026-06-17", "value": 5, "generated_at": GENERATED_AT, "domain_id": "d1",
    }


def test_fanout_is_one_row_per_emission_with_its_prompts_id_and_text():
    envelope = {"generated_at": GENERATED_AT, "data": {"items": [
        {"id": "p1", "text": "best crm", "tags": ["x"], "fanout_queries": [
            {"id": "e1", "query": "crm pricing", "model": "ChatGPT"}, "not an emission",
            {"id": "e2", "query": "crm reviews", "model": "Perplexity"},
        ]},
        {"id": "p2", "text": "no emissions", "fanout_queries": None},
    ]}}
    rows = list(envelope_rows("fanout_queries", envelope, "d1", 7))
    assert [(r["id"], r["prompt_id"], r["prompt_text"], r["query"]) for r in rows] == [
        ("e1", "p1", "best crm", "crm pricing"), ("e2", "p1", "best crm", "crm reviews"),
    ]
    assert all(r["domain_id"] == "d1" and "prompt_tags" not in r and "days" not in r for r in rows)


def test_shards_split_the_domains_without_overlap_or_gap():
    ids = [f"domain-{n}" for n in range(200)]
    shares = [[i for i in ids if shard_filter(f"{k}/4")(i)] for k in range(1, 5)]
    assert sorted(sum(shares, [])) == sorted(ids)
    assert all(shares)  # a stable hash spreads 200 ids over every share
    assert shard_filter("2/4")("domain-7") == shard_filter("2/4")("domain-7")
    assert all(shard_filter(None)(i) for i in ids)


@pytest.mark.parametrize("shard", ["2", "a/b", "0/4", "5/4"])
def test_a_malformed_shard_says_how_it_should_look(shard):
    with pytest.raises(ValueError, match="shard"):
        shard_filter(shard)
