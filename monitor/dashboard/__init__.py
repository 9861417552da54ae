"""The dashboard: a self-contained HTML page per monitor (charts as inline SVG) and an index.

Served by the API (`GET /api/monitors/{name}/dashboard`, `GET /api/dashboard`) and written to a
file by :func:`export_dashboard` (the demo).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from monitor.dashboard.data import load_dashboard
from monitor.dashboard.page import render_dashboard, render_index

__all__ = ["dashboard_html", "export_dashboard", "index_html"]


def dashboard_html(name: str, *, start: datetime | None = None, end: datetime | None = None,
                   segment: str = "all", link_params: Mapping[str, str] | None = None,
                   static: bool = False) -> str:
    """The dashboard page of monitor `name` for a time range and segment."""
    data = load_dashboard(name, start=start, end=end, segment=segment)
    return render_dashboard(data, link_params=link_params, static=static)


def index_html(*, link_params: Mapping[str, str] | None = None) -> str:
    """The index of every monitor, each linking to its dashboard."""
    from monitor.monitors import MonitorStore

    return render_index(MonitorStore().list(), link_params=link_params)


def export_dashboard(name: str, path: str | Path, *, start: datetime | None = None,
                     end: datetime | None = None, segment: str = "all") -> Path:
    """Write the dashboard of `name` to `path` (a standalone HTML file); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dashboard_html(name, start=start, end=end, segment=segment, static=True), encoding="utf-8")
    return target
