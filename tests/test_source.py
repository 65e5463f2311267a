"""The source end to end: real HTTP to the sandbox, real DuckDB, compared with ground truth."""

from datetime import timedelta

from dlt.common.schema.utils import get_columns_names_with_prop

from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import DEFAULT_DATASET, ENDPOINTS

from .support import START, assert_equals_truth, assert_keys_unique, assert_table_matches

INCREMENTAL = [n for n, e in ENDPOINTS.items() if e.get("window") == "incremental"]


def test_full_load_equals_ground_truth(sandbox, warehouse):
    result = warehouse.sync(sandbox)

    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    counts = assert_equals_truth(warehouse, truth)
    assert all(counts[table] > 0 for table in ENDPOINTS), counts
    assert_keys_unique(warehouse)
    assert result.windows_asked["visibility_daily"] == [90]
    assert result.windows_asked["brand_rankings"] == [30]
    assert result.stats.rate_limited == 0
    assert not result.skipped_domains
    # the largest page sizes: prompts at 500 a page means one request per domain here
    prompt_requests = [r for r in sandbox.stats.log if r["path"].endswith("/prompts")]
    assert {r["query"].get("size") for r in prompt_requests} == {"500"}
    assert len(prompt_requests) == len(sandbox.account.domain_ids())


def test_second_run_with_nothing_new_writes_no_rows(sandbox, warehouse):
    """Asked again at once (resync_after_minutes=0), every answer is a server cache hit no
    newer than the cursors: nothing is written."""
    warehouse.sync(sandbox)
    before = {table: warehouse.keyed(table) for table in ENDPOINTS}

    second = warehouse.sync(sandbox, resync_after_minutes=0)

    assert second.total_rows == 0, second.rows
    assert second.stats.skipped_responses > 0
    assert {table: warehouse.keyed(table) for table in ENDPOINTS} == before


def test_a_rerun_inside_the_resync_interval_asks_only_for_the_domains(sandbox, warehouse):
    first = warehouse.sync(sandbox)
    sandbox.reset_stats()

    second = warehouse.sync(sandbox)

    assert [r["path"] for r in sandbox.stats.log] == ["/api/v1/domains"]
    assert second.stats.requests == 1 and second.total_rows == 0
    assert second.domains_fresh == first.domains_total == len(sandbox.account.domain_ids())
    assert second.status == "success" and second.checkpoints_total == 0
    # an hour later (the API's cache lifetime; plus a minute, as the frozen sandbox clock
    # stood still while the first sync took real seconds) everything is due again
    sandbox.advance(hours=1, seconds=60)
    sandbox.reset_stats()
    third = warehouse.sync(sandbox)
    asked = {(r["path"], r["query"].get("domain_id")) for r in sandbox.stats.log}
    expected = {
        (f"/api/v1/{ENDPOINTS[name]['path']}", domain_id)
        for name in ENDPOINTS if ENDPOINTS[name]["domain_scoped"]
        for domain_id in sandbox.account.domain_ids()
    }
    assert third.domains_fresh == 0 and expected <= asked


def test_next_day_loads_new_and_revised_days_only(sandbox, warehouse):
    warehouse.sync(sandbox)
    first_now = sandbox.clock.now()
    old_visibility = warehouse.keyed("visibility_daily")

    sandbox.advance(days=1)
    result = warehouse.sync(sandbox)

    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(warehouse, truth)
    assert_keys_unique(warehouse)
    for name in INCREMENTAL:
        assert result.windows_asked[name] == [7], (name, result.windows_asked)
    domains = len(sandbox.account.domain_ids())
    # a 7-day window per domain, not the 90 days again
    assert result.rows["visibility_daily"] == 7 * domains
    new_visibility = warehouse.keyed("visibility_daily")
    assert len(new_visibility) == len(old_visibility) + domains
    # days older than the look-back keep their values; yesterday's was revised
    changed = {key for key in old_visibility if old_visibility[key]["value"] != new_visibility[key]["value"]}
    oldest_revisable = (first_now - timedelta(days=1)).date().isoformat()
    assert all(key[1] >= oldest_revisable for key in changed), sorted(changed)[:3]


