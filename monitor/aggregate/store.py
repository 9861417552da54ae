"""Storage reads and writes of the aggregation: partials, dirty hours, join halves, windows, runs.

Every read is a partition query or a PartitionKey range query; see docs/architecture.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.data.tables import TableClient

from monitor.aggregate.rollup import Unmatched, WindowInput
from monitor.aggregate.windows import Window
from monitor.keys import iso, parse_time
from monitor.partials import counts_of_entity, merge_counts, shapes_of_entity
from monitor.shape import merge_shapes
from monitor.storage.tables import Tables, get_entity, write_entities

RUN_ROW = "last"
# Upper bound of every `{monitor}|...` key: '}' sorts right after '|'.
_AFTER_BAR = "}"


def query(table: TableClient, flt: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entity in table.query_entities(flt, parameters=params):
        yield dict(entity)


def partition_range(monitor: str) -> tuple[str, str]:
    """PartitionKey bounds [lo, hi) of every `{monitor}|...` partition."""
    return f"{monitor}|", f"{monitor}{_AFTER_BAR}"


# --- inputs -------------------------------------------------------------------------------------

def dirty_hours(tables: Tables, monitor: str, since: str | None) -> list[tuple[str, str]]:
    """(hour, updated_at) of hours whose partials changed at or after `since` (all when None)."""
    flt, params = "PartitionKey eq @pk", {"pk": monitor}
    if since is not None:
        flt, params = flt + " and updated_at ge @since", {**params, "since": since}
    return sorted((str(e["RowKey"]), str(e.get("updated_at", ""))) for e in query(tables["dirty"], flt, params))


def window_counts(tables: Tables, monitor: str, window: Window) -> WindowInput:
    """The partials of every hour of the window, merged: one PartitionKey range query."""
    flt = "PartitionKey ge @lo and PartitionKey lt @hi"
    params = {"lo": f"{monitor}|{window.first_hour}", "hi": f"{monitor}|{window.end_hour}"}
    data = WindowInput(window)
    for entity in query(tables["partials"], flt, params):
        merge_counts(data.counts, counts_of_entity(entity))
        merge_shapes(data.shapes, shapes_of_entity(entity))
        data.batches += 1
    return data


@dataclass(frozen=True)
class LonelyHalf:
    hour: str
    segments: tuple[str, ...]
    expired: bool


def half_segments(entity: dict[str, Any]) -> tuple[str, ...]:
    out = ["all"]
    if entity.get("deployment"):
        out.append(f"deployment={entity['deployment']}")
    if entity.get("model_version"):
        out.append(f"model_version={entity['model_version']}")
    return tuple(out)


def half_expired(entity: dict[str, Any], at: datetime, ttl: timedelta) -> bool:
    """Whether a lonely half is past the join time-to-live as of `at`, counted from its request time
    (not from when it was ingested), so aggregating old or backfilled data as of any time classifies
    it the same way (docs/alerts.md)."""
    since = entity.get("time") or entity.get("first_seen")
    if not since:
        return False
    try:
        return parse_time(str(since)) + ttl <= at
    except ValueError:
        return False


def lonely_halves(tables: Tables, monitor: str, first_hour: str, end_hour: str, at: datetime,
                  ttl: timedelta) -> list[LonelyHalf]:
    """Pending join halves whose request hour is in [first_hour, end_hour): one query over 16 shards."""
    lo, hi = partition_range(monitor)
    flt = ("PartitionKey ge @lo and PartitionKey lt @hi and state eq 'pending' "
           "and hour ge @h0 and hour lt @h1")
    params = {"lo": lo, "hi": hi, "h0": first_hour, "h1": end_hour}
    return [LonelyHalf(str(e["hour"]), half_segments(e), half_expired(e, at, ttl))
            for e in query(tables["joins"], flt, params)]


def add_unmatched(data: WindowInput, halves: list[LonelyHalf]) -> None:
    """Count the halves of the window's hours into its segments."""
    first, end = data.window.first_hour, data.window.end_hour
    for half in halves:
        if not first <= half.hour < end:
            continue
        for segment in half.segments:
            slot = data.unmatched.setdefault(segment, Unmatched())
            if half.expired:
                slot.expired += 1
            else:
                slot.pending += 1


# --- windows ------------------------------------------------------------------------------------

def stored_windows(tables: Tables, monitor: str, metric: str, start: datetime,
                   end: datetime) -> dict[str, dict[str, Any]]:
    """Stored rows of one metric with window_start in [start, end), by RowKey."""
    flt = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": f"{monitor}|{metric}", "lo": iso(start), "hi": iso(end)}
    return {str(e["RowKey"]): e for e in query(tables["windows"], flt, params)}


def save_windows(tables: Tables, rows: list[dict[str, Any]]) -> int:
    return write_entities(tables["windows"], rows, "upsert")


def windows_between(tables: Tables, monitor: str, metric: str | None, start: datetime | None,
                    end: datetime | None, table: str = "windows") -> Iterator[dict[str, Any]]:
    """Rows of one metric partition (or every metric) with RowKey (window_start) in [start, end);
    `table`: any table laid out the same way (`drift`: PartitionKey `{monitor}|{series}`)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if metric is None:
        lo, hi = partition_range(monitor)
        clauses.append("PartitionKey ge @plo and PartitionKey lt @phi")
        params.update(plo=lo, phi=hi)
    else:
        clauses.append("PartitionKey eq @pk")
        params["pk"] = f"{monitor}|{metric}"
    add_row_range(clauses, params, start, end)
    return query(tables[table], " and ".join(clauses), params)


def add_row_range(clauses: list[str], params: dict[str, Any], start: datetime | None,
                  end: datetime | None) -> None:
    """Restrict a query to RowKeys that begin with a window start in [start, end)."""
    if start is not None:
        clauses.append("RowKey ge @lo")
        params["lo"] = iso(start)
    if end is not None:
        clauses.append("RowKey lt @hi")
        params["hi"] = iso(end)


def public_window(entity: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API shows it: histogram parsed, absent rates as None, keys dropped."""
    out = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
    out["histogram"] = {k: int(v) for k, v in json.loads(str(entity.get("histogram") or "{}")).items()}
    out.setdefault("pass_rate", None)
    out.setdefault("average_score", None)
    for flag in ("breached", "final", "approximate"):
        out[flag] = bool(out.get(flag, False))
    return out


# --- runs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunState:
    at: datetime | None = None
    cursor: str | None = None
    last_run_at: str | None = None


def read_run(tables: Tables, monitor: str) -> RunState:
    entity = get_entity(tables["runs"], monitor, RUN_ROW)
    if entity is None:
        return RunState()
    at = parse_time(str(entity["at"])) if entity.get("at") else None
    return RunState(at=at, cursor=entity.get("dirty_cursor") or None, last_run_at=entity.get("last_run_at"))


def write_run(tables: Tables, monitor: str, properties: dict[str, Any]) -> None:
    tables["runs"].upsert_entity({"PartitionKey": monitor, "RowKey": RUN_ROW, **properties})


def next_cursor(started: datetime, margin: timedelta, deferred: list[str]) -> str:
    """Where the next run starts reading dirty hours: this run's start minus a clock-skew margin,
    held back to the oldest dirty hour this run had to defer (its window starts after `at`)."""
    cursor = iso(started - margin)
    return min([cursor, *deferred])
