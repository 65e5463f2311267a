"""`aiclicks-pipeline report`: the numbers behind every chart, read from the dbt marts, against
SQL on the loaded tables, and the HTML file in a real browser with the network cut.

One sandbox account (3 domains) is synced twice (two snapshots, so share of voice has a change),
copied before `transform` (the warehouse without models), then modelled by dbt."""

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional

import duckdb
import pytest

from aiclicks_pipeline.checkpoints import run_sync
from aiclicks_pipeline.commands.base import EXIT_BUSY
from aiclicks_pipeline.pipeline import make_pipeline
from aiclicks_pipeline.report import ReportError, write_report
from aiclicks_pipeline.report.html import plotly_js
from aiclicks_pipeline.report.data import TOP_HOSTS, TOP_QUERIES, ReportData, read_report
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import DEFAULT_DATASET, ENDPOINTS
from aiclicks_pipeline.transform import run_transform
from aiclicks_pipeline.warehouse import open_warehouse, pipeline_warehouse

from .support import (
    POSTGRES_ENV, START, PostgresWarehouse, cli, cli_here, duckdb_held_by_another_process,
    open_warehouse as open_test_warehouse,
)

D = DEFAULT_DATASET
REPO = Path(__file__).resolve().parents[1]
# .ci/run names it, and the browser test must run there; elsewhere it skips without one
CHROMIUM_ENV = "AICLICKS_TEST_CHROMIUM"
CHROMIUM = Path(os.environ.get(CHROMIUM_ENV) or "/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHARTS = ("trend", "share_of_voice", "assistants", "sources_split", "sources_hosts", "fanout")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@dataclass
class Loaded:
    folder: Path
    modelled: Path  # synced twice, then `transform`
    plain: Path  # the same two syncs, no dbt models
    pipelines_dir: Path
    postgres: Optional[PostgresWarehouse]

    def rows(self, sql: str, path: Optional[Path] = None) -> List[Dict[str, Any]]:
        with duckdb.connect(str(path or self.plain), read_only=True) as connection:
            cursor = connection.execute(sql)
            columns = [column[0] for column in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    modelled = folder / "warehouse.duckdb"
    pipeline = make_pipeline(
        pipeline_name="aiclicks_report_test",
        pipelines_dir=str(folder / "pipelines"),
        duckdb_file=str(modelled),
    )
    # in CI the same two syncs also go to PostgreSQL, to read the report through dlt's client
    postgres = None
    if os.environ.get(POSTGRES_ENV, "").strip():
        postgres = PostgresWarehouse(folder / "postgres", os.environ[POSTGRES_ENV].strip())
    with run_sandbox(
        seed=11, domains=3, prompts=(20, 60), start=START, frozen=True, rate_limit=None
    ) as sandbox:
        options = {"base_url": sandbox.base_url, "api_key": sandbox.api_key, "backoff_factor": 0.01}
        for day in range(2):
            if day:
                sandbox.advance(days=1)
            run_sync(pipeline, **options)
            if postgres:
                postgres.sync(sandbox)
    plain = folder / "plain.duckdb"
    shutil.copyfile(modelled, plain)
    # the sandbox clock stands months before the machine's: freshness is tested in test_dbt.py
    run_transform(str(modelled), work_dir=str(folder / "dbt"), check_freshness=False)
    if postgres:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AICLICKS_POSTGRES_URL", postgres.url)
            run_transform(
                target="postgres", dataset=postgres.dataset, schema=postgres.models_schema,
                work_dir=str(folder / "postgres_dbt"), check_freshness=False,
            )
    yield Loaded(folder, modelled, plain, folder / "pipelines", postgres)
    if postgres:
        postgres.drop()


def report_of(path: Path, **options: Any) -> ReportData:
    with open_warehouse(duckdb_file=str(path)) as reader:
        return read_report(reader, **options)


@pytest.fixture(scope="module")
def from_marts(loaded) -> ReportData:
    return report_of(loaded.modelled)


def by_id(data: ReportData) -> Dict[str, Dict[str, Any]]:
    return {domain["id"]: domain for domain in data.domains}


def host(name: Optional[str]) -> Optional[str]:
    if name is None:
        return None
    name = name.lower()
    return name[4:] if name.startswith("www.") else name


def latest(rows: List[Dict[str, Any]], key: str = "domain_id") -> Dict[str, List[Dict[str, Any]]]:
    """Per domain, the rows of its newest snapshot (one window in these tests)."""
    grouped: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return {
        domain_id: [r for r in group if r["snapshot_date"] == max(g["snapshot_date"] for g in group)]
        for domain_id, group in grouped.items()
    }


# --- where the numbers come from ---------------------------------------------------------------


def test_the_report_reads_the_dbt_models(from_marts):
    assert not from_marts.warnings
    assert len(from_marts.domains) == 3


def test_without_the_dbt_models_it_says_to_run_transform(loaded):
    with pytest.raises(ReportError, match="aiclicks-pipeline transform"):
        report_of(loaded.plain)


def test_a_mart_transform_skipped_leaves_its_section_empty_and_says_so(loaded, from_marts, tmp_path):
    partial = tmp_path / "partial.duckdb"
    shutil.copyfile(loaded.modelled, partial)
    with duckdb.connect(str(partial)) as connection:  # as transform after a sync without citations
        connection.execute("drop table aiclicks_models.aiclicks__citation_sources")
    data = report_of(partial)
    assert len(data.warnings) == 1
    assert "sources: the dbt model aiclicks__citation_sources is not built" in data.warnings[0]
    for domain, full in zip(data.domains, from_marts.domains):
        assert domain["sources"] is None and full["sources"] is not None
        assert domain["summary"]["citations"] is None
        assert {k: v for k, v in domain.items() if k not in ("sources", "summary")} == {
            k: v for k, v in full.items() if k not in ("sources", "summary")
        }


def test_models_older_than_the_loaded_data_are_named(loaded, tmp_path):
    stale = tmp_path / "stale.duckdb"
    shutil.copyfile(loaded.modelled, stale)
    with duckdb.connect(str(stale)) as connection:  # as if `transform` ran before the last sync
        connection.execute(
            "delete from aiclicks_models.aiclicks__daily_visibility "
            "where date_day = (select max(date_day) from aiclicks_models.aiclicks__daily_visibility)"
        )
    data = report_of(stale)
    assert len(data.warnings) == 1 and "run `aiclicks-pipeline transform`" in data.warnings[0]


def test_one_domain_and_an_unknown_one(loaded, from_marts):
    first = from_marts.domains[0]["id"]
    assert [d["id"] for d in report_of(loaded.modelled, domain_ids=[first]).domains] == [first]
    with pytest.raises(ReportError, match="not-a-domain"):
        report_of(loaded.modelled, domain_ids=[first, "not-a-domain"])


# --- each chart's numbers against SQL on the loaded tables -------------------------------------


def test_visibility_trend_is_the_daily_series_with_gaps_not_zeros(loaded, from_marts):
    series = {}
    for name, table in (("visibility", "visibility_daily"), ("mentions", "mentions_daily"),
                        ("citations", "citations_daily")):
        series[name] = {
            (row["domain_id"], row["date"].isoformat()): row["value"]
            for row in loaded.rows(f"select domain_id, date, value from {D}.{table}")
        }
    gaps = 0
    for domain_id, domain in by_id(from_marts).items():
        trend = domain["trend"]
        days = [date.fromisoformat(d) for d in trend["dates"]]
        assert days == [days[0] + timedelta(days=n) for n in range(len(days))]  # every calendar day
        for name, values in series.items():
            shown = dict(zip(trend["dates"], trend[name]))
            loaded_days = {d: v for (dom, d), v in values.items() if dom == domain_id}
            assert {d: v for d, v in shown.items() if v is not None} == loaded_days, name
            missing = [d for d, v in shown.items() if v is None]
            assert not set(missing) & set(loaded_days)
            gaps += len(missing)
    # the sandbox skips days in the sparse series: they are shown as gaps (null), never as 0
    assert gaps > 0


def test_share_of_voice_is_the_latest_snapshot_and_its_change(loaded, from_marts):
    rows = loaded.rows(f"select domain_id, snapshot_date, id, name, is_brand, sov from {D}.brand_rankings")
    newest = latest(rows)
    for domain_id, domain in by_id(from_marts).items():
        sov = domain["share_of_voice"]
        expected = {r["id"]: r for r in newest[domain_id]}
        assert sov["snapshot"] == next(iter(expected.values()))["snapshot_date"].isoformat()
        mine = [r for r in rows if r["domain_id"] == domain_id]
        previous_date = max(r["snapshot_date"] for r in mine if r["snapshot_date"].isoformat() < sov["snapshot"])
        assert sov["previous_snapshot"] == previous_date.isoformat()
        previous = {r["id"]: r["sov"] for r in rows
                    if r["domain_id"] == domain_id and r["snapshot_date"] == previous_date}
        assert {b["id"] for b in sov["brands"]} == set(expected)
        assert [b["sov"] for b in sov["brands"]] == sorted((b["sov"] for b in sov["brands"]), reverse=True)
        for brand in sov["brands"]:
            assert brand["sov"] == expected[brand["id"]]["sov"]
            assert brand["own"] == expected[brand["id"]]["is_brand"]
            assert brand["previous"] == previous.get(brand["id"])
            if brand["id"] in previous:
                assert brand["change"] == pytest.approx(brand["sov"] - previous[brand["id"]], abs=1e-6)
        assert sum(b["own"] for b in sov["brands"]) == 1


def test_assistants_are_the_latest_leaderboard(loaded, from_marts):
    newest = latest(loaded.rows(
        f"select domain_id, snapshot_date, model, visibility, avg_position from {D}.model_leaderboard"
    ))
    for domain_id, domain in by_id(from_marts).items():
        shown = {c["channel"]: (c["visibility"], c["position"]) for c in domain["assistants"]["channels"]}
        assert shown == {r["model"]: (r["visibility"], r["avg_position"]) for r in newest[domain_id]}


def test_most_cited_sources_own_competitor_third_party(loaded, from_marts):
    newest = latest(loaded.rows(f"select domain_id, snapshot_date, domain, frequency from {D}.citations"))
    own = {r["id"]: host(r["website"]) for r in loaded.rows(f"select id, website from {D}.domains")}
    competitors = defaultdict(set)
    for row in loaded.rows(f"select domain_id, website from {D}.brand_rankings where not is_brand"):
        if row["website"]:
            competitors[row["domain_id"]].add(host(row["website"]))

    def kind(domain_id: str, cited: str) -> str:
        matches = lambda site: cited == site or cited.endswith("." + site)  # noqa: E731
        if matches(own[domain_id]):
            return "own"
        return "competitor" if any(matches(site) for site in competitors[domain_id]) else "third_party"

    kinds_seen = set()
    for domain_id, domain in by_id(from_marts).items():
        per_host: Dict[str, int] = defaultdict(int)
        for row in newest[domain_id]:
            per_host[host(row["domain"])] += row["frequency"]
        sources = domain["sources"]
        assert sources["total_hosts"] == len(per_host)
        top = sorted(per_host.items(), key=lambda item: (-item[1], item[0]))[:TOP_HOSTS]
        assert [(h["host"], h["citations"]) for h in sources["hosts"]] == top
        by_type: Dict[str, int] = defaultdict(int)
        for cited, citations in per_host.items():
            by_type[kind(domain_id, cited)] += citations
        assert sources["by_type"] == {k: by_type.get(k, 0) for k in ("own", "competitor", "third_party")}
        assert all(h["type"] == kind(domain_id, h["host"]) for h in sources["hosts"])
        kinds_seen |= {k for k, v in by_type.items() if v}
    assert kinds_seen == {"own", "competitor", "third_party"}


def test_top_fanout_queries_per_assistant(loaded, from_marts):
    rows = loaded.rows(
        f"""select domain_id, model, query, count(*) as emissions, count(distinct prompt_id) as prompts
            from {D}.fanout_queries group by domain_id, model, query"""
    )
    for domain_id, domain in by_id(from_marts).items():
        mine = [r for r in rows if r["domain_id"] == domain_id]
        assert {c["channel"] for c in domain["fanout"]} == {r["model"] for r in mine}
        for channel in domain["fanout"]:
            queries = [r for r in mine if r["model"] == channel["channel"]]
            assert channel["emissions"] == sum(r["emissions"] for r in queries)
            assert channel["distinct_queries"] == len(queries)
            top = sorted(queries, key=lambda r: (-r["emissions"], r["query"]))[:TOP_QUERIES]
            assert [(q["query"], q["emissions"], q["prompts"]) for q in channel["queries"]] == [
                (r["query"], r["emissions"], r["prompts"]) for r in top
            ]


def test_header_freshness_and_last_sync(loaded, from_marts):
    newest = max(
        row["newest"]
        for name in ENDPOINTS
        for row in loaded.rows(f"select max(generated_at) as newest from {D}.{name}")
    )
    assert from_marts.newest_generated_at == newest.strftime("%Y-%m-%d %H:%M UTC")
    (loads,) = loaded.rows(
        f"select count(*) as n, max(inserted_at) as last from {D}._dlt_loads where status = 0"
    )
    # two syncs, each one checkpoint and the load of its run-history row
    assert from_marts.loads == loads["n"] == 4
    assert from_marts.last_sync_at == loads["last"].strftime("%Y-%m-%d %H:%M UTC")


def test_a_pipelines_own_client_reads_the_same_report(loaded, from_marts):
    """warehouse.py's reader on a sync's pipeline (as reset and the run history use it) and on a
    throwaway one (status, report) read the same."""
    pipeline = make_pipeline(
        pipeline_name="aiclicks_report_test",
        pipelines_dir=str(loaded.pipelines_dir),
        duckdb_file=str(loaded.modelled),
    )
    with pipeline_warehouse(pipeline) as reader:
        data = read_report(reader)
    assert data.domains == from_marts.domains


def test_postgres_report_equals_duckdb_report(loaded, from_marts, monkeypatch):
    if loaded.postgres is None:
        pytest.skip(f"no PostgreSQL server given ({POSTGRES_ENV}); .ci/run starts one")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", loaded.postgres.url)
    result = write_report(
        str(loaded.folder / "postgres.html"), destination="postgres",
        dataset=loaded.postgres.dataset, models_schema=loaded.postgres.models_schema,
    )
    assert result.domains == 3
    with open_warehouse("postgres", dataset=loaded.postgres.dataset,
                        models_schema=loaded.postgres.models_schema) as reader:
        data = read_report(reader)
    assert data.domains == from_marts.domains


def test_bigquery_report_equals_duckdb_report(loaded, from_marts, tmp_path, request):
    """The same two syncs into the BigQuery emulator, `transform` with dbt-bigquery there, and
    the report read back equals DuckDB's. The emulator answers a failed query of dlt's SQL client
    with no rows (not an error, as BigQuery would): equal sections prove every query ran."""
    warehouse = open_test_warehouse("bigquery", tmp_path, request)
    with run_sandbox(
        seed=11, domains=3, prompts=(20, 60), start=START, frozen=True, rate_limit=None
    ) as sandbox:
        warehouse.sync(sandbox)
        sandbox.advance(days=1)
        warehouse.sync(sandbox)
    models = f"{warehouse.dataset}_models"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DESTINATION__BIGQUERY__CREDENTIALS", warehouse.cli_env()["DESTINATION__BIGQUERY__CREDENTIALS"])
        built = run_transform(
            destination="bigquery", dataset=warehouse.dataset, schema=models,
            work_dir=str(tmp_path / "dbt"), check_freshness=False,
        )
        with open_warehouse("bigquery", dataset=warehouse.dataset, models_schema=models) as reader:
            data = read_report(reader)

    assert built.count("model") == built.count("model", "success") > 0, built.summary()
    assert built.count("test") == built.count("test", "pass") > 0, built.summary()
    assert not data.warnings and all(all(d[c] for c in CHARTS[:3]) for d in data.domains)
    assert data.domains == from_marts.domains


# --- the command ---------------------------------------------------------------------------------


def test_cli_writes_the_report_and_prints_its_path(loaded):
    out = loaded.folder / "cli" / "report.html"
    done = cli("report", "--duckdb-file", str(loaded.modelled), "--out", str(out),
               "--pipelines-dir", str(loaded.folder / "cli_pipelines"))
    # reading touched no working folder
    assert not (loaded.folder / "cli_pipelines").exists()
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and "from the dbt models" in done.stdout
    page = out.read_text(encoding="utf-8")
    # self-contained: plotly.js inline, and outside it no external script, style, link or image
    assert plotly_js() in page
    ours = page.replace(plotly_js(), "")
    for external in ("src=", 'href="http', "url(", "@import", "<link", "//cdn"):
        assert external not in ours

    missing = cli("report", "--duckdb-file", str(loaded.folder / "nothing.duckdb"), "--out", str(out))
    assert missing.returncode == 1 and "load the data first" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1


def test_cli_says_in_one_line_that_a_sync_holds_the_duckdb_file(loaded, tmp_path):
    held = tmp_path / "held.duckdb"
    shutil.copyfile(loaded.plain, held)
    with duckdb_held_by_another_process(held) as holder:
        done = cli_here(
            "report", "--duckdb-file", str(held), "--out", str(tmp_path / "r.html"), "--wait", "0"
        )
    assert done.returncode == EXIT_BUSY
    (line,) = done.stderr.strip().splitlines()
    assert f"The DuckDB file {held} is in use by another process (PID {holder.pid}" in line
    assert not (tmp_path / "r.html").exists()


# --- in a real browser ---------------------------------------------------------------------------


def browser_or_skip():
    give_up = pytest.fail if os.environ.get(CHROMIUM_ENV) else pytest.skip
    if not CHROMIUM.exists():
        give_up(f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver (.ci/run does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        give_up("playwright is not installed: pip install -e '.[dev]'")
    return sync_playwright


def chart_marks(page: Any) -> Dict[str, Dict[str, int]]:
    """Per chart on the page: its SVG marks (bars, line paths, points, slices) and data points."""
    return page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll('.chart')).map(div => [
            div.dataset.chart, {
                svg: div.querySelectorAll('svg.main-svg').length,
                marks: div.querySelectorAll(
                    '.barlayer .point path, .scatterlayer path.js-line, .scatterlayer .points path, '
                    + '.scatterlayer .textpoint, .pielayer .slice path.surface').length,
                points: (div.data || []).reduce((n, trace) =>
                    n + (trace.values || trace.x || []).filter(v => v !== null).length, 0)
            }]))"""
    )


def test_report_in_headless_chromium_with_the_network_cut(loaded, from_marts, tmp_path, capsys):
    sync_playwright = browser_or_skip()
    report = write_report(str(tmp_path / "report.html"), duckdb_file=str(loaded.modelled))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    network, errors = [], []

    def route(request_route):
        if request_route.request.url.startswith("file:"):
            request_route.continue_()
        else:
            network.append(request_route.request.url)
            request_route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            context.route("**/*", route)
            page = context.new_page()
            page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:", "about:"))
                    else network.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report.path.as_uri())

            # the index: a row and a sparkline per domain, no chart drawn before one is opened
            assert page.locator("#domain-table tbody tr").count() == 3
            assert page.locator("#domain-table svg.spark polyline").count() >= 3
            assert page.locator(".main-svg").count() == 0
            page.screenshot(path=str(ARTIFACTS / "report_index.png"), full_page=True)

            for n, domain in enumerate(from_marts.domains):
                page.click(f"#domain-table a[href='#domain={domain['id']}']")
                page.wait_for_selector(".chart[data-chart=fanout] svg.main-svg")
                assert page.locator("#domain-view h2").inner_text() == domain["name"]
                marks = chart_marks(page)
                assert set(marks) == set(CHARTS), marks
                for chart, found in marks.items():
                    assert found["svg"] >= 1 and found["marks"] > 0 and found["points"] > 0, (chart, found)
                # what is drawn is the data: one bar per brand and per host, a slice per kind
                assert marks["share_of_voice"]["points"] >= 2 * len(domain["share_of_voice"]["brands"])
                hosts = page.locator(".chart[data-chart=sources_hosts] .barlayer .point path").count()
                assert hosts == len(domain["sources"]["hosts"])
                slices = sum(1 for v in domain["sources"]["by_type"].values() if v)
                assert page.locator(".chart[data-chart=sources_split] .slice path.surface").count() == slices
                if n == 0:
                    page.screenshot(path=str(ARTIFACTS / "report_domain.png"), full_page=True)
                    page.emulate_media(media="print")
                    assert page.locator(".crumbs").is_hidden()
                    assert page.locator(".chart svg.main-svg").count() >= len(CHARTS)
                    page.emulate_media(media="screen")
                page.go_back()
                page.wait_for_selector("#index-view:not([hidden])")
        finally:
            context.close()

    assert network == [], f"the report tried the network: {network}"
    assert errors == [], errors
    with capsys.disabled():
        print(f"\nreport screenshots: {ARTIFACTS / 'report_index.png'}, {ARTIFACTS / 'report_domain.png'}")
