"""Running dbt for `transform`: dbt's Python runner on the packaged project and profiles, its
work folder (`target/`, `logs/`), where its output goes, and the three dbt commands a transform
runs, each read into what `transform` reports (transform_result.py):
`run-operation aiclicks_loaded_tables` (which source tables the warehouse holds), `build` and
`source freshness`.

dbt's console is silent unless asked (`show_log`): `transform` prints a summary of its own. Every
line dbt would print (info and above, of every dbt command one transform runs) is written to
`<work>/logs/transform.log`, new each time and without colour codes; dbt keeps its own debug log
beside it (`dbt.log`, the SQL it ran; no colour codes either). Colour reaches the console on a
terminal only.
"""

import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any, Callable, List, Mapping, Optional, Sequence

from .dbt_gen import PROJECT_DIR, SOURCE_TABLES
from .transform_result import SourceFreshness, TransformBusy, TransformError, TransformResult

PROFILES_DIR = PROJECT_DIR / "profiles"
PACKAGE_NAME = "aiclicks"
LOG_FILE = "transform.log"
LOADED_TABLES_LOG = "aiclicks_loaded_tables: "
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
_SHOWN_LEVELS = ("info", "warn", "error")


class DbtRuns:
    """The dbt commands of one transform, on one target, sharing a work folder and a log."""

    def __init__(self, runner: Any, target: str, work: Path, show_log: bool = False) -> None:
        self.runner = runner
        self.target = target
        self.work = work
        self.show_log = show_log
        self.log_path = work / "logs" / LOG_FILE
        self._log: Optional[IO[str]] = None

    def __enter__(self) -> "DbtRuns":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._log is not None:
            self._log.close()

    def invoke(
        self,
        command: List[str],
        dbt_vars: Mapping[str, Any],
        listen: Optional[Callable[[Any], None]] = None,
        console: bool = True,
    ) -> Any:
        """`dbt <command>` on the package; returns dbt's result. `listen` sees every event;
        `console=False` keeps dbt's console silent even with `show_log`."""
        shown = self.show_log and console
        colours = shown and sys.stdout.isatty()
        args = [
            *command,
            "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROFILES_DIR),
            "--target", self.target,
            "--target-path", str(self.work / "target"),
            "--log-path", str(self.work / "logs"),
            "--vars", json.dumps(dict(dbt_vars)),
            "--log-level", "info" if shown else "none",
            "--log-level-file", "debug",
            "--use-colors" if colours else "--no-use-colors",
            "--no-use-colors-file",
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
        ]
        callbacks = [self._write] + ([listen] if listen else [])
        return self.runner(callbacks=callbacks).invoke(args)

    def _write(self, event: Any) -> None:
        info = event.info
        if self._log is None or info.level not in _SHOWN_LEVELS or not info.msg:
            return
        at = info.ts.ToDatetime().strftime("%H:%M:%S")
        for line in _COLOUR.sub("", info.msg).splitlines() or [""]:
            self._log.write(f"{at}  {line}\n")
        self._log.flush()


# --- the dbt commands of a transform ---------------------------------------------------------


def loaded_tables(dbt: DbtRuns, dbt_vars: Mapping[str, Any], where: str) -> List[str]:
    """The package's source tables that exist, as the warehouse answers through dbt's adapter."""
    from .destinations import busy_message

    found: List[List[str]] = []
    errors: List[str] = []

    def listen(event: Any) -> None:
        message = event.info.msg or ""
        if event.info.name == "JinjaLogInfo" and message.startswith(LOADED_TABLES_LOG):
            found.append(json.loads(message[len(LOADED_TABLES_LOG):]))
        elif event.info.level == "error" and message.strip():
            errors.append(message)

    # dbt's console stays silent: a failure is reported in one line below
    outcome = dbt.invoke(["run-operation", "aiclicks_loaded_tables"], dbt_vars, listen, console=False)
    if not found:
        detail = str(outcome.exception) if outcome.exception is not None else " ".join(errors)
        busy = busy_message(detail)
        if busy:
            raise TransformBusy(busy)
        raise TransformError(
            f"dbt could not read {where}: {_one_line(detail) or 'see ' + str(dbt.log_path)}"
        )
    if not found[-1]:
        raise TransformError(
            f"No AIclicks table in {where}: load the data first (`aiclicks-pipeline run`), "
            "or name the dataset it went to (--dataset)"
        )
    return found[-1]


