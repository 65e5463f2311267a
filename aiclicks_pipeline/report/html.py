"""The report as one self-contained HTML file: the page, its style and script, plotly.js and
the data, all inline; nothing is fetched when it opens.

The index of domains is plain HTML (with a small SVG sparkline per domain). Each domain's
numbers are a JSON block the page parses, and charts with plotly.js, only when that domain
is opened, so an account of 500 domains opens as fast as one of 3.
"""

import json
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from string import Template
from typing import Any, Dict, List, Optional, Sequence

from .data import ReportData
from .warehouse import ReportError

ASSETS = Path(__file__).resolve().parent / "assets"
INSTALL_HINT = "pip install 'aiclicks-pipeline[report]'"
SPARK_WIDTH, SPARK_HEIGHT = 120, 26


class ReportNotInstalled(ReportError):
    """The charting library (the `report` extra) is not installed."""


def plotly_js() -> str:
    """plotly.js, as the pinned plotly package ships it (the whole library, no CDN)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise ReportNotInstalled(f"The report needs plotly: {INSTALL_HINT}") from exc
    return get_plotlyjs()


def json_block(element_id: str, value: Any) -> str:
    """JSON in a <script> element; `<` escaped so no string in it can close the element."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def sparkline(values: Sequence[Optional[float]]) -> str:
    """An inline SVG line of the values; a missing value breaks the line (a gap)."""
    known = [v for v in values if v is not None]
    if not known:
        return '<span class="muted">n/a</span>'
    low, high = min(known), max(known)
    spread = (high - low) or 1.0
    step = SPARK_WIDTH / max(len(values) - 1, 1)
    segments: List[List[str]] = [[]]
    for n, value in enumerate(values):
        if value is None:
            segments.append([])
            continue
        y = SPARK_HEIGHT - 2 - (value - low) / spread * (SPARK_HEIGHT - 4)
        segments[-1].append(f"{n * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline points="{" ".join(points)}"/>' if len(points) > 1
        else f'<circle cx="{points[0].split(",")[0]}" cy="{points[0].split(",")[1]}" r="1.3" fill="#2563eb"/>'
        for points in segments if points
    )
    title = f"Visibility, last {len(values)} days: {low:.1f}% to {high:.1f}%"
    return (
        f'<svg class="spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" role="img" '
        f'aria-label="{title}"><title>{title}</title>{lines}</svg>'
    )


def _cell(value: Optional[float], text: str, css: str = "") -> str:
    data = "" if value is None else repr(value)
    css_class = f' class="{css}"' if css else ""
    return f'<td data-value="{data}"{css_class}>{text}</td>'


def _number(value: Optional[float], digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _change(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    sign = "+" if value > 0 else "\u2212" if value < 0 else "\u00b1"
    return f"{sign}{abs(value):.1f}"


def _trend_class(value: Optional[float]) -> str:
    return "" if not value else ("up" if value > 0 else "down")


def index_row(domain: Dict[str, Any]) -> str:
    summary = domain["summary"]
    href = "#domain=" + escape(domain["id"], quote=True)
    search = escape(" ".join(str(v or "") for v in (domain["name"], domain["website"], domain["id"])).lower())
    name = (
        f'<td class="name" data-value="{escape(domain["name"].lower())}"><a href="{href}">'
        f'{escape(domain["name"])}</a><span class="site">{escape(domain["website"] or "")}</span></td>'
    )
    rank = summary["sov_rank"]
    cells = [
        name,
        _cell(summary["visibility"], _number(summary["visibility"])),
        _cell(summary["visibility_change_7d"], _change(summary["visibility_change_7d"]),
              _trend_class(summary["visibility_change_7d"])),
        f"<td>{sparkline(summary['sparkline'])}</td>",
        _cell(summary["sov"], _number(summary["sov"])),
        _cell(summary["sov_change"], _change(summary["sov_change"]), _trend_class(summary["sov_change"])),
        _cell(rank, f"{rank} of {summary['brands']}" if rank else "n/a"),
        _cell(summary["citations"], _number(summary["citations"], 0)),
        _cell(summary["own_citations_pct"], _number(summary["own_citations_pct"])),
    ]
    return f'<tr data-search="{search}">' + "".join(cells) + "</tr>"


def _meta(label: str, value: str) -> str:
    return f"    <div><dt>{escape(label)}</dt><dd>{value}</dd></div>"


def render_html(data: ReportData) -> str:
    """The report page for `data`."""
    if not data.domains:
        raise ReportError("No domains to report on")
    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    source = f"dbt models (schema <code>{escape(data.models_schema)}</code>)"
    count = len(data.domains)
    meta = "\n".join([
        _meta("Account", f"{count} domain{'s' if count != 1 else ''} in {escape(data.where)}"),
        _meta("Data as of", escape(data.newest_generated_at or "n/a") + " (newest generated_at)"),
        _meta("Last sync", escape(data.last_sync_at or "n/a") + f" ({data.loads} loads)"),
        _meta("Built from", source),
        _meta("Report written", built),
    ])
    warnings = ""
    if data.warnings:
        warnings = '<div class="warnings">' + "".join(
            f"<p>{escape(w)}</p>" for w in data.warnings
        ) + "</div>"
    index = [{"id": d["id"], "name": d["name"]} for d in data.domains]
    blocks = [json_block("report-index", index)] + [
        json_block(f"domain-data-{n}", domain) for n, domain in enumerate(data.domains)
    ]
    account_title = data.domains[0]["name"] if count == 1 else f"{count} domains"
    page = Template((ASSETS / "page.html").read_text(encoding="utf-8"))
    return page.substitute(
        title=escape(f"AIclicks report: {account_title}"),
        account_title=escape(account_title),
        css=(ASSETS / "report.css").read_text(encoding="utf-8"),
        meta=meta,
        warnings=warnings,
        domain_count=count,
        rows="\n".join(index_row(domain) for domain in data.domains),
        domain_data="\n".join(blocks),
        plotly_js=plotly_js(),
        report_js=(ASSETS / "report.js").read_text(encoding="utf-8"),
    )