def test_a_warehouse_keyed_on_id_alone_by_an_earlier_version_merges_on_the_new_key(
    sandbox, warehouse, monkeypatch
):
    # before the keys led with domain_id (settings.ENDPOINTS), prompts and fan-out were keyed on id
    with monkeypatch.context() as earlier:
        for table in ("prompts", "fanout_queries"):
            earlier.setitem(ENDPOINTS[table], "primary_key", ("id",))
        warehouse.sync(sandbox)
    first_now = sandbox.clock.now()

    sandbox.advance(days=1)
    warehouse.sync(sandbox, resync_after_minutes=0)

    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90)
    truth.record_sync(sandbox.clock.now(), days=7)
    assert_equals_truth(warehouse, truth)
    assert_keys_unique(warehouse)
    tables = warehouse.pipeline.default_schema.tables
    for table in ("prompts", "fanout_queries"):
        assert set(get_columns_names_with_prop(tables[table], "primary_key")) == {"domain_id", "id"}, table


def test_new_domain_gets_its_own_backfill(sandbox, warehouse):
    first, second, third = sandbox.account.domain_ids()[:3]
    warehouse.sync(sandbox, domain_ids=[first, second])
    first_now = sandbox.clock.now()

    sandbox.advance(days=1)
    result = warehouse.sync(sandbox)

    assert result.windows_asked["visibility_daily"] == [7, 90]
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(first_now, days=90, domain_ids=[first, second])
    truth.record_sync(
        sandbox.clock.now(), days=lambda resource, domain_id: 90 if domain_id == third else 7
    )
    assert_equals_truth(warehouse, truth)
    (days_of_third,) = warehouse.query(
        f"select count(*) from {DEFAULT_DATASET}.visibility_daily where domain_id = '{third}'"
    )[0]
    assert days_of_third == 90


def test_cache_hit_writes_nothing(sandbox, warehouse):
    warehouse.sync(sandbox)
    sandbox.advance(hours=0.2)
    warehouse.sync(sandbox, resync_after_minutes=0)
    sandbox.advance(hours=0.2)
    sandbox.reset_stats()

    third = warehouse.sync(sandbox, resync_after_minutes=0)

    # the same queries as the previous sync, inside the cache TTL: every response is a HIT
    assert sandbox.stats.cache_hits == third.stats.requests
    assert third.total_rows == 0, third.rows
    assert third.stats.skipped_responses == third.stats.requests


def test_resource_and_domain_selection(sandbox, warehouse):
    chosen = sandbox.account.domain_ids()[1]
    result = warehouse.sync(sandbox, resources=["visibility_daily"], domain_ids=[chosen])

    assert set(result.rows) == {"visibility_daily"}
    domains = warehouse.query(
        f"select distinct domain_id from {DEFAULT_DATASET}.visibility_daily"
    )
    assert domains == [(chosen,)]
    requested = {r["path"].rsplit("/", 1)[-1] for r in sandbox.stats.log}
    assert requested == {"domains", "visibility-time-series"}


def test_full_refresh_rebuilds_from_scratch(sandbox, warehouse):
    warehouse.sync(sandbox)
    sandbox.advance(days=1)
    result = warehouse.sync(sandbox, full_refresh=True)

    assert result.windows_asked["visibility_daily"] == [90]
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    assert_equals_truth(warehouse, truth)


def test_a_full_refresh_of_some_resources_keeps_the_other_tables_and_the_run_history(sandbox, warehouse):
    warehouse.sync(sandbox)
    refreshed = {"prompts", "citations", "citations__models"}
    history = {"_aiclicks_runs", "_aiclicks_runs__load_ids"}

    def counts():
        return {table: warehouse.query(f"select count(*) from {DEFAULT_DATASET}.{table}")[0][0]
                for table in warehouse.tables() if not table.startswith("_dlt")}

    before = counts()
    sandbox.advance(days=1)

    result = warehouse.sync(sandbox, full_refresh=True, resources=["prompts", "citations"])

    assert result.status == "success"
    after = counts()
    untouched = set(before) - refreshed - history
    assert untouched and {t: after.get(t) for t in untouched} == {t: before[t] for t in untouched}
    assert after["_aiclicks_runs"] == 2  # both runs
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    for table in ("prompts", "citations"):
        assert_table_matches(warehouse, truth, table)


def test_prompts_across_pages_and_rows_shifted_by_new_prompts(warehouse):
    with run_sandbox(seed=9, domains=1, prompts=(1100, 1200), start=START, frozen=True,
                     rate_limit=None) as sandbox:
        (domain_id,) = sandbox.account.domain_ids()
        added = []

        def add_prompts_before_page_2(path, query):
            if path.endswith("/prompts") and query.get("page") == "2" and not added:
                added.extend(sandbox.add_prompts(domain_id, 3))

        sandbox.on_request(add_prompts_before_page_2)
        warehouse.sync(sandbox, resources=["prompts"])

        pages = [
            (r["query"]["page"], r["query"]["size"])
            for r in sandbox.stats.log
            if r["path"].endswith("/prompts")
        ]
        # the list grew while it was walked: walked once more, past the server's cache
        assert pages == [("1", "500"), ("2", "500"), ("3", "500"), ("1", "499"), ("2", "499"), ("3", "499")]
        loaded = warehouse.keyed("prompts")
        expected = {p["id"] for p in sandbox.account.prompts(domain_id, sandbox.clock.now())}
        assert {prompt_id for _, prompt_id in loaded} == expected
        assert {p["id"] for p in added} <= expected
        assert_keys_unique(warehouse)


