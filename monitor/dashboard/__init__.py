"""The dashboard: a self-contained HTML page per monitor (charts as inline SVG) and an index.

Served by the API (`GET /api/monitors/{name}/dashboard`, `GET /api/dashboard`) and written to a
file by :func:`export_dashboard` (the demo). Every number comes from the aggregated windows; see
docs/api.md ("Dashboard") for the default range and the failing examples.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from monitor.dashboard.data import DashboardQuery, load_dashboard, parse_query
from monitor.dashboard.page import render_dashboard, render_index

__all__ = ["DashboardQuery", "dashboard_html", "dashboard_page", "export_dashboard", "index_html"]


def dashboard_html(name: str, query: DashboardQuery | None = None, *, notices: list[str] | None = None,
                   link_params: Mapping[str, str] | None = None, static: bool = False) -> str:
    """The dashboard page of monitor `name` for a query (default: the last 7 days of data, all traffic)."""
    data = load_dashboard(name, query, notices=notices or [])
    return render_dashboard(data, link_params=link_params, static=static)


def dashboard_page(name: str, params: Mapping[str, str | None], *,
                   link_params: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """The page for raw request parameters, and whether a parameter was rejected (shown on the page)."""
    query, notices = parse_query(params)
    return dashboard_html(name, query, notices=notices, link_params=link_params), bool(notices)


def index_html(*, link_params: Mapping[str, str] | None = None) -> str:
    """The index of every monitor, each linking to its dashboard."""
    from monitor.monitors import MonitorStore

    return render_index(MonitorStore().list(), link_params=link_params)


def export_dashboard(name: str, path: str | Path, *, start: datetime | None = None,
                     end: datetime | None = None, segment: str = "all") -> Path:
    """Write the dashboard of `name` to `path` (a standalone HTML file); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    query = DashboardQuery(start=start, end=end, segment=segment)
    target.write_text(dashboard_html(name, query, static=True), encoding="utf-8")
    return target
