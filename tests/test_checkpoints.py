"""A sync in checkpoints: committed piece by piece, resumed with what is left, watched (the cut
into checkpoints: unit/test_checkpoint_cuts.py)."""

import io
import json

import pytest

from aiclicks_pipeline.progress import SyncProgress
from aiclicks_pipeline.sandbox import run_sandbox
from aiclicks_pipeline.sandbox.truth import WarehouseTruth
from aiclicks_pipeline.settings import DEFAULT_DATASET
from aiclicks_pipeline.sync_summary import progress_line, render_json

from .support import START, Warehouse, assert_equals_truth, assert_keys_unique


@pytest.fixture
def sandbox6():
    with run_sandbox(
        seed=5, domains=6, prompts=(20, 80), start=START, frozen=True, rate_limit=None
    ) as running:
        yield running


def test_a_sync_commits_each_checkpoint_as_its_own_load(sandbox6, warehouse):
    result = warehouse.sync(sandbox6, checkpoint_requests=20)

    truth = WarehouseTruth(sandbox6.account)
    truth.record_sync(sandbox6.clock.now(), days=90)
    assert_equals_truth(warehouse, truth)
    assert_keys_unique(warehouse)
    assert result.checkpoints_total == result.checkpoints_committed >= 3
    assert result.domains_committed == result.domains_total == 6
    loads = warehouse.query(f"select count(*) from {DEFAULT_DATASET}._dlt_loads")[0][0]
    # and one more: the run's final row in the run history (history.py)
    assert loads - 1 == result.checkpoints_total == len(result.load_ids)
    # checkpoints take the domains in id order, so a table is stored as one run of ids per load
    for table in ("fanout_queries", "visibility_daily", "citations"):
        runs = warehouse.query(
            f"select min(domain_id), max(domain_id) from {DEFAULT_DATASET}.{table}"
            " group by _dlt_load_id order by min(rowid)"
        )
        assert len(runs) == result.checkpoints_total
        assert all(one[1] < the_next[0] for one, the_next in zip(runs, runs[1:])), (table, runs)
    # every checkpoint's load carries the cursors of its own domains
    state = warehouse.pipeline.state["sources"]["aiclicks"]["resources"]
    assert set(state["visibility_daily"]["cursors"]) == set(sandbox6.account.domain_ids())
    assert set(state["visibility_daily"]["synced_at"]) == set(sandbox6.account.domain_ids())
    # requests: /domains once, then what the domains need, nothing more
    assert result.stats.requests == len(sandbox6.stats.log)
    assert sum(r["path"].endswith("/domains") for r in sandbox6.stats.log) == 1
    # the warehouse keeps the newest copy of the state, not one per checkpoint (stored_state.py)
    states = warehouse.query(
        f"select count(*) from {DEFAULT_DATASET}._dlt_pipeline_state where pipeline_name = "
        f"'{warehouse.pipeline.pipeline_name}'"
    )[0][0]
    assert states == 1


def test_a_stop_between_checkpoints_keeps_what_was_committed_and_the_rerun_does_the_rest(
    sandbox6, warehouse
):
    from aiclicks_pipeline.interrupts import StopRequest

    stop = StopRequest()
    domains = sandbox6.account.domain_ids()
    served = []

    def stop_after_the_second_checkpoint(path, query):
        served.append(query.get("domain_id"))
        if len({d for d in served if d}) > 4:  # the third checkpoint has begun
            stop.request(15)

    sandbox6.on_request(stop_after_the_second_checkpoint)
    first = warehouse.sync(sandbox6, checkpoint_requests=20, stop=stop)
    sandbox6.app.callbacks.clear()

    assert first.status == "interrupted" and 0 < first.checkpoints_committed < first.checkpoints_total
    assert 0 < first.domains_committed < len(domains)
    assert "run again to continue" in progress_line(first)
    committed = first.domains_committed
    sandbox6.reset_stats()

    second = warehouse.sync(sandbox6, checkpoint_requests=20)

    assert second.status == "success"
    assert second.domains_fresh == committed
    assert second.domains_committed == len(domains) - committed
    asked = {r["query"].get("domain_id") for r in sandbox6.stats.log} - {None}
    assert len(asked) == len(domains) - committed  # the committed domains are not asked again
    truth = WarehouseTruth(sandbox6.account)
    truth.record_sync(sandbox6.clock.now(), days=90)
    assert_equals_truth(warehouse, truth)
    assert_keys_unique(warehouse)


