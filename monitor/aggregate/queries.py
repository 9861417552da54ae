"""Read side for the HTTP API and the dashboard: windows and alerts of a monitor over time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from monitor.aggregate import alerts as rules
from monitor.aggregate import store
from monitor.errors import UserError
from monitor.keys import parse_time
from monitor.storage.tables import Tables

# A window overlapping `start` may begin up to one (day) window earlier.
_LONGEST_WINDOW = timedelta(days=1)

TimeArg = datetime | str | None


def as_time(value: TimeArg, name: str) -> datetime | None:
    """A datetime, an ISO 8601 string (the API's query parameters) or None."""
    if value is None or isinstance(value, datetime):
        return value
    try:
        return parse_time(value)
    except ValueError:
        raise UserError(f"{name} must be an ISO 8601 time such as 2026-11-20T14:00:00Z, got {value!r}",
                        details=[{"field": name, "message": "not an ISO 8601 time"}]) from None


def _earlier(start: datetime | None) -> datetime | None:
    """The earliest window start that can overlap `start` (no overflow near datetime.min)."""
    if start is None or start - datetime.min.replace(tzinfo=start.tzinfo) < _LONGEST_WINDOW:
        return None
    return start - _LONGEST_WINDOW


def _overlaps(item: dict[str, Any], start: datetime | None, end: datetime | None) -> bool:
    if start is not None and parse_time(str(item["window_end"])) <= start:
        return False
    return end is None or parse_time(str(item["window_start"])) < end


def query_windows(monitor: str, *, metric: str | None = None, segment: str | None = None,
                  start: TimeArg = None, end: TimeArg = None,
                  tables: Tables | None = None) -> list[dict[str, Any]]:
    """Windows of a monitor overlapping [start, end), sorted by window_start, metric, segment.

    With `metric`: one partition range query (PartitionKey `{monitor}|{metric}`, RowKey range on
    window_start). Each item holds the entity properties (CONTRACTS.md section 5 names) with
    `histogram` as a dict `{"1": n, .., "5": n}`; `pass_rate`/`average_score` are None when nothing
    was scored.
    """
    lo, hi = as_time(start, "start"), as_time(end, "end")
    rows = store.windows_between(tables or Tables.default(), monitor, metric,
                                 _earlier(lo), hi)
    out = [store.public_window(r) for r in rows if segment is None or r.get("segment") == segment]
    out = [r for r in out if _overlaps(r, lo, hi)]
    return sorted(out, key=lambda r: (r["window_start"], r["metric"], r["segment"] != "all", r["segment"]))


def query_alerts(monitor: str, *, start: TimeArg = None, end: TimeArg = None,
                 tables: Tables | None = None) -> list[dict[str, Any]]:
    """Alerts of windows overlapping [start, end), oldest window first (one partition query)."""
    lo, hi = as_time(start, "start"), as_time(end, "end")
    rows = rules.alerts_between(tables or Tables.default(), monitor,
                                _earlier(lo), hi)
    out = [rules.public_alert(r) for r in rows]
    out = [a for a in out if _overlaps(a, lo, hi)]
    return sorted(out, key=lambda a: (a["window_start"], a["created_at"], a["metric"], a["segment"], a["kind"]))