def build(
    dbt: DbtRuns,
    dbt_vars: Mapping[str, Any],
    select: Optional[Sequence[str]],
    schema: str,
    missing: List[str],
    started: float,
) -> TransformResult:
    """`dbt build` (the seed, the models, every dbt test) with `dbt_vars`: what it built, or the
    error naming each failing node (carrying what did build)."""
    outcome = dbt.invoke(["build", *(["--select", *select] if select else [])], dbt_vars)
    result = _build_result(outcome, dbt, schema, missing)
    result.elapsed_s = time.monotonic() - started
    failure = _build_failure(outcome, result, dbt)
    if failure:
        raise failure
    return result


def _build_result(outcome: Any, dbt: DbtRuns, schema: str, missing: List[str]) -> TransformResult:
    statuses: Counter = Counter()
    failures, warnings = [], []
    for node_result in getattr(outcome.result, "results", None) or []:
        node = node_result.node
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        status = str(getattr(node_result.status, "value", node_result.status))
        statuses[(kind, status)] += 1
        described = f"{kind} {node.name}: {_one_line(node_result.message or status)}"
        if status in ("error", "fail", "runtime error"):
            failures.append(described)
        elif status == "warn":
            warnings.append(described)
    return TransformResult(
        target=dbt.target,
        schema=schema,
        work_dir=dbt.work,
        elapsed_s=0.0,
        statuses=dict(statuses),
        warnings=warnings,
        missing_tables=missing,
        skipped_models=_disabled_models(dbt.work),
        failures=failures,
        log_path=dbt.log_path,
    )


def _build_failure(outcome: Any, result: TransformResult, dbt: DbtRuns) -> Optional[TransformError]:
    """The error of a failed build, in one paragraph naming each failing node; None when it
    passed."""
    from .destinations import busy_message

    if outcome.success and not result.failures:
        return None
    detail = " ".join([str(outcome.exception or "")] + result.failures)
    in_use = busy_message(detail)
    if in_use:
        return TransformBusy(in_use, result)
    reasons = result.failures or [
        f"{type(outcome.exception).__name__}: {_one_line(str(outcome.exception))}"
        if outcome.exception is not None
        else "dbt reported a failure; see its log"
    ]
    skipped = result.statuses.get(("model", "skipped"), 0)
    return TransformError(
        f"dbt build on {dbt.target} failed ({len(result.failures)} failing node(s)"
        + (f", {skipped} model(s) skipped" if skipped else "")
        + f"; log in {dbt.log_path}):\n  "
        + "\n  ".join(reasons),
        result,
    )


def _disabled_models(work: Path) -> List[str]:
    """The package's models the build left out (switched off by their enabled var)."""
    try:
        manifest = json.loads((work / "target" / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    names = {
        node["name"]
        for versions in manifest.get("disabled", {}).values()
        for node in versions
        if node.get("resource_type") == "model" and node.get("package_name") == PACKAGE_NAME
    }
    # staging first, then the marts
    return sorted(names, key=lambda name: (not name.startswith("stg_"), name))


def source_freshness(dbt: DbtRuns, dbt_vars: Mapping[str, Any]) -> List[SourceFreshness]:
    """`dbt source freshness` of every source table (its results in dbt's own target/sources.json)."""
    outcome = dbt.invoke(["source", "freshness"], dbt_vars)
    checked = []
    for node_result in getattr(outcome.result, "results", None) or []:
        node = node_result.node
        threshold = getattr(node, "freshness", None)
        checked.append(
            SourceFreshness(
                table=node.name,
                status=str(getattr(node_result.status, "value", node_result.status)),
                max_loaded_at=getattr(node_result, "max_loaded_at", None),
                age_hours=(
                    node_result.age / 3600 if getattr(node_result, "age", None) is not None else None
                ),
                warn_after_hours=_hours(getattr(threshold, "warn_after", None)),
                error_after_hours=_hours(getattr(threshold, "error_after", None)),
                message=_one_line(node_result.message) if node_result.message else None,
            )
        )
    if not checked and outcome.exception is not None:
        checked.append(
            SourceFreshness(table="(all)", status="runtime error", message=_one_line(str(outcome.exception)))
        )
    order = {name: index for index, name in enumerate(SOURCE_TABLES)}
    return sorted(checked, key=lambda source: order.get(source.table, len(order)))


_PERIOD_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}


def _hours(limit: Any) -> Optional[float]:
    """A dbt freshness threshold (count, period) in hours; None when not set."""
    if limit is None or limit.count is None or limit.period is None:
        return None
    return limit.count * _PERIOD_HOURS[str(getattr(limit.period, "value", limit.period))]


def _one_line(text: Optional[str]) -> str:
    return " ".join((text or "").split())