def test_full_refresh_ignores_the_resync_interval(sandbox6, warehouse):
    warehouse.sync(sandbox6)
    sandbox6.reset_stats()

    again = warehouse.sync(sandbox6, full_refresh=True)

    assert again.domains_fresh == 0 and again.domains_committed == 6
    assert again.windows_asked["visibility_daily"] == [90]


def test_the_resync_interval_is_configurable(sandbox6, warehouse, monkeypatch):
    warehouse.sync(sandbox6)
    sandbox6.advance(hours=0.5)
    monkeypatch.setenv("SOURCES__AICLICKS__RESYNC_AFTER_MINUTES", "20")

    later = warehouse.sync(sandbox6)

    assert later.domains_fresh == 0 and later.domains_committed == 6


def test_the_json_summary_has_what_a_scheduler_needs(sandbox6, warehouse):
    result = warehouse.sync(sandbox6, checkpoint_requests=30)
    summary = json.loads(json.dumps(render_json(result)))

    assert summary["status"] == "success"
    assert summary["requests"] == result.stats.requests and summary["rate_limited"] == 0
    assert summary["rows"]["visibility_daily"] == 6 * 90
    assert summary["domains"] == {"total": 6, "committed": 6, "fresh": 0, "skipped": 0, "left": 0}
    assert summary["checkpoints"]["committed"] == summary["checkpoints"]["total"] > 1
    assert summary["duration_s"] > 0 and summary["started_at"] < summary["finished_at"]


