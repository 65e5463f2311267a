"""The dbt package end to end: the sandbox loaded twice (two snapshots) into DuckDB, `dbt build`
with every dbt test, and the marts compared with values computed here from the sandbox's
ground truth (the account the sandbox serves), not from the warehouse."""

import json
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List
from urllib.parse import urlsplit

import duckdb
import pytest
import yaml

from aiclicks_pipeline import cli
from aiclicks_pipeline.checkpoints import run_sync
from aiclicks_pipeline.commands.base import EXIT_BUSY, EXIT_FAILED, EXIT_OK
from aiclicks_pipeline.dbt_targets import TARGETS
from aiclicks_pipeline.pipeline import make_pipeline
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.settings import (
    CHANNELS,
    CITATION_MODEL_SLUGS,
    DEFAULT_DATASET,
    DEFAULT_SNAPSHOT_DAYS,
    ENDPOINTS,
)
from aiclicks_pipeline.transform import (
    DEFAULT_MODELS_SCHEMA,
    MARTS,
    PROJECT_DIR,
    SOURCE_TABLES,
    TransformResult,
    run_transform,
)

from .support import START, PostgresWarehouse, duckdb_held_by_another_process, postgres_url

MODELS = DEFAULT_MODELS_SCHEMA
NEVER_STALE = {
    "aiclicks_freshness_warn_after_hours": 10**7,
    "aiclicks_freshness_error_after_hours": 10**7,
}
SLUG_OF = dict(zip(CHANNELS, CITATION_MODEL_SLUGS))
CHANNEL_OF = dict(zip(CITATION_MODEL_SLUGS, CHANNELS))
SERIES = {
    "visibility_pct": ("visibility", "visibility_daily"),
    "mentions_count": ("mentions", "mentions_daily"),
    "citability_pct": ("citability", "citability_daily"),
    "citations_count": ("citations", "citations_daily"),
}


@dataclass
class Built:
    folder: Path
    duckdb_path: Path
    result: TransformResult
    account: Any
    # each sync: (sandbox time, {table: days window asked})
    syncs: List[tuple]

    def rows(self, sql: str) -> List[Dict[str, Any]]:
        return query_rows(self.duckdb_path, sql)

    def domain_ids(self) -> List[str]:
        return self.account.domain_ids()

    def window(self, table: str, sync: int) -> int:
        (days,) = self.syncs[sync][1][table]
        return days


def query_rows(duckdb_path: Path, sql: str) -> List[Dict[str, Any]]:
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        cursor = connection.execute(sql)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    folder = tmp_path_factory.mktemp("dbt")
    duckdb_path = folder / "warehouse.duckdb"
    with run_sandbox(
        seed=11, domains=3, prompts=(60, 240), start=START, frozen=True, rate_limit=None
    ) as sandbox:
        pipeline = make_pipeline(
            pipeline_name="aiclicks_dbt_test",
            pipelines_dir=str(folder / "pipelines"),
            duckdb_file=str(duckdb_path),
        )
        options = {"base_url": sandbox.base_url, "api_key": sandbox.api_key, "backoff_factor": 0.01}
        syncs = []
        for _ in range(2):
            if syncs:
                sandbox.advance(days=1)
            loaded = run_sync(pipeline, **options)
            syncs.append((sandbox.clock.now(), loaded.windows_asked))
        # the sandbox's clock is months from this machine's: thresholds no age reaches
        result = run_transform(str(duckdb_path), work_dir=str(folder / "dbt"), dbt_vars=NEVER_STALE)
        yield Built(folder, duckdb_path, result, sandbox.account, syncs)


def as_float(value: Any) -> Any:
    return None if value is None else round(float(value), 6)


