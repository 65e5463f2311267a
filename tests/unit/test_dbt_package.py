"""The dbt package as files, without dbt: what it declares, and its generated files
(aiclicks_pipeline/dbt_gen.py) against the endpoint table: committed as generated, and a new
endpoint row enough for its source, staging model and var."""

import csv
import re
from typing import Dict

import yaml

from aiclicks_pipeline import dbt_gen, settings, transform
from aiclicks_pipeline.dbt_gen import PROJECT_DIR, SOURCE_TABLES
from aiclicks_pipeline.settings import CHANNELS, CITATION_MODEL_SLUGS, ENDPOINTS


DOC_BLOCK = re.compile(r"\{%\s*docs\s+(\w+)\s*%\}(.*?)\{%\s*enddocs\s*%\}", re.S)


def doc_blocks() -> Dict[str, str]:
    blocks = {}
    for path in PROJECT_DIR.rglob("*.md"):
        for name, text in DOC_BLOCK.findall(path.read_text()):
            blocks[name] = text.strip()
    return blocks


def rendered(description: str) -> str:
    """A description with its doc blocks filled in, as dbt renders it."""
    blocks = doc_blocks()
    return re.sub(r"\{\{\s*doc\('(\w+)'\)\s*\}\}", lambda match: blocks[match[1]], description)


def test_sources_declare_every_loaded_table_and_the_dlt_join_columns():
    sources = yaml.safe_load((PROJECT_DIR / "models" / "staging" / "sources.yml").read_text())
    (source,) = sources["sources"]
    tables = {table["name"]: table for table in source["tables"]}
    assert set(tables) == set(SOURCE_TABLES) == set(transform.SOURCE_TABLES)
    for name, spec in ENDPOINTS.items():
        described = {c["name"]: rendered(c.get("description")) for c in tables[name]["columns"]}
        missing = (set(spec["columns"]) | {"_dlt_id", "_dlt_load_id"}) - set(described)
        assert not missing, (name, missing)
        # one source of truth: the endpoint table's descriptions, as the dlt schema carries them
        assert rendered(tables[name]["description"]) == spec["description"]
        assert {c: described[c] for c in spec["columns"]} == spec["column_descriptions"]
        enabled = f"{{{{ var('aiclicks_enabled_{name}', true) }}}}"
        assert tables[name]["config"]["enabled"] == enabled
    child = {c["name"] for c in tables["citations__models"]["columns"]}
    assert {"value", "_dlt_parent_id", "_dlt_id"} <= child
    # freshness on every table: generated_at, or the parent's for dlt's child table
    assert source["config"]["loaded_at_field"] == "generated_at"
    assert "generated_at" in tables["citations__models"]["config"]["loaded_at_query"]
    freshness = source["config"]["freshness"]
    assert "aiclicks_freshness_warn_after_hours" in freshness["warn_after"]["count"]
    assert "aiclicks_freshness_error_after_hours" in freshness["error_after"]["count"]


def test_the_package_declares_what_a_dbt_package_needs():
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["name"] == "aiclicks" and project["config-version"] == 2
    assert project["version"] and project["require-dbt-version"]
    # every var the SQL and YAML read has its default here, the freshness thresholds included
    variables = project["vars"]
    assert variables["aiclicks_freshness_warn_after_hours"] == 36
    assert variables["aiclicks_freshness_error_after_hours"] == 72
    assert {f"aiclicks_enabled_{table}" for table in SOURCE_TABLES} <= set(variables)
    used = set()
    for path in PROJECT_DIR.rglob("*"):
        if path.suffix in (".sql", ".yml") and "profiles" not in path.parts:
            used |= set(re.findall(r"var\('([a-z_]+)'", path.read_text()))
    assert used - {"aiclicks_enabled_"} <= set(variables)


def test_channel_seed_pairs_every_slug_with_its_display_name():
    with open(PROJECT_DIR / "seeds" / "aiclicks_channels.csv", newline="") as handle:
        seed = {row["model_slug"]: row["channel_name"] for row in csv.DictReader(handle)}
    assert seed == dict(zip(CITATION_MODEL_SLUGS, CHANNELS))
    assert len(set(seed.values())) == len(seed)


def test_the_committed_dbt_files_are_what_the_endpoint_table_generates():
    stale = [str(path.relative_to(PROJECT_DIR)) for path in dbt_gen.stale_files()]
    assert stale == [], f"run `python -m aiclicks_pipeline.dbt_gen` (out of date: {stale})"
    assert dbt_gen.main(["--check"]) == 0


def test_every_loaded_table_is_a_source_with_a_staging_model_and_an_enable_var():
    (source,) = yaml.safe_load((PROJECT_DIR / "models/staging/sources.yml").read_text())["sources"]
    assert [table["name"] for table in source["tables"]] == list(SOURCE_TABLES)
    assert list(SOURCE_TABLES) == [*settings.ENDPOINTS, *settings.CHILD_TABLES]
    models = yaml.safe_load((PROJECT_DIR / "models/staging/_staging.yml").read_text())["models"]
    assert [model["name"] for model in models] == [f"stg_aiclicks__{t}" for t in SOURCE_TABLES]
    variables = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    assert {f"aiclicks_enabled_{t}" for t in SOURCE_TABLES} <= set(variables)
    for name, spec in settings.ENDPOINTS.items():
        columns = {c["name"] for c in source["tables"][list(SOURCE_TABLES).index(name)]["columns"]}
        assert set(spec["columns"]) | {"_dlt_id", "_dlt_load_id"} <= columns, name


