"""What `transform` did, worded for the user, and how it failed: the data of one transform (the
nodes dbt built and tested, the source tables found missing, each source's freshness), its
summary, and its errors (each a TransformError carrying what did build)."""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

from .errors import AIclicksError, BusyError


class TransformError(AIclicksError):
    """dbt could not build the models, a dbt test failed, or a source is stale past its error
    threshold. The message is one paragraph saying what; `result` holds what did run."""

    def __init__(self, message: str, result: Optional["TransformResult"] = None) -> None:
        super().__init__(message)
        self.result = result

    def done_so_far(self) -> Optional[str]:
        return self.result.summary() if self.result is not None else None


class TransformBusy(TransformError, BusyError):
    """Another process holds the DuckDB file (exit 75: try again)."""


class DbtNotInstalled(TransformError):
    """dbt, or the target's dbt adapter, is not installed."""


@dataclass
class SourceFreshness:
    """`dbt source freshness` of one source table: its newest `generated_at` against now."""

    table: str
    # pass, warn, error or "runtime error" (the check itself failed)
    status: str
    max_loaded_at: Optional[datetime] = None
    age_hours: Optional[float] = None
    warn_after_hours: Optional[float] = None
    error_after_hours: Optional[float] = None
    message: Optional[str] = None

    def describe(self) -> str:
        if self.status == "runtime error":
            return f"{self.table}: could not be checked: {self.message or 'see the dbt log'}"
        # dbt reports an empty table as loaded in the year 1
        if self.max_loaded_at is None or self.max_loaded_at.year == 1:
            return f"{self.table}: no rows"
        # a clock ahead of the warehouse's (a sandbox moved on a day) is not an age
        age = f", {max(self.age_hours, 0.0):.1f} h old" if self.age_hours is not None else ""
        limit = {"warn": self.warn_after_hours, "error": self.error_after_hours}.get(self.status)
        over = f" (over {_format_hours(limit)} h)" if limit is not None else ""
        newest = self.max_loaded_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.table}: newest generated_at {newest}{age}{over}"


@dataclass
class TransformResult:
    target: str
    schema: str
    work_dir: Path
    elapsed_s: float
    # (resource type, status) -> nodes, e.g. ("model", "success"): 16, ("test", "pass"): 119
    statuses: Dict[tuple, int] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    # source tables the dataset does not hold, and the models switched off (for them, or by the
    # caller's aiclicks_enabled_<table> vars)
    missing_tables: List[str] = field(default_factory=list)
    skipped_models: List[str] = field(default_factory=list)
    # one per source table checked; empty when the check was not run
    freshness: List[SourceFreshness] = field(default_factory=list)
    # "<kind> <node>: <error>" of each model or test that failed
    failures: List[str] = field(default_factory=list)
    log_path: Optional[Path] = None

    def count(self, resource_type: str, status: Optional[str] = None) -> int:
        return sum(
            n for (kind, state), n in self.statuses.items()
            if kind == resource_type and (status is None or state == status)
        )

    def freshness_of(self, status: str) -> List[SourceFreshness]:
        return [source for source in self.freshness if source.status == status]

    @property
    def stale(self) -> List[SourceFreshness]:
        """Sources past their error threshold, or whose check failed."""
        return [s for s in self.freshness if s.status in ("error", "runtime error")]

    def summary(self) -> str:
        lines = [
            f"dbt build on {self.target} finished in {self.elapsed_s:.1f}s: "
            f"{self.count('model')} models and {self.count('seed')} seed(s) built into schema "
            f"{self.schema}, {self.count('test', 'pass')} of {self.count('test')} dbt tests passed"
            + (f", {len(self.warnings)} warned" if self.warnings else "")
            + (f", {len(self.failures)} failed" if self.failures else ""),
        ]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.missing_tables:
            lines.append(f"  not in the dataset: {', '.join(self.missing_tables)}")
        if self.skipped_models:
            marts = [name for name in self.skipped_models if not name.startswith("stg_")]
            staging = len(self.skipped_models) - len(marts)
            lines.append(
                f"  skipped: {len(marts)} mart(s) ({', '.join(marts) or 'none'}) and {staging} "
                "staging model(s), their source tables not loaded (or switched off)"
            )
        if self.freshness:
            counts = Counter(source.status for source in self.freshness)
            first = self.freshness[0]
            thresholds = ", ".join(
                f"{name} after {_format_hours(hours)} h"
                for name, hours in (("warn", first.warn_after_hours), ("error", first.error_after_hours))
                if hours is not None
            )
            lines.append(
                f"  source freshness ({thresholds or 'no thresholds'}): "
                + ", ".join(f"{counts[s]} {s}" for s in ("pass", "warn", "error", "runtime error") if counts[s])
            )
            # the sources past a threshold, one line each; all of them when every one is fine
            # but the newest load is what a reader checks ("newest ... h old")
            shown = [s for s in self.freshness if s.status != "pass"] or self.freshness[:1]
            width = max(len(source.status) for source in shown)
            lines += [f"    {s.status:<{width}}  {s.describe()}" for s in shown]
        log = self.log_path or self.work_dir / "logs"
        lines.append(f"  dbt's log: {log}; artifacts: {self.work_dir / 'target'}")
        return "\n".join(lines)


def _format_hours(hours: float) -> str:
    return f"{hours:.0f}" if float(hours).is_integer() else f"{hours:.1f}"


def freshness_failure(result: TransformResult) -> Optional[TransformError]:
    """The error of a transform whose sources are past their error threshold (or could not be
    checked), the models built all the same; None when none is."""
    stale = result.stale
    if not stale:
        return None
    return TransformError(
        f"Source freshness on {result.target}: {len(stale)} of {len(result.freshness)} "
        f"source table(s) past the error threshold: " + "; ".join(s.describe() for s in stale)
        + ". The models were built from what is there; sync again (`aiclicks-pipeline run`), "
        "or raise the var aiclicks_freshness_error_after_hours",
        result,
    )


__all__ = [
    "DbtNotInstalled",
    "SourceFreshness",
    "TransformBusy",
    "TransformError",
    "TransformResult",
    "freshness_failure",
]
