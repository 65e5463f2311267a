"""report/data.py without a warehouse: which marts the report reads, and how the rows of a
section become what a chart shows (gaps, the latest window, the top hosts, the index row)."""

from datetime import date, timedelta

from aiclicks_pipeline.report.data import (
    REPORT_MARTS,
    SECTIONS,
    TOP_HOSTS,
    _in_domains,
    _latest_window,
    sources_view,
    summary_view,
    trend_view,
)
from aiclicks_pipeline.transform import MARTS

DAY = date(2026, 6, 17)


def test_every_section_reads_a_mart_of_the_dbt_package():
    assert set(REPORT_MARTS) <= set(MARTS)
    assert len(set(REPORT_MARTS)) == len(SECTIONS)
    for mart, sql in SECTIONS.values():
        assert '"schema"."' + mart + '"' in sql(f'"schema"."{mart}"', ["d1"])


def test_domain_ids_are_quoted_in_sql():
    assert _in_domains("domain_id", None) == "1 = 1"
    assert _in_domains("domain_id", ["a", "it's"]) == "domain_id in ('a', 'it''s')"


def test_a_trend_has_every_calendar_day_and_a_day_without_a_value_is_a_gap():
    rows = [
        {"day": DAY, "visibility_pct": 10.0, "mentions_count": 3, "citations_count": None},
        {"day": DAY + timedelta(days=2), "visibility_pct": 12.5, "mentions_count": None,
         "citations_count": 1},
    ]
    trend = trend_view(rows)
    assert trend["dates"] == ["2026-06-17", "2026-06-18", "2026-06-19"]
    assert trend["visibility"] == [10.0, None, 12.5]
    assert trend["mentions"] == [3, None, None] and trend["citations"] == [None, None, 1]
    assert trend_view([]) == {"dates": [], "visibility": [], "mentions": [], "citations": []}


def test_the_latest_window_is_the_newest_snapshot_then_the_default_window_then_the_longest():
    def rows(*windows):
        return [
            {"snapshot_date": DAY + timedelta(days=d), "days": w, "n": (d, w)} for d, w in windows
        ]

    assert {r["n"] for r in _latest_window(rows((0, 30), (1, 7)))} == {(1, 7)}
    assert {r["n"] for r in _latest_window(rows((1, 90), (1, 30), (1, 7)))} == {(1, 30)}
    assert {r["n"] for r in _latest_window(rows((1, 90), (1, 7)))} == {(1, 90)}
    assert _latest_window([]) == []


def test_sources_split_citations_by_kind_and_keep_the_top_hosts():
    hosts = [
        {"snapshot_date": DAY, "days": 30, "cited_host": f"site{n}.com",
         "source_type": "third_party", "competitor_name": None, "citations": n, "urls": 1}
        for n in range(1, TOP_HOSTS + 4)
    ] + [
        {"snapshot_date": DAY, "days": 30, "cited_host": "acme.com", "source_type": "own",
         "competitor_name": None, "citations": 7, "urls": 2},
        {"snapshot_date": DAY, "days": 30, "cited_host": "rival.com", "source_type": "competitor",
         "competitor_name": "Rival", "citations": 7, "urls": 1},
    ]
    view = sources_view(hosts)
    third_party = sum(range(1, TOP_HOSTS + 4))
    assert view["by_type"] == {"own": 7, "competitor": 7, "third_party": third_party}
    assert view["total_hosts"] == TOP_HOSTS + 5 and len(view["hosts"]) == TOP_HOSTS
    citations = [h["citations"] for h in view["hosts"]]
    assert citations == sorted(citations, reverse=True)
    # a tie goes by host name
    tied = [h["host"] for h in view["hosts"] if h["citations"] == 7]
    assert tied == ["acme.com", "rival.com", "site7.com"]


def test_the_index_row_has_the_latest_visibility_its_week_change_and_the_own_share():
    trend = trend_view([
        {"day": DAY + timedelta(days=d), "visibility_pct": v, "mentions_count": None,
         "citations_count": None}
        for d, v in ((0, 20.0), (3, 22.0), (7, 25.5))
    ])
    domain = {
        "trend": trend,
        "share_of_voice": {"brands": [{"own": False, "sov": 60.0, "change": None, "rank": 1},
                                      {"own": True, "sov": 40.0, "change": -2.5, "rank": 2}]},
        "sources": {"by_type": {"own": 5, "competitor": 5, "third_party": 10}},
    }
    summary = summary_view(domain)
    assert (summary["visibility"], summary["visibility_day"]) == (25.5, "2026-06-24")
    assert summary["visibility_change_7d"] == 5.5
    own = (summary["sov"], summary["sov_change"], summary["sov_rank"], summary["brands"])
    assert own == (40.0, -2.5, 2, 2)
    assert summary["citations"] == 20 and summary["own_citations_pct"] == 25.0
    assert summary["sparkline"] == trend["visibility"][-30:]