def test_every_doc_block_referenced_exists_once():
    defined, referenced = [], set()
    for path in PROJECT_DIR.rglob("*"):
        if path.suffix in (".md", ".yml", ".sql"):
            text = path.read_text()
            defined += re.findall(r"\{%\s*docs\s+(\w+)\s*%\}", text)
            referenced |= set(re.findall(r"doc\('(\w+)'\)", text))
    assert len(defined) == len(set(defined)), sorted(d for d in defined if defined.count(d) > 1)
    assert referenced - set(defined) == set()


def test_a_description_several_tables_share_is_one_doc_block():
    names = dbt_gen.doc_names()
    # the constants of settings.py that several endpoints use
    assert names[("prompts", "domain_id")] == "aiclicks_domain_id"
    assert names[("citations", "domain_id")] == "aiclicks_domain_id"
    assert names[("domains", "generated_at")] == "aiclicks_generated_at"
    # the same staged name meaning different things stays apart
    daily, per_channel = "visibility_daily", "model_leaderboard"
    assert names[(daily, "visibility_pct")] != names[(per_channel, "visibility_pct")]
    assert names[("domains", "domain_id")] == "aiclicks__domains__domain_id"


def test_a_new_endpoint_is_one_row(monkeypatch):
    row = {
        "path": "sentiment-time-series",
        "domain_scoped": True,
        "window": "incremental",
        "shape": "items",
        "page_size": None,
        "primary_key": ("domain_id", "date"),
        "columns": {
            "domain_id": "text", "date": "date", "generated_at": "timestamp", "value": "double",
        },
        "description": "Daily sentiment, from /sentiment-time-series.",
        "column_descriptions": {
            "domain_id": "The domain (domains.id, a UUID) the row belongs to.",
            "date": "The day (UTC calendar date) the value is for.",
            "generated_at": settings.ENDPOINTS["domains"]["column_descriptions"]["generated_at"],
            "value": "Sentiment, percent 0-100.",
        },
    }
    monkeypatch.setitem(settings.ENDPOINTS, "sentiment_daily", row)
    monkeypatch.setattr(dbt_gen, "SOURCE_TABLES", (*SOURCE_TABLES, "sentiment_daily"))
    files = {
        path.relative_to(PROJECT_DIR).as_posix(): text
        for path, text in dbt_gen.generated_files().items()
    }

    sql = files["models/staging/stg_aiclicks__sentiment_daily.sql"]
    assert "{{ config(enabled=aiclicks_enabled('sentiment_daily')) }}" in sql
    assert "cast(date as date) as date_day" in sql
    assert "cast(value as {{ aiclicks_type_double() }}) as value" in sql
    assert "from {{ source('aiclicks', 'sentiment_daily') }}" in sql
    (source,) = yaml.safe_load(files["models/staging/sources.yml"])["sources"]
    table = next(t for t in source["tables"] if t["name"] == "sentiment_daily")
    assert table["config"]["enabled"] == "{{ var('aiclicks_enabled_sentiment_daily', true) }}"
    model = yaml.safe_load(files["models/staging/_staging.yml"])["models"][-1]
    assert model["name"] == "stg_aiclicks__sentiment_daily"
    key = {"combination_of_columns": ["domain_id", "date_day"]}
    assert model["data_tests"] == [{"unique_combination_of_columns": {"arguments": key}}]
    columns = {c["name"]: c for c in model["columns"]}
    assert columns["value"]["description"] == "{{ doc('aiclicks__sentiment_daily__value') }}"
    assert columns["domain_id"]["description"] == "{{ doc('aiclicks_domain_id') }}"
    docs = files["models/staging/_aiclicks_sources.md"]
    block = "{% docs aiclicks__sentiment_daily__value %}\nSentiment, percent 0-100.\n{% enddocs %}"
    assert block in docs
    assert "  aiclicks_enabled_sentiment_daily: true\n" in files["dbt_project.yml"]


def test_the_yaml_written_reads_back_as_the_data_it_was_written_from():
    data = {
        "version": 2,
        "models": [
            {"name": "m", "description": "x" * 150 + " it's: \"quoted\" - # not a comment",
             "data_tests": [
                 "unique", {"relationships": {"arguments": {"to": "ref('a')", "field": "b"}}},
             ],
             "columns": [{"name": "c", "data_tests": ["not_null"], "flag": True, "none": None}]},
        ],
    }
    assert yaml.safe_load(dbt_gen.yaml_text(data)) == data


def test_the_marts_transform_names_are_the_packages_and_carry_its_prefix():
    marts = {path.stem for path in (PROJECT_DIR / "models" / "marts").glob("*.sql")}
    assert set(transform.MARTS) == marts
    assert all(name.startswith("aiclicks__") for name in marts)
    described = yaml.safe_load((PROJECT_DIR / "models" / "marts" / "_marts.yml").read_text())
    assert [model["name"] for model in described["models"]] == list(transform.MARTS)
