"""The dbt package end to end: the sandbox loaded twice (two snapshots) into DuckDB, `dbt build`
with every dbt test, and the marts compared with values computed here from the sandbox's
ground truth (the account the sandbox serves), not from the warehouse."""

import csv
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

import duckdb
import pytest
import yaml

from aiclicks_pipeline import cli
from aiclicks_pipeline.commands.base import EXIT_FAILED
from aiclicks_pipeline.checkpoints import run_sync
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
    TransformError,
    TransformResult,
    run_transform,
)

from .conftest import START

MODELS = DEFAULT_MODELS_SCHEMA
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
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            cursor = connection.execute(sql)
            columns = [column[0] for column in cursor.description]
            return [dict(zip(columns, row)) for row in cursor.fetchall()]

    def domain_ids(self) -> List[str]:
        return self.account.domain_ids()

    def window(self, table: str, sync: int) -> int:
        (days,) = self.syncs[sync][1][table]
        return days


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
        result = run_transform(str(duckdb_path), work_dir=str(folder / "dbt"))
        yield Built(folder, duckdb_path, result, sandbox.account, syncs)


def as_float(value: Any) -> Any:
    return None if value is None else round(float(value), 6)


def day(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


# --- the package -------------------------------------------------------------------------------


def test_sources_declare_every_loaded_table_and_the_dlt_join_columns():
    sources = yaml.safe_load((PROJECT_DIR / "models" / "staging" / "sources.yml").read_text())
    (source,) = sources["sources"]
    tables = {table["name"]: {c["name"] for c in table["columns"]} for table in source["tables"]}
    assert set(tables) == set(ENDPOINTS) | {"citations__models"}
    for name, spec in ENDPOINTS.items():
        missing = (set(spec["columns"]) | {"_dlt_id", "_dlt_load_id"}) - tables[name]
        assert not missing, (name, missing)
    assert {"value", "_dlt_parent_id", "_dlt_id"} <= tables["citations__models"]


def test_channel_seed_pairs_every_slug_with_its_display_name():
    with open(PROJECT_DIR / "seeds" / "aiclicks_channels.csv", newline="") as handle:
        seed = {row["model_slug"]: row["channel_name"] for row in csv.DictReader(handle)}
    assert seed == CHANNEL_OF
    assert len(set(seed.values())) == len(seed)


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
            f"select * from {MODELS}.daily_visibility where domain_id = '{domain_id}'"
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
        rows = built.rows(f"select * from {MODELS}.share_of_voice where domain_id = '{domain_id}'")
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
        f"select count(*) as n from {MODELS}.share_of_voice "
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
            f"select * from {MODELS}.citation_sources "
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
            f"select * from {MODELS}.model_performance "
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
            f"select * from {MODELS}.fanout_query_frequency where domain_id = '{domain_id}'"
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


def test_transform_without_a_loaded_file_says_what_to_do(tmp_path):
    with pytest.raises(TransformError, match="load the data first"):
        run_transform(str(tmp_path / "missing.duckdb"), work_dir=str(tmp_path / "dbt"))
    with pytest.raises(ValueError, match="target"):
        run_transform(str(tmp_path / "missing.duckdb"), target="postgres")