def test_progress_off_a_terminal_writes_plain_lines_with_the_facts(sandbox6, tmp_path):
    out = io.StringIO()
    progress = SyncProgress(out=out, mode="plain", interval_s=0.2)
    warehouse = Warehouse(tmp_path)
    with_latency = {"latency_ms": 30}
    sandbox6.set_faults(**with_latency)

    warehouse.sync(sandbox6, checkpoint_requests=20, progress=progress)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Syncing 6 of 6 domain(s) into duckdb file ") and "requests" in lines[0]
    facts = [line for line in lines[1:] if line.startswith("aiclicks: ")]
    assert len(facts) >= 3, lines
    last = facts[-1]
    assert "6/6 domains committed" in last and " rows" in last and "requests" in last
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_progress_on_a_terminal_redraws_one_line_and_shows_the_rate_limit_wait(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the stream has no terminal to ask: full words fit

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    progress = SyncProgress(out=out)
    # one checkpoint of ~28 requests through 8 per 2 s: the throttle waits several times
    with run_sandbox(
        seed=5, domains=3, prompts=(5, 10), start=START, frozen=True, rate_limit=8, rate_window=2
    ) as sandbox:
        Warehouse(tmp_path).sync(sandbox, checkpoint_requests=40, progress=progress)

    text = out.getvalue()
    assert progress.mode == "tty"
    assert text.count("\r") > 3
    assert "waiting " in text and " for the rate limit" in text
    assert "ETA " in text and "/min" in text
    assert text.endswith("\r\x1b[K")  # the live line is cleared


def test_the_working_folder_does_not_grow_run_after_run(warehouse, monkeypatch):
    from aiclicks_pipeline import workdir

    monkeypatch.setattr(workdir, "KEEP_LOADED_PACKAGES", 4)
    loaded = warehouse.pipelines_dir / warehouse.name / "load" / "loaded"
    sizes = []
    # four domains: each run commits two checkpoints or more, and its final row's load
    with run_sandbox(seed=5, domains=4, prompts=(20, 80), start=START, frozen=True, rate_limit=None) as sandbox:
        for _ in range(4):
            result = warehouse.sync(sandbox, checkpoint_requests=20)
            assert result.checkpoints_committed >= 2
            sandbox.advance(days=1)
            sizes.append(sum(f.stat().st_size for f in warehouse.pipelines_dir.rglob("*") if f.is_file()))
            # a loaded package keeps its metadata, not its data files
            assert not [f for f in loaded.glob("*/completed_jobs/*") if f.is_file()]
    assert len(list(loaded.iterdir())) <= 4
    assert sizes[-1] <= sizes[1] * 1.25, sizes


def test_the_working_folder_does_not_grow_checkpoint_after_checkpoint(warehouse, monkeypatch):
    """A loaded package keeps a copy of the state (MBs at thousands of domains): a long run
    prunes them as it goes, not only at its end."""
    from aiclicks_pipeline import workdir

    monkeypatch.setattr(workdir, "KEEP_LOADED_PACKAGES", 2)
    loaded = warehouse.pipelines_dir / warehouse.name / "load" / "loaded"
    seen = []

    class CountingPackages(SyncProgress):
        def checkpoint_started(self, number: int) -> None:
            seen.append(len(list(loaded.iterdir())) if loaded.is_dir() else 0)
            super().checkpoint_started(number)

    with run_sandbox(seed=5, domains=6, prompts=(20, 80), start=START, frozen=True, rate_limit=None) as sandbox:
        result = warehouse.sync(sandbox, checkpoint_requests=10, progress=CountingPackages(mode="quiet"))
    assert result.checkpoints_committed >= 5
    assert len(seen) == result.checkpoints_committed and max(seen) <= 2, seen


def test_a_resync_interval_of_zero_asks_everything_even_what_was_synced_a_moment_ahead():
    """A sync time recorded by a server-clock estimate a little ahead of the next run's own
    (a run, then a plan or run within the same second) is due all the same at 0 minutes."""
    from aiclicks_pipeline.sync import SYNCED_KEY, SyncContext

    context = SyncContext()
    now = "2026-06-17T10:00:00+00:00"
    ahead = 1781690400 + 1  # a second after `now`, in epoch seconds
    context.begin(now, {"prompts": {SYNCED_KEY: {"d1": ahead}}})
    assert context.due_resources("d1", ["prompts"], 0) == {"prompts"}
    assert context.due_resources("d1", ["prompts"], 3600) == set()


def test_the_default_checkpoint_is_two_minutes_of_the_limit_the_api_states(tmp_path):
    """Without `checkpoint_requests`, a checkpoint is as many requests as the keys may make in
    two minutes as `/domains` states it (`X-RateLimit-Limit` 10, over the API's 60 s window
    until the client has measured another: 20), cut as an explicit 20 cuts; a server that
    states no limit gets one checkpoint for a sync of a few hundred requests."""
    with run_sandbox(seed=5, domains=3, prompts=(20, 80), start=START, frozen=True,
                     rate_limit=10, rate_window=3.0) as limited:
        stated = Warehouse(tmp_path / "stated").sync(limited)
        explicit = Warehouse(tmp_path / "explicit").sync(limited, checkpoint_requests=20)
    assert stated.status == explicit.status == "success"
    assert stated.checkpoints_committed == explicit.checkpoints_committed >= 2
    with run_sandbox(seed=5, domains=3, prompts=(20, 80), start=START, frozen=True,
                     rate_limit=None) as unlimited:
        assert Warehouse(tmp_path / "unlimited").sync(unlimited).checkpoints_committed == 1


def test_a_duckdb_load_leaves_the_merges_staging_tables_empty(sandbox6, warehouse):
    """DuckDB writes a load out of its log at the close, staging tables too: a sync's loads
    empty them once complete (pipeline.run_settings; docs/how-a-sync-works.md, Memory)."""
    result = warehouse.sync(sandbox6, checkpoint_requests=20)
    assert result.status == "success" and result.checkpoints_committed > 1
    staging = f"{DEFAULT_DATASET}_staging"
    tables = warehouse.query(
        f"select table_name from information_schema.tables where table_schema = '{staging}' "
        "and table_name not like '\\_dlt%' escape '\\'"
    )
    assert len(tables) > 5, tables  # every merged table went through staging (not dlt's own)
    for (table,) in tables:
        assert warehouse.query(f'select count(*) from {staging}."{table}"') == [(0,)], table
    truth = WarehouseTruth(sandbox6.account)
    truth.record_sync(sandbox6.clock.now(), days=90)
    assert_equals_truth(warehouse, truth)