def test_a_refused_page_size_falls_back_to_the_general_maximum(sandbox, warehouse):
    # docs/api-notes.md, Reading: page size of /prompts: 500 or 100; a server enforcing 100 answers 422
    sandbox.set_faults(page_size_cap=100)

    warehouse.sync(sandbox)

    answered = {
        (r["query"]["size"], r["status"]) for r in sandbox.stats.log if r["path"].endswith("/prompts")
    }
    # domains fetched concurrently may each meet the 422 once; every page loaded asked 100
    assert answered == {("500", 422), ("100", 200)}
    truth = WarehouseTruth(sandbox.account)
    truth.record_sync(sandbox.clock.now(), days=90)
    assert_equals_truth(warehouse, truth)


def prompt_pages(sandbox):
    return [
        (r["query"]["page"], r["query"]["size"])
        for r in sandbox.stats.log
        if r["path"].endswith("/prompts") and r["status"] == 200
    ]


def test_a_list_that_changes_while_paged_but_keeps_its_total_is_walked_again(warehouse):
    # before page 3 is served, a prompt is added on top and the oldest (on page 3) removed:
    # `total` stays, the rows shift by one, page 3 repeats page 2's last prompt
    with run_sandbox(seed=9, domains=1, prompts=(1100, 1200), start=START, frozen=True,
                     rate_limit=None, faults={"churn_on_page": 3}) as sandbox:
        (domain_id,) = sandbox.account.domain_ids()
        before = {p["id"] for p in sandbox.account.prompts(domain_id, sandbox.clock.now())}

        warehouse.sync(sandbox, resources=["prompts"])

        assert sandbox.faults.churn_on_page == 0, "the list did not change"
        listed = {p["id"] for p in sandbox.account.prompts(domain_id, sandbox.clock.now())}
        assert len(listed) == len(before) and listed != before
        assert prompt_pages(sandbox) == [
            ("1", "500"), ("2", "500"), ("3", "500"), ("1", "499"), ("2", "499"), ("3", "499")
        ]
        loaded = {prompt_id for _, prompt_id in warehouse.keyed("prompts")}
        assert listed <= loaded  # the new prompt too
        assert_keys_unique(warehouse)


def test_a_stable_list_is_walked_once(warehouse):
    with run_sandbox(seed=9, domains=2, prompts=(230, 290), start=START, frozen=True,
                     rate_limit=None, faults={"page_size_cap": 100}) as sandbox:
        warehouse.sync(sandbox)

        now = sandbox.clock.now()
        pages = sum(-(-len(sandbox.account.prompts(d, now)) // 100) for d in sandbox.account.domain_ids())
        assert len(prompt_pages(sandbox)) == pages
        assert {size for _, size in prompt_pages(sandbox)} == {"100"}
        # fan-out groups (whose `total` counts emissions) and citations: one walk each too
        for path in ("/fanout-queries", "/citations"):
            sizes = {r["query"]["size"] for r in sandbox.stats.log if r["path"].endswith(path)}
            assert sizes == {"100"}, (path, sizes)


def test_a_capped_page_size_still_walks_again_past_the_cache(warehouse):
    # the server caps pages at 100: the second walk asks 99, not 499 (which would be capped to
    # 100 again and answered from the cache with the old pages)
    with run_sandbox(seed=9, domains=1, prompts=(230, 290), start=START, frozen=True,
                     rate_limit=None, faults={"page_size_cap": 100, "churn_on_page": 3}) as sandbox:
        (domain_id,) = sandbox.account.domain_ids()

        warehouse.sync(sandbox, resources=["prompts"])

        assert prompt_pages(sandbox) == [
            ("1", "100"), ("2", "100"), ("3", "100"), ("1", "99"), ("2", "99"), ("3", "99")
        ]
        listed = {p["id"] for p in sandbox.account.prompts(domain_id, sandbox.clock.now())}
        assert listed <= {prompt_id for _, prompt_id in warehouse.keyed("prompts")}