def day(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# --- the package (its files without dbt: tests/unit/test_dbt_package.py) -----------------------


def test_dbt_build_passes_every_dbt_test(built):
    result = built.result
    staging = len(ENDPOINTS) + 1  # one per source table, citations__models included
    assert result.count("model") == result.count("model", "success") == staging + len(MARTS)
    assert result.count("seed", "success") == 1
    assert result.count("test") >= 100
    assert result.count("test", "pass") == result.count("test")
    assert result.warnings == []
    built_tables = {
        row["table_name"]
        for row in built.rows(
            f"select table_name from information_schema.tables where table_schema = '{MODELS}'"
        )
    }
    assert set(MARTS) | {"aiclicks_channels"} <= built_tables
    assert len([t for t in built_tables if t.startswith("stg_aiclicks__")]) == staging
    # dbt wrote nothing into the installed package
    assert not {"target", "logs", "dbt_packages"} & {p.name for p in PROJECT_DIR.iterdir()}
    assert (built.folder / "dbt" / "target" / "run_results.json").is_file()


# --- the marts against the sandbox's ground truth -----------------------------------------------


def test_daily_visibility_equals_the_four_series_side_by_side(built):
    account, sparse_days = built.account, 0
    for domain_id in built.domain_ids():
        expected_by_column = {}
        for column, (metric, table) in SERIES.items():
            values = {}
            for index, (now, _) in enumerate(built.syncs):
                # merge loading: a later sync's day replaces the earlier value
                for item in account.series(metric, domain_id, built.window(table, index), now):
                    values[item["date"]] = item["value"]
            expected_by_column[column] = values
        dates = set().union(*expected_by_column.values())
        expected = {
            date: tuple(as_float(expected_by_column[c].get(date)) for c in SERIES) for date in dates
        }
        rows = built.rows(
            f"select * from {MODELS}.aiclicks__daily_visibility where domain_id = '{domain_id}'"
        )
        actual = {day(r["date_day"]): tuple(as_float(r[c]) for c in SERIES) for r in rows}
        assert actual == expected
        sparse_days += sum(1 for values in expected.values() if values[1] is None)
    # the sparse series skipped days: those stay null, next to a known visibility
    assert sparse_days > 0


def test_share_of_voice_equals_brand_rankings_per_snapshot(built):
    account = built.account
    for domain_id in built.domain_ids():
        expected, previous = {}, {}
        for now, _ in built.syncs:
            items = account.brand_rankings(domain_id, DEFAULT_SNAPSHOT_DAYS, now)
            own = next(item["sov"] for item in items if item["id"] == "brand")
            snapshot = {}
            for item in items:
                rank = 1 + sum(1 for other in items if other["sov"] > item["sov"])
                before = previous.get(item["id"])
                snapshot[item["id"]] = rank
                expected[(now.date().isoformat(), item["id"])] = (
                    item["name"],
                    item["is_brand"],
                    as_float(item["sov"]),
                    rank,
                    as_float(item["sov"] - own),
                    None if before is None else as_float(item["sov"] - before[0]),
                    None if before is None else before[1] - rank,
                )
            previous = {item["id"]: (item["sov"], snapshot[item["id"]]) for item in items}
        rows = built.rows(f"select * from {MODELS}.aiclicks__share_of_voice where domain_id = '{domain_id}'")
        actual = {
            (day(r["snapshot_date"]), r["brand_id"]): (
                r["brand_name"],
                r["is_own_brand"],
                as_float(r["sov_pct"]),
                r["sov_rank"],
                as_float(r["sov_vs_own_brand_pct"]),
                as_float(r["sov_change_pct"]),
                r["sov_rank_change"],
            )
            for r in rows
        }
        assert actual == expected
        latest = day(built.syncs[-1][0].date())
        assert all(r["is_latest_snapshot"] == (day(r["snapshot_date"]) == latest) for r in rows)
    # the second snapshot compares with the first: some competitor's share moved
    moved = built.rows(
        f"select count(*) as n from {MODELS}.aiclicks__share_of_voice "
        "where sov_change_pct <> 0 and not is_own_brand"
    )
    assert moved[0]["n"] > 0


def test_citation_sources_top_host_and_classification(built):
    account, types_seen = built.account, Counter()
    (first_now, _), (now, _) = built.syncs
    for domain_id in built.domain_ids():
        items = account.citations(domain_id, DEFAULT_SNAPSHOT_DAYS, now)
        by_host = Counter()
        for item in items:
            by_host[item["domain"]] += item["frequency"]
        top = max(by_host.values())
        own_host = next(d["website"] for d in account.domains(now) if d["id"] == domain_id)
        competitor_hosts = {
            item["website"]
            for moment in (first_now, now)
            for item in account.brand_rankings(domain_id, DEFAULT_SNAPSHOT_DAYS, moment)
            if not item["is_brand"]
        }
        expected_types = {
            host: "own" if host == own_host else
            "competitor" if host in competitor_hosts else "third_party"
            for host in by_host
        }
        rows = built.rows(
            f"select * from {MODELS}.aiclicks__citation_sources "
            f"where domain_id = '{domain_id}' and is_latest_snapshot"
        )
        assert {r["cited_url"] for r in rows} == {item["url"] for item in items}
        assert {r["cited_host"] for r in rows if r["host_rank"] == 1} == {
            host for host, frequency in by_host.items() if frequency == top
        }
        assert {r["host_frequency"] for r in rows if r["host_rank"] == 1} == {top}
        assert {r["cited_host"]: r["source_type"] for r in rows} == expected_types
        models_of = {item["url"]: item["models"] for item in items}
        for r in rows:
            assert r["cited_by_channels"].split(", ") == sorted(
                CHANNEL_OF[slug] for slug in models_of[r["cited_url"]]
            )
        types_seen.update(expected_types.values())
    assert set(types_seen) == {"own", "competitor", "third_party"}


def test_model_performance_reconciles_channel_names_and_slugs(built):
    account = built.account
    now = built.syncs[-1][0]
    for domain_id in built.domain_ids():
        leaderboard = {
            item["model"]: item
            for item in account.model_leaderboard(domain_id, DEFAULT_SNAPSHOT_DAYS, now)
        }
        cited = Counter(
            CHANNEL_OF[slug]
            for item in account.citations(domain_id, DEFAULT_SNAPSHOT_DAYS, now)
            for slug in item["models"]
        )
        expected = {
            channel: (
                SLUG_OF[channel],
                as_float(leaderboard[channel]["visibility"]) if channel in leaderboard else None,
                as_float(leaderboard[channel]["avg_position"]) if channel in leaderboard else None,
                cited[channel],
            )
            for channel in set(leaderboard) | set(cited)
        }
        rows = built.rows(
            f"select * from {MODELS}.aiclicks__model_performance "
            f"where domain_id = '{domain_id}' and is_latest_snapshot"
        )
        actual = {
            r["channel_name"]: (
                r["model_slug"], as_float(r["visibility_pct"]), as_float(r["avg_position"]),
                r["cited_urls"],
            )
            for r in rows
        }
        assert actual == expected


def test_fanout_query_frequency_counts_every_emission_per_channel(built):
    account = built.account
    for domain_id in built.domain_ids():
        emissions = {}
        for index, (now, _) in enumerate(built.syncs):
            window = built.window("fanout_queries", index)
            for group in account.fanout(domain_id, window, now):
                for emission in group["fanout_queries"]:
                    emissions[emission["id"]] = (emission["model"], emission["query"], group["id"])
        counts = Counter((model, query) for model, query, _ in emissions.values())
        prompts = defaultdict(set)
        for model, query, prompt_id in emissions.values():
            prompts[(model, query)].add(prompt_id)
        rows = built.rows(
            f"select * from {MODELS}.aiclicks__fanout_query_frequency where domain_id = '{domain_id}'"
        )
        assert {(r["channel_name"], r["query_text"]): r["emissions"] for r in rows} == dict(counts)
        assert {(r["channel_name"], r["query_text"]): r["prompts"] for r in rows} == {
            key: len(ids) for key, ids in prompts.items()
        }
        for channel in {model for model, _ in counts}:
            of_channel = [r for r in rows if r["channel_name"] == channel]
            most = max(n for (model, _), n in counts.items() if model == channel)
            assert {r["query_text"] for r in of_channel if r["emission_rank"] == 1} == {
                query for (model, query), n in counts.items() if model == channel and n == most
            }
            assert {r["model_slug"] for r in of_channel} == {SLUG_OF[channel]}


# --- failures ----------------------------------------------------------------------------------


def test_a_failing_dbt_test_fails_the_transform_command(built, tmp_path, capsys):
    broken = tmp_path / "broken.duckdb"
    shutil.copy(built.duckdb_path, broken)
    with duckdb.connect(str(broken)) as connection:
        # one snapshot's share of voice no longer sums to 100, one fan-out names an unknown prompt
        connection.execute(
            f"update {DEFAULT_DATASET}.brand_rankings set sov = sov + 10 "
            f"where id = 'brand' and domain_id = '{built.domain_ids()[0]}'"
        )
        connection.execute(
            f"update {DEFAULT_DATASET}.fanout_queries set prompt_id = 'no-such-prompt' "
            f"where id = (select min(id) from {DEFAULT_DATASET}.fanout_queries)"
        )

    code = cli.main(
        ["transform", "--duckdb-file", str(broken), "--work-dir", str(tmp_path / "dbt"), "--quiet"]
    )

    assert code == EXIT_FAILED
    message = capsys.readouterr().err
    assert "dbt build on duckdb failed" in message
    assert "stg_aiclicks__brand_rankings_sov_sums_to_100" in message
    assert "relationships_stg_aiclicks__fanout_queries_prompt_id" in message


def test_transform_prints_a_summary_and_writes_dbts_lines_to_a_log_file(built, tmp_path, capsys):
    copy = tmp_path / "copy.duckdb"
    shutil.copy(built.duckdb_path, copy)
    work = tmp_path / "dbt"
    log = work / "logs" / "transform.log"

    code = cli.main(
        ["transform", "--duckdb-file", str(copy), "--work-dir", str(work),
         "--vars", json.dumps(NEVER_STALE)]
    )

    output, error = capsys.readouterr()
    assert code == EXIT_OK, output + error
    # by default the summary only: what was built and tested, freshness, where the log is
    lines = output.splitlines()
    assert lines[0].startswith("dbt build on duckdb finished in") and len(lines) <= 5, output
    assert f"dbt's log: {log}" in lines[-1] and not error
    # every line dbt would have printed, of its three commands, with no colour codes, and no
    # deprecation warning from the package's own dbt calls
    text = log.read_text()
    for line in ("aiclicks_loaded_tables: ", "OK created sql table model aiclicks_models.aiclicks__share_of_voice",
                 "PASS freshness of aiclicks.citations", "Completed successfully"):
        assert line in text, line
    assert len(text.splitlines()) > 100
    assert "Deprecat" not in text
    assert "\x1b[" not in output + text + (work / "logs" / "dbt.log").read_text()

    # --dbt-log: dbt's lines as they come, then the summary; off a terminal, no colour codes
    code = cli.main(
        ["transform", "--duckdb-file", str(copy), "--work-dir", str(work), "--select",
         "aiclicks_channels", "--no-freshness", "--dbt-log"]
    )
    output = capsys.readouterr().out
    assert code == EXIT_OK, output
    assert "START seed file aiclicks_models.aiclicks_channels" in output
    assert output.index("Completed successfully") < output.index("dbt build on duckdb finished")
    assert "\x1b[" not in output
    # the log file is this run's alone
    assert "aiclicks__share_of_voice" not in log.read_text()


# --- descriptions ------------------------------------------------------------------------------


UNITS = {"_pct": "percent", "_count": "count", "_at": "UTC", "_date": "UTC", "date_day": "UTC"}


def test_every_source_model_and_column_is_described_with_its_unit(built):
    manifest = json.loads((built.folder / "dbt" / "target" / "manifest.json").read_text())
    ours = lambda nodes: [n for n in nodes.values() if n["package_name"] == "aiclicks"]  # noqa: E731
    sources = ours(manifest["sources"])
    models = [n for n in ours(manifest["nodes"]) if n["resource_type"] in ("model", "seed")]
    assert {n["name"] for n in sources} == set(SOURCE_TABLES)
    assert len(models) == len(SOURCE_TABLES) + len(MARTS) + 1
    undescribed, unitless = [], []
    for node in sources + models:
        schema = DEFAULT_DATASET if node["resource_type"] == "source" else MODELS
        built_columns = {
            r["column_name"]
            for r in built.rows(
                "select column_name from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{node['name']}'"
            )
        }
        described = {name: c["description"] for name, c in node["columns"].items() if c["description"]}
        if not node["description"]:
            undescribed.append(node["name"])
        # every column the warehouse holds is described (docs blocks rendered)
        undescribed += [f"{node['name']}.{c}" for c in sorted(built_columns - set(described))]
        for column, text in described.items():
            assert "{{" not in text and "doc(" not in text, (node["name"], column)
            unit = next((u for suffix, u in UNITS.items() if column.endswith(suffix)), None)
            if unit and unit not in text:
                unitless.append(f"{node['name']}.{column}")
    assert undescribed == []
    assert unitless == []


def test_the_loaded_dlt_schema_describes_every_table_and_column(built):
    (stored,) = built.rows(
        f"select schema from {DEFAULT_DATASET}._dlt_version order by inserted_at desc limit 1"
    )
    tables = json.loads(stored["schema"])["tables"]
    for name, spec in ENDPOINTS.items():
        assert tables[name]["description"] == spec["description"]
        columns = tables[name]["columns"]
        assert {c: columns[c].get("description") for c in spec["columns"]} == spec["column_descriptions"]


# --- what a sync loaded ------------------------------------------------------------------------


def test_transform_builds_whatever_a_partial_sync_loaded(tmp_path, capsys):
    duckdb_path = tmp_path / "partial.duckdb"
    work = ["--work-dir", str(tmp_path / "dbt"), "--quiet", "--vars", json.dumps(NEVER_STALE)]
    with run_sandbox(
        seed=5, domains=2, prompts=(20, 40), start=START, frozen=True, rate_limit=None
    ) as sandbox:
        pipeline = make_pipeline(
            pipeline_name="aiclicks_partial",
            pipelines_dir=str(tmp_path / "pipelines"),
            duckdb_file=str(duckdb_path),
        )
        options = {"base_url": sandbox.base_url, "api_key": sandbox.api_key, "backoff_factor": 0.01}
        # docs/dbt.md's own example: one table
        loaded = run_sync(pipeline, resources=["visibility_daily"], **options)
        code = cli.main(["transform", "--duckdb-file", str(duckdb_path), *work])
        output = capsys.readouterr().out
        assert code == EXIT_OK, output
        assert "not in the dataset: domains, prompts, fanout_queries, mentions_daily" in output
        assert "skipped: 4 mart(s) (aiclicks__citation_sources, aiclicks__fanout_query_frequency, " \
            "aiclicks__model_performance, aiclicks__share_of_voice) and 10 staging model(s)" in output
        assert "1 pass" in output
        rows = query_rows(duckdb_path, f"select * from {MODELS}.aiclicks__daily_visibility")
        assert len(rows) == loaded.rows["visibility_daily"] > 0
        assert all(r["visibility_pct"] is not None for r in rows)
        others = ("domain_name", "mentions_count", "citability_pct", "citations_count")
        assert all(r[c] is None for r in rows for c in others)

        # more tables, still neither domains nor citations: the marts that can be built are
        run_sync(pipeline, resources=["brand_rankings", "model_leaderboard", "fanout_queries"], **options)
        result = run_transform(
            str(duckdb_path), work_dir=str(tmp_path / "dbt"), dbt_vars=NEVER_STALE
        )
    count = lambda sql: query_rows(duckdb_path, f"select count(*) as n from {sql}")[0]["n"]  # noqa: E731
    assert [m for m in result.skipped_models if not m.startswith("stg_")] == ["aiclicks__citation_sources"]
    assert result.count("test", "pass") == result.count("test") > 20
    assert {s.table for s in result.freshness} == {
        "visibility_daily", "brand_rankings", "model_leaderboard", "fanout_queries"
    }
    built_marts = ("share_of_voice", "model_performance", "fanout_query_frequency")
    for mart in (f"aiclicks__{name}" for name in built_marts):
        assert count(f"{MODELS}.{mart}") > 0, mart
    # without domains the own brand's host is unknown; without citations so are cited URLs
    assert count(f"{MODELS}.aiclicks__share_of_voice where is_own_brand and brand_host is not null") == 0
    assert count(f"{MODELS}.aiclicks__model_performance where cited_urls is not null") == 0


# --- freshness ---------------------------------------------------------------------------------


def test_transform_reports_source_freshness_and_fails_on_a_stale_source(built, tmp_path, capsys):
    # a copy keeps the file's name: the built views name their catalog (the file's stem)
    aged = tmp_path / "aged" / Path(built.duckdb_path).name
    aged.parent.mkdir()
    shutil.copy(built.duckdb_path, aged)
    # ages against the warehouse's own clock, the one dbt's freshness reads; default thresholds
    # warn after 36 h and error after 72 h
    hours = {"mentions_daily": 48, "citations": 100}
    with duckdb.connect(str(aged)) as connection:
        for table in ENDPOINTS:
            connection.execute(
                f"update {DEFAULT_DATASET}.{table} "
                f"set generated_at = now() - interval {hours.get(table, 1)} hour"
            )

    code = cli.main(
        ["transform", "--duckdb-file", str(aged), "--work-dir", str(tmp_path / "dbt"), "--quiet",
         "--select", "aiclicks_channels"]
    )

    output, error = capsys.readouterr()
    assert code == EXIT_FAILED
    reported = {
        table: status
        for status, table in re.findall(r"^    (pass|warn|error)\s+([a-z_]+):", output, re.M)
    }
    # the sources past a threshold are listed; the ones that pass are counted
    assert reported == {
        "mentions_daily": "warn",
        "citations": "error",
        "citations__models": "error",  # its parent's generated_at
    }
    assert "source freshness (warn after 36 h, error after 72 h): 8 pass, 1 warn, 2 error" in output
    assert "mentions_daily: newest generated_at" in output and "48.0 h old (over 36 h)" in output
    # one line, no traceback, says what to do
    assert error.count("\n") == 1 and "Traceback" not in error
    assert "citations: newest generated_at" in error and "100.0 h old (over 72 h)" in error
    assert "aiclicks_freshness_error_after_hours" in error

    # the thresholds are vars: raised, a warning only prints
    result = run_transform(
        str(aged),
        work_dir=str(tmp_path / "dbt"),
        select=["aiclicks_channels"],
        dbt_vars={"aiclicks_freshness_warn_after_hours": 24, "aiclicks_freshness_error_after_hours": 200},
    )
    assert {s.table for s in result.freshness_of("warn")} == {"mentions_daily", "citations", "citations__models"}
    assert len(result.freshness_of("pass")) == len(SOURCE_TABLES) - 3
    assert "3 warn" in result.summary()


# --- the DuckDB file in use ----------------------------------------------------------------------

def test_transform_says_in_one_line_that_another_process_holds_the_duckdb_file(built, tmp_path, capsys):
    # a copy keeps the file's name: the built views name their catalog (the file's stem)
    held = tmp_path / "held" / Path(built.duckdb_path).name
    held.parent.mkdir()
    shutil.copy(built.duckdb_path, held)
    with duckdb_held_by_another_process(held) as holder:
        code = cli.main([
            "transform", "--duckdb-file", str(held), "--work-dir", str(tmp_path / "dbt"),
            "--pipelines-dir", str(tmp_path / "pipelines"), "--no-wait",
        ])
    output, error = capsys.readouterr()
    assert code == EXIT_BUSY
    assert error.count("\n") == 1 and "Traceback" not in error + output
    assert f"The DuckDB file {held} is in use by another process (PID {holder.pid}" in error
    # released, the same file builds
    assert run_transform(
        str(held), work_dir=str(tmp_path / "dbt"), select=["aiclicks_channels"], check_freshness=False
    ).count("seed", "success") == 1


# --- the package in a dbt project of its own -------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_SUBDIRECTORY = PROJECT_DIR.relative_to(REPO_ROOT).as_posix()


def package_from_git(folder: Path) -> Dict[str, Any]:
    """packages.yml's entry for the package from a git clone of this repository, over a file://
    URL (nothing from the network), at a commit holding the package as it is on disk."""
    if not (REPO_ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip(f"{REPO_ROOT} is not a git checkout (or git is missing): no repository to clone")
    clone = folder / "repo"
    git = lambda *args: subprocess.run(  # noqa: E731
        ["git", "-C", str(clone), "-c", "user.name=test", "-c", "user.email=test@example.invalid",
         *args], check=True, capture_output=True, text=True,
    ).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    # uncommitted edits of the package are what is under test
    shutil.rmtree(clone / PACKAGE_SUBDIRECTORY)
    shutil.copytree(PROJECT_DIR, clone / PACKAGE_SUBDIRECTORY)
    git("add", "--all", PACKAGE_SUBDIRECTORY)
    if git("status", "--porcelain"):
        git("commit", "--quiet", "-m", "the package as on disk")
    return {
        "git": clone.as_uri(),
        "subdirectory": PACKAGE_SUBDIRECTORY,
        "revision": git("rev-parse", "HEAD"),
    }


@pytest.mark.parametrize("install", ["local", "git"])
def test_a_dbt_project_of_its_own_installs_and_builds_the_package(built, tmp_path, install):
    from dbt.cli.main import dbtRunner

    project = tmp_path / "analytics"
    project.mkdir()
    warehouse = project / "warehouse.duckdb"
    shutil.copy(built.duckdb_path, warehouse)
    package = package_from_git(tmp_path) if install == "git" else {"local": str(PROJECT_DIR)}
    files = {
        "dbt_project.yml": {
            "name": "analytics",
            "version": "1.0.0",
            "config-version": 2,
            "profile": "analytics",
            # the package's vars and model configs, set by the project using it
            "vars": {"aiclicks_enabled_fanout_queries": False, "aiclicks_dataset": DEFAULT_DATASET},
            "models": {"aiclicks": {"marts": {"+materialized": "view"}}},
        },
        "packages.yml": {"packages": [package]},
        "profiles.yml": {
            "analytics": {
                "target": "dev",
                "outputs": {
                    "dev": {
                        "type": "duckdb",
                        "path": str(warehouse),
                        "schema": "analytics",
                        "threads": 2,
                        "extensions": [],
                        "settings": {"autoinstall_known_extensions": False},
                    }
                },
            }
        },
    }
    for name, content in files.items():
        (project / name).write_text(yaml.safe_dump(content, sort_keys=False))
    common = ["--project-dir", str(project), "--profiles-dir", str(project),
              "--no-send-anonymous-usage-stats", "--no-version-check", "--quiet"]

    deps = dbtRunner().invoke(["deps", *common])
    assert deps.success, deps.exception
    assert (project / "dbt_packages" / "aiclicks" / "dbt_project.yml").is_file()
    build = dbtRunner().invoke(["build", *common])
    TARGETS["duckdb"].release()  # dbt-duckdb keeps the file open in this process
    assert build.success, build.exception

    statuses = Counter(
        (str(r.node.resource_type), str(r.status)) for r in build.result.results
    )
    assert statuses[("test", "pass")] == sum(n for (kind, _), n in statuses.items() if kind == "test")
    relations = {
        r["table_name"]: r["table_type"]
        for r in query_rows(
            warehouse,
            "select table_name, table_type from information_schema.tables "
            "where table_schema = 'analytics'",
        )
    }
    # the parent switched fan-out off and made the marts views
    assert "aiclicks__fanout_query_frequency" not in relations
    assert "stg_aiclicks__fanout_queries" not in relations
    for mart in set(MARTS) - {"aiclicks__fanout_query_frequency"}:
        assert relations[mart] == "VIEW", mart
        assert query_rows(warehouse, f"select count(*) as n from analytics.{mart}")[0]["n"] > 0
    # the package wrote nothing into itself
    assert not {"target", "logs", "dbt_packages"} & {p.name for p in PROJECT_DIR.iterdir()}


# --- PostgreSQL --------------------------------------------------------------------------------


def test_transform_builds_the_package_into_postgres(tmp_path, monkeypatch, capsys):
    warehouse = PostgresWarehouse(tmp_path, postgres_url(), name="aiclicks_dbt_postgres")
    models = warehouse.models_schema
    try:
        with run_sandbox(
            seed=5, domains=2, prompts=(20, 40), start=START, frozen=True, rate_limit=None
        ) as sandbox:
            warehouse.sync(sandbox)
            account, now = sandbox.account, sandbox.clock.now()
        # the profile's settings from the credentials the sync loaded with, nothing else
        monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", warehouse.url)
        for name in ("URL", "HOST", "PORT", "USER", "PASSWORD", "DATABASE", "SSLMODE"):
            monkeypatch.delenv(f"AICLICKS_POSTGRES_{name}", raising=False)
        code = cli.main(
            ["transform", "--destination", "postgres", "--dataset", warehouse.dataset, "--schema",
             models, "--work-dir", str(tmp_path / "dbt"), "--vars", json.dumps(NEVER_STALE)]
        )
        output = capsys.readouterr().out
        assert code == EXIT_OK, output
        built_models, passed, tests = map(int, re.search(
            r"dbt build on postgres finished in [0-9.]+s: (\d+) models and 1 seed\(s\) built into "
            rf"schema {models}, (\d+) of (\d+) dbt tests passed\n", output
        ).groups())
        assert built_models == len(SOURCE_TABLES) + len(MARTS)
        assert passed == tests >= 100
        assert f"source freshness (warn after {10**7} h, error after {10**7} h): 11 pass" in output
        password = urlsplit(warehouse.url).password
        assert password not in output
        assert password not in (tmp_path / "dbt" / "logs" / "transform.log").read_text()
        for mart in MARTS:
            ((rows,),) = warehouse.query(f"select count(*) from {models}.{mart}")
            assert rows > 0, mart
        # share of voice as the API reported it, and the gap to the own brand (a rounded double,
        # which PostgreSQL rounds only as numeric)
        for domain_id in account.domain_ids():
            items = account.brand_rankings(domain_id, DEFAULT_SNAPSHOT_DAYS, now)
            own = next(item["sov"] for item in items if item["is_brand"])
            rows = warehouse.query(
                f"select brand_id, sov_pct, sov_vs_own_brand_pct from {models}.aiclicks__share_of_voice "
                f"where domain_id = '{domain_id}'"
            )
            assert {r[0]: (as_float(r[1]), as_float(r[2])) for r in rows} == {
                item["id"]: (as_float(item["sov"]), as_float(item["sov"] - own)) for item in items
            }
    finally:
        warehouse.drop()  # the dataset and the models' schema


