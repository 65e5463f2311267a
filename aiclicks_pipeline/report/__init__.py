"""`aiclicks-pipeline report`: one self-contained HTML file of the warehouse, per domain the
visibility trend, share of voice against competitors, the assistants, the most-cited sources
and the top fan-out queries.

data.py reads the numbers from the dbt marts (`aiclicks-pipeline transform` builds them),
html.py writes the page (plotly.js inline, charts drawn when a domain is opened),
the warehouse is read through warehouse.py's reader, as every command reads it.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from ..settings import (
    DEFAULT_DATASET,
    DEFAULT_DUCKDB_FILE,
    DEFAULT_MODELS_SCHEMA,
    DEFAULT_PIPELINE_NAME,
)
from ..warehouse import DEFAULT_READ_WAIT_S, open_warehouse
from .data import ReportData, read_report
from .html import INSTALL_HINT, ReportNotInstalled, plotly_js, render_html
from .warehouse import ReportError

DEFAULT_REPORT_FILE = "aiclicks_report.html"


@dataclass
class ReportResult:
    path: Path
    size_bytes: int
    domains: int
    elapsed_s: float
    read_s: float
    warnings: List[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"Report of {self.domains} domain(s) from the dbt models: {self.path} "
            f"({self.size_bytes / 1e6:.1f} MB, {self.elapsed_s:.1f}s)"
        ]
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


def write_report(
    out: str = DEFAULT_REPORT_FILE,
    duckdb_file: Optional[str] = DEFAULT_DUCKDB_FILE,
    destination: Optional[str] = None,
    dataset: str = DEFAULT_DATASET,
    models_schema: str = DEFAULT_MODELS_SCHEMA,
    domain_ids: Optional[Sequence[str]] = None,
    pipeline_name: str = DEFAULT_PIPELINE_NAME,
    wait_s: float = DEFAULT_READ_WAIT_S,
) -> ReportResult:
    """Reads the warehouse and writes the report to `out`.

    Args:
        out: the HTML file to write (its folder is created).
        duckdb_file: the DuckDB file a sync wrote (destination duckdb, the default).
        destination: another dlt destination (`postgres`, `bigquery`, ...), credentials from
            dlt's config as for `aiclicks-pipeline run` (of pipeline `pipeline_name`).
        dataset: the dataset the sync loaded; models_schema: where `transform` wrote the models.
        domain_ids: only these domains (default every domain loaded).
        wait_s: how long to wait for a DuckDB file a sync is loading.

    Raises:
        ReportNotInstalled: plotly (the `report` extra) is missing.
        WarehouseError: no such DuckDB file; WarehouseBusy: a sync still writes it after
            `wait_s`.
        ReportError: no data loaded, no dbt models built (run transform), or an unknown domain.
    """
    started = time.monotonic()
    plotly_js()  # fail before reading anything when the extra is missing
    _check_models_can_be_built(destination)
    with open_warehouse(
        destination=destination,
        dataset=dataset,
        duckdb_file=duckdb_file,
        pipeline_name=pipeline_name,
        models_schema=models_schema,
        wait_s=wait_s,
    ) as reader:
        data = read_report(reader, domain_ids=domain_ids)
    page = render_html(data)
    path = Path(out).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return ReportResult(
        path=path,
        size_bytes=path.stat().st_size,
        domains=len(data.domains),
        elapsed_s=time.monotonic() - started,
        read_s=data.elapsed_s,
        warnings=data.warnings,
    )


def _check_models_can_be_built(destination: Optional[str]) -> None:
    """The report reads the dbt marts: on a destination dbt cannot build them on (a lakehouse of
    files), say so instead of sending the user to `transform`."""
    from ..dbt_targets import TARGETS
    from ..destinations import configured_destination, destination_kind

    kind = destination_kind(configured_destination(destination))
    if kind not in TARGETS:
        raise ReportError(
            f"The report reads the dbt models, which the dbt package cannot build on destination "
            f"{kind} (its targets are {', '.join(TARGETS)})"
        )


__all__ = [
    "DEFAULT_REPORT_FILE",
    "INSTALL_HINT",
    "ReportData",
    "ReportError",
    "ReportNotInstalled",
    "ReportResult",
    "read_report",
    "render_html",
    "write_report",
]
